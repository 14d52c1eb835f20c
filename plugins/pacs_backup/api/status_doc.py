"""``GET /backup/status``: the replication state, each copy's part, the forecasts and one overall word."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Protocol

from pacs_backup import __version__
from pacs_backup.contracts.documents import OverallState, RefusedDoc, RunDoc, StatusDoc
from pacs_backup.jobs.forecast import forecast_from_totals
from pacs_backup.jobs.health import overall_state
from pacs_backup.jobs.placement import Placement
from pacs_backup.jobs.recovery_time import scheduler_recovery_times
from pacs_backup.jobs.scheduler import OffsiteScheduler
from pacs_backup.replication.cloud_pacs import CloudSender
from pacs_backup.replication.group_copy import GroupSender
from pacs_backup.replication.group_feed import GroupFeed
from pacs_backup.replication.replicator import Replicator
from pacs_backup.settings.config import CLOUD_PACS_COPY, Settings
from pacs_backup.settings.retention import retention_doc


class StatusParts(Protocol):
    """The parts of the running engine (api.service.BackupService) the status is read from."""

    storage_dir: Path
    config_error: str | None
    settings: Settings | None
    replicator: Replicator | None
    offsite: OffsiteScheduler | None
    placement: Placement | None
    cloud: CloudSender | None
    group: GroupSender | None
    group_feed: GroupFeed | None
    refused: int
    last_refused: RefusedDoc | None

    def growth(self, now: float) -> tuple[int, int, float | None]: ...


def build_status(svc: StatusParts) -> StatusDoc:
    """Return ``GET /backup/status``: replication state plus an overall ``state`` word.

    ``state`` is ``error`` (not running or nothing can be copied), ``degraded`` (copies delayed or
    failing) or ``ok``.
    """
    doc: StatusDoc = {
        "version": __version__,
        "time": time.time(),
        "last_snapshot": None,
        "last_drill": None,
        "refused_instances": svc.refused,
        "last_refused": svc.last_refused,
        "state": "error",
        "enabled": False,
    }
    if svc.config_error is not None:
        doc["config_error"] = svc.config_error
        doc["last_error"] = {"message": svc.config_error, "at": None}
        return doc
    if svc.replicator is None:
        doc["last_error"] = {"message": "Backup is disabled (BACKUP_ENABLED=false).", "at": None}
        return doc
    rep = svc.replicator.status()
    offsite = svc.offsite.status() if svc.offsite else {}
    has_targets = bool(svc.settings and svc.settings.targets)
    state: OverallState = overall_state(
        rep, offsite, has_targets, svc.last_refused["at"] if svc.last_refused else None, time.time()
    )
    doc = {**doc, "state": state, "enabled": True, **rep, "offsite": offsite}
    if svc.settings is not None:
        store = svc.settings.store
        doc["retention"] = retention_doc(svc.settings.retention, store.lock_mode, store.lock_days)
    if svc.cloud is not None:
        cloud = doc["cloud_pacs"] = svc.cloud.status()
        if svc.placement is not None:
            svc.placement.place(CLOUD_PACS_COPY, cloud)
        if state == "ok" and (cloud["reachable"] is False or cloud["failing"]):
            state = "degraded"
    if svc.group is not None:
        group = doc["group"] = svc.group.status()
        if svc.offsite is not None:
            drills = svc.offsite.group_drills()
            group["last_drill"], group["next_drill_at"] = drills["last_drill"], drills["next_drill_at"]
            group["last_good_drill_age_s"] = drills["last_good_drill_age_s"]
        if svc.group_feed is not None:
            group["feed"] = svc.group_feed.status()
        if state == "ok" and (group["reachable"] is False or group["failing"]):
            state = "degraded"
    if not has_targets:
        doc["offsite_warning"] = "No offsite target is configured (RESTIC_REPOSITORY): a flood or fire loses all."
    elif svc.placement is not None and svc.placement.none_away():
        doc["offsite_warning"] = (
            "Every copy is on this box (see same_box_reason of each): it protects against mistakes, not "
            "against fire or theft. Set up an offsite copy in another building or in cloud storage."
        )
    now = time.time()
    size, recent, first = svc.growth(now)
    quota = svc.settings.store_quota_gb if svc.settings else None
    doc["store"]["forecast"] = forecast_from_totals(
        size, recent, first, now, None if quota is None else int(quota * 1e9)
    )
    if svc.offsite is not None:  # how long getting everything back would take, from this box's own restores
        doc["recovery_time"] = scheduler_recovery_times(svc.offsite, size, now)
    try:
        usage = shutil.disk_usage(svc.storage_dir)
        doc["disk"] = {
            "path": str(svc.storage_dir),
            "free_bytes": usage.free,
            "total_bytes": usage.total,
            # images arrive in the PACS as fast as they are copied: the same growth fills its disk
            "forecast": forecast_from_totals(usage.total - usage.free, recent, first, now, usage.total),
        }
    except OSError:
        doc["disk"] = None
    doc["last_snapshot"] = _newest([t.get("last_snapshot") for t in offsite.values()])
    doc["last_drill"] = _newest([t.get("last_drill") for t in offsite.values()])
    doc["state"] = state
    return doc


def _newest(runs: list[RunDoc | None]) -> RunDoc | None:
    done = [r for r in runs if r]
    return max(done, key=lambda r: r["finished_at"] or 0) if done else None
