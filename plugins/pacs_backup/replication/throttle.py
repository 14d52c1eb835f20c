"""Pacing the cloud PACS's uploads to the clinic's upload timetable (``CLOUD_PACS_UPLOAD_LIMIT``).

A token bucket: :meth:`Throttle.take` returns once ``n`` bytes may be sent at the rate in force, so a
caller that sends in small chunks (:func:`paced`, the DICOMweb STOW body) keeps to the rate within one
request, and one that sends a batch at once (C-STORE through Orthanc) keeps to it across batches. A
short burst (``burst_s`` seconds of the rate) is let through at once. The rate is read from the
timetable at every call, so a limit that ends at 18:00 ends in the middle of a study too; outside the
window (rate 0) the sender does not start a batch, and one already going finishes at the slowest rate.
The clock and the sleep are given, so the arithmetic is tested without waiting.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime

from pacs_backup.settings.bandwidth import UNLIMITED, BandwidthSchedule

CHUNK = 64 * 1024


class Throttle:
    """A token bucket whose rate follows a :class:`BandwidthSchedule`. Thread-safe."""

    def __init__(
        self,
        schedule: BandwidthSchedule | Callable[[], BandwidthSchedule],
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        local: Callable[[], datetime] = datetime.now,
        burst_s: float = 0.25,
    ) -> None:
        # a timetable, or where to ask the one in force (it may change in the dashboard while running)
        fixed = UNLIMITED if callable(schedule) else schedule
        self._schedule: Callable[[], BandwidthSchedule] = schedule if callable(schedule) else (lambda: fixed)
        self._clock, self._sleep, self._local = clock, sleep, local
        self._burst_s = burst_s
        self._lock = threading.Lock()
        self._next = -1e18  # when the bucket is empty again: the next byte may leave then

    @property
    def schedule(self) -> BandwidthSchedule:
        """The timetable in force now."""
        return self._schedule()

    def rate(self) -> int | None:
        """Bytes per second a transfer may use now (None: unlimited)."""
        return self.schedule.run_limit(self._local())

    def take(self, n: int) -> float:
        """Wait until ``n`` more bytes may be sent; returns the seconds waited."""
        rate = self.rate()
        if rate is None or n <= 0:
            return 0.0
        with self._lock:
            now = self._clock()
            self._next = max(self._next, now) + n / rate  # when what was taken is paid off
            wait = self._next - now - self._burst_s  # a debt of up to burst_s is let through at once
        if wait > 0:
            self._sleep(wait)
            return wait
        return 0.0


def paced(body: bytes, throttle: Throttle | None, chunk: int = CHUNK) -> Iterator[bytes]:
    """``body`` in chunks, each one let through by ``throttle`` (all at once without one)."""
    if throttle is None:
        yield body
        return
    view = memoryview(body)
    for start in range(0, len(body), chunk):
        part = view[start : start + chunk]
        throttle.take(len(part))
        yield bytes(part)
