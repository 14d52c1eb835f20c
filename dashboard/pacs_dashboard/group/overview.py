"""The group's overview page: one row per clinic, from the ``/backup/status`` document of its last heartbeat.

Each clinic's lights are the clinic dashboard's own (:func:`pacs_dashboard.health.lights` on that document, as
it stood when it was sent), with its recovery point per copy (how old the newest copy is), its last restore
test, its storage and forecast. A clinic silent for GROUP_QUIET_MINUTES is its own red alarm, whatever its
last lights said: "North has not been heard from since 10:42".
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import tzinfo as TzInfo
from typing import Any, cast

from pacs_backup.contracts.documents import StatusDoc

from ..health import lights
from ..light import AMBER, GREEN, RED, Light, age, copy_name, overall
from ..timefmt import clock, months, size
from .heartbeats import ClinicState


@dataclass(frozen=True)
class ClinicRow:
    """One clinic on the overview page, in words."""

    clinic: str
    name: str  # its label, or its id
    state: str  # green, amber or red: the worst of its lights, red when quiet
    alarm: str  # "" or the sentence of the quiet alarm
    heard: str  # "Last heard from 10:42 (2 minutes ago)"
    lights: list[Light] = field(default_factory=list)
    recovery_points: list[tuple[str, str]] = field(default_factory=list)  # (Copy, how old its newest copy is)
    last_restore_test: str = ""
    storage: list[tuple[str, str]] = field(default_factory=list)  # (what, size and forecast)
    catalog: str = ""  # what the group catalog holds of it


def clinic_name(state: ClinicState) -> str:
    return state["label"] or state["clinic"].replace("-", " ").title()


def _first_up(text: str) -> str:
    return text[:1].upper() + text[1:]


def _recovery_points(doc: dict[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    if "outbox_depth" in doc:
        oldest = doc.get("oldest_pending_age_s")
        out.append(("The local backup copy", "up to date" if not doc.get("outbox_depth") else f"{age(oldest)} behind"))
    group = doc.get("group")
    if isinstance(group, dict):
        waiting = group.get("oldest_pending_age_s")
        out.append(("The group copy", "up to date" if not group.get("depth") else f"{age(waiting)} behind"))
    for name, target in sorted((doc.get("offsite") or {}).items()):
        if isinstance(target, dict) and "last_good_snapshot_age_s" in target:
            out.append(
                (
                    _first_up(copy_name(name, cast(Any, target))),
                    f"newest good copy {age(target['last_good_snapshot_age_s'])}",
                )
            )
    return out


def _last_test(doc: dict[str, Any], tz: TzInfo, now: float) -> str:
    run = doc.get("last_drill")
    if not isinstance(run, dict) or run.get("finished_at") is None:
        return "no restore test yet"
    result = "passed" if run.get("state") == "ok" else "FAILED"
    return f"{result} at {clock(float(run['finished_at']), tz, now)} ({copy_name(str(run.get('target') or ''))})"


def _storage(doc: dict[str, Any]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    disk = doc.get("disk")
    if isinstance(disk, dict) and disk.get("total_bytes"):
        free = f"{size(disk.get('free_bytes'))} free of {size(disk['total_bytes'])}"
        full = months((disk.get("forecast") or {}).get("months_until_full"))
        out.append(("The PACS disk", f"{free}{', ' + full if full else ''}"))
    for name, target in sorted((doc.get("offsite") or {}).items()):
        forecast = target.get("forecast") if isinstance(target, dict) else None
        if isinstance(forecast, dict) and "size_bytes" in forecast:
            grows = size(forecast.get("growth_bytes_per_month"))
            full = months(forecast.get("months_until_full"))
            words = f"{size(forecast['size_bytes'])}, grows {grows} a month{', ' + full if full else ''}"
            out.append((_first_up(copy_name(name, cast(Any, target))), words))
    return out


def clinic_row(state: ClinicState, quiet_minutes: float, tz: TzInfo, now: float | None = None) -> ClinicRow:
    """One clinic's row: its lights from its last heartbeat, or the quiet alarm."""
    at = time.time() if now is None else now
    name, beat, doc = clinic_name(state), state["last_heartbeat_at"], state["status"]
    heard = "Never heard from" if beat is None else f"Last heard from {clock(beat, tz, at)} ({age(at - beat)})"
    found = f"{state['studies']} studies, {state['instances']} images, {size(state['size'])} in the group catalog"
    alarm = ""
    if state["quiet"]:
        alarm = (
            f"{name} has not been heard from since {clock(beat, tz, at)}."
            if beat is not None
            else f"{name} has never been heard from."
        ) + (
            f" Nothing arrived from it for over {quiet_minutes:g} minutes: check that its backup box is on and "
            "connected to the internet, or call its technician."
        )
    if not isinstance(doc, dict) or beat is None:
        colour = RED if alarm else AMBER
        return ClinicRow(state["clinic"], name, colour, alarm, heard, catalog=found)
    shown = lights(cast(StatusDoc, doc), None, beat, tz=tz)
    colour = RED if alarm else overall(shown)
    return ClinicRow(
        clinic=state["clinic"],
        name=name,
        state=colour,
        alarm=alarm,
        heard=heard,
        lights=shown,
        recovery_points=_recovery_points(doc),
        last_restore_test=_last_test(doc, tz, at),
        storage=_storage(doc),
        catalog=found,
    )


def summary(rows: list[ClinicRow]) -> str:
    """The page's first sentence."""
    if not rows:
        return "No clinic has joined the group yet."
    quiet = [r.name for r in rows if r.alarm]
    red = [r.name for r in rows if r.state == RED and not r.alarm]
    if quiet or red:
        parts = []
        if quiet:
            parts.append(f"not heard from: {', '.join(quiet)}")
        if red:
            parts.append(f"needs attention: {', '.join(red)}")
        return "Problems - " + "; ".join(parts) + "."
    amber = [r.name for r in rows if r.state == AMBER]
    if amber:
        return f"Every clinic is backing up; check soon: {', '.join(amber)}."
    return f"All {len(rows)} clinics are backed up and heard from." if all(r.state == GREEN for r in rows) else ""
