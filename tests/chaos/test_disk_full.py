"""Disk full on the object store and on the Orthanc volume (small tmpfs mounts): clear errors, no
crash, nothing lost, recovery once space returns."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

import pytest

from pacs_backup.contracts.errors import BackupError
from tests.chaos.test_chaos import figure, versions_by_orthanc_id
from tests.support.common import wait_until
from tests.support.dicomgen import make_study
from tests.support.servers import MinioServer

pytestmark = pytest.mark.timeout(900)


@contextlib.contextmanager
def tmpfs(path: Path, size_mb: int):
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)], check=True)
    try:
        yield lambda mb: subprocess.run(["mount", "-o", f"remount,size={mb}m", str(path)], check=True)
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_disk_full_on_object_store_then_space_returns(orthanc_factory, tmp_path, bucket, offsite_env):
    store = MinioServer(tmp_path)
    with tmpfs(store.data, 40) as grow:
        store.start()
        try:
            o = orthanc_factory({**store.env(bucket), **offsite_env})
            http = o.http()
            _, files = make_study(100, rows=512, cols=512)  # ~52 MB: more than MinIO can take on 40 MB
            for f in files:
                http.upload(f)
            wait_until(lambda: o.status()["failed"] > 0 or o.status()["state"] == "error", 120, "store refusals")
            st = o.status()
            assert st["outbox_depth"] > 0 and st["last_error"]["message"]
            assert o.proc.alive()
            message = st["last_error"]["message"]
            grow(400)
            st = o.wait_replicated(100, timeout=300)
            copies = versions_by_orthanc_id(store.client(), bucket)
            lost = [i for i in http.get_json("/instances") if i not in copies]
            figure(
                "object store disk full",
                sent=100,
                replicated=st["replicated"],
                lost=len(lost),
                error_shown=message[-200:],
            )
            assert not lost
        finally:
            store.stop()


def test_disk_full_on_orthanc_volume_then_space_returns(orthanc_factory, minio_server, bucket, offsite_env, tmp_path):
    work = tmp_path / "orthanc"
    with tmpfs(work, 30) as grow:
        o = orthanc_factory({**minio_server.env(bucket), **offsite_env}, name="orthanc")
        http = o.http()
        _, files = make_study(80, rows=512, cols=512)  # ~42 MB: the volume fills up part way
        accepted = refused = 0
        for f in files:
            try:
                http.upload(f)
                accepted += 1
            except BackupError:
                refused += 1
        assert refused > 0 and o.proc.alive()
        assert http.get_json("/system")["Name"]
        grow(300)
        for f in files[accepted:]:  # the modality sends again what was refused
            http.upload(f)
        st = o.wait_replicated(80, timeout=300)
        copies = versions_by_orthanc_id(minio_server.client(), bucket)
        lost = [i for i in http.get_json("/instances") if i not in copies]
        figure("Orthanc volume full", sent=80, refused_while_full=refused, replicated=st["replicated"], lost=len(lost))
        assert not lost
        o.stop()
