"""rclone keeps to a cloud-storage target's upload timetable (issue 28 item 4): restic hands rclone the
`--bwlimit` timetable through `rclone.args`, beside the sandbox that starts rclone as its own user."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import devstack
from pacs_backup.clients.restic import Restic
from pacs_backup.settings.targets import load_target
from tests.support.common import figure

MIB = 1024 * 1024
SIZE = 10 * MIB
LIMIT = 1 * MIB
BURST = 4 * MIB  # rclone lets its token bucket's burst through at once


@pytest.fixture
def webdav_remote(tmp_path: Path) -> Iterator[Path]:
    """A cloud drive on loopback (`rclone serve webdav`): rclone limits uploads at its HTTP transport, as it
    does for Google Drive or Dropbox. Returns the rclone configuration naming it ``clinicdrive``."""
    exe = shutil.which("rclone")
    assert exe, "rclone is missing; run make setup"
    port = devstack.free_port()
    data = tmp_path / "cloud-drive"
    data.mkdir()
    proc = subprocess.Popen(
        [exe, "serve", "webdav", "--addr", f"127.0.0.1:{port}", str(data)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    conf = tmp_path / "rclone.conf"
    conf.write_text(f"[clinicdrive]\ntype = webdav\nurl = http://127.0.0.1:{port}\nvendor = other\n")
    conf.chmod(0o600)
    yield conf
    proc.terminate()
    proc.wait(10)


def snapshot_seconds(conf: Path, password_file: Path, data: Path, repo: str, limit: str | None) -> float:
    env = {
        "CLOUD_RESTIC_REPOSITORY": f"rclone:clinicdrive:{repo}",
        "CLOUD_RESTIC_PASSWORD_FILE": str(password_file),
        "CLOUD_RESTIC_RCLONE_CONFIG": str(conf),
    }
    if limit is not None:
        env["CLOUD_RESTIC_UPLOAD_LIMIT"] = limit
    target = load_target(env, "cloud", "CLOUD_RESTIC_")
    assert target is not None
    restic = Restic.for_target(target, cache_dir=data.parent / "cache")
    restic.init()
    began = time.monotonic()
    summary = restic.backup([str(data)])
    took = time.monotonic() - began
    assert summary["data_added"] >= SIZE * 0.95
    return took


def test_bandwidth_rclone_target_keeps_to_its_timetable(webdav_remote, restic_password_file, tmp_path):
    conf = webdav_remote
    folders = {}
    for name in ("free", "limited"):
        folders[name] = tmp_path / name
        folders[name].mkdir()
        (folders[name] / "image.dcm").write_bytes(os.urandom(SIZE))
    free_s = snapshot_seconds(conf, restic_password_file, folders["free"], "free", None)
    # The whole day at 1 MiB/s: a timetable of one entry, as rclone gets it (00:00,1024k:off).
    limited_s = snapshot_seconds(conf, restic_password_file, folders["limited"], "limited", "1M")
    floor = 0.8 * (SIZE - BURST) / LIMIT
    figure("rclone_bwlimit_10MiB_at_1MiB_s", limited_s=round(limited_s, 2), unlimited_s=round(free_s, 2))
    assert limited_s >= floor, (limited_s, floor)
    assert free_s < floor, (free_s, floor)
