"""The retention rule (settings/retention.py) and the choice of what a prune may forget (jobs/retention.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from pacs_backup.clients.restic import SnapshotInfo
from pacs_backup.contracts.errors import ConfigError
from pacs_backup.jobs.retention import Held, plan
from pacs_backup.settings.config import load_settings
from pacs_backup.settings.retention import (
    DEFAULT_YEARS,
    PRESETS,
    RetentionRule,
    load_retention,
    lock_until,
    retention_doc,
    study_day,
)
from tests.support.common import ROOT

TODAY = date(2026, 12, 6)


def test_retention_default_preset_and_the_clinics_own_number_wins():
    assert load_retention({}).years == DEFAULT_YEARS
    assert load_retention({"BACKUP_RETENTION_PRESET": "california"}).years == 3
    rule = load_retention({"BACKUP_RETENTION_PRESET": "england-wales", "BACKUP_RETENTION_YEARS": "10"})
    assert (rule.years, rule.preset) == (10, "england-wales")
    assert "clinic's own number" in rule.sentence and "instead of the preset's 6" in rule.sentence
    assert load_retention({"BACKUP_RETENTION_YEARS": " 5 "}).years == 5


def test_retention_preset_without_a_sourced_number_needs_the_clinics_own():
    with pytest.raises(ConfigError, match=r"BACKUP_RETENTION_PRESET=us-other.*professional body"):
        load_retention({"BACKUP_RETENTION_PRESET": "us-other"})
    assert load_retention({"BACKUP_RETENTION_PRESET": "other", "BACKUP_RETENTION_YEARS": "4"}).years == 4
    with pytest.raises(ConfigError, match="BACKUP_RETENTION_PRESET='mars' is not a known preset"):
        load_retention({"BACKUP_RETENTION_PRESET": "mars"})
    for bad in ("0", "seven", "101", "2.5"):
        with pytest.raises(ConfigError, match="BACKUP_RETENTION_YEARS"):
            load_retention({"BACKUP_RETENTION_YEARS": bad})


def test_retention_presets_say_where_their_number_comes_from_and_are_documented():
    doc = (ROOT / "docs" / "copies.md").read_text()
    for name, preset in PRESETS.items():
        assert preset.source, name
        assert f"`{name}`" in doc, f"docs/copies.md does not list the preset {name}"
        assert preset.years is not None or "professional body" in preset.source


def test_retention_keep_until_counts_years_from_the_study_date_and_leap_days_later():
    rule = RetentionRule(3)
    assert rule.keep_until(date(2020, 5, 17)) == date(2023, 5, 17)
    assert rule.keep_until(date(2024, 2, 29)) == date(2027, 3, 1)  # never the earlier 28 February
    assert RetentionRule(4).keep_until(date(2024, 2, 29)) == date(2028, 2, 29)
    assert rule.keeps(date(2023, 12, 7), TODAY) and not rule.keeps(date(2023, 12, 6), TODAY)


def test_retention_missing_or_bad_study_date_counts_from_when_it_was_copied():
    copied = date(2025, 1, 2)
    assert study_day("20200517", copied) == date(2020, 5, 17)
    assert study_day("2020-05-17", copied) == date(2020, 5, 17)
    for missing in ("", "   ", "20201340", "2020", "unknown"):
        assert study_day(missing, copied) == copied


def test_retention_in_the_settings_and_the_lock_note():
    env = {"MINIO_ENDPOINT": "127.0.0.1:9000", "MINIO_ACCESS_KEY": "a", "MINIO_SECRET_KEY": "b"}
    s = load_settings(ROOT / "x.sqlite", {**env, "BACKUP_RETENTION_YEARS": "5"})
    assert s.retention.years == 5
    doc = retention_doc(s.retention, s.store.lock_mode, s.store.lock_days)
    assert doc["years"] == 5 and "5 years from its study date" in doc["rule"]
    # Each copy is locked until its study may go: the store enforces the rule, whatever BACKUP_LOCK_DAYS.
    assert "lock_note" not in doc and "The object store itself refuses to delete a copy before then" in doc["rule"]
    off = retention_doc(RetentionRule(5), "OFF", 36500)
    assert "no object lock" in off.get("lock_note", "") and "refuses" not in off["rule"]


def snap(n: int) -> SnapshotInfo:
    return SnapshotInfo(id=f"{n:064x}", short_id=f"{n:08x}", time=f"2026-{n:02d}-01T10:00:00Z", paths=("/s",), tags=())


def test_retention_plan_keeps_the_newest_fullest_copy_of_each_study_within_its_years():
    recent, old, nodate = "20250101", "20100101", ""
    s1 = Held(snap(1), {"A": (2, old), "B": (3, recent)})
    s2 = Held(snap(2), {"B": (3, recent), "N": (1, nodate)})  # no date: counts from 2026-02-01
    s3 = Held(snap(3), {"B": (2, recent), "C": (1, recent)})  # B lost an image since: not its fullest copy
    s4 = Held(snap(4), None)  # its manifest cannot be read
    kept = [Held(snap(5), {"C": (1, recent)})]
    decided = plan(kept, [s1, s2, s3, s4], RetentionRule(3), TODAY)
    assert decided.kept_for == {snap(2).id: ["B"]}  # the newest with all three images of B (and N with it)
    assert decided.unreadable == [snap(4).id]
    assert decided.forget == [snap(1).id, snap(3).id]  # A is past its years; C is in the kept snapshot
    assert "2 snapshot(s) forgotten; 2 kept" in decided.sentence


def test_retention_plan_forgets_everything_past_its_years():
    removed = [Held(snap(1), {"A": (2, "20100101")}), Held(snap(2), {"A": (2, "20100101")})]
    assert plan([], removed, RetentionRule(3), TODAY).forget == [snap(1).id, snap(2).id]


def test_retention_drive_rotation_and_cloud_pacs_delete_nothing():
    """Nothing deletes a copy on a drive or in the cloud PACS: no prune, no DELETE, no file removal."""
    for module in (
        "jobs/drives.py",
        "replication/cloud_pacs.py",
        "replication/dicomweb.py",
        "replication/dimse_peer.py",
    ):
        code = (ROOT / "plugins" / "pacs_backup" / module).read_text()
        for word in ("forget", "prune", "delete_snapshot", '"DELETE"', ".unlink(", "rmtree", "remove_object"):
            assert word not in code, f"{module} uses {word}: copies there must follow the retention rule"


def test_retention_lock_until_is_the_later_of_the_lock_days_and_the_law():
    now = datetime(2026, 12, 6, 10, 30, 15, 123456, tzinfo=UTC)
    rule = RetentionRule(7)
    # A study of six years ago under a 7-year rule: locked until its seventh anniversary.
    assert lock_until(now, 30, rule, "20201201") == datetime(2027, 12, 1, tzinfo=UTC)
    # Past its years, or of unknown date, or no rule: the lock of BACKUP_LOCK_DAYS only (whole seconds).
    only_days = datetime(2027, 1, 5, 10, 30, 15, tzinfo=UTC)
    assert lock_until(now, 30, rule, "20100101") == only_days
    assert lock_until(now, 30, rule, "") == only_days
    assert lock_until(now, 30, rule, "not a date") == only_days
    assert lock_until(now, 30, None, "20201201") == only_days
    # Within 30 days of its end the lock days are longer than what the law still asks.
    assert lock_until(now, 30, rule, "20191210") == only_days
    # A study dated in the future (a wrong clock on the modality) counts as today, never later.
    assert lock_until(now, 30, rule, "20990101") == datetime(2033, 12, 6, tzinfo=UTC)
    # 29 February: the later day, as keep_until.
    assert lock_until(now, 1, RetentionRule(7), "20200229") == datetime(2027, 3, 1, tzinfo=UTC)


def test_retention_headers_sent_with_each_copy():
    from pacs_backup.clients.object_store import ObjectStore
    from pacs_backup.settings.store import load_store_settings

    env = {"MINIO_ENDPOINT": "127.0.0.1:9", "MINIO_ACCESS_KEY": "a", "MINIO_SECRET_KEY": "b", "BACKUP_LOCK_DAYS": "30"}
    store = ObjectStore(load_store_settings({**env, "BACKUP_LOCK_MODE": "COMPLIANCE"}))
    law = datetime(2033, 11, 27, tzinfo=UTC)
    assert store.retention_headers(law) == {
        "x-amz-object-lock-mode": "COMPLIANCE",
        "x-amz-object-lock-retain-until-date": "2033-11-27T00:00:00.000Z",
    }
    # Never shorter than BACKUP_LOCK_DAYS from now, whatever the caller asks.
    soon = store.retention_headers(datetime(2000, 1, 1, tzinfo=UTC))["x-amz-object-lock-retain-until-date"]
    until = datetime.strptime(soon, "%Y-%m-%dT%H:%M:%S.000Z").replace(tzinfo=UTC)
    assert abs((until - datetime.now(UTC)).total_seconds() - 30 * 86400) < 60
    assert ObjectStore(load_store_settings({**env, "BACKUP_LOCK_MODE": "OFF"})).retention_headers(law) == {}
