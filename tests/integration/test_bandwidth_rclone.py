"""rclone keeps to a cloud-storage target's upload timetable (issue 28 item 4): restic hands rclone the
`--bwlimit` timetable through `rclone.args`, beside the sandbox that starts rclone as its own user."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pacs_backup.settings.targets import TargetSettings, load_target
from tests.support.cloud_drive import snapshot_seconds, webdav_drive
from tests.support.common import figure

MIB = 1024 * 1024
SIZE = 10 * MIB
LIMIT = 1 * MIB
BURST = 4 * MIB  # rclone lets its token bucket's burst through at once


def rclone_target(conf: Path, password_file: Path, repo: str, limit: str | None) -> TargetSettings:
    env = {
        "CLOUD_RESTIC_REPOSITORY": f"rclone:clinicdrive:{repo}",
        "CLOUD_RESTIC_PASSWORD_FILE": str(password_file),
        "CLOUD_RESTIC_RCLONE_CONFIG": str(conf),
    }
    if limit is not None:
        env["CLOUD_RESTIC_UPLOAD_LIMIT"] = limit
    target = load_target(env, "cloud", "CLOUD_RESTIC_")
    assert target is not None
    return target


@pytest.fixture
def webdav_remote(tmp_path: Path) -> Iterator[Path]:
    """A cloud drive on loopback: its rclone configuration, naming it ``clinicdrive``."""
    with webdav_drive(tmp_path) as (conf, _):
        yield conf


def test_bandwidth_rclone_target_keeps_to_its_timetable(webdav_remote, restic_password_file, tmp_path):
    conf = webdav_remote
    folders = {}
    for name in ("free", "limited"):
        folders[name] = tmp_path / name
        folders[name].mkdir()
        (folders[name] / "image.dcm").write_bytes(os.urandom(SIZE))
    free_s = snapshot_seconds(rclone_target(conf, restic_password_file, "free", None), folders["free"], SIZE)
    # The whole day at 1 MiB/s: a timetable of one entry, as rclone gets it (00:00,1024k:off).
    limited = rclone_target(conf, restic_password_file, "limited", "1M")
    limited_s = snapshot_seconds(limited, folders["limited"], SIZE)
    floor = 0.8 * (SIZE - BURST) / LIMIT
    figure("rclone_bwlimit_10MiB_at_1MiB_s", limited_s=round(limited_s, 2), unlimited_s=round(free_s, 2))
    assert limited_s >= floor, (limited_s, floor)
    assert free_s < floor, (free_s, floor)
