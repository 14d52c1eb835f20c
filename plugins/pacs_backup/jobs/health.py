"""The overall health word of ``GET /backup/status``, decided from the parts' states (a pure function).

``error``: nothing can be copied now (store unreachable, plugin not running). ``degraded``: copies are
delayed, failing or set aside, a snapshot or drill failed, there is no offsite copy, or a dangerous file
was refused recently. ``ok``: every part was checked and is fine.
"""

from __future__ import annotations

from collections.abc import Mapping

from pacs_backup.contracts.documents import OverallState, ReplicationDoc, RunDoc, TargetDoc

QUEUE_LATE_S = 300.0
REFUSED_RECENT_S = 24 * 3600.0


def _failed(run: RunDoc | None) -> bool:
    return bool(run and run.get("state") == "failed")


def overall_state(
    replication: ReplicationDoc,
    offsite: Mapping[str, TargetDoc],
    has_targets: bool,
    last_refused_at: float | None,
    now: float,
) -> OverallState:
    """``ok``, ``degraded`` or ``error`` for the whole backup."""
    if not replication["store"]["reachable"]:
        return "error"
    if replication["failed"] or replication["quarantined"] or (replication["oldest_pending_age_s"] or 0) > QUEUE_LATE_S:
        return "degraded"
    if any(_failed(t.get("last_snapshot")) or _failed(t.get("last_drill")) for t in offsite.values()):
        return "degraded"
    if not has_targets:
        return "degraded"
    if last_refused_at is not None and now - last_refused_at < REFUSED_RECENT_S:
        return "degraded"
    return "ok"
