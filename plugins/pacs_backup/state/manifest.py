"""The manifest: what a copy holds, as JSON Lines, travelling with the copy it describes.

Each offsite snapshot carries ``pacs-backup/manifest.jsonl`` listing exactly the instances whose
files that snapshot contains (study/series/instance, patient, file path, object key, sha256), so a
technician can find, restore and verify any study from that snapshot alone, years later.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TypedDict, cast

from pacs_backup.contracts.errors import BackupError

MANIFEST_FORMAT = "pacs-backup-manifest/1"
SNAPSHOT_TAG = "pacs-backup"  # every snapshot the appliance takes carries it
STATE_SUBDIR = "pacs-backup"  # inside the storage directory, so the manifest travels in the snapshot
MANIFEST_NAME = "manifest.jsonl"
BUCKET_MANIFEST_KEY = "catalog/manifest.jsonl"  # the same manifest beside the copies in the bucket


def sha256_hex(data: bytes) -> str:
    """The one fingerprint every copy records and every check compares."""
    return hashlib.sha256(data).hexdigest()


def snapshot_manifest_path(root: str) -> str:
    """Where the manifest is inside a snapshot whose storage folder was ``root``."""
    return f"{root}/{STATE_SUBDIR}/{MANIFEST_NAME}"


class InstanceRef(TypedDict):
    """Which instance: Orthanc's id and its DICOM UIDs."""

    orthanc_id: str
    study_uid: str
    series_uid: str
    sop_uid: str


class StudyDetails(TypedDict):
    """What staff know a study by (a manifest line, a search result)."""

    patient_id: str
    patient_name: str
    owner: str
    species: str
    breed: str
    accession: str
    study_date: str
    description: str


class ManifestEntry(InstanceRef, StudyDetails):
    """One backed-up instance (a catalog row, a manifest line). The order of the keys is the order of
    the catalog's columns and of a manifest line's keys."""

    modality: str
    path: str  # the file inside Orthanc's storage directory (relative), as it was when copied
    key: str  # the object key in the bucket
    sha256: str
    size: int


ENTRY_FIELDS: tuple[str, ...] = tuple(ManifestEntry.__annotations__)


class ManifestHeader(TypedDict, total=False):
    format: str
    created_at: float
    storage_dir: str
    host: str


class ManifestUnreadable(BackupError):
    """The manifest is missing, damaged or of a format this release does not read."""


def entry_from(values: dict[str, Any]) -> ManifestEntry:
    """A complete entry from a manifest line (fields added by later releases get empty defaults)."""
    out: dict[str, Any] = {name: values.get(name, "") for name in ENTRY_FIELDS}
    out["size"] = int(values.get("size") or 0)
    return cast(ManifestEntry, out)


def write_manifest(entries: Iterable[ManifestEntry], path: Path, header: ManifestHeader) -> int:
    """Write the manifest to ``path`` atomically (owner-only). Returns the number of entries."""
    tmp = path.with_suffix(".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with open(tmp, "w", encoding="utf-8", opener=_owner_only) as f:
        f.write(json.dumps({**header, "format": MANIFEST_FORMAT}) + "\n")
        for e in entries:
            f.write(json.dumps(e, ensure_ascii=False) + "\n")
            count += 1
    tmp.replace(path)
    return count


def read_manifest(data: bytes) -> tuple[ManifestHeader, list[ManifestEntry]]:
    """Parse a manifest. Returns ``(header, entries)``.

    Raises:
        ManifestUnreadable: it is not a manifest of a format this version reads.
    """
    try:
        lines = data.decode("utf-8").splitlines()
        header = json.loads(lines[0]) if lines else {}
        if not isinstance(header, dict) or header.get("format") != MANIFEST_FORMAT:
            raise ValueError("unknown format")
        entries = [entry_from(json.loads(line)) for line in lines[1:] if line.strip()]
    except (ValueError, TypeError, AttributeError):
        raise ManifestUnreadable(
            "The backup manifest is missing, damaged or of an unknown format; this copy "
            "cannot be searched or verified by this version."
        ) from None
    return ManifestHeader(**header), entries  # type: ignore[typeddict-item]


def _owner_only(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)
