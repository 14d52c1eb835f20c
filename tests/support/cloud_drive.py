"""A cloud drive on loopback for tests: `rclone serve webdav`, named ``clinicdrive`` in an rclone
configuration, driven exactly as a Google Drive or Dropbox remote would be (rclone limits and talks to it
through its HTTP transport). And the time a restic snapshot of a folder takes, for the upload-limit tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import devstack
from pacs_backup.clients.restic import Restic
from pacs_backup.settings.targets import TargetSettings
from tests.support.common import wait_until


@contextmanager
def webdav_drive(work: Path) -> Iterator[tuple[Path, Path]]:
    """Serve ``work/cloud-drive`` over WebDAV; yields (the rclone configuration file, the served folder)."""
    exe = shutil.which("rclone")
    assert exe, "rclone is missing; run make setup"
    port = devstack.free_port()
    data = work / "cloud-drive"
    data.mkdir()
    proc = subprocess.Popen(
        [exe, "serve", "webdav", "--addr", f"127.0.0.1:{port}", str(data)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def listening() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        wait_until(listening, 20, "rclone serve webdav to listen", interval=0.1)
        conf = work / "rclone.conf"
        conf.write_text(f"[clinicdrive]\ntype = webdav\nurl = http://127.0.0.1:{port}\nvendor = other\n")
        conf.chmod(0o600)
        yield conf, data
    finally:
        proc.terminate()
        proc.wait(10)


def snapshot_seconds(target: TargetSettings, data: Path, size: int) -> float:
    """Seconds a first restic snapshot of ``data`` (``size`` random bytes) takes to ``target``."""
    restic = Restic.for_target(target, cache_dir=data.parent / "cache")
    restic.init()
    began = time.monotonic()
    summary = restic.backup([str(data)])
    took = time.monotonic() - began
    assert summary["data_added"] >= size * 0.95  # random bytes: nothing compressed or deduplicated away
    return took
