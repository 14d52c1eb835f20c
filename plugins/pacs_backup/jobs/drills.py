"""Restore drills: read a sample back from each copy and compare it with what that copy recorded.

A copy is compared only with its own record - the sha256 kept in the object's metadata and in the
catalog for the bucket, the snapshot's manifest for an offsite snapshot - never with the PACS, which
may have changed since (a study deleted and restored, an instance re-sent). So a drill fails only
when a copy really cannot give back what it took, and then it names the study, the patient, the copy
and what to do.
"""

from __future__ import annotations

import logging
import random
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from pacs_backup.clients.object_store import ObjectStore
from pacs_backup.clients.restic import Restic
from pacs_backup.contracts.errors import BackupError, NotFound, SourceGone
from pacs_backup.contracts.runs import DrillSummary, Mismatch
from pacs_backup.replication.group_copy import GroupSender
from pacs_backup.settings.retention import lock_until
from pacs_backup.settings.targets import TargetSettings
from pacs_backup.state.manifest import SNAPSHOT_TAG, ManifestEntry, read_manifest, sha256_hex, snapshot_manifest_path
from pacs_backup.state.search import display_name

from .snapshots import OffsiteContext

log = logging.getLogger(__name__)


class NoSnapshotYet(NotFound):
    """The copy has no snapshot to test yet (a fresh install, a new drive)."""


def _mismatch(e: ManifestEntry, copy: str, missing: bool, problem: str, advice: str) -> Mismatch:
    patient = display_name(e["patient_name"]) or "unknown patient"
    if e["patient_id"]:
        patient += f" (id {e['patient_id']})"
    return Mismatch(
        key=e["key"],
        study_uid=e["study_uid"],
        patient=patient,
        copy=copy,
        problem=problem,
        advice=advice,
        missing=missing,
    )


def drill_object_store(ctx: OffsiteContext, sample_size: int, rng: random.Random | None = None) -> DrillSummary:
    """Read a sample back from the bucket and compare each object with the sha256 recorded at copy time.

    A missing or damaged object is re-uploaded when Orthanc still holds exactly the recorded bytes
    (counted as repaired); otherwise it is reported, with the offsite snapshots as the way back.
    """
    if ctx.store is None:
        raise BackupError("No object store is configured.")
    ctx.catalog.backfill(ctx.reader, ctx.clock())
    return drill_store(ctx, ctx.store, ctx.catalog.sample(sample_size, rng), f"bucket {ctx.store.bucket}")


def drill_group_store(
    ctx: OffsiteContext, group: GroupSender, sample_size: int, rng: random.Random | None = None
) -> DrillSummary:
    """The same drill on the group store: a sample of what was verified there (with its group keys),
    each compared with the sha256 the group queue recorded."""
    store = group.target.store
    copy = f"group store {store.bucket} ({group.target.clinic})"
    return drill_store(ctx, store, group.group_queue.sample(sample_size, rng), copy, "the group store")


def drill_store(
    ctx: OffsiteContext, store: ObjectStore, sample: list[ManifestEntry], copy: str, where: str = "the bucket"
) -> DrillSummary:
    """Read ``sample`` back from ``store`` (each entry's key) and compare it with the entry's sha256."""
    identical, repaired, mismatches = 0, 0, []
    for e in sample:
        try:
            data, meta_sha = store.get_with_sha(e["key"])
        except BackupError:
            data, meta_sha = None, None
        if data is not None and sha256_hex(data) == e["sha256"] and meta_sha in (None, e["sha256"]):
            identical += 1
            continue
        problem = f"missing from {where}" if data is None else f"its bytes in {where} differ from the copy made"
        if _repair_from_orthanc(ctx, store, e):
            repaired += 1
            log.warning("drill repaired %s (%s) from the PACS", e["key"], problem)
            continue
        mismatches.append(
            _mismatch(
                e,
                copy,
                data is None,
                problem,
                "Restore this study from the offsite copy "
                "(Restore tests page or scripts/restore-study --from offsite), "
                "then run a restore test again.",
            )
        )
    # a drill that checked nothing is not a failure (DrillSummary.ok); the lights say "not tested"
    return DrillSummary(
        checked=len(sample),
        identical=identical,
        repaired=repaired,
        mismatches=tuple(mismatches),
        note=None if sample else "Nothing to test yet: no image has been copied.",
    )


