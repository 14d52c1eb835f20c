"""The documents the plugin's REST API gives out, typed: what the dashboard, the scripts and the tests
read. Adding a key is compatible; removing or renaming one is a change of the interface."""

from __future__ import annotations

from typing import Any, TypedDict

from .forecast import Forecast


class RunDoc(TypedDict):
    """One snapshot, drill or restore run (``GET /backup/runs/<id>``)."""

    id: int
    target: str
    kind: str  # snapshot, drill, restore
    state: str  # queued, running, ok, failed
    queued_at: float
    started_at: float | None
    finished_at: float | None
    duration_s: float | None
    summary: dict[str, Any]  # what the run did; its keys depend on the kind
    error: str | None  # a sentence for a person when it failed


class DriveDoc(TypedDict):
    """An external-drive target: which drive is plugged in, its drives, which to swap next."""

    connected: bool
    sentence: str
    repository_id: str | None
    drives: list[dict[str, Any]]
    swap_next: str | None
    light: str
    advice: str | None


class TargetDoc(TypedDict, total=False):
    """One copy made by snapshots or drills: an offsite target, or ``minio`` (drills only)."""

    repository: str  # with any password masked
    next_snapshot_at: float
    next_drill_at: float
    forecast: Forecast
    drive: DriveDoc
    last_snapshot: RunDoc | None
    last_good_snapshot_age_s: float | None
    last_drill: RunDoc | None
    last_good_drill_age_s: float | None
