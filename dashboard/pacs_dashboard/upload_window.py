"""A copy that shares the clinic's internet: its upload rule, its next window, and the age its light judges.

A copy whose uploads are allowed only in a window (``RESTIC_UPLOAD_LIMIT=06:00,0 20:00,off``, the plugin
sends it as ``window`` with ``next_window``) cannot be fresher than its window allows: its light counts
only the time during which it could upload, so a night-only snapshot is not red at 10:00. Pure (no Flask,
no I/O), like every module of lights.
"""

from __future__ import annotations

from datetime import tzinfo

from pacs_backup.contracts.documents import CloudDoc, StatusDoc, TargetDoc
from pacs_backup.contracts.errors import ConfigError
from pacs_backup.settings.bandwidth import BandwidthSchedule, parse_schedule

from .light import copy_name
from .timefmt import clock, local


def schedule(info: TargetDoc | CloudDoc) -> BandwidthSchedule | None:
    """The copy's upload timetable, or None when it has none (or one this dashboard cannot read)."""
    rule = info.get("window")
    if not isinstance(rule, str) or not rule:
        return None
    try:
        return parse_schedule("window", rule)
    except ConfigError:
        return None


def judged_age(info: TargetDoc | CloudDoc, seconds: float, now: float, tz: tzinfo) -> float:
    """How old a copy is for its light: the ``seconds`` since it was made during which it could upload."""
    found = schedule(info)
    if found is None or seconds <= 0:
        return seconds
    return found.allowed_seconds(local(now - seconds, tz), local(now, tz))


def held(info: TargetDoc | CloudDoc) -> bool:
    """True while the copy waits for its upload window."""
    return schedule(info) is not None and isinstance(info.get("next_window"), int | float)


def rule_and_window(info: TargetDoc | CloudDoc, now: float, tz: tzinfo) -> str:
    """``06:00 no upload, 20:00 unlimited; next window at 20:00`` ('' without a timetable)."""
    found = schedule(info)
    if found is None:
        return ""
    opens = info.get("next_window")
    if isinstance(opens, int | float):
        return f"{found.text}; next window at {clock(float(opens), tz, now)}"
    return f"{found.text}; uploading is allowed now"


def window_note(info: TargetDoc | CloudDoc, now: float, tz: tzinfo) -> str:
    """The sentence after a light's advice ('' without a timetable)."""
    rule = rule_and_window(info, now, tz)
    return f"Uploads (sharing the clinic's internet): {rule}." if rule else ""


def upload_rules(status: StatusDoc | None, now: float, tz: tzinfo) -> list[tuple[str, str]]:
    """Each offsite copy that has an upload timetable, as (how staff call it, its rule and next window)."""
    found: list[tuple[str, str]] = []
    if status is None:  # the PACS does not answer: nothing known
        return found
    for name, info in sorted((status.get("offsite") or {}).items()):
        rule = rule_and_window(info, now, tz)
        if rule:
            who = copy_name(name, info)
            found.append((who[0].upper() + who[1:], rule))
    cloud = status.get("cloud_pacs")
    rule = rule_and_window(cloud, now, tz) if cloud else ""
    if rule:
        found.append(("The cloud PACS copy", rule))
    return found
