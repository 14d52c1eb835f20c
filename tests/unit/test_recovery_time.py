"""The recovery time of each copy: the rate of its biggest recent successful restore, times the archive."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from pacs_backup.contracts.runs import DrillSummary, RestoreSummary
from pacs_backup.jobs.recovery_time import (
    MIN_BYTES,
    CopyRef,
    copies_of,
    duration_words,
    measure,
    recovery_times,
    size_words,
)
from pacs_backup.settings.targets import TargetSettings
from pacs_backup.state.history import Run, RunLog

NOW = 1_800_000_000.0
DAY = 86400.0
BUCKET = CopyRef("minio", "bucket")
GB = 1_000_000_000


def restore(run_id: int, target: str, size: int | None, seconds: float, ago_days: float = 1.0, ok: bool = True) -> Run:
    finished = NOW - ago_days * DAY
    summary = RestoreSummary("1.2.3", source=target, verified=7, ok=ok, total=7, done=7, bytes=size)
    return Run(run_id, target, "restore", "ok" if ok else "failed", finished - seconds, finished - seconds,
               finished, summary, None if ok else "2 of 7 instances did not verify.")  # fmt: skip


def target(name: str, repository: str, drive: bool = False) -> TargetSettings:
    return TargetSettings(name, repository, "pw", None, {}, 3600.0, 86400.0, 12, False, {}, drive=drive)


def test_rto_the_biggest_successful_restore_sets_the_rate():
    runs = [
        restore(1, "minio", 2 * GB, 600.0, ago_days=30),  # 300 s per GB
        restore(2, "minio", 4 * GB, 800.0, ago_days=3),  # the biggest: 200 s per GB
        restore(3, "minio", 1 * GB, 50.0, ago_days=1),  # faster, but smaller
        restore(4, "offsite", 9 * GB, 9.0, ago_days=1),  # another copy's
    ]
    doc = measure(BUCKET, runs, 410 * GB, NOW)
    assert doc["measured"] and doc["run_id"] == 2
    assert doc["seconds_per_gb"] == 200.0 and doc["measured_bytes"] == 4 * GB and doc["measured_instances"] == 7
    assert doc["measured_on"] == NOW - 3 * DAY
    assert doc["estimate_s"] == 410 * 200.0  # 22 h 47 min
    assert doc["sentence"].startswith("About 22 h 47 min for this clinic's 410 GB, measured restoring 4.0 GB on ")


def test_rto_failed_tiny_and_old_restores_are_ignored():
    runs = [
        restore(1, "minio", 8 * GB, 80.0, ok=False),  # failed
        restore(2, "minio", MIN_BYTES - 1, 0.001),  # tiny: mostly the time it takes to start
        restore(3, "minio", 9 * GB, 90.0, ago_days=181),  # too old to say how fast this box is now
        restore(4, "minio", None, 10.0),  # an older release did not record its bytes
        restore(5, "minio", 2 * GB, 1200.0, ago_days=179),
    ]
    doc = measure(BUCKET, runs, 3 * GB, NOW)
    assert doc["run_id"] == 5 and doc["seconds_per_gb"] == 600.0 and doc["estimate_s"] == 1800.0
    assert doc["sentence"].startswith("About 30 min for this clinic's 3.0 GB")
    not_ok = replace(restore(6, "minio", 9 * GB, 1.0), summary=RestoreSummary("1.2.3", source="minio", ok=False))
    assert measure(BUCKET, [not_ok], GB, NOW)["measured"] is False  # a run whose own report says it failed


def test_rto_a_copy_never_measured_says_what_to_do():
    copies = [BUCKET, CopyRef("usb", "drive"), CopyRef("cloud-pacs", "cloud_pacs")]
    docs = recovery_times(copies, [restore(1, "minio", 500_000, 2.0)], 50 * GB, NOW)
    assert [d["copy"] for d in docs] == ["minio", "usb", "cloud-pacs"]
    assert all(not d["measured"] and d["estimate_s"] is None and d["seconds_per_gb"] is None for d in docs)
    assert docs[1]["sentence"] == (
        "Not measured yet: restore a study from the backup drive (usb) on the \u201cFind & restore a study\u201d "
        "page to measure it."
    )
    assert "the cloud PACS" in docs[2]["sentence"]
    assert "too small to time" in docs[0]["sentence"] and "1.0 MB" in docs[0]["sentence"]  # a tiny restore only


def test_rto_copies_of_this_install_and_their_kinds():
    targets = [
        target("offsite", "rest:http://nas:8000/clinic"),
        target("gdrive", "rclone:gdrive:clinic"),
        target("usb", "/media/usb/restic", drive=True),
    ]
    refs = copies_of(targets, bucket=True, cloud_pacs=True)
    assert [(c.name, c.kind) for c in refs] == [
        ("minio", "bucket"),
        ("offsite", "offsite"),
        ("gdrive", "cloud_storage"),
        ("usb", "drive"),
        ("cloud-pacs", "cloud_pacs"),
    ]
    assert [c.words for c in refs] == [
        "the local backup copy",
        "the offsite copy",
        "the cloud storage copy (gdrive)",
        "the backup drive (usb)",
        "the cloud PACS",
    ]
    assert copies_of([], bucket=False, cloud_pacs=False) == []


def test_rto_words_for_durations_and_sizes():
    assert [duration_words(s) for s in (5, 2400, 3 * 3600 + 20 * 60, 7200, 4.5 * DAY, 12 * DAY)] == [
        "Under a minute",
        "About 40 min",
        "About 3 h 20 min",
        "About 2 h",
        "About 4.5 days",
        "About 12 days",
    ]
    assert [size_words(n) for n in (950_000_000, 2_100_000_000, 410 * GB, 2 * 10**12, 12)] == [
        "950 MB",
        "2.1 GB",
        "410 GB",
        "2.0 TB",
        "12 bytes",
    ]


def test_rto_an_empty_archive_gives_the_rate_per_gb():
    doc = measure(BUCKET, [restore(1, "minio", 2 * GB, 240.0)], 0, NOW)
    assert doc["estimate_s"] == 0.0 and doc["seconds_per_gb"] == 120.0
    assert doc["sentence"].startswith("No images are backed up yet") and "each GB takes about 2 min" in doc["sentence"]


def test_rto_bytes_of_a_restore_are_kept_in_the_run_history(tmp_path: Path):
    log = RunLog(tmp_path / "runs.db")
    run_id = log.queue("minio", "restore", NOW - 100)
    log.start(run_id, NOW - 100)
    log.finish(run_id, NOW, True, RestoreSummary("1.2.3", source="minio", verified=3, ok=True, bytes=3 * GB))
    drill = log.queue("minio", "drill", NOW)
    log.finish(drill, NOW, True, DrillSummary(checked=3, identical=3))
    run = log.get(run_id)
    assert run is not None and isinstance(run.summary, RestoreSummary) and run.summary.bytes == 3 * GB
    assert run.as_dict()["summary"]["bytes"] == 3 * GB
    assert "bytes" not in RestoreSummary("1.2.3", source="minio", ok=True).to_json()  # an older run: no key
    doc = measure(BUCKET, log.recent(10, "restore"), 6 * GB, NOW)
    assert doc["seconds_per_gb"] == round(100 / 3, 3) and doc["estimate_s"] == 200.0
