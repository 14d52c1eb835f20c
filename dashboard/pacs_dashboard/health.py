"""Traffic lights: turns the plugin's status into one light per part, with the number and advice.

Pure functions (no Flask, no I/O) so that every rule is unit-tested. This module makes the whole list, in the
order the health page shows it: the PACS, the local backup copy and its queue, each copy
(copy_lights.py), the cloud PACS, the restore tests (drill_light.py) and space (space_lights.py). While the
PACS is down every other part shows its last known state, marked so. Advice names the pages as the menu does.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import tzinfo
from zoneinfo import ZoneInfo

from pacs_backup.contracts.documents import LightColour, StatusDoc

from .copy_lights import cloud_light, drive_light, offsite_light, same_box
from .drill_light import drill_light
from .group_light import group_light
from .light import AMBER, DEFAULT_TARGETS, GREEN, MINIO, RED, Light, age, copy_name
from .space_lights import disk_light, space_light
from .timefmt import clock


def pacs_down_light(down_since: float | None, now: float, tz: tzinfo) -> Light:
    since = f" since {clock(down_since, tz, now)}" if down_since else ""
    return Light(
        "pacs",
        "PACS",
        RED,
        f"not answering{since}",
        "Check that the PACS computer is switched on and connected to the network, and restart it if it "
        "is stuck. Images already backed up are safe: you can still find them here and check their "
        "pictures. If it does not answer within 15 minutes, call your technician.",
    )


def lights(
    status: StatusDoc | None,
    error: str | None,
    now: float,
    targets: dict[str, float] | None = None,
    tz: tzinfo | None = None,
    *,
    down_since: float | None = None,
    last_known: StatusDoc | None = None,
    last_known_at: float | None = None,
) -> list[Light]:
    """Evaluate every part.

    Args:
        status: ``GET /backup/status`` from the plugin, or None when the PACS did not answer.
        error: why the status could not be read (kept for the log; staff see plain advice).
        now: current time (epoch seconds).
        targets: the clinic's targets (see DEFAULT_TARGETS).
        tz: the clinic's time zone (times in values and advice).
        down_since: when the PACS stopped answering (for "not answering since 14:02").
        last_known, last_known_at: the last status read while the PACS answered, and when; while it is
            down, every other part shows that state, marked "last known".
    """
    tz = tz or ZoneInfo("UTC")
    t = {**DEFAULT_TARGETS, **(targets or {})}
    if status is None:
        out = [pacs_down_light(down_since, now, tz)]
        if last_known is None or last_known_at is None:
            out.append(
                Light(
                    "backup",
                    "Backups",
                    AMBER,
                    "not known yet",
                    "The state of the backups shows here once the PACS answers again; the dashboard has "
                    "not heard from it since it started.",
                )
            )
            return out
        note = f"Last known state, at {clock(last_known_at, tz, now)}: it cannot be checked while the PACS is down."
        return out + [
            replace(light, note=note)
            for light in lights(last_known, None, last_known_at, targets, tz)
            if light.key != "pacs"
        ]
    out = [Light("pacs", "PACS", GREEN, "answering", "Nothing to do.")]
    if status.get("config_error") or not status.get("enabled", False):
        err = status.get("last_error")
        msg = err.get("message", "Backup is not running.") if err else "Backup is not running."
        out.append(Light("backup", "Backup", RED, "not running", f"{msg} Ask your technician to fix the setting."))
        return out

    store = status.get("store")
    reachable = bool(store and store.get("reachable"))
    refused = store.get("refused") if store else None
    if refused:  # the bucket cannot lock copies although the settings ask for it: nothing is copied
        out.append(
            Light(
                "store",
                "Local backup copy",
                RED,
                "refused: copies could be erased",
                f"{refused} New images wait safely in a queue meanwhile; ask your technician to change this.",
            )
        )
    else:
        out.append(
            Light(
                "store",
                "Local backup copy",
                GREEN if reachable else RED,
                "reachable" if reachable else "unreachable",
                "Nothing to do."
                if reachable
                else "New images are kept safely in a queue but not copied yet. Check that the backup storage "
                "on this box is running, or call your technician.",
            )
        )

    depth, oldest = int(status.get("outbox_depth") or 0), status.get("oldest_pending_age_s")
    limit = t["replication_minutes"] * 60
    state: LightColour
    if oldest is not None and oldest > limit:
        state, advice = (
            RED,
            (
                f"Images wait longer than the {t['replication_minutes']:.0f}-minute target. "
                "They are not lost; check that the backup storage is running, or call your technician."
            ),
        )
    elif status.get("failed") or status.get("quarantined"):
        state, advice = (
            AMBER,
            (
                f"{status.get('failed', 0)} images are being tried again, "
                f"{status.get('quarantined', 0)} were set aside; your technician can list them."
            ),
        )
    else:
        state, advice = GREEN, "Nothing to do."
    value = f"{depth} waiting" + (f", oldest {age(oldest)}" if oldest is not None else "")
    out.append(Light("queue", "New images waiting to be copied", state, value, advice))

    offsite = status.get("offsite") or {}
    copies = {k: v for k, v in offsite.items() if k != MINIO}
    if not copies:
        out.append(
            Light(
                "offsite",
                "Offsite copy",
                RED,
                "not configured",
                "There is no copy outside this building: a fire or flood would lose every image. "
                "Ask your technician to set up an offsite copy.",
            )
        )
    cloud = status.get("cloud_pacs")
    away = [n for n, i in copies.items() if not same_box(i)] + (["cloud-pacs"] if cloud and not same_box(cloud) else [])
    away += ["group"] if status.get("group") else []  # the group's store is away from this box
    if copies and not away:  # 3-2-1: a copy on this box is not the one outside the building
        on_box = [copy_name(n, i) for n, i in copies.items()] + (["the cloud PACS copy"] if cloud else [])
        out.append(
            Light(
                "offsite",
                "Copy away from this box",
                AMBER,
                "none: every copy is on this box",
                f"Every copy ({', '.join(on_box)}) is on this box: a fire, flood or theft of the box would lose "
                "every image. Ask your technician to set up an offsite copy: a server in another building, "
                "cloud storage, or backup drives taken home.",
            )
        )
    for name, info in copies.items():
        drive = info.get("drive")
        out.append(drive_light(name, info, drive, now, tz) if drive else offsite_light(name, info, now, t, tz))
    if cloud:
        out.append(cloud_light(cloud, now, t, tz))
    group = status.get("group")
    if group:  # this clinic's images in its group's store
        out.append(group_light(group, now, t, tz))
    out.append(drill_light(offsite, now, t, tz))

    forecasts = [("store", "the local backup copy", store.get("forecast") if store else None)]
    forecasts += [(name, copy_name(name, info), info.get("forecast")) for name, info in copies.items()]
    for key, who, fc in forecasts:
        if fc and fc.get("quota_bytes"):
            out.append(space_light(key, who, fc))
    disk = status.get("disk")
    if disk and disk.get("total_bytes"):
        out.append(disk_light(disk, t))
    return out


def alerts_off_light() -> Light:
    """No alert destination at all (configured or stored): a red light would reach nobody who is not
    looking at this page, so the banner must not say all is well."""
    return Light(
        "alerts",
        "Alerts",
        AMBER,
        "off",
        "Nobody is told when something breaks. Add an e-mail address under Settings → Alerts.",
    )
