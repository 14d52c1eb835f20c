"""Durable outbox of instances to copy: SQLite in WAL mode on the Orthanc data volume.

One row per Orthanc instance id. States: ``pending`` (to copy, possibly retrying), ``done`` (copy
verified in the object store) and ``quarantined`` (cannot be copied; reason kept, never dropped).
A row is only ever removed by an explicit technician action, never by the engine.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from pacs_backup.state.schema import open_plugin_db


@dataclass(frozen=True)
class OutboxStats:
    """Counts for ``GET /backup/status``."""

    depth: int  # pending rows
    oldest_pending_age_s: float | None
    replicated: int
    replicated_bytes: int
    failing: int  # pending rows whose last attempt failed
    quarantined: int


class Outbox:
    """Thread-safe access to the outbox database. All methods may be called from any thread."""

    def __init__(self, path: Path) -> None:
        """Open (and create if needed) the outbox at ``path``.

        Raises:
            sqlite3.Error: the file cannot be opened or is not an outbox database.
        """
        self._lock = threading.Lock()
        self._db = open_plugin_db(path)
        # NORMAL is durable against a process crash (kill -9) in WAL mode; after a power cut the
        # start-up reconciliation re-queues anything the last transactions may have missed.
        self._db.execute("PRAGMA synchronous=NORMAL")

    def close(self) -> None:
        """Close the database; further calls fail."""
        with self._lock:
            self._db.close()

    def enqueue(self, items: Iterable[tuple[str, float]]) -> None:
        """Record instances to copy, as ``(orthanc_id, seen_at)``.

        A row already pending is left as it is; a done or quarantined row becomes pending again (the
        instance was stored again). One transaction for the whole batch.
        """
        rows = [(oid, t, t) for oid, t in items]
        if not rows:
            return
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT INTO outbox (orthanc_id, state, enqueued_at, next_attempt_at) VALUES (?, 'pending', ?, ?) "
                    "ON CONFLICT (orthanc_id) DO UPDATE SET state='pending', attempts=0, last_error=NULL, "
                    "enqueued_at=excluded.enqueued_at, next_attempt_at=excluded.next_attempt_at "
                    "WHERE state != 'pending'",
                    rows,
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def enqueue_missing(self, ids: Sequence[str], now: float) -> int:
        """Queue the ids the outbox has never seen (start-up reconciliation). Returns how many."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                # rowcount counts the rows this statement inserted (not those the totals trigger touched)
                added = self._db.executemany(
                    "INSERT OR IGNORE INTO outbox (orthanc_id, state, enqueued_at, next_attempt_at) "
                    "VALUES (?, 'pending', ?, ?)",
                    [(oid, now, now) for oid in ids],
                ).rowcount
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            return max(0, added)

    def get_meta(self, key: str) -> str | None:
        """A small setting the engine keeps across restarts (e.g. the change-log cursor)."""
        with self._lock:
            row = self._db.execute("SELECT value FROM engine_state WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO engine_state (key, value) VALUES (?, ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def due(self, now: float, limit: int, exclude: set[str]) -> list[str]:
        """Return up to ``limit`` pending ids whose next attempt is due, oldest first, not in ``exclude``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT orthanc_id FROM outbox WHERE state='pending' AND next_attempt_at <= ? "
                "ORDER BY next_attempt_at LIMIT ?",
                (now, limit + len(exclude)),
            ).fetchall()
        return [r[0] for r in rows if r[0] not in exclude][:limit]

    def next_due_at(self) -> float | None:
        """Return the earliest ``next_attempt_at`` of a pending row, or None when nothing is pending."""
        with self._lock:
            row = self._db.execute("SELECT MIN(next_attempt_at) FROM outbox WHERE state='pending'").fetchone()
        return None if row[0] is None else float(row[0])

    def mark_done(self, orthanc_id: str, key: str, sha256: str, size: int, now: float) -> float | None:
        """Record a verified copy. Returns the seconds since the instance was seen (replication lag)."""
        with self._lock:
            row = self._db.execute(
                "UPDATE outbox SET state='done', object_key=?, sha256=?, size=?, done_at=?, last_error=NULL "
                "WHERE orthanc_id=? AND state='pending' RETURNING enqueued_at",
                (key, sha256, size, now, orthanc_id),
            ).fetchone()
        return None if row is None else now - float(row[0])

    def mark_failed(self, orthanc_id: str, error: str, retry_at: float, count: bool = True) -> int:
        """Keep the row pending with ``error``; try again at ``retry_at``. Returns the attempt count."""
        with self._lock:
            row = self._db.execute(
                "UPDATE outbox SET attempts = attempts + ?, last_error=?, next_attempt_at=? "
                "WHERE orthanc_id=? AND state='pending' RETURNING attempts",
                (1 if count else 0, error, retry_at, orthanc_id),
            ).fetchone()
        return 0 if row is None else int(row[0])

    def quarantine(self, orthanc_id: str, reason: str) -> None:
        """Set the row aside with ``reason``; it is kept and shown, not retried."""
        with self._lock:
            self._db.execute(
                "UPDATE outbox SET state='quarantined', last_error=?, attempts = attempts + 1 WHERE orthanc_id=?",
                (reason, orthanc_id),
            )

    def requeue_quarantined(self, now: float) -> int:
        """Make every quarantined row pending again (a technician fixed the cause). Returns how many."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE outbox SET state='pending', attempts=0, next_attempt_at=? WHERE state='quarantined'", (now,)
            )
            return cur.rowcount

    def quarantined(self, limit: int = 100) -> list[tuple[str, str]]:
        """Return ``(orthanc_id, reason)`` of quarantined rows."""
        with self._lock:
            rows = self._db.execute(
                "SELECT orthanc_id, COALESCE(last_error, '') FROM outbox WHERE state='quarantined' LIMIT ?", (limit,)
            ).fetchall()
        return [(r[0], r[1]) for r in rows]

    def entry(self, orthanc_id: str) -> dict[str, object] | None:
        """Return one row as a dict, or None."""
        with self._lock:
            cur = self._db.execute("SELECT * FROM outbox WHERE orthanc_id=?", (orthanc_id,))
            row = cur.fetchone()
            names = [d[0] for d in cur.description]
        return None if row is None else dict(zip(names, row, strict=True))

    def stats(self, now: float) -> OutboxStats:
        """Return the counts shown in the status."""
        with self._lock:
            totals = {
                r[0]: (int(r[1]), int(r[2]))
                for r in self._db.execute("SELECT state, n, bytes FROM outbox_totals").fetchall()
            }
            oldest, failing = self._db.execute(
                "SELECT MIN(enqueued_at), SUM(attempts > 0) FROM outbox WHERE state='pending'"
            ).fetchone()
        rows = {state: n for state, (n, _) in totals.items()}
        size = totals.get("done", (0, 0))[1]
        return OutboxStats(
            depth=int(rows.get("pending", 0)),
            oldest_pending_age_s=None if oldest is None else max(0.0, now - float(oldest)),
            replicated=int(rows.get("done", 0)),
            replicated_bytes=int(size),
            failing=int(failing or 0),
            quarantined=int(rows.get("quarantined", 0)),
        )
