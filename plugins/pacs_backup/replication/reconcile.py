"""Reconciliation: queue every instance Orthanc holds that the outbox has never seen.

It runs at start (so instances stored while the plugin was down are copied), then follows Orthanc's change
log (every minute by default) and compares Orthanc's whole listing with the queue (weekly by default); see
:class:`~pacs_backup.replication.replicator.ReplicatorOptions`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from pacs_backup.clients.orthanc_source import OrthancReader
from pacs_backup.contracts.errors import BackupError

from .outbox import Outbox
from .status import Clock, EngineStatus

log = logging.getLogger(__name__)

# The outbox's setting holding the last sequence number of Orthanc's change log already reconciled.
CHANGES_CURSOR = "changes_cursor"


class Reconciler:
    """Compares Orthanc's content with the outbox and queues what is missing."""

    def __init__(
        self,
        outbox: Outbox,
        reader: OrthancReader,
        status: EngineStatus,
        *,
        page: int,
        stop: threading.Event,
        wake_workers: Callable[[], None],
        clock: Clock,
    ) -> None:
        self.outbox = outbox
        self.reader = reader
        self._status = status
        self._page = page
        self._stop = stop
        self._wake_workers = wake_workers
        self._clock = clock

    def run(self, *, full: bool, pause_s: float = 0.0) -> None:
        """Queue every instance Orthanc holds that the outbox has never seen.

        Normally by following Orthanc's change log from the saved cursor (cost: the changes since, not
        the archive); by the full listing when there is no cursor yet, when the log has a gap or was
        reset (another Orthanc database), or when ``full`` (the weekly comparison). ``pause_s``: the
        pause between pages of a full listing, so it never competes with ingest.
        """
        started = self._clock()
        try:
            cursor = self.outbox.get_meta(CHANGES_CURSOR)
            followed = None if full or cursor is None else self._follow_changes(int(cursor))
            if followed is None:
                mode, last = "full", self.reader.last_change()  # changes from now on are read next time
                seen, queued = self._compare_listing(pause_s)
            else:
                mode, (seen, queued, last) = "changes", followed
            self.outbox.set_meta(CHANGES_CURSOR, str(last))
        except BackupError as exc:
            self._status.note_error(f"Reconciliation with Orthanc failed, will try again later: {exc}")
            return
        self._status.reconcile = {
            "at": started,
            "mode": mode,
            "instances_seen": seen,
            "queued": queued,
            "duration_s": round(self._clock() - started, 3),
        }
        if queued:
            log.warning("reconciliation (%s) queued %d instances that were not yet backed up", mode, queued)
            self._wake_workers()

    def _follow_changes(self, cursor: int) -> tuple[int, int, int] | None:
        """(new instances seen, queued, new cursor), or None when only a full listing can tell."""
        seen = queued = 0
        while not self._stop.is_set():
            page = self.reader.changes(cursor, self._page)
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

    def _compare_listing(self, pause_s: float) -> tuple[int, int]:
        """(instances listed, queued), reading Orthanc's whole listing page by page."""
        since = queued = 0
        while not self._stop.is_set():
            ids = self.reader.list_instances(since, self._page)
            if not ids:
                break
            queued += self.outbox.enqueue_missing(ids, self._clock())
            since += len(ids)
            if pause_s:
                self._stop.wait(pause_s)
        return since, queued
