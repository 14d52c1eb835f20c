"""Assembly of the engine from configuration, independent of Orthanc.

The Orthanc entry module creates one :class:`BackupService` with a ``get`` function (the SDK's
``RestApiGet``) and forwards Orthanc's events to it. Tests build the same service with an HTTP getter.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from . import __version__
from .catalog import Catalog
from .config import Settings, load_settings
from .errors import BackupError, ConfigError
from .history import RunLog
from .object_store import ObjectStore
from .offsite import OffsiteScheduler
from .orthanc_source import Getter, OrthancReader
from .outbox import Outbox
from .replicator import Replicator, ReplicatorOptions
from .retry import RetryPolicy
from .snapshots import SNAPSHOT_TAG, OffsiteContext

log = logging.getLogger(__name__)

Poster = Callable[[str, bytes], bytes]


class InProcessOrthanc:
    """Restore target inside the plugin: the same calls as OrthancHttp, through the SDK."""

    def __init__(self, get: Getter, post: Poster) -> None:
        self._get, self._post = get, post

    def upload(self, dicom: bytes) -> dict[str, Any]:
        answer = json.loads(self._post("/instances", dicom))
        if not isinstance(answer, dict):
            raise BackupError("Orthanc did not accept the file as one DICOM instance.")
        return answer

    def get_json(self, uri: str) -> Any:
        return json.loads(self._get(uri))

OUTBOX_FILENAME = "pacs-backup-outbox.sqlite"


class BackupService:
    """The plugin's whole behaviour: configuration, replication and status.

    A configuration error does not raise: it is kept, logged in one line, and shown by
    :meth:`status`, so that Orthanc keeps serving images while the installer fixes the setting.
    """

    def __init__(self, get: Getter, storage_dir: Path, env: Mapping[str, str] | None = None,
                 config_json: Callable[[], str] = lambda: "{}", post: Poster | None = None) -> None:
        self.storage_dir = storage_dir
        self.replicator: Replicator | None = None
        self.offsite: OffsiteScheduler | None = None
        self.catalog: Catalog | None = None
        self.config_error: str | None = None
        self.settings: Settings | None = None
        try:
            self.settings = load_settings(storage_dir / OUTBOX_FILENAME, os.environ if env is None else env)
        except ConfigError as exc:
            self.config_error = str(exc)
            log.error("PACS backup is NOT running: %s", exc)
            return
        if not self.settings.enabled:
            log.warning("PACS backup is disabled (BACKUP_ENABLED=false): instances are not copied")
            return
        s = self.settings
        reader, store = OrthancReader(get), ObjectStore(s.store, pool_size=max(4, s.workers * 2))
        outbox = Outbox(s.outbox_path)
        self.catalog = Catalog(s.outbox_path)
        self.offsite = OffsiteScheduler(
            OffsiteContext(reader=reader, catalog=self.catalog, store=store, storage_dir=storage_dir,
                           config_json=config_json, orthanc=InProcessOrthanc(get, post) if post else None,
                           prefix=s.store.prefix),
            s.targets, RunLog(s.outbox_path), drill_sample=s.drill_sample,
            minio_drill_interval_s=s.minio_drill_hours * 3600.0, first_run_delay_s=s.first_run_delay_s)
        self.replicator = Replicator(
            outbox,
            reader,
            store,
            ReplicatorOptions(workers=s.workers, prefix=s.store.prefix,
                              retry=RetryPolicy(s.retry_base_s, s.retry_cap_s),
                              reconcile_every_s=s.reconcile_hours * 3600.0),
        )

    def on_new_instance(self, orthanc_id: str) -> None:
        """Forward a NEW_INSTANCE change. Never raises."""
        if self.replicator is not None:
            self.replicator.on_new_instance(orthanc_id)

    def start(self) -> None:
        """Start the engine's threads (Orthanc has started)."""
        if self.replicator is not None:
            log.warning("PACS backup %s started: copying to bucket %s with %d workers", __version__,
                        self.replicator.store.bucket, self.replicator.options.workers)
            self.replicator.start()
        if self.offsite is not None:
            self.offsite.start()

    def stop(self) -> None:
        """Stop the threads (Orthanc is stopping). Unfinished work stays in the outbox."""
        if self.offsite is not None:
            self.offsite.stop()
        if self.replicator is not None:
            self.replicator.stop()

    def status(self) -> dict[str, Any]:
        """Return ``GET /backup/status``: replication state plus an overall ``state`` word.

        ``state`` is ``error`` (not running or nothing can be copied), ``degraded`` (copies delayed or
        failing) or ``ok``.
        """
        base: dict[str, Any] = {"version": __version__, "time": time.time(), "last_snapshot": None,
                                "last_drill": None}
        if self.config_error is not None:
            return {**base, "state": "error", "enabled": False, "config_error": self.config_error,
                    "last_error": {"message": self.config_error, "at": None}}
        if self.replicator is None:
            return {**base, "state": "error", "enabled": False, "last_error": {
                "message": "Backup is disabled (BACKUP_ENABLED=false).", "at": None}}
        rep = self.replicator.status()
        offsite = self.offsite.status() if self.offsite else {}
        state = "ok"
        if not rep["store"]["reachable"]:
            state = "error"
        elif rep["failed"] or rep["quarantined"] or (rep["oldest_pending_age_s"] or 0) > 300:
            state = "degraded"
        if any(_failed(t.get("last_snapshot")) or _failed(t.get("last_drill")) for t in offsite.values()):
            state = "error" if state == "error" else "degraded"
        if not self.settings or not self.settings.targets:
            state = "error" if state == "error" else "degraded"
            rep["offsite_warning"] = "No offsite target is configured (RESTIC_REPOSITORY): a flood or fire loses all."
        try:
            usage = shutil.disk_usage(self.storage_dir)
            rep["disk"] = {"path": str(self.storage_dir), "free_bytes": usage.free, "total_bytes": usage.total}
        except OSError:
            rep["disk"] = None
        base["last_snapshot"] = _newest([t.get("last_snapshot") for t in offsite.values()])
        base["last_drill"] = _newest([t.get("last_drill") for t in offsite.values()])
        return {**base, "state": state, "enabled": True, **rep, "offsite": offsite}

    # --- REST API under /backup/ (the entry module forwards requests here) ---------------------
    def handle(self, method: str, path: str, query: Mapping[str, str], body: bytes) -> tuple[int, Any]:
        """Answer a request to ``/backup/<path>``. Returns ``(HTTP status, JSON-ready body)``.

        Routes: GET status, GET runs[?kind=&limit=], GET runs/<id>, GET studies?q=,
        POST snapshots {"target"?}, POST drills {"target"?}.
        """
        try:
            return self._route(method, path.strip("/"), query, body)
        except BackupError as exc:
            return 400, {"error": str(exc)}

    def _route(self, method: str, path: str, query: Mapping[str, str], body: bytes) -> tuple[int, Any]:
        if path == "status" and method == "GET":
            return 200, self.status()
        if self.offsite is None or self.catalog is None:
            return 503, {"error": self.config_error or "Backup is disabled."}
        if path in ("snapshots", "drills") and method == "POST":
            payload = json.loads(body or b"{}") if body else {}
            target = payload.get("target") if isinstance(payload, dict) else None
            ids = self.offsite.request("snapshot" if path == "snapshots" else "drill", target)
            return 202, {"runs": ids}
        if path == "runs" and method == "GET":
            limit = int(query.get("limit", "50")) if query.get("limit", "50").isdigit() else 50
            return 200, [r.as_dict() for r in self.offsite.runs.recent(min(limit, 1000), query.get("kind"))]
        if path.startswith("runs/") and method == "GET" and path[5:].isdigit():
            run = self.offsite.runs.get(int(path[5:]))
            return (200, run.as_dict()) if run else (404, {"error": "No such run."})
        if path == "restores" and method == "POST":
            payload = json.loads(body) if body else {}
            if not isinstance(payload, dict):
                raise BackupError("Send a JSON object with study_uid and source.")
            run_id = self.offsite.request_restore(str(payload.get("study_uid", "")), str(payload.get("source", "")),
                                                  payload.get("snapshot") or None)
            return 202, {"run": run_id}
        if path == "studies" and method == "GET":
            self.catalog.fill(self.offsite.ctx.reader, time.time(), limit=5000)
            return 200, self.catalog.studies(query.get("q", ""), 100, _date(query.get("from", "")),
                                             _date(query.get("to", "")), query.get("modality", "")[:16])
        if path.startswith("studies/") and method == "GET":
            entries = self.catalog.study(path[8:])
            if not entries:
                return 404, {"error": "This study is not in the backups."}
            return 200, {"study_uid": path[8:], "instances": entries}
        if path == "snapshots" and method == "GET":
            target = self.offsite.targets.get(query.get("target", "offsite"))
            if target is None:
                raise BackupError("Unknown target.")
            snaps = self.offsite.ctx.restic(target).snapshots(tag=SNAPSHOT_TAG)
            return 200, [{"id": s.id, "short_id": s.short_id, "time": s.time} for s in reversed(snaps)]
        return 404, {"error": f"No route {method} /backup/{path}."}


def _date(value: str) -> str:
    """``YYYY-MM-DD`` or ``YYYYMMDD`` -> ``YYYYMMDD`` (DICOM's form); anything else -> no filter."""
    digits = value.replace("-", "")
    return digits if len(digits) == 8 and digits.isdigit() else ""


def _failed(run: dict[str, Any] | None) -> bool:
    return bool(run and run.get("state") == "failed")


def _newest(runs: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    done = [r for r in runs if r]
    return max(done, key=lambda r: r.get("finished_at") or 0) if done else None
