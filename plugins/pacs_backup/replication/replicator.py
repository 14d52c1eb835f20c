"""The replication engine: outbox -> worker threads -> verified copy in the object store.

Flow: :meth:`Replicator.on_new_instance` (called from Orthanc's change callback) only puts the id on
an in-memory queue and returns. The recorder thread writes queued ids to the durable outbox in
batches. Worker threads claim due rows, read the instance from Orthanc, upload it under its key with
its sha256, verify, and mark it done. A supervisor thread prepares the bucket, reconciles the outbox
with Orthanc's content at start (and periodically), and watches the store while it is unreachable so
that workers pause instead of burning through the queue.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from pacs_backup.clients.object_store import BucketReport, ChecksumMismatch, KeyExists, ObjectStore
from pacs_backup.clients.orthanc_source import InstanceUids, OrthancReader
from pacs_backup.contracts.documents import ErrorDoc, ReplicationDoc
from pacs_backup.contracts.errors import BackupError, CorruptInstance, SourceGone, StoreUnavailable
from pacs_backup.contracts.keys import instance_key
from pacs_backup.contracts.retry import RetryPolicy
from pacs_backup.state.catalog import Catalog, copy_entry
from pacs_backup.state.manifest import sha256_hex

from .outbox import Outbox

log = logging.getLogger(__name__)

Clock = Callable[[], float]
# The outbox's setting holding the last sequence number of Orthanc's change log already reconciled.
CHANGES_CURSOR = "changes_cursor"
# How many recent uploads decide whether copies are mostly new (upload at once) or mostly there already.
_EXISTING_WINDOW = 20


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
        self._inbox: queue.SimpleQueue[tuple[str, float]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._store_ok = threading.Event()
        self._work = threading.Condition()
        self._inflight: set[str] = set()
        self._claim_lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._lags: deque[float] = deque(maxlen=2000)
        self._last_error: ErrorDoc | None = None
        self._last_replicated_at: float | None = None
        self._bucket: BucketReport | None = None
        self._reconcile: dict[str, Any] | None = None
        self._unrecorded = 0  # ids received but not yet written to the outbox
        self._budget = threading.Condition()
        self._budget_used = 0
        # Uploads "only if absent" spare the look-up before each copy, where the store honours them.
        self._conditional = False
        self._found_existing: deque[bool] = deque(maxlen=_EXISTING_WINDOW)

    # --- called from Orthanc's callback thread: must never block or raise -----------------------
    def on_new_instance(self, orthanc_id: str) -> None:
        """Note that Orthanc stored ``orthanc_id``. Returns at once; never raises."""
        self._inbox.put((orthanc_id, self._clock()))

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Start the recorder, supervisor and worker threads."""
        specs: list[tuple[str, Callable[[], None]]] = [
            ("recorder", self._record_loop),
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
        with self._budget:
            self._budget.notify_all()
        with self._work:
            self._work.notify_all()
        deadline = time.monotonic() + timeout_s
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._flush_inbox()

    def _guard(self, target: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            while not self._stop.is_set():
                try:
                    target()
                    return
                except Exception as exc:
                    log.exception("backup thread failed; restarting it in 1 s")
                    self._note_error(f"Internal error in the backup engine: {exc}")
                    self._stop.wait(1.0)

        return run

    # --- recorder -------------------------------------------------------------------------------
    def _record_loop(self) -> None:
        while not self._stop.is_set():
            try:
                first = self._inbox.get(timeout=0.5)
            except queue.Empty:
                continue
            self._write_batch([first])

    def _write_batch(self, batch: list[tuple[str, float]]) -> None:
        while len(batch) < 1000:
            try:
                batch.append(self._inbox.get_nowait())
            except queue.Empty:
                break
        self._unrecorded = len(batch)
        while True:
            try:
                self.outbox.enqueue(batch)
                break
            except Exception as exc:  # noqa: BLE001 - e.g. disk full: keep the batch in memory and retry
                self._note_error(
                    f"Cannot write the backup queue ({exc}); keeping {len(batch)} new instances in "
                    "memory and retrying. Free space on the Orthanc data volume."
                )
                if self._stop.wait(1.0):
                    return
        self._unrecorded = 0
        with self._work:
            self._work.notify_all()

    def _flush_inbox(self) -> None:
        batch: list[tuple[str, float]] = []
        while True:
            try:
                batch.append(self._inbox.get_nowait())
            except queue.Empty:
                break
        if batch:
            try:
                self.outbox.enqueue(batch)
            except Exception:
                log.exception("could not record %d instances at shutdown; they will be found at start", len(batch))

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
                self._replicate(orthanc_id)
            finally:
                with self._claim_lock:
                    self._inflight.discard(orthanc_id)

    def _idle_wait(self) -> None:
        nxt = self.outbox.next_due_at()
        wait = 1.0 if nxt is None else min(1.0, max(0.01, nxt - self._clock()))
        with self._work:
            self._work.wait(wait)

    def _replicate(self, orthanc_id: str) -> None:
        """Copy one instance; record the outcome in the outbox. Never raises a BackupError."""
        try:
            uids = self.reader.uids(orthanc_id)
            with self._memory(uids.size):
                self._copy(orthanc_id, uids)
        except SourceGone:
            self.outbox.quarantine(orthanc_id, "Deleted from Orthanc before it could be copied.")
            return
        except CorruptInstance as exc:
            self.outbox.quarantine(orthanc_id, str(exc))
            self._note_error(str(exc))
            return
        except StoreUnavailable as exc:
            # Not the item's fault: keep it due, pause all workers until the store answers again.
            self.outbox.mark_failed(orthanc_id, str(exc), self._clock(), count=False)
            self._store_down(str(exc))
            return
        except BackupError as exc:
            self._retry_later(orthanc_id, str(exc))
            return
        except Exception as exc:
            log.exception("unexpected error copying instance %s", orthanc_id)
            self._retry_later(orthanc_id, f"Unexpected error: {exc}")
            return

    def _copy(self, orthanc_id: str, uids: InstanceUids) -> None:
        """Read, upload if needed, verify, and mark done. Raises the domain errors _replicate handles."""
        stored = self.reader.read_stored(orthanc_id)
        data = stored.data
        digest = sha256_hex(data)
        key = instance_key(uids.study, uids.series, uids.sop, self.options.prefix)
        if self._upload_if_absent(key, data, digest, orthanc_id, stored.md5):
            self._done(orthanc_id, uids, stored.path, key, digest, len(data))
            return
        existing = self.store.stat(key)
        self._note_found(existing is not None)
        if existing is not None and existing.orthanc_id not in (None, orthanc_id) and existing.sha256 != digest:
            # Another Orthanc instance with the same UIDs (different patient id) owns this key:
            # keep both, this one under a key that also names its Orthanc id.
            key = instance_key(uids.study, uids.series, uids.sop, self.options.prefix, variant=orthanc_id)
            existing = self.store.stat(key)
        if existing is None or existing.sha256 != digest or existing.size != len(data):
            self._put(key, data, digest, orthanc_id, stored.md5, if_absent=False)
        self._done(orthanc_id, uids, stored.path, key, digest, len(data))

    def _put(self, key: str, data: bytes, digest: str, orthanc_id: str, md5: str | None, if_absent: bool) -> None:
        """Upload and verify against Orthanc's own record of the file (``md5``) where it has one."""
        try:
            self.store.put_verified(key, data, digest, orthanc_id, md5=md5, if_absent=if_absent)
        except ChecksumMismatch:
            if md5 is not None and hashlib.md5(data, usedforsecurity=False).hexdigest() != md5:
                # The store received what was read; the file itself is no longer what Orthanc stored.
                raise CorruptInstance(
                    "The PACS's own file for this image no longer matches the checksum the PACS recorded "
                    "when it received it (damage on the PACS disk?). Its copy holds the file as it is now; "
                    "check the PACS disk, and restore this image from an older backup if it looks wrong."
                ) from None
            raise

    def _upload_if_absent(self, key: str, data: bytes, digest: str, orthanc_id: str, md5: str | None) -> bool:
        """Upload without a look-up first, if the store allows it and copies are mostly new (not a
        clinic being restored, whose copies all exist). True when the copy was made and verified."""
        with self._claim_lock:
            mostly_existing = sum(self._found_existing) * 2 > len(self._found_existing) >= _EXISTING_WINDOW // 2
        if not self._conditional or mostly_existing:
            return False
        try:
            self._put(key, data, digest, orthanc_id, md5, if_absent=True)
        except KeyExists:
            return False  # the look-up that follows notes it
        self._note_found(False)
        return True

    def _note_found(self, found: bool) -> None:
        with self._claim_lock:
            self._found_existing.append(found)

    def _done(self, orthanc_id: str, uids: InstanceUids, path: str, key: str, digest: str, size: int) -> None:
        now = self._clock()
        if self.catalog is not None and uids.info is not None:
            # Catalogued before the queue says done: a crash in between only repeats the (idempotent) copy.
            self.catalog.record(copy_entry(orthanc_id, uids, uids.info, path, key, digest, size), now)
        lag = self.outbox.mark_done(orthanc_id, key, digest, size, now)
        self._last_replicated_at = now
        if lag is not None:
            self._lags.append(lag)

    @contextmanager
    def _memory(self, size: int) -> Iterator[None]:
        """Hold ``size`` bytes of the in-flight budget (one instance larger than it runs alone)."""
        need = min(max(size, 1), self.options.inflight_budget_bytes)
        with self._budget:
            self._budget.wait_for(
                lambda: self._budget_used + need <= self.options.inflight_budget_bytes or self._stop.is_set()
            )
            self._budget_used += need
        try:
            yield
        finally:
            with self._budget:
                self._budget_used -= need
                self._budget.notify_all()

    def _retry_later(self, orthanc_id: str, message: str) -> None:
        entry = self.outbox.entry(orthanc_id)
        attempts = int(entry["attempts"]) + 1 if entry else 1  # type: ignore[call-overload]
        retry_at = self._clock() + self.options.retry.delay(attempts)
        self.outbox.mark_failed(orthanc_id, message, retry_at)
        self._note_error(f"Instance {orthanc_id}: {message} (attempt {attempts}, retrying)")

    # --- supervisor -----------------------------------------------------------------------------
    def _store_down(self, message: str) -> None:
        if self._store_ok.is_set():
            log.warning("object store unavailable, pausing copies: %s", message)
        self._store_ok.clear()
        self._note_error(message)

    def _supervise_loop(self) -> None:
        # Reconcile first: it needs only Orthanc, and fills the queue even while the store is down.
        self._run_reconcile(full=False)
        self._prepare_bucket()
        next_full = time.monotonic() + self.options.reconcile_every_s
        next_changes = time.monotonic() + self.options.changes_every_s
        while not self._stop.is_set():
            if not self._store_ok.is_set():
                self._probe_store()
            elif self.options.reconcile_every_s > 0 and time.monotonic() >= next_full:
                self._run_reconcile(full=True, pause_s=self.options.reconcile_pause_s)
                next_full = time.monotonic() + self.options.reconcile_every_s
            elif time.monotonic() >= next_changes:
                self._run_reconcile(full=False)
                next_changes = time.monotonic() + self.options.changes_every_s
            self._stop.wait(1.0)

    def _prepare_bucket(self) -> None:
        attempt = 0
        while not self._stop.is_set():
            attempt += 1
            try:
                self._bucket = self.store.ensure_bucket()
            except BackupError as exc:
                self._note_error(f"Object store not ready: {exc}")
                self._stop.wait(min(self.options.store_probe_cap_s, 0.5 * 2**attempt))
                continue
            for w in self._bucket.warnings:
                log.warning("%s", w)
            self._conditional = self.store.check_conditional_writes()
            self._store_ok.set()
            return

    def _probe_store(self) -> None:
        delay = 0.5
        while not self._stop.is_set():
            try:
                self.store.ping()
            except BackupError as exc:
                self._note_error(str(exc))
                self._stop.wait(delay)
                delay = min(self.options.store_probe_cap_s, delay * 2)
                continue
            log.warning("object store reachable again, resuming copies")
            self._store_ok.set()
            with self._work:
                self._work.notify_all()
            return

    def _run_reconcile(self, *, full: bool, pause_s: float = 0.0) -> None:
        """Queue every instance Orthanc holds that the outbox has never seen.

        Normally by following Orthanc's change log from the saved cursor (cost: the changes since, not
        the archive); by the full listing when there is no cursor yet, when the log has a gap or was
        reset (another Orthanc database), or when ``full`` (the weekly comparison).
        """
        started = self._clock()
        try:
            cursor = self.outbox.get_meta(CHANGES_CURSOR)
            followed = None if full or cursor is None else self._follow_changes(int(cursor))
            if followed is None:
                mode, last = "full", self.reader.last_change()  # changes from now on are read next time
                seen, queued = self._reconcile_listing(pause_s)
            else:
                mode, (seen, queued, last) = "changes", followed
            self.outbox.set_meta(CHANGES_CURSOR, str(last))
        except BackupError as exc:
            self._note_error(f"Reconciliation with Orthanc failed, will try again later: {exc}")
            return
        self._reconcile = {
            "at": started,
            "mode": mode,
            "instances_seen": seen,
            "queued": queued,
            "duration_s": round(self._clock() - started, 3),
        }
        if queued:
            log.warning("reconciliation (%s) queued %d instances that were not yet backed up", mode, queued)
            with self._work:
                self._work.notify_all()

    def _follow_changes(self, cursor: int) -> tuple[int, int, int] | None:
        """(new instances seen, queued, new cursor), or None when only a full listing can tell."""
        seen = queued = 0
        while not self._stop.is_set():
            page = self.reader.changes(cursor, self.options.reconcile_page)
            if page.last < cursor or (page.first_seq is not None and page.first_seq > cursor + 1):
                log.warning("Orthanc's change log was reset or trimmed after %d: comparing the whole listing", cursor)
                return None
            gone = set(page.deleted_instances)
            new = [i for i in page.new_instances if i not in gone]
            seen += len(new)
            queued += self.outbox.enqueue_missing(new, self._clock()) if new else 0
            cursor = max(cursor, page.last)
            if page.done:
                break
        return seen, queued, cursor

    def _reconcile_listing(self, pause_s: float) -> tuple[int, int]:
        since = queued = 0
        while not self._stop.is_set():
            ids = self.reader.list_instances(since, self.options.reconcile_page)
            if not ids:
                break
            queued += self.outbox.enqueue_missing(ids, self._clock())
            since += len(ids)
            if pause_s:
                self._stop.wait(pause_s)
        return since, queued

    # --- status ---------------------------------------------------------------------------------
    def _note_error(self, message: str) -> None:
        self._last_error = {"message": message, "at": self._clock()}

    def status(self) -> ReplicationDoc:
        """Return the replication part of ``GET /backup/status`` (JSON-ready)."""
        now = self._clock()
        st = self.outbox.stats(now)
        lags = sorted(self._lags)
        pending_unrecorded = self._inbox.qsize() + self._unrecorded
        bucket = self._bucket
        return {
            "outbox_depth": st.depth + pending_unrecorded,
            "oldest_pending_age_s": None if st.oldest_pending_age_s is None else round(st.oldest_pending_age_s, 3),
            "replicated": st.replicated,
            "replicated_bytes": st.replicated_bytes,
            "failed": st.failing,
            "quarantined": st.quarantined,
            "last_error": self._last_error,
            "last_replicated_at": self._last_replicated_at,
            "lag_s": {
                "samples": len(lags),
                "p50": round(statistics.median(lags), 3) if lags else None,
                "p99": round(lags[min(len(lags) - 1, int(0.99 * len(lags)))], 3) if lags else None,
            },
            "store": {
                "endpoint": self.store.settings.endpoint,
                "bucket": self.store.bucket,
                "reachable": self._store_ok.is_set(),
                "versioning": None if bucket is None else bucket.versioning,
                "object_lock": None if bucket is None else bucket.object_lock,
                "warnings": [] if bucket is None else list(bucket.warnings),
            },
            "last_reconcile": self._reconcile,
            "workers": self.options.workers,
        }
