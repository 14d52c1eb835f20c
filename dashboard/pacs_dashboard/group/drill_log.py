"""The group's monthly restore-test summary: the restore tests (drills) each clinic's heartbeats reported.

A heartbeat holds only each copy's newest drill, so every drill seen is remembered in the dashboard's SQLite
(table ``group_drills``) when the group's pages or a clinic's delivery poll read the heartbeats; a month's
summary counts the drills that ended in it, per clinic.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from datetime import tzinfo as TzInfo
from typing import Any, TypedDict

from ..db import Database


class MonthOfDrills(TypedDict):
    """One clinic's restore tests in one month."""

    clinic: str
    ok: int
    failed: int
    last_at: float | None
    sentence: str


def _drills(status: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(copy, run) of every drill the status document names."""
    for name, target in (status.get("offsite") or {}).items():
        if isinstance(target, Mapping) and isinstance(target.get("last_drill"), Mapping):
            yield str(name), target["last_drill"]
    group = status.get("group")
    if isinstance(group, Mapping) and isinstance(group.get("last_drill"), Mapping):
        yield "group", group["last_drill"]
    if isinstance(status.get("last_drill"), Mapping):
        run = status["last_drill"]
        yield str(run.get("target") or "copy"), run


def note(db: Database, clinic: str, status: Mapping[str, Any] | None) -> None:
    """Remember the finished drills of one clinic's status document."""
    for target, run in _drills(status or {}):
        run_id, finished, state = run.get("id"), run.get("finished_at"), run.get("state")
        if not isinstance(run_id, int) or not isinstance(finished, int | float) or state not in ("ok", "failed"):
            continue
        db.execute(
            "INSERT OR IGNORE INTO group_drills (clinic, target, run_id, state, finished_at) VALUES (?, ?, ?, ?, ?)",
            (clinic, target[:100], run_id, state, float(finished)),
        )


def month_start(now: float, tz: TzInfo) -> float:
    d = datetime.fromtimestamp(now, tz)
    return d.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp()


def month(db: Database, clinics: Iterable[str], tz: TzInfo, now: float | None = None) -> list[MonthOfDrills]:
    """This month's restore tests of each clinic, in words."""
    since = month_start(time.time() if now is None else now, tz)
    out: list[MonthOfDrills] = []
    for clinic in clinics:
        rows = db.query(
            "SELECT state, COUNT(*), MAX(finished_at) FROM group_drills WHERE clinic=? AND finished_at>=? "
            "GROUP BY state",
            (clinic, since),
        )
        counts = {str(r[0]): int(r[1]) for r in rows}
        last = max((float(r[2]) for r in rows if r[2] is not None), default=None)
        ok, failed = counts.get("ok", 0), counts.get("failed", 0)
        if ok + failed == 0:
            sentence = "No restore test reported this month."
        elif failed == 0:
            sentence = f"{ok} restore test{'s' if ok != 1 else ''} this month, all passed."
        else:
            sentence = f"{failed} of {ok + failed} restore tests this month FAILED: ask the clinic's technician."
        out.append(MonthOfDrills(clinic=clinic, ok=ok, failed=failed, last_at=last, sentence=sentence))
    return out