def _repair_from_orthanc(ctx: OffsiteContext, store: ObjectStore, e: ManifestEntry) -> bool:
    try:
        source = ctx.reader.read_file(e["orthanc_id"])
    except (SourceGone, BackupError):
        return False
    if sha256_hex(source) != e["sha256"]:
        return False  # the PACS holds other bytes now: only the recorded ones may go back
    # Locked again until the study may be deleted, as the first copy was.
    until = lock_until(datetime.now(UTC), store.settings.lock_days, ctx.retention, e.get("study_date", ""))
    store.put_verified(e["key"], source, e["sha256"], e["orthanc_id"], retain_until=until)
    return True


def newest_manifest(restic: Restic) -> tuple[str, str, list[ManifestEntry]]:
    """``(snapshot id, storage root in the snapshot, entries)`` of the newest snapshot."""
    snaps = restic.snapshots(tag=SNAPSHOT_TAG)
    if not snaps:
        raise NoSnapshotYet(f"There is no snapshot in {restic.repository} yet.")
    snap = snaps[-1]
    root = snap.paths[0]
    _, entries = read_manifest(restic.dump(snap.id, snapshot_manifest_path(root)))
    return snap.id, root, entries


def drill_target(
    ctx: OffsiteContext, target: TargetSettings, sample_size: int, check_slice: int, rng: random.Random | None = None
) -> DrillSummary:
    """Restore a sample of the newest snapshot (per its own manifest, always including the newest copy
    it holds), compare each file with the manifest's sha256, and read 1/N of the repository's data.

    Args:
        check_slice: which slice (1..check_cycle) ``restic check --read-data-subset`` reads this time.
    """
    rng = rng or random.Random()  # noqa: S311 - sampling, not security
    restic = ctx.restic(target)
    try:
        snap_id, root, entries = newest_manifest(restic)
    except NoSnapshotYet:  # nothing to test yet is not a failed test: the lights say "not tested"
        return DrillSummary(note="Nothing to test yet: there is no snapshot in this copy.")
    picks: list[ManifestEntry] = []
    if entries:
        newest_key = {e["key"] for e in ctx.catalog.sample(1)}
        picks = [e for e in entries if e["key"] in newest_key][:1]
        others = [e for e in entries if e not in picks]
        picks += rng.sample(others, min(max(sample_size - len(picks), 0), len(others)))
    copy = f"snapshot {snap_id[:8]} of {target.name}"
    identical, mismatches = 0, []
    with tempfile.TemporaryDirectory(prefix="pacs-drill-") as tmp:
        if picks:
            restic.restore(snap_id, Path(tmp), includes=[f"{root}/{e['path']}" for e in picks])
        for e in picks:
            f = Path(tmp + root) / e["path"]
            got = sha256_hex(f.read_bytes()) if f.is_file() else None
            if got == e["sha256"]:
                identical += 1
                continue
            problem = "missing from the snapshot" if got is None else "its bytes in the snapshot differ"
            mismatches.append(
                _mismatch(
                    e,
                    copy,
                    got is None,
                    problem,
                    "Keep this snapshot; restore the study from an "
                    "older snapshot or from the bucket, and call the technician to "
                    "check the offsite repository (restic check --read-data).",
                )
            )
    subset = f"{check_slice}/{target.check_cycle}"
    restic.check(read_data_subset=subset)
    return DrillSummary(
        snapshot_id=snap_id,
        checked=len(picks),
        identical=identical,
        mismatches=tuple(mismatches),
        snapshot_entries=len(entries),
        check=f"read data subset {subset}: no errors",
        check_slice=check_slice,  # read back by the scheduler to go on with the next slice
        note=None if entries else "Nothing to test yet: the newest snapshot holds no image.",
    )


def mismatch_sentence(mismatches: Sequence[Mismatch]) -> str:
    """One sentence for a person: which studies of which patients did not come back identical, and what to do."""
    studies = {(m.patient, m.study_uid) for m in mismatches}
    first = mismatches[0] if mismatches else None
    who = "; ".join(f"{p} study {s}" for p, s in sorted(studies)[:3]) + (" and more" if len(studies) > 3 else "")
    copy, problem, advice = (first.copy, first.problem, first.advice) if first else ("a copy", "", "")
    return (f"{len(mismatches)} image(s) in {copy} did not come back identical ({who}): {problem}. {advice}").strip()
