"""Servers stopped after a test without holding up the next one.

A clean stop of Orthanc takes about 3.5 s (its HTTP and DICOM servers wait out their poll intervals), all of
it idle waiting; the test has asserted everything by then. Fixtures hand such stops here: each runs in its
own thread (SIGTERM, a clean exit or SIGKILL after its timeout, as before), and the session waits for all of
them at its end, so no server outlives the run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

_pending: list[threading.Thread] = []


def stop_later(stop: Callable[[], None]) -> None:
    """Run ``stop`` in the background; :func:`wait_for_stops` waits for it."""
    thread = threading.Thread(target=stop, name="stop-server", daemon=True)
    thread.start()
    _pending.append(thread)


def wait_for_stops(timeout_s: float = 120.0) -> None:
    """Wait for every stop handed to :func:`stop_later` (each has its own SIGKILL deadline)."""
    while _pending:
        _pending.pop().join(timeout_s)
