"""Restoring instances into an Orthanc from the bucket or from a snapshot, with verification.

Used by the technician scripts and by the dashboard. Each restored instance is verified: the
backup copy must match the sha256 recorded when it was backed up, and Orthanc must report the MD5
of exactly the bytes that were sent. The report says, per instance, what did not verify and why.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol

from pacs_backup.clients.object_store import ObjectStore
from pacs_backup.clients.restic import Restic, SnapshotInfo
from pacs_backup.contracts.errors import NotFound
from pacs_backup.contracts.keys import study_prefix
from pacs_backup.state.manifest import (
    BUCKET_MANIFEST_KEY,
    SNAPSHOT_TAG,
    ManifestEntry,
    read_manifest,
    sha256_hex,
)

from .snapshot_manifests import KnownCount, ManifestOf, ReadOnce, snapshot_manifest, snapshot_time, study_counts
from .uploads import AnnouncedFiles, Loaded, Loader, OrthancTarget, Progress, RestoreReport, VerifiedUploads


def restore_items(
    items: list[tuple[str, Loader]],
    orthanc: OrthancTarget,
    report: RestoreReport,
    progress: Progress | None = None,
    workers: int | None = None,
) -> RestoreReport:
    """Upload every item into Orthanc and verify it; fills ``report``."""
    uploads = VerifiedUploads(orthanc, report, progress, workers)
    uploads.expect(len(items))
    try:
        for label, load in items:
            uploads.submit(label, load)
    finally:
        uploads.close()
    return report


# --- from the bucket ------------------------------------------------------------------------------
def bucket_items(store: ObjectStore, prefix: str, as_of: datetime | None = None) -> list[tuple[str, Loader]]:
    """Every instance object under ``prefix`` (latest version, or the one current at ``as_of``)."""
    if as_of is None:
        pairs: Iterator[tuple[str, str | None]] = ((k, None) for k in store.list_keys(prefix))
    else:
        pairs = store.versions_as_of(prefix, as_of)

    def loader(key: str, version: str | None) -> Loader:
        return lambda: Loaded(*store.get_with_checksums(key, version))

    return [(key, loader(key, version)) for key, version in pairs if key.endswith(".dcm")]


def bucket_manifest(store: ObjectStore) -> list[ManifestEntry]:
    """The manifest kept in the bucket (for finding studies by patient or accession).

    Raises:
        StoreUnavailable / StoreError: the store cannot be read (not the same as "no such study").
    """
    if store.stat(BUCKET_MANIFEST_KEY) is None:
        return []
    return read_manifest(store.get(BUCKET_MANIFEST_KEY))[1]


def studies_matching(
    entries: list[ManifestEntry], patient_id: str | None = None, accession: str | None = None
) -> list[str]:
    """Study UIDs whose patient id or accession number equals the one given."""
    found = {
        e["study_uid"]
        for e in entries
        if (patient_id and e.get("patient_id") == patient_id) or (accession and e.get("accession") == accession)
    }
    return sorted(found)


def restore_from_bucket(
    store: ObjectStore,
    orthanc: OrthancTarget,
    studies: list[str] | None,
    prefix: str = "",
    as_of: datetime | None = None,
    progress: Progress | None = None,
) -> RestoreReport:
    """Restore the given studies (None = everything) from the bucket into Orthanc."""
    report = RestoreReport(source=f"bucket {store.bucket}")
    items: list[tuple[str, Loader]] = []
    prefixes = (
        [study_prefix(s, prefix) for s in studies]
        if studies is not None
        else [(prefix.strip("/") + "/dicom/") if prefix.strip("/") else "dicom/"]
    )
    for p in prefixes:
        items += bucket_items(store, p, as_of)
    report.details["studies"] = studies
    return restore_items(items, orthanc, report, progress)


# --- from a snapshot -------------------------------------------------------------------------------
def choose_snapshot(restic: Restic, as_of: datetime | None = None, snapshot_id: str | None = None) -> SnapshotInfo:
    """The snapshot to restore from: by id, the newest at or before ``as_of``, or the newest."""
    snaps = _candidates(restic, as_of, snapshot_id)
    if not snaps:
        raise NotFound(f"There is no snapshot in {restic.repository}" + (" at that date." if as_of else "."))
    return snaps[-1]


def _candidates(
    restic: Restic, as_of: datetime | None, snapshot_id: str | None, max_age_s: float = 0.0
) -> list[SnapshotInfo]:
    snaps = restic.snapshots(tag=SNAPSHOT_TAG, max_age_s=max_age_s)
    if snapshot_id:
        chosen = [s for s in snaps if s.id.startswith(snapshot_id)]
        if not chosen:
            raise NotFound(f"There is no snapshot {snapshot_id} in {restic.repository}.")
        return chosen[:1]
    if as_of is not None:
        snaps = [s for s in snaps if snapshot_time(s) <= as_of]
    return snaps


@dataclass(frozen=True)
class Holding:
    """A snapshot that holds a study, and how many of its instances."""

    snapshot: SnapshotInfo
    instances: int


def _count(restic: Restic, snap: SnapshotInfo, study_uid: str, known: KnownCount | None) -> int:
    recorded = known(snap, study_uid) if known else None
    return recorded if recorded is not None else study_counts(restic, snap).get(study_uid, 0)


def snapshots_holding(
    restic: Restic,
    study_uid: str,
    as_of: datetime | None = None,
    known: KnownCount | None = None,
    max_age_s: float = 0.0,
) -> list[Holding]:
    """Every snapshot that holds the study, newest first (reads each unknown snapshot's manifest once; a
    snapshot list read at most ``max_age_s`` ago serves when there is one)."""
    found = reversed(_candidates(restic, as_of, None, max_age_s))
    return [Holding(s, n) for s in found if (n := _count(restic, s, study_uid, known))]


def snapshot_for_study(
    restic: Restic,
    study_uid: str,
    as_of: datetime | None = None,
    snapshot_id: str | None = None,
    known: KnownCount | None = None,
    list_age_s: float = 0.0,
) -> Holding:
    """The snapshot to restore a study from: the newest that holds the most of it.

    Walks back from the newest snapshot: the first one holding the study is taken, and an older one
    replaces it only while it holds more instances (a study partly deleted before the newer snapshot).
    A study deleted from the PACS before the newest snapshot is thus restored from the last snapshot
    that still held it.

    Raises:
        NotFound: no snapshot (at that date, or with that id) holds the study.
    """
    best: Holding | None = None
    for snap in reversed(_candidates(restic, as_of, snapshot_id, list_age_s)):
        n = _count(restic, snap, study_uid, known)
        if best is not None and n <= best.instances:
            break
        if n:
            best = Holding(snap, n)
    if best is None:
        where = f"snapshot {snapshot_id}" if snapshot_id else f"any snapshot of {restic.repository}"
        raise NotFound(f"Study {study_uid} is not in {where}" + (" at that date." if as_of else "."))
    return best


def studies_in_snapshots(
    restic: Restic,
    patient_id: str | None,
    accession: str | None,
    as_of: datetime | None = None,
    snapshot_id: str | None = None,
    manifest_of: ManifestOf | None = None,
) -> list[str]:
    """Study UIDs of a patient id or accession, from the newest snapshot that lists any of them."""
    read = manifest_of or ReadOnce(restic).entries
    for snap in reversed(_candidates(restic, as_of, snapshot_id)):
        found = studies_matching(read(restic, snap, None)[1], patient_id, accession)
        if found:
            return found
    return []


def restore_from_snapshot(
    restic: Restic,
    orthanc: OrthancTarget,
    studies: list[str] | None,
    as_of: datetime | None = None,
    snapshot_id: str | None = None,
    progress: Progress | None = None,
    patient_id: str | None = None,
    accession: str | None = None,
    known: KnownCount | None = None,
    manifest_of: ManifestOf | None = None,
    list_age_s: float = 0.0,
) -> RestoreReport:
    """Restore studies from the snapshots that hold them (None = a whole snapshot) into Orthanc,
    verified against each snapshot's manifest. The report names the snapshot(s) used and when.

    ``manifest_of`` and a snapshot list read at most ``list_age_s`` ago spare restic runs (each pays the key
    derivation, about 0.7 s): with both remembered, a study's restore is one restic run. Without them each
    manifest needed is read once."""
    once = ReadOnce(restic)
    known, manifest_of = known or once.count, manifest_of or once.entries
    if patient_id or accession:
        studies = studies_in_snapshots(restic, patient_id, accession, as_of, snapshot_id, manifest_of)
    plan: dict[str, tuple[SnapshotInfo, set[str] | None]] = {}
    if studies is None:
        snap = choose_snapshot(restic, as_of, snapshot_id)
        plan[snap.id] = (snap, None)
    else:
        for study in studies:
            try:
                held = snapshot_for_study(restic, study, as_of, snapshot_id, known, list_age_s)
            except NotFound:
                continue
            plan.setdefault(held.snapshot.id, (held.snapshot, set()))
            chosen = plan[held.snapshot.id][1]
            if chosen is not None:
                chosen.add(study)
    used = [snap for snap, _ in plan.values()]
    report = RestoreReport(
        source=", ".join(
            f"snapshot {s.short_id} of {restic.repository} taken {s.time[:16].replace('T', ' ')} UTC" for s in used
        )
        or f"{restic.repository} (no snapshot holds it)",
        details={
            "studies": studies,
            "snapshot_id": used[0].id if len(used) == 1 else None,
            "snapshots": [{"id": s.id, "time": s.time} for s in used],
        },
    )
    uploads = VerifiedUploads(orthanc, report, progress)
    with tempfile.TemporaryDirectory(prefix="pacs-restore-") as tmp:
        try:
            for number, (snap, wanted_studies) in enumerate(plan.values()):
                if wanted_studies is None:
                    _restore_whole_snapshot(restic, snap, Path(tmp) / str(number), uploads)
                    continue
                root, wanted = manifest_of(restic, snap, wanted_studies)
                if wanted:
                    _restore_snapshot_files(restic, snap, root, wanted, Path(tmp) / str(number), uploads)
        finally:
            uploads.close()
    return report


def _restore_snapshot_files(
    restic: Restic, snap: SnapshotInfo, root: str, wanted: list[ManifestEntry], base: Path, uploads: VerifiedUploads
) -> None:
    """Have restic write ``wanted`` under ``base`` and upload each file as soon as restic has written it."""
    files = AnnouncedFiles(uploads, base)
    files.know(root, wanted)
    restic.restore(snap.id, base, includes=[f"{root}/{e['path']}" for e in wanted], on_file=files.restored)
    files.finish()


def _restore_whole_snapshot(restic: Restic, snap: SnapshotInfo, base: Path, uploads: VerifiedUploads) -> None:
    """A whole snapshot: restic writes the files while its manifest is read beside it.

    Every restic run first derives the repository key (about half a second, by design); running the two
    at once pays that once in time instead of twice. Files restic finishes before the manifest is known
    wait for it: nothing is uploaded before its checksum can be checked.
    """
    files = AnnouncedFiles(uploads, base)
    failed: list[Exception] = []

    def restore() -> None:
        try:
            restic.restore(snap.id, base, on_file=files.restored)
        except Exception as exc:  # noqa: BLE001 - raised again in the caller's thread below
            failed.append(exc)

    worker = threading.Thread(target=restore, name="restic-restore", daemon=True)
    worker.start()
    try:
        root, entries = snapshot_manifest(restic, snap)
        files.know(root, entries)
    finally:
        worker.join()
    if failed:
        raise failed[0]
    files.finish()


# --- from the cloud PACS ---------------------------------------------------------------------------
class StudyFiles(Protocol):
    """A copy that hands a study's files over whole (the cloud PACS by WADO-RS)."""

    @property
    def shown(self) -> str:
        """The copy as shown to people (no password)."""
        ...

    def retrieve(self, study_uid: str) -> list[bytes]:
        """Every file of the study."""
        ...


def restore_from_cloud(
    client: StudyFiles, orthanc: OrthancTarget, study_uid: str, sent: set[str], progress: Progress | None = None
) -> RestoreReport:
    """Bring a study back from the cloud PACS (WADO-RS), each file checked against what was sent."""
    files = client.retrieve(study_uid)
    report = RestoreReport(source=f"cloud PACS {client.shown}", details={"studies": [study_uid]})

    def loader(data: bytes) -> Loader:
        digest = sha256_hex(data)
        # A file the cloud PACS changed (e.g. transcoded) is not what was backed up: it fails verification.
        return lambda: Loaded(data, digest if digest in sent else "not-what-was-sent")

    items = [(f"{study_uid} #{n + 1}", loader(f)) for n, f in enumerate(files)]
    return restore_items(items, orthanc, report, progress)
