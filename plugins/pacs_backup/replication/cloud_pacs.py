"""The cloud PACS copy: every backed-up instance is also sent to a remote PACS and verified there.

A durable queue (``cloud_queue`` in the plugin's database) is filled from the catalog, so whatever
was copied - also before the cloud PACS was configured, and across restarts - is sent. One thread
sends a study's due instances together, then asks the remote which of them it holds; only those are
marked verified. A remote that cannot be reached pauses the sending without counting against any
image; a refusal backs off. Nothing is dropped.

The remote is reached through one adapter per protocol, both satisfying :class:`CloudPacs`:
:class:`~pacs_backup.replication.dicomweb.DicomWeb` (STOW-RS, QIDO-RS, WADO-RS) and
:class:`~pacs_backup.replication.dimse_peer.DimsePeer` (C-STORE, C-FIND, C-MOVE through Orthanc's own DICOM client).
"""

from __future__ import annotations

import logging
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pacs_backup.clients.object_store import ObjectStore
from pacs_backup.clients.orthanc_source import OrthancReader
from pacs_backup.contracts.documents import CloudDoc, CloudQueueDoc, ErrorDoc, LagDoc
from pacs_backup.contracts.errors import BackupError, CloudRefused, CloudUnavailable
from pacs_backup.contracts.retry import RetryPolicy
from pacs_backup.settings.bandwidth import UNLIMITED, BandwidthSchedule
from pacs_backup.state.manifest import sha256_hex
from pacs_backup.state.schema import open_plugin_db

if TYPE_CHECKING:
    from pacs_backup.restore.uploads import OrthancTarget, Progress, RestoreReport

log = logging.getLogger(__name__)

BATCH = 20


@dataclass(frozen=True)
class Pending:
    orthanc_id: str
    study_uid: str
    sop_uid: str
    key: str
    sha256: str
    attempts: int


@dataclass(frozen=True)
class Outgoing:
    """One instance to send: the exact bytes that were backed up, and the PACS's id of the instance when
    the PACS still holds exactly these bytes (None: they were read from the bucket)."""

    orthanc_id: str | None
    data: bytes
    key: str = ""  # where the bucket keeps it, and its sha256 (for a remote that stores by key)
    sha256: str = ""


@dataclass(frozen=True)
class SentStudy:
    """What was sent of one study, to check what comes back: the sha256 of each file, and (read on
    demand, one file at a time) ``{SOPInstanceUID: the bytes that were sent}``."""

    shas: set[str]
    originals: Callable[[], dict[str, Callable[[], bytes]]]


class CloudPacs(Protocol):
    """A remote PACS the cloud PACS queue sends to, one adapter per protocol.

    Errors: :class:`CloudUnavailable` when the remote cannot be reached (not counted against an
    image), :class:`CloudRefused` (or another :class:`BackupError`) when it answered no.
    """

    @property
    def shown(self) -> str:
        """The remote as shown to people (no password)."""
        ...

    def send(self, items: Sequence[Outgoing]) -> None:
        """Send instances of one study."""
        ...

    def instances_of(self, study_uid: str) -> set[str]:
        """The SOPInstanceUIDs the remote holds for a study (empty when it has none)."""
        ...

    def restore(
        self, study_uid: str, orthanc: OrthancTarget, sent: SentStudy, progress: Progress | None = None
    ) -> RestoreReport:
        """Bring a study back into the local PACS, each instance checked against what was sent."""
        ...


def queue_doc(counts: dict[str, int], oldest: float | None, failing: int | None, now: float) -> CloudQueueDoc:
    """A queue's figures from its counts by state, its oldest pending time and how many are failing."""
    return {
        "depth": int(counts.get("pending", 0)),
        "verified": int(counts.get("verified", 0)),
        "failing": int(failing or 0),
        "oldest_pending_age_s": None if oldest is None else round(max(0.0, now - float(oldest)), 1),
    }


class SendQueue(Protocol):
    """A durable queue the sender empties: the cloud PACS copy's, or a referring clinic's."""

    def fill(self, now: float) -> int: ...

    def due(self, now: float) -> list[Pending]: ...

    def verified(self, ids: list[str], now: float) -> list[float]: ...

    def failed(self, items: list[Pending], error: str, retry_at: float, count: bool = True) -> None: ...

    def stats(self, now: float) -> CloudQueueDoc: ...

    def study_items(self, study_uid: str) -> list[Pending]: ...


