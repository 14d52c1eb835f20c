"""restic keeps to RESTIC_UPLOAD_LIMIT on loopback (issue 28 item 4): a snapshot of ~2 MiB to the real
rest-server at 256 KiB/s takes at least about what the limit allows, and clearly longer than without it."""

from __future__ import annotations

import os
import time
from pathlib import Path

from pacs_backup.clients.restic import Restic
from pacs_backup.settings.targets import load_target
from tests.support.common import figure
from tests.support.servers import RestServer

KIB = 1024
SIZE = 2 * 1024 * KIB
LIMIT = 256 * KIB


def snapshot_seconds(rest_server: RestServer, password_file: Path, data: Path, limit: str | None) -> float:
    env = {"RESTIC_REPOSITORY": rest_server.new_repository(), "RESTIC_PASSWORD_FILE": str(password_file)}
    if limit is not None:
        env["RESTIC_UPLOAD_LIMIT"] = limit
    target = load_target(env, "offsite", "RESTIC_")
    assert target is not None
    restic = Restic.for_target(target, cache_dir=data.parent / "cache")
    restic.init()
    began = time.monotonic()
    summary = restic.backup([str(data)])
    took = time.monotonic() - began
    assert summary["data_added"] >= SIZE * 0.95  # random bytes: nothing compressed or deduplicated away
    return took


def test_bandwidth_restic_snapshot_keeps_to_the_upload_limit_on_loopback(rest_server, restic_password_file, tmp_path):
    limited_data, free_data = tmp_path / "limited", tmp_path / "free"
    for folder in (limited_data, free_data):
        folder.mkdir()
        (folder / "image.dcm").write_bytes(os.urandom(SIZE))
    unlimited_s = snapshot_seconds(rest_server, restic_password_file, free_data, None)
    limited_s = snapshot_seconds(rest_server, restic_password_file, limited_data, "256K")
    # restic's limiter lets one second of the rate through at once: the rest goes at the limit.
    floor = 0.8 * (SIZE - LIMIT) / LIMIT
    figure("restic_upload_limit_2MiB_at_256KiB_s", limited_s=round(limited_s, 2), unlimited_s=round(unlimited_s, 2))
    assert limited_s >= floor, (limited_s, floor)
    assert unlimited_s < floor, (unlimited_s, floor)  # the limit, not this machine, made it slow
