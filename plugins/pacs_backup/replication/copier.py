"""Copying one instance: read it from Orthanc, upload it under its key with its sha256, verify, mark it done.

A worker thread hands each claimed instance id to :meth:`Copier.replicate`, which records the outcome
in the outbox (done, retry later, quarantined) and never raises a domain error.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from pacs_backup.clients.object_store import ObjectStore
from pacs_backup.clients.orthanc_source import InstanceUids, OrthancReader
from pacs_backup.clients.store_errors import ChecksumMismatch, KeyExists
from pacs_backup.contracts.errors import BackupError, CorruptInstance, SourceGone, StoreUnavailable
from pacs_backup.contracts.keys import instance_key
from pacs_backup.contracts.retry import RetryPolicy
from pacs_backup.settings.retention import RetentionRule, lock_until
from pacs_backup.state.catalog import Catalog, copy_entry
from pacs_backup.state.manifest import sha256_hex

from .outbox import Outbox
from .status import Clock, EngineStatus

log = logging.getLogger(__name__)

# How many recent uploads decide whether copies are mostly new (upload at once) or mostly there already.
_EXISTING_WINDOW = 20


class Copier:
    """Copies single instances for the worker threads; thread-safe."""

    def __init__(
        self,
        outbox: Outbox,
        reader: OrthancReader,
        store: ObjectStore,
        catalog: Catalog | None,
        status: EngineStatus,
        *,
        prefix: str,
        retry: RetryPolicy,
        budget_bytes: int,
        stop: threading.Event,
        on_store_down: Callable[[str], None],
        clock: Clock,
        retention: RetentionRule | None = None,
    ) -> None:
        self.outbox = outbox
        self.reader = reader
        self.store = store
        self.catalog = catalog
        self._status = status
        self._prefix = prefix
        self._retry = retry
        self._budget_bytes = budget_bytes
        self._stop = stop
        self._on_store_down = on_store_down
        self._clock = clock
        self._retention = retention  # each copy is locked in the store until the rule lets its study go
        self._budget = threading.Condition()
        self._budget_used = 0
        # Uploads "only if absent" spare the look-up before each copy, where the store honours them
        # (set once the bucket is prepared).
        self.conditional_writes = False
        self._found_lock = threading.Lock()
        self._found_existing: deque[bool] = deque(maxlen=_EXISTING_WINDOW)

    def wake(self) -> None:
        """Wake the workers waiting for memory, so that they see a stop."""
        with self._budget:
            self._budget.notify_all()

    def replicate(self, orthanc_id: str) -> None:
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
            self._status.note_error(str(exc))
            return
        except StoreUnavailable as exc:
            # Not the item's fault: keep it due, pause all workers until the store answers again.
            self.outbox.mark_failed(orthanc_id, str(exc), self._clock(), count=False)
            self._on_store_down(str(exc))
            return
        except BackupError as exc:
            self._retry_later(orthanc_id, str(exc))
            return
        except Exception as exc:
            log.exception("unexpected error copying instance %s", orthanc_id)
            self._retry_later(orthanc_id, f"Unexpected error: {exc}")
            return

    def _copy(self, orthanc_id: str, uids: InstanceUids) -> None:
        """Read, upload if needed, verify, and mark done. Raises the domain errors replicate handles."""
        stored = self.reader.read_stored(orthanc_id)
        data = stored.data
        digest = sha256_hex(data)
        key = instance_key(uids.study, uids.series, uids.sop, self._prefix)
        until = self._retain_until(uids)
        if self._upload_if_absent(key, data, digest, orthanc_id, stored.md5, until):
            self._done(orthanc_id, uids, stored.path, key, digest, len(data))
            return
        existing = self.store.stat(key)
        self._note_found(existing is not None)
        if existing is not None and existing.orthanc_id not in (None, orthanc_id) and existing.sha256 != digest:
            # Another Orthanc instance with the same UIDs (different patient id) owns this key:
            # keep both, this one under a key that also names its Orthanc id.
            key = instance_key(uids.study, uids.series, uids.sop, self._prefix, variant=orthanc_id)
            existing = self.store.stat(key)
        if existing is None or existing.sha256 != digest or existing.size != len(data):
            self._put(key, data, digest, orthanc_id, stored.md5, if_absent=False, until=until)
        self._done(orthanc_id, uids, stored.path, key, digest, len(data))

    def _retain_until(self, uids: InstanceUids) -> datetime | None:
        """Until when the store must keep this instance's copy (None: the lock of BACKUP_LOCK_DAYS only)."""
        if self._retention is None or uids.info is None:
            return None
        now = datetime.fromtimestamp(self._clock(), UTC)
        return lock_until(now, self.store.settings.lock_days, self._retention, uids.info.study_date)

    def _put(
        self,
        key: str,
        data: bytes,
        digest: str,
        orthanc_id: str,
        md5: str | None,
        if_absent: bool,
        until: datetime | None = None,
    ) -> None:
        """Upload and verify against Orthanc's own record of the file (``md5``) where it has one; the copy is
        locked until ``until`` (or BACKUP_LOCK_DAYS)."""
        try:
            self.store.put_verified(key, data, digest, orthanc_id, md5=md5, if_absent=if_absent, retain_until=until)
        except ChecksumMismatch:
            if md5 is not None and hashlib.md5(data, usedforsecurity=False).hexdigest() != md5:
                # The store received what was read; the file itself is no longer what Orthanc stored.
                raise CorruptInstance(
                    "The PACS's own file for this image no longer matches the checksum the PACS recorded "
                    "when it received it (damage on the PACS disk?). Its copy holds the file as it is now; "
                    "check the PACS disk, and restore this image from an older backup if it looks wrong."
                ) from None
            raise

    def _upload_if_absent(
        self, key: str, data: bytes, digest: str, orthanc_id: str, md5: str | None, until: datetime | None
    ) -> bool:
        """Upload without a look-up first, if the store allows it and copies are mostly new (not a
        clinic being restored, whose copies all exist). True when the copy was made and verified."""
        with self._found_lock:
            mostly_existing = sum(self._found_existing) * 2 > len(self._found_existing) >= _EXISTING_WINDOW // 2
        if not self.conditional_writes or mostly_existing:
            return False
        try:
            self._put(key, data, digest, orthanc_id, md5, if_absent=True, until=until)
        except KeyExists:
            return False  # the look-up that follows notes it
        self._note_found(False)
        return True

    def _note_found(self, found: bool) -> None:
        with self._found_lock:
            self._found_existing.append(found)

    def _done(self, orthanc_id: str, uids: InstanceUids, path: str, key: str, digest: str, size: int) -> None:
        now = self._clock()
        if self.catalog is not None and uids.info is not None:
            # Catalogued before the queue says done: a crash in between only repeats the (idempotent) copy.
            self.catalog.record(copy_entry(orthanc_id, uids, uids.info, path, key, digest, size), now)
        lag = self.outbox.mark_done(orthanc_id, key, digest, size, now)
        self._status.note_copied(now, lag)

    @contextmanager
    def _memory(self, size: int) -> Iterator[None]:
        """Hold ``size`` bytes of the in-flight budget (one instance larger than it runs alone)."""
        need = min(max(size, 1), self._budget_bytes)
        with self._budget:
            self._budget.wait_for(lambda: self._budget_used + need <= self._budget_bytes or self._stop.is_set())
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
        retry_at = self._clock() + self._retry.delay(attempts)
        self.outbox.mark_failed(orthanc_id, message, retry_at)
        self._status.note_error(f"Instance {orthanc_id}: {message} (attempt {attempts}, retrying)")
