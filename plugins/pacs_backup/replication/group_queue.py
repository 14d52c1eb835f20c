"""The group copy's durable queue (``group_queue``), and the rows it hands to the catalog feed (``group_feed``).

The queue has the cloud PACS queue's shape and methods (:class:`~.cloud_pacs.CloudQueue`); it is filled
from the catalog, so whatever was copied before the clinic joined its group is sent too. Each row keeps
the key the instance has in the group store (``<clinic-id>/dicom/...``: the local key below the local
prefix) and the sha256 recorded when it was copied: the group store's drill compares with that.
When an instance is verified there, its catalog row is put in ``group_feed`` right after, for
:mod:`.group_feed` to deliver to the group service (a row lost between the two, by a crash, is found
by the group service's reconcile against the group store).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

from pacs_backup.state.manifest import ENTRY_FIELDS, ManifestEntry

from .cloud_pacs import CloudQueue, Pending

# The catalog's columns as a manifest line has them, with the group key and the sha256 the queue recorded.
_FROM_QUEUE = {"orthanc_id": "g.orthanc_id", "key": "g.object_key", "sha256": "g.sha256"}
_ENTRY_SQL = ", ".join(_FROM_QUEUE.get(n, f"c.{n}") for n in ENTRY_FIELDS)


def group_key(local_key: str, local_prefix: str, clinic: str) -> str:
    """The key of an instance in the group store: its local key below the local prefix, under ``<clinic>/``."""
    head = local_prefix.strip("/")
    below = local_key[len(head) + 1 :] if head and local_key.startswith(head + "/") else local_key
    return f"{clinic}/{below}"


class GroupQueue(CloudQueue):
    """The queue of instances to copy to the group store. Thread-safe; satisfies ``cloud_pacs.SendQueue``."""

    TABLE = "group_queue"

    def __init__(self, path: Path, clinic: str, local_prefix: str = "", feed: bool = False) -> None:
        super().__init__(path)
        self.clinic = clinic
        self.local_prefix = local_prefix.strip("/")
        self.feed = feed  # put verified rows in group_feed (a group service is configured)
        self._db.create_function("group_key", 1, self._key, deterministic=True)

    def _key(self, local_key: str) -> str:
        return group_key(local_key, self.local_prefix, self.clinic)

    def fill(self, now: float) -> int:
        """Queue every catalogued copy not queued yet, and again one whose bytes changed since it was sent
        (an instance copied anew). Returns how many rows were added or queued again."""
        with self._lock:
            before = self._db.total_changes
            self._db.execute(
                "INSERT INTO group_queue (orthanc_id, study_uid, sop_uid, object_key, sha256, state, enqueued_at, "
                "next_attempt_at) SELECT orthanc_id, study_uid, sop_uid, group_key(object_key), sha256, 'pending', "
                "?, ? FROM catalog WHERE added_at > ? AND object_key <> '' "
                "ON CONFLICT (orthanc_id) DO UPDATE SET state='pending', object_key=excluded.object_key, "
                "sha256=excluded.sha256, study_uid=excluded.study_uid, sop_uid=excluded.sop_uid, attempts=0, "
                "enqueued_at=excluded.enqueued_at, next_attempt_at=excluded.next_attempt_at, verified_at=NULL "
                "WHERE group_queue.sha256 <> excluded.sha256 OR group_queue.object_key <> excluded.object_key",
                (now, now, self._watermark),
            )
            self._watermark = float(self._db.execute("SELECT COALESCE(MAX(added_at), -1) FROM catalog").fetchone()[0])
            return self._db.total_changes - before

    def study_date(self, p: Pending) -> str:
        """The study date (DICOM ``YYYYMMDD``) the catalog holds for a queued instance; "" when not known."""
        with self._lock:
            row = self._db.execute("SELECT study_date FROM catalog WHERE orthanc_id = ?", (p.orthanc_id,)).fetchone()
        return str(row[0] or "") if row else ""

    def verified(self, ids: list[str], now: float) -> list[float]:
        """Mark verified (and, with a group service, queue their catalog rows for it). Returns the lags."""
        lags = super().verified(ids, now)
        if self.feed and ids:
            entries = [json.dumps(e, ensure_ascii=False) for e in self._feed_entries(ids, now)]
            with self._lock:
                self._db.executemany(
                    "INSERT INTO group_feed (entry, queued_at, next_attempt_at) VALUES (?, ?, ?)",
                    [(e, now, now) for e in entries],
                )
        return lags

    def _feed_entries(self, ids: list[str], now: float) -> list[dict[str, Any]]:
        """The catalog rows of ``ids`` as the group service takes them: the manifest line (group key), the
        copies that hold it and when it was verified in the group store."""
        marks = ",".join("?" * len(ids))
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_ENTRY_SQL}, EXISTS (SELECT 1 FROM cloud_queue q WHERE q.orthanc_id = g.orthanc_id "  # noqa: S608
                f"AND q.state = 'verified') FROM group_queue g JOIN catalog c ON c.orthanc_id = g.orthanc_id "
                f"WHERE g.orthanc_id IN ({marks})",
                ids,
            ).fetchall()
            studies = {str(r[1]) for r in rows}
            held: dict[str, list[str]] = {}
            in_studies = ",".join("?" * len(studies))
            for study, target in self._db.execute(
                f"SELECT DISTINCT study_uid, target FROM snapshot_studies WHERE study_uid IN ({in_studies})",  # noqa: S608
                sorted(studies),
            ).fetchall():
                held.setdefault(study, []).append(str(target))
        out: list[dict[str, Any]] = []
        for r in rows:
            entry: dict[str, Any] = dict(zip(ENTRY_FIELDS, r[:-1], strict=True))
            copies = ["bucket", "group", *(["cloud-pacs"] if r[-1] else []), *sorted(held.get(str(r[1]), []))]
            out.append({**entry, "copies": copies, "verified_at": now})
        return out

    def entries(self) -> Iterator[ManifestEntry]:
        """Every instance verified in the group store, as a manifest line with its group key."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_ENTRY_SQL} FROM group_queue g JOIN catalog c ON c.orthanc_id = g.orthanc_id "  # noqa: S608
                "WHERE g.state = 'verified' ORDER BY c.study_uid, c.series_uid, c.sop_uid"
            ).fetchall()
        for r in rows:
            yield cast(ManifestEntry, dict(zip(ENTRY_FIELDS, r, strict=True)))

    def sample(self, n: int, rng: random.Random | None = None) -> list[ManifestEntry]:
        """``n`` random instances verified in the group store, always including the newest one."""
        rng = rng or random.Random()  # noqa: S311 - sampling, not security
        base = (
            f"SELECT {_ENTRY_SQL} FROM group_queue g JOIN catalog c ON c.orthanc_id = g.orthanc_id "  # noqa: S608
            "WHERE g.state = 'verified'"
        )
        with self._lock:
            rows = self._db.execute(base + " ORDER BY g.verified_at DESC LIMIT 1").fetchall()
            count = self._db.execute("SELECT COUNT(*) FROM group_queue WHERE state = 'verified'").fetchone()[0]
            for offset in sorted(rng.sample(range(count), min(n, count))) if count else []:
                rows += self._db.execute(base + " ORDER BY g.rowid LIMIT 1 OFFSET ?", (offset,)).fetchall()
        seen: dict[str, ManifestEntry] = {}
        for r in rows:
            seen.setdefault(str(r[0]), cast(ManifestEntry, dict(zip(ENTRY_FIELDS, r, strict=True))))
        return list(seen.values())[: max(n, 1)]

    def last_verified_at(self) -> float | None:
        """When an instance was last verified in the group store (None: never)."""
        with self._lock:
            row = self._db.execute("SELECT MAX(verified_at) FROM group_queue").fetchone()
        return None if row[0] is None else float(row[0])
