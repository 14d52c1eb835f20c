"""The upload timetable of a copy that shares the clinic's internet (settings/bandwidth.py)."""

from __future__ import annotations

from datetime import datetime

import pytest

from pacs_backup.contracts.errors import ConfigError
from pacs_backup.settings.bandwidth import parse_schedule
from pacs_backup.settings.cloud_peer import load_cloud_pacs
from pacs_backup.settings.targets import load_targets

DAY = datetime(2026, 12, 7)
OPENING = "08:00,2Mbit 18:00,off"  # 2 Mbit/s while the front desk works, unlimited at night
NIGHT = "06:00,0 20:00,off"  # snapshots only from 20:00 to 06:00


def at(hour: int, minute: int = 0, day: int = 7) -> datetime:
    return datetime(2026, 12, day, hour, minute)


def test_bandwidth_limit_at_follows_the_timetable_across_midnight():
    s = parse_schedule("RESTIC_UPLOAD_LIMIT", OPENING)
    assert s.limit_at(at(10)) == 250_000  # 2 Mbit/s in bytes per second
    assert s.limit_at(at(7, 59)) is None  # the 18:00 entry runs past midnight until 08:00
    assert s.limit_at(at(0, 0)) is None
    assert s.limit_at(at(18, 0)) is None
    assert s.limit_at(at(8, 0)) == 250_000
    assert s.restic_kib(at(10)) == 244
    assert s.restic_kib(at(23)) is None


def test_bandwidth_next_change_and_next_window_across_midnight():
    s = parse_schedule("RESTIC_UPLOAD_LIMIT", NIGHT)
    assert not s.allows(at(10)) and s.allows(at(23)) and s.allows(at(5, 59))
    assert s.next_change(at(10)) == at(20)
    assert s.next_change(at(23)) == at(6, 0, day=8)  # the window closes the next morning
    assert s.next_window(at(10)) == at(20)
    assert s.next_window(at(6, 0)) == at(20)
    assert s.next_window(at(23)) is None  # allowed now
    assert s.window_close(at(23)) == at(6, 0, day=8)
    # Only the time inside the window counts: from 05:00 to 10:00 the copy could upload for one hour.
    assert s.allowed_seconds(at(5), at(10)) == 3600
    assert s.allowed_seconds(at(5), at(20, 30)) == 3600 + 1800
    assert s.allowed_seconds(at(21), at(5, day=8)) == 8 * 3600
    # A snapshot a person asks for outside the window runs at the slowest rate the timetable allows.
    assert s.run_limit(at(10)) is None
    slow = parse_schedule("X", "06:00,0 18:00,1M 22:00,off")
    assert slow.run_limit(at(10)) == 1024**2
    assert slow.restic_kib(at(10)) == 1024


def test_bandwidth_constant_rates_units_and_the_rule_read_back():
    assert parse_schedule("X", None).unlimited and parse_schedule("X", "  ").unlimited
    assert parse_schedule("X", "off").unlimited
    assert parse_schedule("X", "256").limit_at(DAY) == 256 * 1024  # a bare number is KiB/s, as rclone
    assert parse_schedule("X", "256K").limit_at(DAY) == 256 * 1024
    assert parse_schedule("X", "2M").limit_at(DAY) == 2 * 1024**2
    assert parse_schedule("X", "512kbit").limit_at(DAY) == 64_000
    assert parse_schedule("X", "2Mbit/s").limit_at(DAY) == 250_000
    assert parse_schedule("X", "256K").next_change(DAY) is None
    for text in (OPENING, NIGHT, "00:00,1500B 12:30,512kbit 13:00,3K"):
        s = parse_schedule("X", text)
        assert parse_schedule("X", s.rule) == s
    assert parse_schedule("X", OPENING).text == "08:00 2 Mbit/s, 18:00 unlimited"
    assert parse_schedule("X", NIGHT).text == "06:00 no upload, 20:00 unlimited"


def test_bandwidth_rclone_timetable_limits_uploads_only():
    assert parse_schedule("X", OPENING).rclone_timetable() == "08:00,244k:off 18:00,off"
    # rclone has no "no upload": a run still going when the window closes finishes at the slowest rate.
    assert parse_schedule("X", "06:00,0 20:00,512K").rclone_timetable() == "06:00,512k:off 20:00,512k:off"
    assert parse_schedule("X", NIGHT).rclone_timetable() == "06:00,off 20:00,off"
    assert parse_schedule("X", "off").rclone_timetable() is None


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("08:00,2x", "not understood"),
        ("25:00,2M", "does not exist"),
        ("08:61,2M", "does not exist"),
        ("08:00 2M", "give each entry as HH:MM,RATE"),
        ("2M 18:00,off", "mixes a rate without a time"),
        ("08:00,1M 08:00,off", "gives 08:00 twice"),
        ("0", "never allows an upload"),
        ("06:00,0 20:00,0", "never allows an upload"),
        ("08:00,0.5", "below 1 KiB/s"),
        ("08:00,-1M", "not understood"),
    ],
)
def test_bandwidth_bad_text_is_refused_with_a_sentence_naming_the_variable(text, words):
    with pytest.raises(ConfigError, match=words) as err:
        parse_schedule("USB_RESTIC_UPLOAD_LIMIT", text)
    assert str(err.value).startswith("USB_RESTIC_UPLOAD_LIMIT=")


def test_bandwidth_settings_are_read_per_copy(tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("x")
    env = {
        "RESTIC_REPOSITORY": "rest:http://127.0.0.1:8000/c",
        "RESTIC_PASSWORD_FILE": str(pw),
        "RESTIC_UPLOAD_LIMIT": OPENING,
        "BACKUP_EXTRA_TARGETS": "cloud",
        "CLOUD_RESTIC_REPOSITORY": "rclone:drive:clinic",
        "CLOUD_RESTIC_PASSWORD_FILE": str(pw),
        "CLOUD_RESTIC_UPLOAD_LIMIT": NIGHT,
        "CLOUD_PACS_URL": "https://cloud.example/dicom-web",
        "CLOUD_PACS_UPLOAD_LIMIT": "512K",
    }
    offsite, cloud = load_targets(env)
    assert offsite.upload == parse_schedule("X", OPENING)
    assert cloud.upload == parse_schedule("X", NIGHT)
    peer = load_cloud_pacs(env)
    assert peer is not None and peer.upload.limit_at(DAY) == 512 * 1024
    with pytest.raises(ConfigError, match=r"^CLOUD_RESTIC_UPLOAD_LIMIT="):
        load_targets({**env, "CLOUD_RESTIC_UPLOAD_LIMIT": "nightly"})
    del env["RESTIC_UPLOAD_LIMIT"]
    assert load_targets(env)[0].upload.unlimited
