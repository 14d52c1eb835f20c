"""The replication engine: outbox -> worker threads -> verified copy in the object store.

Flow: :meth:`Replicator.on_new_instance` (called from Orthanc's change callback) only puts the id on
an in-memory queue and returns. The recorder thread (:mod:`.recorder`) writes queued ids to the durable
outbox in batches. Worker threads claim due rows and copy each instance (:mod:`.copier`): read it from
Orthanc, upload it under its key with its sha256, verify, and mark it done. A supervisor thread prepares
the bucket, reconciles the outbox with Orthanc's content at start and periodically (:mod:`.reconcile`),
and watches the store while it is unreachable so that workers pause instead of burning through the
queue. What they note makes the status (:mod:`.status`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pacs_backup.clients.bucket import BucketNotImmutable
from pacs_backup.clients.object_store import ObjectStore
from pacs_backup.clients.orthanc_source import OrthancReader
from pacs_backup.contracts.documents import ReplicationDoc
from pacs_backup.contracts.errors import BackupError
from pacs_backup.contracts.retry import RetryPolicy
from pacs_backup.settings.retention import RetentionRule
from pacs_backup.state.catalog import Catalog

from .copier import Copier
from .outbox import Outbox
from .reconcile import Reconciler
from .recorder import Recorder
from .status import Clock, EngineStatus

log = logging.getLogger(__name__)
# How often a bucket refused for lacking object lock or versioning is checked again (fixed by a person).
REFUSED_RECHECK_S = 30.0


@dataclass(frozen=True)
class ReplicatorOptions:
    """Tuning of the engine (from :class:`~pacs_backup.settings.config.Settings`)."""

    workers: int = 4
    prefix: str = ""
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # A full comparison of Orthanc's listing with the queue, this often (0 = only when there is no
    # change-log cursor yet). Between them the plugin follows Orthanc's change log, whose cost does not
    # grow with the archive.
    reconcile_every_s: float = 7 * 24 * 3600.0
    changes_every_s: float = 60.0
    store_probe_cap_s: float = 2.0
    reconcile_page: int = 1000
    # Pause between pages of a scheduled full comparison, so it never competes with ingest.
    reconcile_pause_s: float = 0.05
    # Bytes of instance data held in memory at once by all workers together. Large radiographs then
    # wait for each other instead of multiplying the plugin's memory inside Orthanc.
    inflight_budget_bytes: int = 24 * 1024 * 1024
    # The retention rule: each copy is locked in the store until its study may be deleted (None: the
    # lock of BACKUP_LOCK_DAYS only).
    retention: RetentionRule | None = None


class Replicator:
    """Copies every instance Orthanc stores to the object store, durably and verifiably."""

    def __init__(
        self,
        outbox: Outbox,
        reader: OrthancReader,
        store: ObjectStore,
        options: ReplicatorOptions | None = None,
        clock: Clock = time.time,
        catalog: Catalog | None = None,
    ) -> None:
        self.outbox = outbox
        self.catalog = catalog
        self.reader = reader
        self.store = store
        self.options = options or ReplicatorOptions()
        self._clock = clock
        self._stop = threading.Event()
        self._store_ok = threading.Event()
        self._work = threading.Condition()  # workers wait on it for due rows
        self._inflight: set[str] = set()
        self._claim_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._notes = EngineStatus(clock)
        self._recorder = Recorder(outbox, self._notes, self._stop, self._wake_workers, clock)
        self._copier = Copier(
            outbox,
            reader,
            store,
            catalog,
            self._notes,
            prefix=self.options.prefix,
            retry=self.options.retry,
            budget_bytes=self.options.inflight_budget_bytes,
            stop=self._stop,
            on_store_down=self._store_down,
            clock=clock,
            retention=self.options.retention,
        )
        self._reconciler = Reconciler(
            outbox,
            reader,
            self._notes,
            page=self.options.reconcile_page,
            stop=self._stop,
            wake_workers=self._wake_workers,
            clock=clock,
        )

    # --- called from Orthanc's callback thread: must never block or raise -----------------------
    def on_new_instance(self, orthanc_id: str) -> None:
        """Note that Orthanc stored ``orthanc_id``. Returns at once; never raises."""
        self._recorder.put(orthanc_id)

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the recorder, supervisor and worker threads."""
        specs: list[tuple[str, Callable[[], None]]] = [
            ("recorder", self._recorder.run),
            ("supervisor", self._supervise_loop),
        ]
        specs += [(f"worker-{i}", self._work_loop) for i in range(self.options.workers)]
        for name, target in specs:
            t = threading.Thread(target=self._guard(target), name=f"pacs-backup-{name}", daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Ask every thread to finish and wait up to ``timeout_s``. Unfinished work stays pending."""
        self._stop.set()
        self._store_ok.set()  # wake paused workers so they see the stop
        self._copier.wake()
        self._wake_workers()
        deadline = time.monotonic() + timeout_s
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._recorder.flush()

    def _guard(self, target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            while not self._stop.is_set():
                try:
                    target()
                    return
                except Exception as exc:
                    log.exception("backup thread failed; restarting it in 1 s")
                    self._notes.note_error(f"Internal error in the backup engine: {exc}")
                    self._stop.wait(1.0)

        return run

    def _wake_workers(self) -> None:
        with self._work:
            self._work.notify_all()

    # --- workers --------------------------------------------------------------------------------
    def _claim(self) -> str | None:
        with self._claim_lock:
            ids = self.outbox.due(self._clock(), 1, self._inflight)
            if not ids:
                return None
            self._inflight.add(ids[0])
            return ids[0]

    def _work_loop(self) -> None:
        while not self._stop.is_set():
            if not self._store_ok.is_set():
                self._store_ok.wait(1.0)
                continue
            orthanc_id = self._claim()
            if orthanc_id is None:
                self._idle_wait()
                continue
            try:
                self._copier.replicate(orthanc_id)
            finally:
                with self._claim_lock:
                    self._inflight.discard(orthanc_id)

    def _idle_wait(self) -> None:
        nxt = self.outbox.next_due_at()
        wait = 1.0 if nxt is None else min(1.0, max(0.01, nxt - self._clock()))
        with self._work:
            self._work.wait(wait)

    # --- supervisor -----------------------------------------------------------------------------
    def _store_down(self, message: str) -> None:
        if self._store_ok.is_set():
            log.warning("object store unavailable, pausing copies: %s", message)
        self._store_ok.clear()
        self._notes.note_error(message)

    def _supervise_loop(self) -> None:
        # Reconcile first: it needs only Orthanc, and fills the queue even while the store is down.
        self._reconciler.run(full=False)
        self._prepare_bucket()
        next_full = time.monotonic() + self.options.reconcile_every_s
        next_changes = time.monotonic() + self.options.changes_every_s
        while not self._stop.is_set():
            if not self._store_ok.is_set():
                self._probe_store()
            elif self.options.reconcile_every_s > 0 and time.monotonic() >= next_full:
                self._reconciler.run(full=True, pause_s=self.options.reconcile_pause_s)
                next_full = time.monotonic() + self.options.reconcile_every_s
            elif time.monotonic() >= next_changes:
                self._reconciler.run(full=False)
                next_changes = time.monotonic() + self.options.changes_every_s
            self._stop.wait(1.0)

    def _prepare_bucket(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            attempt += 1
            try:
                bucket = self.store.ensure_bucket()
            except BucketNotImmutable as exc:
                # Refused, not an outage: nothing is copied until the bucket or the setting is changed.
                if self._notes.refusal != str(exc):
                    log.error("%s", exc)
                self._notes.refusal = str(exc)
                self._notes.note_error(str(exc))
                self._stop.wait(REFUSED_RECHECK_S)
                continue
            except BackupError as exc:
                self._notes.note_error(f"Object store not ready: {exc}")
                self._stop.wait(min(self.options.store_probe_cap_s, 0.5 * 2**attempt))
                continue
            self._notes.refusal = None
            self._notes.bucket = bucket
            for w in bucket.warnings:
                log.warning("%s", w)
            self._copier.conditional_writes = self.store.check_conditional_writes()
            self._store_ok.set()
            return

    def _probe_store(self) -> None:
        delay = 0.5
        while not self._stop.is_set():
            try:
                self.store.ping()
            except BackupError as exc:
                self._notes.note_error(str(exc))
                self._stop.wait(delay)
                delay = min(self.options.store_probe_cap_s, delay * 2)
                continue
            log.warning("object store reachable again, resuming copies")
            self._store_ok.set()
            self._wake_workers()
            return

    # --- status ---------------------------------------------------------------------------------
    def status(self) -> ReplicationDoc:
        """Return the replication part of ``GET /backup/status`` (JSON-ready)."""
        return self._notes.document(
            self.outbox.stats(self._clock()),
            self._recorder.pending,
            self.store,
            self._store_ok.is_set(),
            self.options.workers,
        )
