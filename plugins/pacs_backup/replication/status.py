"""The replication part of ``GET /backup/status``: what the engine's threads note, and the document built from it.

Each note is a single assignment or append, so the recorder, the supervisor and the workers note without
taking a lock; :meth:`EngineStatus.document` reads them together with the outbox's counts.
"""

from __future__ import annotations

import statistics
from collections import deque
from collections.abc import Callable
from typing import Any

from pacs_backup.clients.bucket import BucketReport
from pacs_backup.clients.object_store import ObjectStore
from pacs_backup.contracts.documents import ErrorDoc, ReplicationDoc, StoreDoc

from .outbox import OutboxStats

Clock = Callable[[], float]
# How many recent copies the lag percentiles are computed over.
LAG_SAMPLES = 2000


class EngineStatus:
    """The last error, recent copy lags, the bucket's report and the last reconciliation."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self.last_error: ErrorDoc | None = None
        self.last_replicated_at: float | None = None
        self.lags: deque[float] = deque(maxlen=LAG_SAMPLES)
        self.bucket: BucketReport | None = None
        self.refusal: str | None = None  # why copying has not started (the bucket lacks object lock...)
        self.reconcile: dict[str, Any] | None = None

    def note_error(self, message: str) -> None:
        """Keep ``message`` as the last error, with the time it happened."""
        self.last_error = {"message": message, "at": self._clock()}

    def note_copied(self, at: float, lag: float | None) -> None:
        """A copy was verified at ``at``, ``lag`` seconds after the instance arrived (None: not known)."""
        self.last_replicated_at = at
        if lag is not None:
            self.lags.append(lag)

    def document(
        self, stats: OutboxStats, unrecorded: int, store: ObjectStore, reachable: bool, workers: int
    ) -> ReplicationDoc:
        """The replication part of the status (JSON-ready).

        ``unrecorded``: instances received but not yet written to the outbox; ``reachable``: whether the
        workers currently copy (the store answered); ``workers``: how many copy at once.
        """
        lags = sorted(self.lags)
        bucket = self.bucket
        store_doc: StoreDoc = {
            "endpoint": store.settings.endpoint,
            "bucket": store.bucket,
            "reachable": reachable,
            "versioning": None if bucket is None else bucket.versioning,
            "object_lock": None if bucket is None else bucket.object_lock,
            "warnings": [] if bucket is None else list(bucket.warnings),
        }
        if self.refusal is not None:
            store_doc["refused"] = self.refusal
        return {
            "outbox_depth": stats.depth + unrecorded,
            "oldest_pending_age_s": None if (age := stats.oldest_pending_age_s) is None else round(age, 3),
            "replicated": stats.replicated,
            "replicated_bytes": stats.replicated_bytes,
            "failed": stats.failing,
            "quarantined": stats.quarantined,
            "last_error": self.last_error,
            "last_replicated_at": self.last_replicated_at,
            "lag_s": {
                "samples": len(lags),
                "p50": round(statistics.median(lags), 3) if lags else None,
                "p99": round(lags[min(len(lags) - 1, int(0.99 * len(lags)))], 3) if lags else None,
            },
            "store": store_doc,
            "last_reconcile": self.reconcile,
            "workers": workers,
        }