class CloudQueue:
    """The queue of instances to send to the cloud PACS. Thread-safe. ``TABLE``: the queue's table (a queue
    of the same shape, such as the group copy's, reuses the methods)."""

    TABLE = "cloud_queue"

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = open_plugin_db(path)
        self._watermark = -1.0  # catalog rows added after this are looked for by fill()

    def fill(self, now: float) -> int:
        """Queue every catalogued copy not queued yet. Returns how many were added."""
        with self._lock:
            before = self._db.total_changes
            self._db.execute(
                "INSERT OR IGNORE INTO cloud_queue (orthanc_id, study_uid, sop_uid, object_key, sha256, state, "
                "enqueued_at, next_attempt_at) SELECT orthanc_id, study_uid, sop_uid, object_key, sha256, 'pending', "
                "?, ? FROM catalog WHERE added_at > ?",
                (now, now, self._watermark),
            )
            self._watermark = float(self._db.execute("SELECT COALESCE(MAX(added_at), -1) FROM catalog").fetchone()[0])
            return self._db.total_changes - before

    def due(self, now: float) -> list[Pending]:
        """Due instances of one study (the one waiting longest), at most ``BATCH``."""
        with self._lock:
            first = self._db.execute(
                f"SELECT study_uid FROM {self.TABLE} WHERE state='pending' AND next_attempt_at <= ? "  # noqa: S608
                "ORDER BY next_attempt_at LIMIT 1",
                (now,),
            ).fetchone()
            if first is None:
                return []
            rows = self._db.execute(
                f"SELECT orthanc_id, study_uid, sop_uid, object_key, sha256, attempts FROM {self.TABLE} "  # noqa: S608
                "WHERE state='pending' AND next_attempt_at <= ? AND study_uid = ? ORDER BY enqueued_at LIMIT ?",
                (now, first[0], BATCH),
            ).fetchall()
        return [Pending(*r) for r in rows]

    def verified(self, ids: list[str], now: float) -> list[float]:
        """Mark verified; returns each one's wait since it was queued (the copy's lag)."""
        with self._lock:
            lags = [
                now - float(r[0])
                for r in self._db.execute(
                    f"SELECT enqueued_at FROM {self.TABLE} WHERE orthanc_id IN ({','.join('?' * len(ids))})",  # noqa: S608
                    ids,
                ).fetchall()
            ]
            self._db.executemany(
                f"UPDATE {self.TABLE} SET state='verified', verified_at=?, last_error=NULL "  # noqa: S608
                "WHERE orthanc_id=?",
                [(now, i) for i in ids],
            )
        return lags

    def failed(self, items: list[Pending], error: str, retry_at: float, count: bool = True) -> None:
        with self._lock:
            self._db.executemany(
                f"UPDATE {self.TABLE} SET attempts = attempts + ?, last_error=?, next_attempt_at=? "  # noqa: S608
                "WHERE orthanc_id=?",
                [(1 if count else 0, error, retry_at, p.orthanc_id) for p in items],
            )

    def stats(self, now: float) -> CloudQueueDoc:
        with self._lock:
            counts = dict(
                self._db.execute(f"SELECT state, COUNT(*) FROM {self.TABLE} GROUP BY state").fetchall()  # noqa: S608
            )
            oldest, failing = self._db.execute(
                f"SELECT MIN(enqueued_at), SUM(attempts > 0) FROM {self.TABLE} WHERE state='pending'"  # noqa: S608
            ).fetchone()
        return queue_doc(counts, oldest, failing, now)

    def study_shas(self, study_uid: str) -> set[str]:
        """The sha256 of every instance of a study that was sent (to check what comes back)."""
        return {p.sha256 for p in self.study_items(study_uid)}

    def study_items(self, study_uid: str) -> list[Pending]:
        """Every queued instance of a study, sent or not."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT orthanc_id, study_uid, sop_uid, object_key, sha256, attempts FROM {self.TABLE} "  # noqa: S608
                "WHERE study_uid=? ORDER BY enqueued_at",
                (study_uid,),
            ).fetchall()
        return [Pending(*r) for r in rows]


class CloudSender:
    """The thread that sends a queue to a remote PACS (the cloud PACS, a referring clinic) and verifies
    every instance there. ``remote`` names it in sentences."""

    def __init__(
        self,
        queue: SendQueue,
        client: CloudPacs,
        reader: OrthancReader,
        store: ObjectStore | None,
        retry: RetryPolicy | None = None,
        clock: Any = time.time,
        upload: BandwidthSchedule | Callable[[], BandwidthSchedule] | None = None,
        remote: str = "the cloud PACS",
    ) -> None:
        self.queue, self.client, self.reader, self.store = queue, client, reader, store
        self.remote = remote
        # outside its window nothing is sent (the client paces the rest); a function: the timetable in force,
        # which may change in the dashboard while the sender runs (settings/upload_overrides.py)
        fixed = UNLIMITED if upload is None or callable(upload) else upload
        self._upload: Callable[[], BandwidthSchedule] = upload if callable(upload) else (lambda: fixed)
        self.retry = retry or RetryPolicy(1.0, 300.0)
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.reachable: bool | None = None
        self.unreachable_since: float | None = None
        self.last_error: ErrorDoc | None = None
        self._lags: deque[float] = deque(maxlen=1000)

    def start(self) -> None:
        name = "pacs-backup-cloud-pacs" if self.remote == "the cloud PACS" else "pacs-backup-referral"
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout_s)

    def _loop(self) -> None:
        next_fill, pause = 0.0, 0.5
        while not self._stop.is_set():
            try:
                now = self._clock()
                if now >= next_fill:
                    self.queue.fill(now)
                    next_fill = now + 2.0
                held = self.held_until()
                if held is not None:  # outside the upload window: wait for it (and for a stop)
                    self._stop.wait(min(60.0, max(1.0, held - now)))
                    continue
                batch = self.queue.due(now)
                if not batch:
                    self._idle(now)
                    self._stop.wait(1.0)
                    continue
                if self._send(batch):
                    pause = 0.5
                else:
                    self._stop.wait(pause)
                    pause = min(pause * 2, 30.0)
            except Exception as exc:  # keep the thread alive; the traceback goes to the log
                log.exception("sender to %s failed; retrying", self.remote)
                self.last_error = {"message": f"Internal error sending to {self.remote}: {exc}", "at": self._clock()}
                self._stop.wait(2.0)

    @property
    def upload(self) -> BandwidthSchedule:
        """The upload timetable in force now."""
        return self._upload()

    def held_until(self) -> float | None:
        """When the upload window opens again, while sending waits for it; None while it may send."""
        opens = self.upload.next_window(datetime.fromtimestamp(self._clock()))
        return None if opens is None else opens.timestamp()

    def _load(self, p: Pending) -> Outgoing:
        """The exact bytes that were backed up: from the PACS when it still has them, else the bucket."""
        try:
            data = self.reader.read_file(p.orthanc_id)
            if sha256_hex(data) == p.sha256:
                return Outgoing(p.orthanc_id, data, p.key, p.sha256)
        except BackupError:
            pass
        if self.store is None:
            raise BackupError("The instance is no longer in the PACS and no bucket is configured.")
        data = self.store.get(p.key)
        if sha256_hex(data) != p.sha256:
            raise BackupError(f"The bucket copy of {p.key} differs from what was backed up.")
        return Outgoing(None, data, p.key, p.sha256)

    def restore(self, study_uid: str, orthanc: OrthancTarget, progress: Progress | None = None) -> RestoreReport:
        """Bring a study back from the cloud PACS into the local PACS, checked against what was sent."""
        items = self.queue.study_items(study_uid)
        originals = {p.sop_uid: self._reader_of(p) for p in items}
        sent = SentStudy({p.sha256 for p in items}, lambda: originals)
        return self.client.restore(study_uid, orthanc, sent, progress)

    def _reader_of(self, p: Pending) -> Callable[[], bytes]:
        return lambda: self._load(p).data

    def _send(self, batch: list[Pending]) -> bool:
        """Send and verify one batch. Returns False when the remote could not be reached."""
        now = self._clock()
        try:
            present = self._deliver(batch)
        except CloudUnavailable as exc:
            if self.reachable is not False:
                log.warning("%s unavailable, pausing: %s", self.remote, exc)
                self.unreachable_since = now
            self.reachable = False
            self.last_error = {"message": str(exc), "at": now}
            self.queue.failed(batch, str(exc), now, count=False)
            return False
        except BackupError as exc:
            if isinstance(exc, CloudRefused):
                self.reachable = True  # it answered; the refusal is retried with backoff
            self.last_error = {"message": str(exc), "at": now}
            self.queue.failed(batch, str(exc), now + self.retry.delay(batch[0].attempts + 1))
            return True
        self.reachable, self.unreachable_since = True, None
        done = [p.orthanc_id for p in batch if p.sop_uid in present]
        missing = [p for p in batch if p.sop_uid not in present]
        if done:
            self._lags.extend(self.queue.verified(done, self._clock()))
        if missing:
            msg = f"{len(missing)} instance(s) sent but not found by {self.remote}'s search; sending again."
            self.last_error = {"message": msg, "at": now}
            self.queue.failed(missing, msg, now + self.retry.delay(missing[0].attempts + 1))
        return True

    def _deliver(self, batch: list[Pending]) -> set[str]:
        """Send one batch of one study; returns the SOPInstanceUIDs the remote holds of that study."""
        self.client.send([self._load(p) for p in batch])
        return self.client.instances_of(batch[0].study_uid)

    def _idle(self, now: float) -> None:
        """Called when nothing is due (a sender with its own periodic work overrides it)."""

    def lag(self) -> LagDoc:
        """The recent copies' wait from queued to verified."""
        lags = sorted(self._lags)
        return {
            "p50": round(statistics.median(lags), 3) if lags else None,
            "p99": round(lags[min(len(lags) - 1, int(0.99 * len(lags)))], 3) if lags else None,
        }

    def status(self) -> CloudDoc:
        stats = self.queue.stats(self._clock())
        doc: CloudDoc = {
            "url": self.client.shown,
            "reachable": self.reachable,
            "unreachable_since": self.unreachable_since,
            "depth": stats["depth"],
            "verified": stats["verified"],
            "failing": stats["failing"],
            "oldest_pending_age_s": stats["oldest_pending_age_s"],
            "last_error": self.last_error,
            "lag_s": self.lag(),
        }
        if not self.upload.unlimited:
            doc["window"], doc["next_window"] = self.upload.rule, self.held_until()
        return doc
