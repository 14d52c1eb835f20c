"""Catalog of every backed-up instance: what is in the backups, searchable at once.

A row is written when the copy is made (before the queue marks it done), from what the copy
recorded: study, patient, owner, species, breed, object key, sha256 and the file's place in Orthanc's
storage. So a study is found from the moment it is in the bucket, whether or not it is still in the
PACS and whether or not a snapshot has run since. One row per study (``catalog_studies``) keeps search
fast on a large archive; ``snapshot_studies`` says which snapshots hold which study.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from pacs_backup.clients.orthanc_source import InstanceUids, OrthancReader, SeriesInfo
from pacs_backup.contracts.errors import CorruptInstance, SourceGone

from .manifest import ENTRY_FIELDS, ManifestEntry, StudyDetails
from .schema import add_to_study, open_plugin_db, refresh_study
from .search import display_name, like_pattern, query_patterns

_COLUMNS = (
    "orthanc_id, study_uid, series_uid, sop_uid, patient_id, patient_name, owner, species, breed, "
    "accession, study_date, description, modality, path, object_key, sha256, size"
)


class StudySummary(StudyDetails):
    """One study in search results."""

    study_uid: str
    display_name: str
    modalities: str
    series: int
    instances: int
    last_copied_at: float


@dataclass(frozen=True)
class StudyQuery:
    """What staff typed: free text, a study-date range (``YYYYMMDD``, inclusive) and a modality."""

    text: str = ""
    date_from: str | None = None
    date_to: str | None = None
    modality: str = ""
    limit: int = 100
    changed_since: float | None = None  # only studies copied to after this time, oldest change first
    after: str = ""  # with changed_since: also the studies changed at that very time whose UID sorts after


@dataclass(frozen=True)
class SnapshotHolding:
    """One snapshot that holds (part of) a study."""

    target: str
    snapshot_id: str
    taken_at: float
    instances: int


def copy_entry(
    orthanc_id: str, uids: InstanceUids, info: SeriesInfo, path: str, key: str, sha256: str, size: int
) -> ManifestEntry:
    """The catalog row (and manifest line) of one copy: where it is, and what Orthanc said it holds."""
    return ManifestEntry(
        orthanc_id=orthanc_id,
        study_uid=uids.study,
        series_uid=uids.series,
        sop_uid=uids.sop,
        patient_id=info.patient_id,
        patient_name=info.patient_name,
        owner=info.owner,
        species=info.species,
        breed=info.breed,
        accession=info.accession,
        study_date=info.study_date,
        description=info.study_description,
        modality=info.modality,
        path=path,
        key=key,
        sha256=sha256,
        size=size,
    )


def _entry(row: tuple[Any, ...]) -> ManifestEntry:
    return cast(ManifestEntry, dict(zip(ENTRY_FIELDS, row, strict=True)))


class Catalog:
    """The catalog tables in the plugin's database file. Thread-safe."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = open_plugin_db(path)
        self._db.execute("PRAGMA synchronous=NORMAL")

    def record(self, entry: ManifestEntry, now: float) -> None:
        """Record one copy (replacing what an earlier copy of the same instance recorded)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                old = self._db.execute(
                    "SELECT study_uid FROM catalog WHERE orthanc_id=?", (entry["orthanc_id"],)
                ).fetchone()
                self._db.execute(
                    f"INSERT OR REPLACE INTO catalog ({_COLUMNS}, added_at) "  # noqa: S608 - constant columns
                    "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                    (*(entry[name] for name in ENTRY_FIELDS), now),  # type: ignore[literal-required]
                )
                add_to_study(self._db, entry, now, replaced_same_study=old is not None)
                if old is not None and old[0] != entry["study_uid"]:
                    refresh_study(self._db, old[0], now)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def backfill(self, reader: OrthancReader, now: float, limit: int | None = None) -> int:
        """Describe copies made by a release that did not catalogue at copy time (or interrupted by a
        crash between the copy and its catalog row). Instances Orthanc no longer has are skipped."""
        with self._lock:
            rows = self._db.execute(
                "SELECT o.orthanc_id, o.object_key, o.sha256, o.size FROM outbox o "
                "LEFT JOIN catalog c ON c.orthanc_id = o.orthanc_id "
                "WHERE o.state='done' AND c.orthanc_id IS NULL LIMIT ?",
                (limit or -1,),
            ).fetchall()
        added = 0
        for oid, key, sha, size in rows:
            try:
                uids, info, path = reader.describe(oid)
            except (SourceGone, CorruptInstance):
                continue
            entry = copy_entry(oid, uids, info, path, key or "", sha or "", int(size or 0))
            self.record(entry, now)
            added += 1
        return added

    def entries(self, storage_dir: Path | None = None) -> Iterator[ManifestEntry]:
        """Every catalogued instance; with ``storage_dir``, only those whose file is there now (so a
        manifest lists only what its snapshot really holds)."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM catalog "  # noqa: S608 - constant columns
                "ORDER BY study_uid, series_uid, sop_uid"
            ).fetchall()
        for r in rows:
            e = _entry(r)
            if storage_dir is None or (e["path"] and (storage_dir / e["path"]).is_file()):
                yield e

    def sample(self, n: int, rng: random.Random | None = None) -> list[ManifestEntry]:
        """``n`` random catalogued instances, always including the newest copy."""
        rng = rng or random.Random()  # noqa: S311 - sampling, not security
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM catalog "  # noqa: S608 - constant columns
                "ORDER BY added_at DESC LIMIT 1"
            ).fetchall()
            count = self._db.execute("SELECT COUNT(*) FROM catalog").fetchone()[0]
            for offset in sorted(rng.sample(range(count), min(n, count))) if count else []:
                rows += self._db.execute(
                    f"SELECT {_COLUMNS} FROM catalog "  # noqa: S608 - constant columns
                    "ORDER BY rowid LIMIT 1 OFFSET ?",
                    (offset,),
                ).fetchall()
        seen: dict[str, ManifestEntry] = {}
        for r in rows:
            seen.setdefault(r[0], _entry(r))
        return list(seen.values())[: max(n, 1)]

    def studies(self, q: StudyQuery) -> list[StudySummary]:
        """Studies whose text holds every typed word, newest study date first (all when nothing typed)."""
        sql = (
            "SELECT study_uid, patient_id, patient_name, owner, species, breed, accession, study_date, "
            "description, modalities, series, instances, updated_at FROM catalog_studies WHERE 1=1"
        )
        args: list[Any] = []
        for column, pattern in query_patterns(q.text):
            sql += f" AND {column} LIKE ? ESCAPE '\\'"  # one of two fixed column names
            args.append(pattern)
        if q.date_from:
            sql += " AND study_date >= ?"
            args.append(q.date_from)
        if q.date_to:
            sql += " AND study_date <= ? AND study_date != ''"
            args.append(q.date_to)
        if q.modality:
            sql += " AND ',' || modalities || ',' LIKE ? ESCAPE '\\'"
            args.append(like_pattern("," + q.modality.upper() + ","))
        if q.changed_since is not None:  # a mirror (the dashboard's, for when the PACS is down) catching up
            # keyset paging on (time, UID): many studies may share one time (a migration, a backfill)
            sql += " AND (updated_at > ? OR (updated_at = ? AND study_uid > ?)) ORDER BY updated_at, study_uid LIMIT ?"
            args += [q.changed_since, q.changed_since, q.after]
        else:
            sql += " ORDER BY study_date DESC, updated_at DESC LIMIT ?"
        args.append(max(1, min(q.limit, 1000)))
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [
            StudySummary(
                study_uid=r[0],
                patient_id=r[1],
                patient_name=r[2],
                display_name=display_name(r[2]),
                owner=r[3],
                species=r[4],
                breed=r[5],
                accession=r[6],
                study_date=r[7],
                description=r[8],
                modalities=r[9],
                series=r[10],
                instances=r[11],
                last_copied_at=r[12],
            )
            for r in rows
        ]

    def study(self, study_uid: str) -> list[ManifestEntry]:
        """Every catalogued instance of one study."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM catalog WHERE study_uid = ? "  # noqa: S608
                "ORDER BY series_uid, sop_uid",
                (study_uid,),
            ).fetchall()
        return [_entry(r) for r in rows]

    def studies_of(self, patient_id: str | None = None, accession: str | None = None) -> list[str]:
        """Study UIDs of a patient id or an accession number (exact)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT study_uid FROM catalog_studies WHERE patient_id = ? OR accession = ? ORDER BY study_date",
                (patient_id or "\0", accession or "\0"),
            ).fetchall()
        return [r[0] for r in rows]

    # --- which snapshots hold which study -------------------------------------------------------------
    def record_snapshot(self, target: str, snapshot_id: str, taken_at: float, counts: dict[str, int]) -> None:
        """Remember how many instances of each study a snapshot holds."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                # The row for study '' marks the snapshot as recorded (so a study it lacks is known absent).
                self._db.executemany(
                    "INSERT OR REPLACE INTO snapshot_studies (target, snapshot_id, taken_at, study_uid, instances) "
                    "VALUES (?,?,?,?,?)",
                    [(target, snapshot_id, taken_at, s, n) for s, n in {"": 0, **counts}.items()],
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def has_snapshots(self, target: str) -> bool:
        """Whether this box has ever recorded a snapshot to ``target``."""
        with self._lock:
            row = self._db.execute("SELECT 1 FROM snapshot_studies WHERE target = ? LIMIT 1", (target,)).fetchone()
        return row is not None

    def snapshots_holding(self, study_uid: str, target: str | None = None) -> list[SnapshotHolding]:
        """Snapshots known to hold the study, newest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT target, snapshot_id, taken_at, instances FROM snapshot_studies WHERE study_uid = ? "
                "AND (? IS NULL OR target = ?) ORDER BY taken_at DESC",
                (study_uid, target, target),
            ).fetchall()
        return [SnapshotHolding(*r) for r in rows]

    def snapshot_count(self, snapshot_id: str, study_uid: str) -> int | None:
        """Instances of the study in a snapshot this plugin recorded; None when it did not record it."""
        with self._lock:
            rows = self._db.execute(
                "SELECT study_uid, instances FROM snapshot_studies WHERE snapshot_id = ? AND study_uid IN ('', ?)",
                (snapshot_id, study_uid),
            ).fetchall()
        if not rows:
            return None
        return max(int(n) for _, n in rows)

    def snapshot_studies(self, snapshot_id: str) -> dict[str, int] | None:
        """``{study_uid: instances}`` of a snapshot this plugin recorded; None when it did not record it."""
        with self._lock:
            rows = self._db.execute(
                "SELECT study_uid, instances FROM snapshot_studies WHERE snapshot_id = ?", (snapshot_id,)
            ).fetchall()
        return {str(s): max(int(n), 0) for s, n in rows if s} if rows else None

    def study_dates(self) -> dict[str, str]:
        """Every catalogued study's StudyDate (``YYYYMMDD``, or empty when the study has none)."""
        with self._lock:
            rows = self._db.execute("SELECT study_uid, study_date FROM catalog_studies").fetchall()
        return {str(s): str(d or "") for s, d in rows}

    def growth(self, now: float) -> tuple[int, int, float | None]:
        """``(bytes of all copies, bytes copied in the last 30 days, when the first copy was made)``."""
        with self._lock:
            total, recent, first = self._db.execute(
                "SELECT COALESCE(SUM(size), 0), COALESCE(SUM(CASE WHEN added_at >= ? THEN size ELSE 0 END), 0), "
                "MIN(added_at) FROM catalog",
                (now - 30 * 86400.0,),
            ).fetchone()
        return int(total), int(recent), None if first is None else float(first)
