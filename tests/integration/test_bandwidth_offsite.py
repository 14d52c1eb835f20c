"""restic keeps to RESTIC_UPLOAD_LIMIT on loopback (issue 28 item 4): a snapshot of ~2 MiB to the real
rest-server at 256 KiB/s takes at least about what the limit allows, and clearly longer than without it."""

from __future__ import annotations

import os
from pathlib import Path

from pacs_backup.settings.targets import TargetSettings, load_target
from tests.support.cloud_drive import snapshot_seconds
from tests.support.common import figure
from tests.support.servers import RestServer

KIB = 1024
SIZE = 2 * 1024 * KIB
LIMIT = 256 * KIB


def offsite_target(rest_server: RestServer, password_file: Path, limit: str | None) -> TargetSettings:
    env = {"RESTIC_REPOSITORY": rest_server.new_repository(), "RESTIC_PASSWORD_FILE": str(password_file)}
    if limit is not None:
        env["RESTIC_UPLOAD_LIMIT"] = limit
    target = load_target(env, "offsite", "RESTIC_")
    assert target is not None
    return target


def test_bandwidth_restic_snapshot_keeps_to_the_upload_limit_on_loopback(rest_server, restic_password_file, tmp_path):
    limited_data, free_data = tmp_path / "limited", tmp_path / "free"
    for folder in (limited_data, free_data):
        folder.mkdir()
        (folder / "image.dcm").write_bytes(os.urandom(SIZE))
    unlimited_s = snapshot_seconds(offsite_target(rest_server, restic_password_file, None), free_data, SIZE)
    limited_s = snapshot_seconds(offsite_target(rest_server, restic_password_file, "256K"), limited_data, SIZE)
    # restic's limiter lets one second of the rate through at once: the rest goes at the limit.
    floor = 0.8 * (SIZE - LIMIT) / LIMIT
    figure("restic_upload_limit_2MiB_at_256KiB_s", limited_s=round(limited_s, 2), unlimited_s=round(unlimited_s, 2))
    assert limited_s >= floor, (limited_s, floor)
    assert unlimited_s < floor, (unlimited_s, floor)  # the limit, not this machine, made it slow
