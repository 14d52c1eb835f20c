"""The dashboard's own copy of what it needs while the PACS is down, in its own SQLite file.

- a mirror of the backup catalog's study list (synced from ``GET /backup/studies?changed_since=`` by the
  monitor thread while the PACS answers), searched the same way as the plugin searches;
- the last status read from the plugin and when, when the PACS stopped answering, and the last run list
  (so the health and restore-test pages show the last known state, marked as such);
- restores asked while the PACS was down, submitted by the monitor once it answers.

The file (``mirror.sqlite`` in the dashboard's data folder) carries ``PRAGMA user_version`` and ordered
migrations, run as for the plugin's database (:mod:`pacs_backup.state.migrate`); it is separate from
``dashboard.sqlite`` (users, audit). Everything in it can be rebuilt from the plugin except the waiting
restores, so a file from a newer dashboard is refused with a sentence, as the others are, not set aside.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypedDict, cast

from pacs_backup.state.catalog import StudySummary
from pacs_backup.state.migrate import Step, migrate, sql
from pacs_backup.state.schema import reindex_search_texts
from pacs_backup.state.search import date_range, display_name, like_pattern, query_patterns, study_search_text
from pacs_backup.state.sqlite import open_db

log = logging.getLogger(__name__)

# A study's row: the fields of the plugin's search results (StudySummary), in this order.
_STUDY_FIELDS = (
    "study_uid",
    "patient_id",
    "patient_name",
    "display_name",
    "owner",
    "species",
    "breed",
    "accession",
    "study_date",
    "description",
    "modalities",
    "series",
    "instances",
    "last_copied_at",
)


def _reindex(db: sqlite3.Connection) -> None:
    reindex_search_texts(db, "studies")


# MIGRATIONS[n - 1] brings the file from version n - 1 to n (pacs_backup.state.migrate runs them). Append
# only; never edit a shipped one.
MIGRATIONS: tuple[Step, ...] = (
    sql(  # 1
        "CREATE TABLE studies (study_uid TEXT PRIMARY KEY, patient_id TEXT NOT NULL DEFAULT '', "
        "patient_name TEXT NOT NULL DEFAULT '', display_name TEXT NOT NULL DEFAULT '', owner TEXT NOT NULL DEFAULT '',"
        " species TEXT NOT NULL DEFAULT '', breed TEXT NOT NULL DEFAULT '', accession TEXT NOT NULL DEFAULT '', "
        "study_date TEXT NOT NULL DEFAULT '', description TEXT NOT NULL DEFAULT '', "
        "modalities TEXT NOT NULL DEFAULT '', series INTEGER NOT NULL DEFAULT 0, instances INTEGER NOT NULL DEFAULT 0, "
        "last_copied_at REAL NOT NULL DEFAULT 0, search_text TEXT NOT NULL)",
        "CREATE INDEX studies_by_date ON studies (study_date DESC, last_copied_at DESC)",
        "CREATE TABLE state (k TEXT PRIMARY KEY, v TEXT NOT NULL)",
        "CREATE TABLE waiting_restores (id INTEGER PRIMARY KEY AUTOINCREMENT, study_uid TEXT NOT NULL, "
        "source TEXT NOT NULL, snapshot TEXT, username TEXT, ip TEXT, asked_at REAL NOT NULL, "
        "run_id INTEGER, submitted_at REAL, error TEXT)",
    ),
    _reindex,  # 2: search texts as the plugin makes them now (numbers at a word's start, whole identifiers)
)
SCHEMA_VERSION = len(MIGRATIONS)
PAGE = 1000  # the plugin's largest page
_WAITING_FIELDS = (
    "id",
    "study_uid",
    "source",
    "snapshot",
    "username",
    "ip",
    "asked_at",
    "run_id",
    "submitted_at",
    "error",
)


class WaitingRestore(TypedDict):
    """A restore asked while the PACS was down: who asked, when, and what became of it."""

    id: int
    study_uid: str
    source: str
    snapshot: str | None
    username: str | None
    ip: str | None
    asked_at: float
    run_id: int | None  # the plugin's run, once handed over
    submitted_at: float | None
    error: str | None  # why the plugin refused it


def _text(row: Mapping[str, Any], name: str) -> str:
    value = row.get(name)
    return "" if value is None else str(value)


class Mirror:
    """Thread-safe (the WSGI threads read, the monitor thread writes)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        db = open_db(path, "")
        try:
            migrate(db, MIGRATIONS, "The dashboard's mirror file")  # a newer dashboard's: SchemaTooNew
        except BaseException:
            db.close()
            raise
        self._db = db

    # --- the catalog's studies -----------------------------------------------------------------------
    def upsert(self, rows: list[StudySummary]) -> None:
        values = []
        for r in rows:
            name = _text(r, "patient_name")
            shown = _text(r, "display_name") or display_name(name)
            text = study_search_text(
                name,
                _text(r, "owner"),
                _text(r, "species"),
                _text(r, "breed"),
                _text(r, "patient_id"),
                _text(r, "accession"),
                _text(r, "description"),
            )
            values.append(
                (
                    _text(r, "study_uid"),
                    _text(r, "patient_id"),
                    name,
                    shown,
                    _text(r, "owner"),
                    _text(r, "species"),
                    _text(r, "breed"),
                    _text(r, "accession"),
                    _text(r, "study_date"),
                    _text(r, "description"),
                    _text(r, "modalities"),
                    int(r.get("series") or 0),
                    int(r.get("instances") or 0),
                    float(r.get("last_copied_at") or 0),
                    text,
                )
            )
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    f"INSERT OR REPLACE INTO studies ({', '.join(_STUDY_FIELDS)}, search_text) "  # noqa: S608
                    f"VALUES ({', '.join('?' * (len(_STUDY_FIELDS) + 1))})",
                    values,
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def sync(
        self, fetch: Callable[[float, int, str], list[StudySummary]], now: float | None = None, max_pages: int = 20
    ) -> int:
        """Bring the mirror up to date: ``fetch(changed_since, limit, after)`` is
        ``GET /backup/studies?changed_since=&after=`` (oldest change first, then by study UID), so pages
        follow each other exactly even when many studies share one change time. At most ``max_pages``
        pages per call (a large first sync spreads over a few monitor rounds). Returns the rows written."""
        cursor, after = float(self.get("cursor", 0.0)), str(self.get("cursor_uid", ""))
        written = 0
        for _ in range(max_pages):
            rows = fetch(cursor, PAGE, after)
            if rows:
                self.upsert(rows)
                written += len(rows)
                last = rows[-1]
                cursor, after = float(last.get("last_copied_at") or cursor), str(last.get("study_uid") or "")
            if len(rows) < PAGE:
                break
        self.put("cursor", cursor)
        self.put("cursor_uid", after)
        self.put("synced_at", time.time() if now is None else now)
        return written

    def search(
        self, text: str, date_from: str = "", date_to: str = "", modality: str = "", limit: int = 100
    ) -> list[StudySummary]:
        """The same matching as the plugin's catalog. Raises ValueError (a sentence) for a bad date."""
        first, last = date_range(date_from, date_to)
        sql = f"SELECT {', '.join(_STUDY_FIELDS)} FROM studies WHERE 1=1"  # noqa: S608 - constant columns
        args: list[Any] = []
        for column, pattern in query_patterns(text):
            sql += f" AND {column} LIKE ? ESCAPE '\\'"  # one of two fixed column names
            args.append(pattern)
        if first:
            sql += " AND study_date >= ?"
            args.append(first)
        if last:
            sql += " AND study_date <= ? AND study_date != ''"
            args.append(last)
        if modality:
            sql += " AND ',' || modalities || ',' LIKE ? ESCAPE '\\'"
            args.append(like_pattern("," + modality.upper() + ","))
        sql += " ORDER BY study_date DESC, last_copied_at DESC LIMIT ?"
        args.append(max(1, min(limit, 1000)))
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [_study(r) for r in rows]

    def study(self, study_uid: str) -> StudySummary | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {', '.join(_STUDY_FIELDS)} FROM studies "  # noqa: S608
                "WHERE study_uid=?",
                (study_uid,),
            ).fetchone()
        return _study(row) if row else None

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM studies").fetchone()[0])

    # --- small JSON values: cursor, last status, down since, last runs --------------------------------
    def get(self, key: str, default: Any = None) -> Any:
        with self._lock:
            row = self._db.execute("SELECT v FROM state WHERE k=?", (key,)).fetchone()
        return json.loads(row[0]) if row else default

    def put(self, key: str, value: Any) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO state VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v=excluded.v", (key, json.dumps(value))
            )

    # --- restores asked while the PACS was down -------------------------------------------------------
    def queue_restore(
        self, study_uid: str, source: str, snapshot: str | None, username: str | None, ip: str | None, now: float
    ) -> int:
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO waiting_restores (study_uid, source, snapshot, username, ip, asked_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (study_uid, source, snapshot, username, ip, now),
            )
            return int(cur.lastrowid or 0)

    def waiting_restore(self, wid: int) -> WaitingRestore | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {', '.join(_WAITING_FIELDS)} FROM waiting_restores WHERE id=?",  # noqa: S608
                (wid,),
            ).fetchone()
        return cast(WaitingRestore, dict(zip(_WAITING_FIELDS, row, strict=True))) if row else None

    def waiting(self) -> list[WaitingRestore]:
        """Restores not yet handed to the plugin, oldest first."""
        with self._lock:
            ids = [
                r[0]
                for r in self._db.execute(
                    "SELECT id FROM waiting_restores WHERE run_id IS NULL AND error IS NULL ORDER BY id"
                ).fetchall()
            ]
        return [w for w in (self.waiting_restore(i) for i in ids) if w]

    def restore_submitted(self, wid: int, run_id: int, now: float) -> None:
        with self._lock:
            self._db.execute("UPDATE waiting_restores SET run_id=?, submitted_at=? WHERE id=?", (run_id, now, wid))

    def restore_refused(self, wid: int, error: str, now: float) -> None:
        with self._lock:
            self._db.execute("UPDATE waiting_restores SET error=?, submitted_at=? WHERE id=?", (error[:500], now, wid))


def _study(row: tuple[Any, ...]) -> StudySummary:
    return cast(StudySummary, dict(zip(_STUDY_FIELDS, row, strict=True)))
