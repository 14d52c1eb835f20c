"""Is the PACS answering, since when not, and what was the last status it gave.

Every read of ``/backup/status`` (the monitor's, a page's) goes through :class:`StatusKeeper`. While the
PACS answers, the status is kept (in memory and in the mirror file, with its time); once it stops, the
pages show that last status, marked as last known, and the time it stopped ("not answering since 14:02").
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from pacs_backup.contracts.documents import StatusDoc

from .backend_api import BackendApi
from .mirror import Mirror

log = logging.getLogger(__name__)

_SAVE_EVERY_S = 10.0


@dataclass(frozen=True)
class Reading:
    status: StatusDoc | None  # the live status; None when the PACS did not answer
    error: str | None  # why not (for the log and the technician; staff see plain advice)
    at: float  # when this reading was taken
    down_since: float | None  # when the PACS stopped answering (None while it answers)
    last_good: StatusDoc | None  # the newest status it gave
    last_good_at: float | None

    @property
    def down(self) -> bool:
        return self.status is None


class StatusKeeper:
    def __init__(
        self, backend: BackendApi, mirror: Mirror | None = None, clock: Callable[[], float] = time.time
    ) -> None:
        self.backend, self.mirror, self.clock = backend, mirror, clock
        self._lock = threading.Lock()
        self._latest: Reading | None = None
        saved = mirror.get("last_status") if mirror else None
        self._last_good: StatusDoc | None = saved.get("status") if saved else None
        self._last_good_at: float | None = float(saved["at"]) if saved else None
        self._down_since: float | None = mirror.get("down_since") if mirror else None
        self._saved_at = 0.0

    def read(self) -> Reading:
        """Ask the plugin now and remember the answer."""
        status, error = self.backend.status()
        return self.record(status, error)

    def record(self, status: StatusDoc | None, error: str | None, now: float | None = None) -> Reading:
        now = self.clock() if now is None else now
        with self._lock:
            if status is not None:
                was_down = self._down_since is not None
                self._last_good, self._last_good_at, self._down_since = status, now, None
                if self.mirror and (was_down or now - self._saved_at >= _SAVE_EVERY_S):
                    self._saved_at = now
                    self.mirror.put("last_status", {"at": now, "status": status})
                    if was_down:
                        self.mirror.put("down_since", None)
                        log.info("the PACS answers again")
            elif self._down_since is None:
                self._down_since = now
                log.warning("the PACS does not answer: %s", error)
                if self.mirror:
                    self.mirror.put("down_since", now)
            reading = Reading(status, error, now, self._down_since, self._last_good, self._last_good_at)
            self._latest = reading
        return reading

    def latest(self) -> Reading | None:
        with self._lock:
            return self._latest

    def known_down(self, max_age_s: float) -> Reading | None:
        """The latest reading when it is recent and says the PACS is down (pages then skip waiting on it)."""
        latest = self.latest()
        if latest is not None and latest.down and self.clock() - latest.at <= max_age_s:
            return latest
        return None

    def mark_down(self, error: str) -> Reading:
        """A page's request to the PACS failed to connect: record it as a failed reading."""
        return self.record(None, error)
