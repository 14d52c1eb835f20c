"""The upload timetables set in the dashboard: the overrides file, its checks and the rule in force."""

from __future__ import annotations

import json
import stat
from datetime import datetime

import pytest

from pacs_backup.contracts.errors import ConfigError, NotFound
from pacs_backup.settings.bandwidth import UNLIMITED, parse_schedule
from pacs_backup.settings.upload_overrides import OVERRIDES_FILENAME, UploadLimits, read_overrides

OPENING = parse_schedule("RESTIC_UPLOAD_LIMIT", "08:00,2Mbit 18:00,off")


def limits(tmp_path):
    return UploadLimits(tmp_path / OVERRIDES_FILENAME, {"offsite": OPENING, "cloud-pacs": UNLIMITED})


def test_bandwidth_override_is_in_force_and_kept_owner_only(tmp_path):
    up = limits(tmp_path)
    assert up.schedule("offsite") == OPENING
    up.set("cloud-pacs", "06:00,0 20:00,off")
    assert up.schedule("cloud-pacs").rule == "06:00,0 20:00,off"
    path = tmp_path / OVERRIDES_FILENAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"cloud-pacs": "06:00,0 20:00,off"}
    again = limits(tmp_path)  # read back after a restart
    assert again.schedule("cloud-pacs").rule == "06:00,0 20:00,off"
    doc = next(d for d in again.docs(datetime(2026, 12, 7, 10, 0)) if d["copy"] == "cloud-pacs")
    assert doc["override"] == doc["rule"] == "06:00,0 20:00,off" and doc["env_rule"] == ""
    assert doc["next_window"] == datetime(2026, 12, 7, 20, 0).timestamp()


def test_bandwidth_bad_rule_is_refused_with_its_sentence_and_nothing_changes(tmp_path):
    up = limits(tmp_path)
    with pytest.raises(ConfigError, match="not understood; use off"):
        up.set("offsite", "08:00,fast")
    with pytest.raises(ConfigError, match="never allows an upload"):
        up.set("offsite", "0")
    with pytest.raises(NotFound, match="no offsite copy 'usb'"):
        up.set("usb", "off")
    assert up.schedule("offsite") == OPENING
    assert not (tmp_path / OVERRIDES_FILENAME).exists()


def test_bandwidth_empty_rule_removes_the_override(tmp_path):
    up = limits(tmp_path)
    up.set("offsite", "off")
    assert up.schedule("offsite").unlimited
    assert up.set("offsite", "  ") == OPENING
    assert read_overrides(tmp_path / OVERRIDES_FILENAME) == {}
    doc = up.docs(datetime(2026, 12, 7, 10, 0))[0]
    assert doc["override"] is None and doc["rule"] == doc["env_rule"] == "08:00,2Mbit 18:00,off"


def test_bandwidth_damaged_overrides_file_falls_back_to_env(tmp_path):
    (tmp_path / OVERRIDES_FILENAME).write_text('{"offsite": "08:00,fast", "cloud-pacs": 3')
    assert limits(tmp_path).schedule("offsite") == OPENING
    (tmp_path / OVERRIDES_FILENAME).write_text('{"offsite": "08:00,fast", "cloud-pacs": "1M"}')
    up = limits(tmp_path)
    assert up.schedule("offsite") == OPENING and up.schedule("cloud-pacs").rule == "00:00,1024K"


def test_bandwidth_cloud_sender_and_throttle_follow_an_override_without_a_restart(tmp_path):
    from types import SimpleNamespace

    from pacs_backup.replication.cloud_pacs import CloudSender
    from pacs_backup.replication.throttle import Throttle

    up = limits(tmp_path)
    ten = datetime(2026, 12, 7, 10, 0)
    sender = CloudSender(
        SimpleNamespace(),  # type: ignore[arg-type]
        SimpleNamespace(),  # type: ignore[arg-type]
        SimpleNamespace(),  # type: ignore[arg-type]
        None,
        clock=ten.timestamp,
        upload=lambda: up.schedule("cloud-pacs"),
    )
    throttle = Throttle(lambda: up.schedule("cloud-pacs"), local=lambda: ten)
    assert sender.held_until() is None and throttle.rate() is None
    up.set("cloud-pacs", "06:00,0 20:00,512kbit")
    assert sender.held_until() == datetime(2026, 12, 7, 20, 0).timestamp()
    assert throttle.rate() == 64_000  # outside the window, a batch already going: the slowest rate
    up.set("cloud-pacs", "")
    assert sender.held_until() is None and throttle.rate() is None
