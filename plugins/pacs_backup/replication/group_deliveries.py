"""Studies of other clinics brought into this clinic's PACS ("bring this study to my clinic", group mode).

A user of the group service asks for a study of clinic B to be brought to this clinic; this thread pulls it,
with the clinic's own token (GROUP_SERVICE_TOKEN): ``GET /group/api/deliveries`` lists what waits,
``GET /group/api/deliveries/<id>/instances`` gives the study's objects ``[{key, sha256, size}]`` and
``GET .../files?key=`` each object's bytes, read by the group service from clinic B's prefix. Every image is
restored exactly as any restore (:func:`pacs_backup.restore.from_copies.restore_items`: its sha256 checked
before the upload, Orthanc's MD5 after), recorded as a restore run in this clinic's history (target
``group``), and the report goes back with ``POST .../done``.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

from pacs_backup.contracts.errors import BackupError
from pacs_backup.restore.from_copies import restore_items
from pacs_backup.restore.uploads import Loaded, Loader, OrthancTarget, RestoreReport
from pacs_backup.settings.group import GROUP_COPY, GroupSettings
from pacs_backup.state.history import RunLog

from .group_feed import GroupService

log = logging.getLogger(__name__)

DELIVERIES_PATH = "/group/api/deliveries"
MAX_POLL_S = 15.0


class GroupDeliveries:
    """The thread that pulls the studies brought to this clinic and restores them into its PACS."""

    def __init__(
        self,
        settings: GroupSettings,
        runs: RunLog,
        orthanc: OrthancTarget,
        clock: Callable[[], float] = time.time,
    ) -> None:
        assert settings.service_url is not None and settings.service_token is not None  # noqa: S101 - caller's check
        self.service = GroupService(settings.service_url, settings.service_token, settings.clinic_id)
        self.runs, self.orthanc, self._clock = runs, orthanc, clock
        self.poll_s = min(settings.heartbeat_s, MAX_POLL_S)
        self._reports: dict[int, dict[str, Any]] = {}  # done here, report not acknowledged yet
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="pacs-backup-group-deliveries", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout_s)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
                self.last_error = None
            except BackupError as exc:
                if self.last_error != str(exc):
                    log.warning("deliveries from the group service not fetched (tried again): %s", exc)
                self.last_error = str(exc)
            except Exception:  # keep the thread alive; the traceback goes to the log
                log.exception("bringing a study from the group failed; retrying")
            self._stop.wait(self.poll_s)

    def poll(self) -> int:
        """Bring every delivery waiting for this clinic; returns how many were finished."""
        finished = 0
        for delivery_id in list(self._reports):
            self._report(delivery_id)
        listed = self.service.get_json(DELIVERIES_PATH).get("deliveries")
        for d in listed if isinstance(listed, list) else []:
            if not isinstance(d, dict) or not isinstance(d.get("id"), int) or d["id"] in self._reports:
                continue
            self._reports[d["id"]] = self.bring(d)
            self._report(d["id"])
            finished += 1
        return finished

    def _report(self, delivery_id: int) -> None:
        self.service.post(f"{DELIVERIES_PATH}/{delivery_id}/done", self._reports[delivery_id])
        del self._reports[delivery_id]

    def bring(self, d: dict[str, Any]) -> dict[str, Any]:
        """Restore one delivery's study into the PACS, recorded as a run; returns the report for the group."""
        study, source = str(d.get("study_uid") or ""), str(d.get("source_clinic") or "")
        run_id = self.runs.queue(GROUP_COPY, "restore", self._clock())
        self.runs.start(run_id, self._clock())
        report = RestoreReport(source=f"the central copy of clinic {source} (group delivery {d['id']})")
        report.details["studies"] = [study]
        try:
            listed = self.service.get_json(f"{DELIVERIES_PATH}/{d['id']}/instances").get("instances")
            items = [(str(i["key"]), self._loader(d["id"], i)) for i in listed or [] if isinstance(i, dict)]
            restore_items(items, self.orthanc, report)
        except BackupError as exc:
            self.runs.finish(run_id, self._clock(), False, report.summary(study, None), str(exc))
            return {"ok": False, "total": report.total, "verified": report.verified, "sentence": str(exc)}
        error = None if report.ok else f"{len(report.failures)} of {report.total} images did not verify."
        self.runs.finish(run_id, self._clock(), report.ok, report.summary(study, None), error)
        sentence = (
            f"{report.verified} of {report.total} images brought into clinic {self.service.clinic}'s PACS and "
            f"verified (its restore run {run_id})."
            if report.ok
            else f"Clinic {self.service.clinic} could not bring the study: {error or 'nothing to bring'}"
        )
        log.warning("group delivery %s: study %s of clinic %s: %s", d["id"], study, source, sentence)
        failures = [{"item": w, "reason": r} for w, r in report.failures[:50]]
        return {
            "ok": report.ok,
            "total": report.total,
            "verified": report.verified,
            "sentence": sentence,
            "failures": failures,
            "run_id": run_id,
        }

    def _loader(self, delivery_id: int, item: dict[str, Any]) -> Loader:
        query = urllib.parse.urlencode({"key": str(item["key"])})
        expected = str(item.get("sha256") or "") or None

        def load() -> Loaded:
            return Loaded(self.service.get(f"{DELIVERIES_PATH}/{delivery_id}/files?{query}"), expected)

        return load
