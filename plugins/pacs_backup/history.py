"""Run history of snapshots, drills and restores (kept in the outbox database, shown in the status)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .sqlite import open_db

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    target      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('queued', 'running', 'ok', 'failed')),
    queued_at   REAL NOT NULL,
    started_at  REAL,
    finished_at REAL,
    summary     TEXT,
    error       TEXT
);
CREATE INDEX IF NOT EXISTS runs_target_kind ON runs (target, kind, id);
"""


@dataclass(frozen=True)
class Run:
    """One recorded run."""

    id: int
    target: str
    kind: str
    state: str
    queued_at: float
    started_at: float | None
    finished_at: float | None
    summary: dict[str, Any]
    error: str | None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, with the duration."""
        duration = None
        if self.started_at is not None and self.finished_at is not None:
            duration = round(self.finished_at - self.started_at, 3)
        return {"id": self.id, "target": self.target, "kind": self.kind, "state": self.state,
                "queued_at": self.queued_at, "started_at": self.started_at, "finished_at": self.finished_at,
                "duration_s": duration, "summary": self.summary, "error": self.error}


class RunLog:
    """Thread-safe log of runs."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = open_db(path, _SCHEMA)
        # A run left 'running' or 'queued' by a crash did not finish: say so instead of showing it forever.
        self._db.execute("UPDATE runs SET state='failed', error='Interrupted (the appliance restarted).' "
                         "WHERE state IN ('running', 'queued')")

    def queue(self, target: str, kind: str, now: float) -> int:
        """Record a requested run; returns its id."""
        with self._lock:
            cur = self._db.execute("INSERT INTO runs (target, kind, state, queued_at) VALUES (?, ?, 'queued', ?)",
                                   (target, kind, now))
            return int(cur.lastrowid or 0)

    def start(self, run_id: int, now: float) -> None:
        with self._lock:
            self._db.execute("UPDATE runs SET state='running', started_at=? WHERE id=?", (now, run_id))

    def progress(self, run_id: int, summary: dict[str, Any]) -> None:
        """Update the summary of a running run (e.g. ``{"done": 10, "total": 40}``)."""
        with self._lock:
            self._db.execute("UPDATE runs SET summary=? WHERE id=?", (json.dumps(summary), run_id))

    def finish(self, run_id: int, now: float, ok: bool, summary: dict[str, Any], error: str | None = None) -> None:
        with self._lock:
            self._db.execute("UPDATE runs SET state=?, finished_at=?, summary=?, error=? WHERE id=?",
                             ("ok" if ok else "failed", now, json.dumps(summary), error, run_id))

    def _rows(self, sql: str, args: tuple[Any, ...]) -> list[Run]:
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [Run(r[0], r[1], r[2], r[3], r[4], r[5], r[6], json.loads(r[7]) if r[7] else {}, r[8]) for r in rows]

    _COLS = "id, target, kind, state, queued_at, started_at, finished_at, summary, error"

    def get(self, run_id: int) -> Run | None:
        rows = self._rows(f"SELECT {self._COLS} FROM runs WHERE id=?", (run_id,))  # noqa: S608 - constant columns
        return rows[0] if rows else None

    def last(self, target: str, kind: str, state: str | None = None) -> Run | None:
        """The newest finished run of ``kind`` for ``target`` (optionally only ``ok`` or ``failed``)."""
        states = (state,) if state else ("ok", "failed")
        marks = ",".join("?" * len(states))
        rows = self._rows(f"SELECT {self._COLS} FROM runs WHERE target=? AND kind=? AND state IN ({marks}) "  # noqa: S608
                          "ORDER BY id DESC LIMIT 1", (target, kind, *states))
        return rows[0] if rows else None

    def recent(self, limit: int = 50, kind: str | None = None) -> list[Run]:
        if kind:
            return self._rows(f"SELECT {self._COLS} FROM runs WHERE kind=? ORDER BY id DESC LIMIT ?",  # noqa: S608
                              (kind, limit))
        return self._rows(f"SELECT {self._COLS} FROM runs ORDER BY id DESC LIMIT ?", (limit,))  # noqa: S608
