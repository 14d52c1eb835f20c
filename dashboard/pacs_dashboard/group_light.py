"""The "Group copy" light: this clinic's images in its group's store (the plugin's ``status["group"]``).

Pure (no Flask, no I/O), like copy_lights.py. The group copy is judged against the offsite target: a store
that does not answer, or images that wait, are amber while it is within the target and red past it; a
refusal that lasts, or a failed restore test of the group store, is red.
"""

from __future__ import annotations

from datetime import tzinfo

from pacs_backup.contracts.documents import GroupDoc

from .light import AMBER, GREEN, RED, Light, age
from .timefmt import clock

KEY, LABEL = "group", "Group copy"


def _feed_note(group: GroupDoc) -> str:
    """What the group service has not received yet (its catalog is fed from here), when it waits."""
    feed = group.get("feed")
    if not feed or not feed.get("depth"):
        return ""
    err = feed.get("last_error")
    why = f" ({err['message']})" if err else ""
    return f" The group's catalog has not received {feed['depth']} images yet{why}; they are sent again by themselves."


def group_light(group: GroupDoc, now: float, t: dict[str, float], tz: tzinfo) -> Light:
    light = _group_light(group, now, t, tz)
    note = _feed_note(group)
    return Light(light.key, light.label, light.state, light.value, light.advice + note) if note else light


def _group_light(group: GroupDoc, now: float, t: dict[str, float], tz: tzinfo) -> Light:
    target = t["offsite_hours"] * 3600
    depth, verified = int(group.get("depth") or 0), int(group.get("verified") or 0)
    oldest = group.get("oldest_pending_age_s")
    err = group.get("last_error")
    message = (err.get("message") if err else None) or ""
    drill = group.get("last_drill")
    if group.get("reachable") is False:
        since = group.get("unreachable_since")
        long = since is not None and now - float(since) > target
        return Light(
            KEY,
            LABEL,
            RED if long else AMBER,
            "group store not answering" + (f" since {clock(since, tz, now)}" if since else ""),
            f"{depth} images wait here and are copied when the group's store answers again."
            + (
                f" It has not answered for longer than the {t['offsite_hours']:.0f}-hour target: call your "
                "technician or the group's admin."
                if long
                else " Nothing to do unless it lasts."
            ),
        )
    if group.get("failing"):
        long = oldest is not None and oldest > target
        return Light(
            KEY,
            LABEL,
            RED if long else AMBER,
            f"{group['failing']} images being tried again",
            (f"The group's store refused some images: {message} " if message else "")
            + ("Call your technician or the group's admin." if long else "They are tried again by themselves."),
        )
    if drill and drill.get("state") == "failed":
        return Light(
            KEY,
            LABEL,
            RED,
            "restore test failed",
            f"The last restore test of the group's store failed: {drill.get('error') or 'no reason given'} "
            "Call your technician.",
        )
    if oldest is not None and oldest > target:
        return Light(
            KEY,
            LABEL,
            RED,
            f"{depth} waiting, oldest {age(oldest)}",
            f"Images wait longer than the {t['offsite_hours']:.0f}-hour target to reach the group's store. "
            "They are safe here; call your technician if this lasts.",
        )
    if oldest is not None and oldest > max(t["replication_minutes"] * 60, 3600):
        return Light(
            KEY,
            LABEL,
            AMBER,
            f"{depth} waiting, oldest {age(oldest)}",
            "Images reach the group's store slowly; they are copied in order. Call your technician if this lasts.",
        )
    tested = group.get("last_good_drill_age_s")
    return Light(
        KEY,
        LABEL,
        GREEN,
        f"{verified} images copied and checked" + (f", {depth} waiting" if depth else ""),
        "Nothing to do." + (f" Last good restore test {age(tested)}." if tested is not None else ""),
    )
