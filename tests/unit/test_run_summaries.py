"""Typed run summaries (issue 26, item 3): each kind of run writes its summary once, as a class, and every
reader reads it by attribute. The JSON stored and served keeps the keys the dashboard and the scripts read."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pacs_backup.contracts.runs import (
    DrillSummary,
    Mismatch,
    RestoreSummary,
    SnapshotSummary,
    job_kind,
    run_kind,
    run_state,
    summary_from_json,
)
from pacs_backup.jobs.drills import drill_object_store
from pacs_backup.jobs.scheduler import OffsiteScheduler
from pacs_backup.restore.uploads import RestoreReport
from pacs_backup.state.history import RunLog
from pacs_backup.state.manifest import sha256_hex

MISMATCH = {
    "key": "dicom/1.2/1.3/1.4.dcm",
    "study_uid": "1.2",
    "patient": "Garcia, Luna (id PID-LUNA)",
    "copy": "bucket pacs-backup",
    "problem": "missing from the bucket",
    "advice": "Restore this study from the offsite copy.",
}

# What the jobs wrote before the summaries were typed, key for key.
SNAPSHOT = {
    "snapshot_id": "70fcbc69aa",
    "files_new": 7,
    "files_changed": 1,
    "data_added": 58852,
    "total_files": 30,
    "manifest_entries": 30,
    "studies": 2,
    "repository_created": True,
    "forgot": False,
}
SKIPPED = {
    "snapshot_id": None,
    "skipped": "The PACS holds no images yet, so no snapshot was taken.",
    "manifest_entries": 0,
    "studies": 0,
    "repository_created": False,
    "forgot": False,
    "drive": "4f1e0c2b",
}
BUCKET_DRILL = {"checked": 5, "identical": 3, "repaired": 1, "mismatches": [{**MISMATCH, "missing": True}]}
OFFSITE_DRILL = {
    "snapshot_id": "b" * 64,
    "checked": 5,
    "identical": 5,
    "mismatches": [],
    "snapshot_entries": 30,
    "check": "read data subset 3/10: no errors",
    "check_slice": 3,
}
EMPTY_DRILL = {"checked": 0, "identical": 0, "mismatches": [], "note": "Nothing to test yet: no image has been copied."}


@pytest.mark.parametrize(
    ("cls", "doc"),
    [
        (SnapshotSummary, SNAPSHOT),
        (SnapshotSummary, SKIPPED),
        (DrillSummary, BUCKET_DRILL),
        (DrillSummary, OFFSITE_DRILL),
        (DrillSummary, EMPTY_DRILL),
    ],
)
def test_the_json_of_each_summary_has_the_keys_it_always_had(cls: Any, doc: dict[str, Any]):
    summary = cls.from_json(doc)
    assert summary.to_json() == doc
    assert cls.from_json(json.loads(json.dumps(summary.to_json()))) == summary


def test_a_restores_summary_is_its_report_as_before(tmp_path: Path):
    """The summary of a finished restore has the keys the scheduler wrote from the report's dict."""
    reports = [
        RestoreReport(source="bucket b", total=3, verified=2, failures=[("1.2/1.3", "damaged")]),
        RestoreReport(source="cloud PACS x", total=1, verified=1, details={"studies": ["1.2"]}),
        RestoreReport(
            source="snapshot 1a2b3c4d of rest:x taken 2026-11-27 13:05 UTC",
            total=6,
            verified=6,
            details={
                "studies": ["1.2"],
                "snapshot_id": "1a2b" * 16,
                "snapshots": [{"id": "1a2b" * 16, "time": "2026-11-27T13:05:09Z"}],
            },
        ),
    ]
    reports[0].details["studies"] = ["1.2"]
    for report in reports:
        before = {"study_uid": "1.2", "snapshot": None, **report.as_dict(), "done": report.total, "total": report.total}
        summary = report.summary("1.2", None)
        assert summary.to_json() == before
        assert RestoreSummary.from_json(before) == summary
    assert reports[2].summary("1.2", None).snapshot_id == "1a2b" * 16


def test_a_restore_in_progress_says_how_far_it_got_and_nothing_else():
    waiting = RestoreSummary("1.2", "abc", done=0)
    assert waiting.to_json() == {"study_uid": "1.2", "snapshot": "abc", "done": 0}
    running = RestoreSummary.from_json({"study_uid": "1.2", "snapshot": None, "done": 2, "total": 5})
    assert (running.done, running.total, running.source, running.verified) == (2, 5, None, None)
    assert RestoreSummary("1.2").to_json() == {"study_uid": "1.2", "snapshot": None}  # failed before it began


def test_reading_keeps_what_it_knows_and_never_fails():
    assert summary_from_json("drill", {}) is None and summary_from_json("snapshot", None) is None
    odd = DrillSummary.from_json({"checked": "5", "identical": True, "mismatches": "none", "extra": 1})
    assert odd == DrillSummary()  # wrong types are not guessed at
    assert DrillSummary.from_json([1, 2]) == DrillSummary()
    assert isinstance(summary_from_json("restore", {"study_uid": "1.2"}), RestoreSummary)
    partial = Mismatch.from_json({"problem": "its bytes in the snapshot differ"})
    assert partial.copy == "" and not partial.missing


