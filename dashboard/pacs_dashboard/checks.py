"""Checking a study that is already in the PACS against its backup, instead of restoring it again: the
dashboard's one job runner of its own.

Each check is a thread of this process that fetches every image of the study from the PACS and compares its
SHA-256 with the one the backup recorded. Checks are quick to run again, so they are kept in memory only
(the last 50) and forgotten when the dashboard restarts; everything that changes the PACS or the copies is
the plugin's (its runs), never the dashboard's.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import Literal, TypedDict

from pacs_backup.state.manifest import ManifestEntry

from .backend_api import BackendApi

log = logging.getLogger(__name__)

KEPT = 50  # checks remembered; older ones are forgotten

Outcome = Literal["identical", "missing", "different"]


class CheckJob(TypedDict):
    id: int
    study_uid: str
    state: str  # running, ok or failed
    total: int
    done: int
    identical: int
    missing: int
    different: int
    user: str | None
    error: str | None


class CheckWords(CheckJob):
    """A check as its page says it."""

    headline: str
    detail: str
    restore: bool  # whether the page offers to restore the study


class Checks:
    """Checks running or done in this process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[int, CheckJob] = {}
        self._next = 1

    def start(self, backend: BackendApi, study_uid: str, entries: list[ManifestEntry], user: str | None) -> int:
        """Start checking ``entries`` (the study's catalogued images) in a thread; the check's id."""
        with self._lock:
            cid = self._next
            self._next += 1
            self._jobs[cid] = CheckJob(
                id=cid,
                study_uid=study_uid,
                state="running",
                total=len(entries),
                done=0,
                identical=0,
                missing=0,
                different=0,
                user=user,
                error=None,
            )
            for old in sorted(self._jobs)[:-KEPT]:
                del self._jobs[old]
        threading.Thread(target=self._run, args=(cid, backend, entries), name=f"pacs-check-{cid}", daemon=True).start()
        return cid

    def _run(self, cid: int, backend: BackendApi, entries: list[ManifestEntry]) -> None:
        job = self._jobs[cid]
        try:
            for e in entries:
                data = backend.instance_file(str(e.get("orthanc_id") or ""))
                outcome: Outcome = (
                    "missing"
                    if data is None
                    else "identical"
                    if hashlib.sha256(data).hexdigest() == e.get("sha256")
                    else "different"
                )
                with self._lock:
                    job[outcome] += 1
                    job["done"] += 1
            job["state"] = "ok"
        except Exception as exc:  # noqa: BLE001 - shown on the page as a sentence; the trace goes to the log
            log.warning("checking study %s against its backup failed: %s", job["study_uid"], exc)
            job["state"], job["error"] = "failed", "The PACS stopped answering during the check. Try again later."

    def get(self, cid: int) -> CheckJob | None:
        with self._lock:
            job = self._jobs.get(cid)
            return CheckJob(**job) if job else None


def check_words(job: CheckJob) -> CheckWords:
    """The headline and detail of a check, and whether to offer a restore."""
    total, done = job["total"], job["done"]
    if job["state"] == "running":
        return CheckWords(**job, headline=f"Checking: {done} of {total} images", detail="", restore=False)
    if job["state"] == "failed":
        return CheckWords(**job, headline="The check did not complete.", detail=job["error"] or "", restore=False)
    if job["identical"] == total:
        return CheckWords(
            **job,
            headline=f"All {total} images in the PACS are identical to the backup.",
            detail="Nothing to restore.",
            restore=False,
        )
    parts = []
    if job["missing"]:
        parts.append(f"{job['missing']} of {total} images are missing from the PACS")
    if job["different"]:
        parts.append(
            f"{job['different']} of {total} images in the PACS differ from the backup (changed or damaged "
            "after they were backed up)"
        )
    return CheckWords(
        **job,
        headline=f"{job['identical']} of {total} images in the PACS are identical to the backup.",
        detail="; ".join(parts) + ". Restore the study to bring back the backed-up images.",
        restore=True,
    )
