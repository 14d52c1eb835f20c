"""Sending a study to a referring clinic on request, through a durable queue, verified there.

Staff ask for one study to go to one of the clinics of ``REFERRAL_PEERS``. Every backed-up instance of the
study is queued (``referral_queue`` in the plugin's database) and a sender per clinic - the same sender as
the cloud PACS copy's (:class:`~pacs_backup.replication.cloud_pacs.CloudSender`), with the same adapters
per protocol - sends it, then asks the clinic which instances it holds; only those are marked verified.
A clinic that cannot be reached pauses its sending; nothing is dropped, and the request says so.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypedDict

from pacs_backup.contracts.documents import CloudQueueDoc
from pacs_backup.contracts.errors import NotFound
from pacs_backup.settings.referral_peers import ReferralPeer
from pacs_backup.state.schema import open_plugin_db

from .cloud_pacs import BATCH, CloudSender, Pending, queue_doc

ReferralState = Literal["sending", "verified", "failing"]

_COLUMNS = "orthanc_id, study_uid, sop_uid, object_key, sha256, attempts"


class ReferralDoc(TypedDict):
    """One study asked to go to one clinic, and how far it got."""

    peer: str
    study_uid: str
    requested_by: str
    requested_at: float
    instances: int
    verified: int
    state: ReferralState
    last_error: str | None
    verified_at: float | None


class ReferralQueue:
    """The queue of one referring clinic. Thread-safe; satisfies the cloud PACS sender's queue role."""

    def __init__(self, path: Path, peer: str) -> None:
        self.peer = peer
        self._lock = threading.Lock()
        self._db = open_plugin_db(path)

    def request(self, study_uid: str, user: str, now: float) -> int:
        """Queue every backed-up instance of the study (again: a study sent before is sent and checked anew).

        Raises:
            NotFound: the backups hold no instance of the study.
        """
        with self._lock:
            rows = self._db.execute(
                "SELECT orthanc_id, sop_uid, object_key, sha256 FROM catalog WHERE study_uid = ?", (study_uid,)
            ).fetchall()
            if not rows:
                raise NotFound(f"Study {study_uid} is not in the backups, so it cannot be sent.")
            self._db.executemany(
                "INSERT INTO referral_queue (peer, orthanc_id, study_uid, sop_uid, object_key, sha256, state, "
                "requested_by, enqueued_at, next_attempt_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?) "
                "ON CONFLICT (peer, orthanc_id) DO UPDATE SET state='pending', requested_by=excluded.requested_by, "
                "enqueued_at=excluded.enqueued_at, next_attempt_at=excluded.next_attempt_at, attempts=0, "
                "last_error=NULL, verified_at=NULL, sha256=excluded.sha256, object_key=excluded.object_key",
                [(self.peer, r[0], study_uid, r[1], r[2], r[3], user, now, now) for r in rows],
            )
        return len(rows)

    def fill(self, now: float) -> int:
        """Nothing to add by itself: a referral queue is filled only on request."""
        return 0

    def due(self, now: float) -> list[Pending]:
        """Due instances of one study (the one waiting longest), at most ``BATCH``."""
        with self._lock:
            first = self._db.execute(
                "SELECT study_uid FROM referral_queue WHERE peer=? AND state='pending' AND next_attempt_at <= ? "
                "ORDER BY next_attempt_at LIMIT 1",
                (self.peer, now),
            ).fetchone()
            if first is None:
                return []
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM referral_queue WHERE peer=? AND state='pending' "  # noqa: S608 - our columns
                "AND next_attempt_at <= ? AND study_uid = ? ORDER BY enqueued_at LIMIT ?",
                (self.peer, now, first[0], BATCH),
            ).fetchall()
        return [Pending(*r) for r in rows]

    def verified(self, ids: list[str], now: float) -> list[float]:
        """Mark verified; returns each one's wait since it was queued."""
        with self._lock:
            marks = ",".join("?" * len(ids))
            lags = [
                now - float(r[0])
                for r in self._db.execute(
                    f"SELECT enqueued_at FROM referral_queue WHERE peer=? AND orthanc_id IN ({marks})",  # noqa: S608
                    [self.peer, *ids],
                ).fetchall()
            ]
            self._db.executemany(
                "UPDATE referral_queue SET state='verified', verified_at=?, last_error=NULL "
                "WHERE peer=? AND orthanc_id=?",
                [(now, self.peer, i) for i in ids],
            )
        return lags

    def failed(self, items: list[Pending], error: str, retry_at: float, count: bool = True) -> None:
        with self._lock:
            self._db.executemany(
                "UPDATE referral_queue SET attempts = attempts + ?, last_error=?, next_attempt_at=? "
                "WHERE peer=? AND orthanc_id=?",
                [(1 if count else 0, error, retry_at, self.peer, p.orthanc_id) for p in items],
            )

    def stats(self, now: float) -> CloudQueueDoc:
        with self._lock:
            counts = dict(
                self._db.execute(
                    "SELECT state, COUNT(*) FROM referral_queue WHERE peer=? GROUP BY state", (self.peer,)
                ).fetchall()
            )
            oldest, failing = self._db.execute(
                "SELECT MIN(enqueued_at), SUM(attempts > 0) FROM referral_queue WHERE peer=? AND state='pending'",
                (self.peer,),
            ).fetchone()
        return queue_doc(counts, oldest, failing, now)

    def study_items(self, study_uid: str) -> list[Pending]:
        """Every queued instance of a study, sent or not."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_COLUMNS} FROM referral_queue WHERE peer=? AND study_uid=? "  # noqa: S608 - our columns
                "ORDER BY enqueued_at",
                (self.peer, study_uid),
            ).fetchall()
        return [Pending(*r) for r in rows]

    def requests(self, study_uid: str | None = None, limit: int = 200) -> list[ReferralDoc]:
        """The studies asked to go to this clinic, newest request first (one study, or all)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT study_uid, MAX(requested_by), MAX(enqueued_at), COUNT(*), SUM(state='verified'), "
                "SUM(state='pending' AND attempts > 0), MAX(last_error), MAX(verified_at) FROM referral_queue "
                "WHERE peer=? AND (?='' OR study_uid=?) GROUP BY study_uid ORDER BY MAX(enqueued_at) DESC LIMIT ?",
                (self.peer, study_uid or "", study_uid or "", limit),
            ).fetchall()
        docs: list[ReferralDoc] = []
        for study, user, at, total, verified, failing, error, verified_at in rows:
            state: ReferralState = "verified" if verified == total else "failing" if failing else "sending"
            docs.append(
                ReferralDoc(
                    peer=self.peer,
                    study_uid=study,
                    requested_by=user,
                    requested_at=float(at),
                    instances=int(total),
                    verified=int(verified or 0),
                    state=state,
                    last_error=None if state == "verified" else error,
                    verified_at=float(verified_at) if verified_at is not None and state == "verified" else None,
                )
            )
        return docs


@dataclass(frozen=True)
class Referral:
    """One referring clinic as the engine runs it: its settings, its queue and its sender."""

    peer: ReferralPeer
    queue: ReferralQueue
    sender: CloudSender
