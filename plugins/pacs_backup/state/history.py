"""Run history of snapshots, drills and restores (kept in the outbox database, shown in the status)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pacs_backup.contracts.documents import RunDoc
from pacs_backup.contracts.redact import mask_url_credentials
from pacs_backup.contracts.runs import (
    EndState,
    RestoreSummary,
    RunKind,
    RunState,
    RunSummary,
    run_kind,
    run_state,
    summary_from_json,
    summary_to_json,
)

from .schema import open_plugin_db


@dataclass(frozen=True)
class Run:
    """One recorded run."""

    id: int
    target: str
    kind: RunKind
    state: RunState
    queued_at: float
    started_at: float | None
    finished_at: float | None
    summary: RunSummary | None  # of the run's kind; None: it recorded none
    error: str | None

    def as_dict(self) -> RunDoc:
        """JSON-ready form, with the duration."""
        duration = None
        if self.started_at is not None and self.finished_at is not None:
            duration = round(self.finished_at - self.started_at, 3)
        return RunDoc(
            id=self.id,
            target=self.target,
            kind=self.kind,
            state=self.state,
            queued_at=self.queued_at,
            started_at=self.started_at,
            finished_at=self.finished_at,
            duration_s=duration,
            summary=summary_to_json(self.summary),
            error=self.error,
        )


def _run(row: tuple[Any, ...]) -> Run:
    kind = run_kind(str(row[2]))
    summary = summary_from_json(kind, json.loads(row[7]) if row[7] else None)
    return Run(row[0], row[1], kind, run_state(str(row[3])), row[4], row[5], row[6], summary, row[8])


class RunLog:
    """Thread-safe log of runs."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = open_plugin_db(path)
        # A run left 'running' or 'queued' by a crash did not finish: say so instead of showing it forever.
        self._db.execute(
            "UPDATE runs SET state='failed', error='Interrupted (the appliance restarted).' "
            "WHERE state IN ('running', 'queued')"
        )

    def queue(self, target: str, kind: RunKind, now: float) -> int:
        """Record a requested run; returns its id."""
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO runs (target, kind, state, queued_at) VALUES (?, ?, 'queued', ?)", (target, kind, now)
            )
            return int(cur.lastrowid or 0)

    def start(self, run_id: int, now: float) -> None:
        with self._lock:
            self._db.execute("UPDATE runs SET state='running', started_at=? WHERE id=?", (now, run_id))

    def progress(self, run_id: int, summary: RestoreSummary) -> None:
        """Update the summary of a waiting or running restore (how far it got: ``done`` of ``total``)."""
        with self._lock:
            self._db.execute("UPDATE runs SET summary=? WHERE id=?", (json.dumps(summary.to_json()), run_id))

    def finish(self, run_id: int, now: float, ok: bool, summary: RunSummary | None, error: str | None = None) -> None:
        """Record the end of a run: its summary (None: it recorded none) and, when it failed, why."""
        # restic texts may quote an address with its password
        text = mask_url_credentials(json.dumps(summary_to_json(summary)))
        with self._lock:
            self._db.execute(
                "UPDATE runs SET state=?, finished_at=?, summary=?, error=? WHERE id=?",
                ("ok" if ok else "failed", now, text, mask_url_credentials(error) if error else None, run_id),
            )

    def waiting(self, target: str, kind: RunKind) -> int | None:
        """The id of a run of ``kind`` for ``target`` that is queued and not started yet, if any."""
        with self._lock:
            row = self._db.execute(
                "SELECT id FROM runs WHERE target=? AND kind=? AND state='queued' ORDER BY id LIMIT 1", (target, kind)
            ).fetchone()
        return None if row is None else int(row[0])

    def count_waiting(self, kind: RunKind) -> int:
        """How many runs of ``kind`` are queued or running."""
        with self._lock:
            row = self._db.execute(
                "SELECT COUNT(*) FROM runs WHERE kind=? AND state IN ('queued', 'running')", (kind,)
            ).fetchone()
        return int(row[0])

    def _rows(self, sql: str, args: tuple[Any, ...]) -> list[Run]:
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [_run(r) for r in rows]

    _COLS = "id, target, kind, state, queued_at, started_at, finished_at, summary, error"

    def get(self, run_id: int) -> Run | None:
        rows = self._rows(f"SELECT {self._COLS} FROM runs WHERE id=?", (run_id,))  # noqa: S608 - constant columns
        return rows[0] if rows else None

    def last(self, target: str, kind: RunKind, state: EndState | None = None) -> Run | None:
        """The newest finished run of ``kind`` for ``target`` (optionally only ``ok`` or ``failed``)."""
        states = (state,) if state else ("ok", "failed")
        marks = ",".join("?" * len(states))
        rows = self._rows(
            f"SELECT {self._COLS} FROM runs WHERE target=? AND kind=? AND state IN ({marks}) "  # noqa: S608
            "ORDER BY id DESC LIMIT 1",
            (target, kind, *states),
        )
        return rows[0] if rows else None

    def recent(self, limit: int = 50, kind: RunKind | None = None) -> list[Run]:
        if kind:
            return self._rows(
                f"SELECT {self._COLS} FROM runs WHERE kind=? ORDER BY id DESC LIMIT ?",  # noqa: S608
                (kind, limit),
            )
        return self._rows(f"SELECT {self._COLS} FROM runs ORDER BY id DESC LIMIT ?", (limit,))  # noqa: S608

    def additions(self, target: str) -> list[tuple[float, int]]:
        """``(finished_at, bytes added)`` of every successful snapshot of ``target`` (for its forecast)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT finished_at, json_extract(summary, '$.data_added') FROM runs "
                "WHERE target=? AND kind='snapshot' AND state='ok'",
                (target,),
            ).fetchall()
        return [(float(t or 0), int(b or 0)) for t, b in rows]
