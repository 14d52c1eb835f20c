"""Recording new instances: ids from Orthanc's callback wait in memory, one thread writes them to the outbox.

Orthanc's change callback must never block or raise, so :meth:`Recorder.put` only appends to an
in-memory queue. The recorder thread writes what arrived to the durable outbox in batches; when it
cannot (e.g. the data volume is full) it keeps the batch in memory, says why, and tries again.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable

from .outbox import Outbox
from .status import Clock, EngineStatus

log = logging.getLogger(__name__)

# The most ids written to the outbox in one transaction.
BATCH = 1000


class Recorder:
    """Moves instance ids from Orthanc's callback thread to the durable outbox, in batches."""

    def __init__(
        self,
        outbox: Outbox,
        status: EngineStatus,
        stop: threading.Event,
        wake_workers: Callable[[], None],
        clock: Clock,
    ) -> None:
        self.outbox = outbox
        self._status = status
        self._stop = stop
        self._wake_workers = wake_workers
        self._clock = clock
        self._inbox: queue.SimpleQueue[tuple[str, float]] = queue.SimpleQueue()
        self._unrecorded = 0  # ids taken from the inbox but not yet written to the outbox

    def put(self, orthanc_id: str) -> None:
        """Note that Orthanc stored ``orthanc_id``. Returns at once; never raises."""
        self._inbox.put((orthanc_id, self._clock()))

    @property
    def pending(self) -> int:
        """How many received ids are not yet in the outbox."""
        return self._inbox.qsize() + self._unrecorded

    def run(self) -> None:
        """The recorder thread: write each arrival, with whatever arrived alongside, until stopped."""
        while not self._stop.is_set():
            try:
                first = self._inbox.get(timeout=0.5)
            except queue.Empty:
                continue
            self._write_batch([first])

    def _write_batch(self, batch: list[tuple[str, float]]) -> None:
        while len(batch) < BATCH:
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
                self._status.note_error(
                    f"Cannot write the backup queue ({exc}); keeping {len(batch)} new instances in "
                    "memory and retrying. Free space on the Orthanc data volume."
                )
                if self._stop.wait(1.0):
                    return
        self._unrecorded = 0
        self._wake_workers()

    def flush(self) -> None:
        """Write what is still in memory (at shutdown); what cannot be written is found at the next start."""
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
