"""Catalog of backed-up instances and the manifest written into every snapshot.

The catalog maps each copied instance to its study, patient, object key, file in Orthanc's storage
and sha256. It is filled lazily (before a snapshot or a drill) for instances whose copy is done,
so the copy path stays lean. The manifest (JSON Lines) is the catalog as a file: it travels inside
every offsite snapshot and next to the copies in the bucket, so that a technician can rebuild and
verify the PACS from either place alone.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import BackupError, CorruptInstance, SourceGone
from .orthanc_source import OrthancReader
from .sqlite import open_db

MANIFEST_FORMAT = "pacs-backup-manifest/1"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS catalog (
    orthanc_id   TEXT PRIMARY KEY,
    study_uid    TEXT NOT NULL,
    series_uid   TEXT NOT NULL,
    sop_uid      TEXT NOT NULL,
    patient_id   TEXT NOT NULL,
    patient_name TEXT NOT NULL,
    accession    TEXT NOT NULL,
    study_date   TEXT NOT NULL,
    description  TEXT NOT NULL,
    modality     TEXT NOT NULL,
    path         TEXT NOT NULL,
    added_at     REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS catalog_study ON catalog (study_uid);
"""

ENTRY_FIELDS = ("orthanc_id", "study_uid", "series_uid", "sop_uid", "patient_id", "patient_name", "accession",
                "study_date", "description", "modality", "path", "key", "sha256", "size")


class Catalog:
    """Catalog table beside the outbox (same database file)."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = open_db(path, _SCHEMA)

    def fill(self, reader: OrthancReader, now: float, limit: int | None = None) -> int:
        """Describe done instances that are not catalogued yet. Returns how many were added.

        Instances deleted from Orthanc meanwhile are skipped (their copy stays in the bucket).
        """
        with self._lock:
            ids = [r[0] for r in self._db.execute(
                "SELECT o.orthanc_id FROM outbox o LEFT JOIN catalog c ON c.orthanc_id = o.orthanc_id "
                "WHERE o.state='done' AND c.orthanc_id IS NULL LIMIT ?", (limit or -1,))]
        added = 0
        batch: list[tuple[Any, ...]] = []
        for oid in ids:
            try:
                uids, info, path = reader.describe(oid)
            except (SourceGone, CorruptInstance):
                continue
            batch.append((oid, uids.study, uids.series, uids.sop, info.patient_id, info.patient_name,
                          info.accession, info.study_date, info.study_description, info.modality, path, now))
            if len(batch) >= 500:
                added += self._insert(batch)
                batch = []
        return added + self._insert(batch)

    def _insert(self, rows: list[tuple[Any, ...]]) -> int:
        if not rows:
            return 0
        with self._lock:
            self._db.executemany("INSERT OR REPLACE INTO catalog VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
        return len(rows)

    _SELECT = ("SELECT c.orthanc_id, c.study_uid, c.series_uid, c.sop_uid, c.patient_id, c.patient_name, "
               "c.accession, c.study_date, c.description, c.modality, c.path, o.object_key, o.sha256, o.size "
               "FROM catalog c JOIN outbox o ON o.orthanc_id = c.orthanc_id WHERE o.state='done' ")

    def entries(self) -> Iterator[dict[str, Any]]:
        """Yield every catalogued instance with its key, sha256 and size."""
        with self._lock:
            rows = self._db.execute(self._SELECT + "ORDER BY c.study_uid, c.series_uid, c.sop_uid").fetchall()
        for r in rows:
            yield dict(zip(ENTRY_FIELDS, r, strict=True))

    def sample(self, n: int, rng: random.Random | None = None) -> list[dict[str, Any]]:
        """Return ``n`` random catalogued instances, always including the newest one."""
        rng = rng or random.Random()  # noqa: S311 - sampling, not security
        with self._lock:
            newest = self._db.execute(self._SELECT + "ORDER BY o.done_at DESC LIMIT 1").fetchall()
            count = self._db.execute("SELECT COUNT(*) FROM catalog c JOIN outbox o ON o.orthanc_id = c.orthanc_id "
                                     "WHERE o.state='done'").fetchone()[0]
            picks = sorted(rng.sample(range(count), min(n, count))) if count else []
            rows = list(newest)
            for offset in picks:
                rows += self._db.execute(self._SELECT + "ORDER BY c.rowid LIMIT 1 OFFSET ?", (offset,)).fetchall()
        seen: dict[str, dict[str, Any]] = {}
        for r in rows:
            seen.setdefault(r[0], dict(zip(ENTRY_FIELDS, r, strict=True)))
        return list(seen.values())[: max(n, 1)]

    def studies(self, query: str = "", limit: int = 50, date_from: str = "", date_to: str = "",
                modality: str = "") -> list[dict[str, Any]]:
        """Studies matching ``query`` (patient name or id, accession, study UID), a study date range
        (``YYYYMMDD``, inclusive) and a modality."""
        like = f"%{query.strip()}%"
        with self._lock:
            rows = self._db.execute(
                "SELECT study_uid, MAX(patient_id), MAX(patient_name), MAX(accession), MAX(study_date), "
                "MAX(description), GROUP_CONCAT(DISTINCT modality), COUNT(DISTINCT series_uid), COUNT(*) "
                "FROM catalog WHERE (patient_name LIKE ? OR patient_id LIKE ? OR accession LIKE ? "
                "OR study_uid LIKE ?) AND (? = '' OR study_date >= ?) AND (? = '' OR study_date <= ?) "
                "AND (? = '' OR modality = ?) "
                "GROUP BY study_uid ORDER BY MAX(study_date) DESC, MAX(added_at) DESC LIMIT ?",
                (like, like, like, like, date_from, date_from, date_to, date_to, modality, modality,
                 limit)).fetchall()
        keys = ("study_uid", "patient_id", "patient_name", "accession", "study_date", "description", "modalities",
                "series", "instances")
        return [dict(zip(keys, r, strict=True)) for r in rows]


    def study(self, study_uid: str) -> list[dict[str, Any]]:
        """Every catalogued instance of one study (for its detail page)."""
        with self._lock:
            rows = self._db.execute(self._SELECT + "AND c.study_uid = ? ORDER BY c.series_uid, c.sop_uid",
                                    (study_uid,)).fetchall()
        return [dict(zip(ENTRY_FIELDS, r, strict=True)) for r in rows]


def write_manifest(entries: Iterator[dict[str, Any]], path: Path, header: dict[str, Any]) -> int:
    """Write the manifest to ``path`` atomically. Returns the number of entries."""
    tmp = path.with_suffix(".tmp")
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(json.dumps({"format": MANIFEST_FORMAT, **header}) + "\n")
        for e in entries:
            f.write(json.dumps(e, ensure_ascii=False) + "\n")
            count += 1
    tmp.replace(path)
    return count


def read_manifest(data: bytes) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Parse a manifest. Returns ``(header, entries)``.

    Raises:
        BackupError: it is not a manifest of a format this version reads.
    """
    lines = data.decode("utf-8").splitlines()
    try:
        header = json.loads(lines[0]) if lines else {}
    except ValueError:
        header = {}
    if header.get("format") != MANIFEST_FORMAT:
        raise BackupError("The backup manifest is missing or of an unknown format; this snapshot cannot be "
                          "verified by this version.")
    return header, [json.loads(line) for line in lines[1:] if line.strip()]