def test_a_mismatch_says_whether_the_image_is_missing_and_old_runs_are_read_as_they_were():
    assert Mismatch.from_json({**MISMATCH, "missing": False}).missing is False  # written: taken as written
    assert Mismatch.from_json(MISMATCH).missing is True  # recorded before the flag: its fixed words
    drill = DrillSummary.from_json(
        {"checked": 20, "identical": 17, "mismatches": [MISMATCH, {**MISMATCH, "problem": "its bytes differ"}]}
    )
    assert (drill.missing, drill.differing, drill.ok) == (1, 2, False)  # one named, one neither named nor identical


def test_kinds_and_states_from_text_are_refused_with_the_valid_ones():
    assert (run_kind("drill"), job_kind("snapshot"), run_state("ok")) == ("drill", "snapshot", "ok")
    with pytest.raises(ValueError, match="snapshot, drill and restore"):
        run_kind("backup")
    with pytest.raises(ValueError, match="use snapshot or drill"):
        job_kind("restore")
    with pytest.raises(ValueError, match="queued, running, ok and failed"):
        run_state("done")


def _entry(n: int, data: bytes) -> dict[str, Any]:
    return {
        "key": f"dicom/1.2/1.3/{n}.dcm",
        "sha256": sha256_hex(data),
        "orthanc_id": f"o{n}",
        "study_uid": "1.2",
        "patient_name": "Garcia^Luna",
        "patient_id": "PID-LUNA",
    }


def test_a_bucket_drill_counts_each_image_once_and_names_the_missing_one():
    good, gone, fixed = b"good", b"gone", b"fixed"
    entries = [_entry(1, good), _entry(2, gone), _entry(3, fixed)]
    held = {entries[0]["key"]: good, entries[2]["key"]: b"rotten"}
    pacs = {"o3": fixed}  # the PACS still holds the recorded bytes of image 3: it is put back
    store = SimpleNamespace(
        bucket="pacs-backup",
        get_with_sha=lambda key: (held.get(key), None),
        put_verified=lambda key, data, sha, oid, **lock: held.__setitem__(key, data),
        settings=SimpleNamespace(lock_days=30),
    )

    def read_file(oid: str) -> bytes:
        if oid not in pacs:
            from pacs_backup.contracts.errors import SourceGone

            raise SourceGone(oid)
        return pacs[oid]

    ctx = SimpleNamespace(
        store=store,
        catalog=SimpleNamespace(backfill=lambda reader, now: None, sample=lambda n, rng=None: entries),
        reader=SimpleNamespace(read_file=read_file),
        clock=lambda: 1.0,
        retention=None,
    )
    summary = drill_object_store(ctx, 20)  # type: ignore[arg-type]
    assert (summary.checked, summary.identical, summary.repaired, summary.ok) == (3, 1, 1, False)
    (m,) = summary.mismatches
    assert m.missing and m.study_uid == "1.2" and m.patient == "Garcia, Luna (id PID-LUNA)"
    assert m.copy == "bucket pacs-backup" and summary.note is None


def test_a_drill_that_found_damage_fails_with_a_sentence_and_keeps_its_summary(tmp_path: Path):
    runs = RunLog(tmp_path / "plugin.sqlite")
    s = OffsiteScheduler(SimpleNamespace(store=object()), (), runs)  # type: ignore[arg-type]
    found = DrillSummary.from_json(BUCKET_DRILL)
    s._run_job = lambda name, kind: found  # type: ignore[method-assign]
    run_id = runs.queue("minio", "drill", 1.0)
    s._execute(run_id, "minio", "drill")
    run = runs.get(run_id)
    assert run is not None and run.state == "failed" and run.summary == found
    assert (run.error or "").startswith("1 image(s) in bucket pacs-backup did not come back identical (Garcia, Luna")
    assert "missing from the bucket. Restore this study" in (run.error or "")
    assert run.as_dict()["summary"] == BUCKET_DRILL  # served as it was stored: no "ok" key, as before


def test_a_snapshot_that_failed_records_no_summary(tmp_path: Path):
    runs = RunLog(tmp_path / "plugin.sqlite")
    s = OffsiteScheduler(SimpleNamespace(store=None), (), runs)  # type: ignore[arg-type]

    def fail(name: str, kind: str) -> SnapshotSummary:
        from pacs_backup.contracts.errors import BackupError

        raise BackupError("The offsite repository is locked.")

    s._run_job = fail  # type: ignore[method-assign]
    run_id = runs.queue("offsite", "snapshot", 1.0)
    s._execute(run_id, "offsite", "snapshot")
    run = runs.get(run_id)
    assert run is not None and run.summary is None and run.as_dict()["summary"] == {}
    assert run.error == "The offsite repository is locked."
