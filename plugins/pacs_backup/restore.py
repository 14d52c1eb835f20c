"""Restoring instances into an Orthanc from the bucket or from a snapshot, with verification.

Used by the technician scripts and by the dashboard. Each restored instance is verified: the
backup copy must match the sha256 recorded when it was backed up, and Orthanc must report the MD5
of exactly the bytes that were sent. The report says, per instance, what did not verify and why.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from .catalog import read_manifest
from .errors import BackupError
from .keys import study_prefix
from .object_store import ObjectStore
from .restic import Restic, SnapshotInfo
from .snapshots import BUCKET_MANIFEST_KEY, MANIFEST_NAME, SNAPSHOT_TAG, STATE_SUBDIR

Loader = Callable[[], tuple[bytes, str | None]]  # -> (bytes, expected sha256)


class OrthancTarget(Protocol):
    """Where restored instances go: :class:`OrthancHttp`, or the plugin's in-process adapter."""

    def upload(self, dicom: bytes) -> dict[str, Any]: ...

    def get_json(self, uri: str) -> Any: ...

Progress = Callable[[int, int], None]


@dataclass
class RestoreReport:
    """What a restore did. ``ok`` only when every instance was restored and verified."""

    source: str
    total: int = 0
    verified: int = 0
    failures: list[tuple[str, str]] = field(default_factory=list)  # (what, why)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.total > 0 and self.verified == self.total and not self.failures

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "total": self.total, "verified": self.verified, "ok": self.ok,
                "failures": [{"item": w, "reason": r} for w, r in self.failures], **self.details}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def restore_items(items: list[tuple[str, Loader]], orthanc: OrthancTarget, report: RestoreReport,
                  progress: Progress | None = None, workers: int = 4) -> RestoreReport:
    """Upload every item into Orthanc and verify it; fills ``report``."""
    report.total += len(items)

    def one(item: tuple[str, Loader]) -> tuple[str, str | None]:
        label, load = item
        try:
            data, expected = load()
            if expected is not None and _sha(data) != expected:
                return label, "the backup copy is damaged (sha256 differs from when it was backed up)"
            answer = orthanc.upload(data)
            info = orthanc.get_json(f"/instances/{answer['ID']}/attachments/dicom/info")
            if info.get("UncompressedMD5") != hashlib.md5(data, usedforsecurity=False).hexdigest():
                return label, "Orthanc stored different bytes than were restored"
        except BackupError as exc:
            return label, str(exc)
        return label, None

    done = 0
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for label, problem in pool.map(one, items):
            done += 1
            if problem is None:
                report.verified += 1
            else:
                report.failures.append((label, problem))
            if progress:
                progress(done, len(items))
    return report


# --- from the bucket ------------------------------------------------------------------------------
def bucket_items(store: ObjectStore, prefix: str, as_of: datetime | None = None) -> list[tuple[str, Loader]]:
    """Every instance object under ``prefix`` (latest version, or the one current at ``as_of``)."""
    if as_of is None:
        pairs: Iterator[tuple[str, str | None]] = ((k, None) for k in store.list_keys(prefix))
    else:
        pairs = store.versions_as_of(prefix, as_of)

    def loader(key: str, version: str | None) -> Loader:
        return lambda: store.get_with_sha(key, version)

    return [(key, loader(key, version)) for key, version in pairs if key.endswith(".dcm")]


def bucket_manifest(store: ObjectStore) -> list[dict[str, Any]]:
    """The manifest kept in the bucket (for finding studies by patient or accession)."""
    try:
        data = store.get(BUCKET_MANIFEST_KEY)
    except BackupError:
        return []
    return read_manifest(data)[1]


def studies_matching(entries: list[dict[str, Any]], patient_id: str | None = None,
                     accession: str | None = None) -> list[str]:
    """Study UIDs whose patient id or accession number equals the one given."""
    found = {e["study_uid"] for e in entries
             if (patient_id and e.get("patient_id") == patient_id) or (accession and e.get("accession") == accession)}
    return sorted(found)


def restore_from_bucket(store: ObjectStore, orthanc: OrthancTarget, studies: list[str] | None, prefix: str = "",
                        as_of: datetime | None = None, progress: Progress | None = None) -> RestoreReport:
    """Restore the given studies (None = everything) from the bucket into Orthanc."""
    report = RestoreReport(source=f"bucket {store.bucket}")
    items: list[tuple[str, Loader]] = []
    prefixes = [study_prefix(s, prefix) for s in studies] if studies is not None else [
        (prefix.strip("/") + "/dicom/") if prefix.strip("/") else "dicom/"]
    for p in prefixes:
        items += bucket_items(store, p, as_of)
    report.details["studies"] = studies
    return restore_items(items, orthanc, report, progress)


# --- from a snapshot -------------------------------------------------------------------------------
def choose_snapshot(restic: Restic, as_of: datetime | None = None, snapshot_id: str | None = None) -> SnapshotInfo:
    """The snapshot to restore from: by id, the newest at or before ``as_of``, or the newest."""
    snaps = restic.snapshots(tag=SNAPSHOT_TAG)
    if snapshot_id:
        for s in snaps:
            if s.id.startswith(snapshot_id):
                return s
        raise BackupError(f"There is no snapshot {snapshot_id} in {restic.repository}.")
    if as_of is not None:
        snaps = [s for s in snaps if datetime.fromisoformat(s.time.replace("Z", "+00:00")) <= as_of]
    if not snaps:
        raise BackupError(f"There is no snapshot in {restic.repository}" + (" at that date." if as_of else "."))
    return snaps[-1]


def snapshot_manifest(restic: Restic, snap: SnapshotInfo) -> tuple[str, list[dict[str, Any]]]:
    """Return ``(storage root inside the snapshot, manifest entries)``."""
    root = snap.paths[0]
    return root, read_manifest(restic.dump(snap.id, f"{root}/{STATE_SUBDIR}/{MANIFEST_NAME}"))[1]


def restore_from_snapshot(restic: Restic, orthanc: OrthancTarget, studies: list[str] | None,
                          as_of: datetime | None = None, snapshot_id: str | None = None,
                          progress: Progress | None = None, patient_id: str | None = None,
                          accession: str | None = None) -> RestoreReport:
    """Restore studies (None = everything) from a snapshot into Orthanc, verified against its manifest."""
    snap = choose_snapshot(restic, as_of, snapshot_id)
    root, entries = snapshot_manifest(restic, snap)
    if patient_id or accession:
        studies = studies_matching(entries, patient_id, accession)
    wanted = entries if studies is None else [e for e in entries if e["study_uid"] in set(studies)]
    report = RestoreReport(source=f"snapshot {snap.short_id} of {restic.repository} ({snap.time})",
                           details={"studies": studies, "snapshot_id": snap.id})
    if not wanted:
        return report
    with tempfile.TemporaryDirectory(prefix="pacs-restore-") as tmp:
        includes = [] if studies is None else [f"{root}/{e['path']}" for e in wanted]
        restic.restore(snap.id, Path(tmp), includes=includes)
        base = Path(tmp + root)

        def loader(e: dict[str, Any]) -> Loader:
            def load() -> tuple[bytes, str | None]:
                f = base / e["path"]
                if not f.exists():
                    raise BackupError(f"{e['path']} is missing from the snapshot")
                return f.read_bytes(), str(e["sha256"])
            return load

        items = [(str(e["key"]), loader(e)) for e in wanted]
        return restore_items(items, orthanc, report, progress)
