"""Traffic lights: turns the plugin's status into one light per part, with the number and advice.

Pure functions (no Flask, no I/O) so that every rule is unit-tested. A light is green only when its part
was really checked and is fine: a restore test that checked no image proves nothing, an offsite copy that
has not had its first snapshot yet says when it will, and advice names the pages as the menu does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import tzinfo
from zoneinfo import ZoneInfo

from pacs_backup.contracts.documents import CloudDoc, DiskDoc, DriveDoc, RunDoc, StatusDoc, TargetDoc
from pacs_backup.contracts.documents import Forecast

from .timefmt import clock, months, size

GREEN, AMBER, RED = "green", "amber", "red"
_RANK = {GREEN: 0, AMBER: 1, RED: 2}

DEFAULT_TARGETS = {"replication_minutes": 5.0, "offsite_hours": 3.0, "drill_hours": 48.0, "disk_warn_percent": 90.0}

MINIO = "minio"
RESTORE_TESTS = "the Restore tests page"  # the menu's name for the drills page


@dataclass(frozen=True)
class Light:
    key: str
    label: str
    state: str
    value: str
    advice: str
    note: str = ""  # e.g. "Last known state, at 14:01": shown when the part cannot be checked now


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{seconds:.0f} seconds ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} minutes ago"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} hours ago"
    return f"{seconds / 86400:.1f} days ago"


def _run_age(run: RunDoc | None, now: float) -> float | None:
    finished = run.get("finished_at") if run else None
    return None if not finished else max(0.0, now - float(finished))


def _last_snapshot(info: TargetDoc) -> tuple[str | None, str | None]:
    """The state and the error of a copy's last snapshot; ``(None, None)`` before the first."""
    last = info.get("last_snapshot")
    return (last.get("state"), last.get("error")) if last else (None, None)


def worst(*states: str) -> str:
    return max(states, key=lambda s: _RANK.get(s, 0)) if states else GREEN


def copy_name(name: str, info: TargetDoc | None = None) -> str:
    """How staff call a copy: the local backup copy, the offsite copy (x), the backup drive (x), the cloud
    storage copy (x) (an rclone remote: Google Drive, Dropbox...). A name the words already say is not
    repeated: "the offsite copy", not "the offsite copy (offsite)"."""
    if name == MINIO:
        return "the local backup copy"
    if info and info.get("drive"):
        kind = "the backup drive"
    elif info and str(info.get("repository") or "").startswith("rclone:"):
        kind = "the cloud storage copy"
    else:
        kind = "the offsite copy"
    return kind if name.lower() in kind else f"{kind} ({name})"


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
    out.append(
        Light(
            "store",
            "Local backup copy",
            GREEN if reachable else RED,
            "reachable" if reachable else "unreachable",
            "Nothing to do."
            if reachable
            else "New images are kept safely in a queue but not copied yet. Check that the backup storage on "
            "this box is running, or call your technician.",
        )
    )

    depth, oldest = int(status.get("outbox_depth") or 0), status.get("oldest_pending_age_s")
    limit = t["replication_minutes"] * 60
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
    value = f"{depth} waiting" + (f", oldest {_age(oldest)}" if oldest is not None else "")
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
    for name, info in copies.items():
        drive = info.get("drive")
        out.append(_drive_light(name, info, drive, now, tz) if drive else _offsite_light(name, info, now, t, tz))
    cloud = status.get("cloud_pacs")
    if cloud:
        out.append(_cloud_light(cloud, now, t, tz))
    out.append(_drill_light(offsite, now, t, tz))

    forecasts = [("store", "the local backup copy", store.get("forecast") if store else None)]
    forecasts += [(name, copy_name(name, info), info.get("forecast")) for name, info in copies.items()]
    for key, who, fc in forecasts:
        if fc and fc.get("quota_bytes"):
            out.append(_space_light(key, who, fc))
    disk = status.get("disk")
    if disk and disk.get("total_bytes"):
        out.append(_disk_light(disk, t))
    return out


def _offsite_light(name: str, info: TargetDoc, now: float, t: dict[str, float], tz: tzinfo) -> Light:
    who = copy_name(name, info)[4:]
    label = who[0].upper() + who[1:]  # "Offsite copy (x)", "Cloud storage copy (x)"
    good_age = info.get("last_good_snapshot_age_s")
    last_state, last_error = _last_snapshot(info)
    due = info.get("next_snapshot_at")
    if good_age is None:
        if last_state == "failed":
            return Light(
                f"offsite-{name}",
                label,
                RED,
                "first snapshot failed",
                f"The first offsite snapshot did not work: {last_error} "
                + (f"It is tried again at {clock(due, tz, now)}. " if due else "")
                + "Call your technician if it fails again.",
            )
        if last_state in ("queued", "running"):
            return Light(
                f"offsite-{name}",
                label,
                GREEN,
                "first snapshot running now",
                "Nothing to do: the first offsite snapshot is being made.",
            )
        if due is not None and now < float(due) + t["offsite_hours"] * 3600:
            return Light(
                f"offsite-{name}",
                label,
                GREEN,
                f"first snapshot at {clock(due, tz, now)}",
                "Nothing to do: the first offsite snapshot runs by itself.",
            )
        return Light(
            f"offsite-{name}",
            label,
            RED,
            "no snapshot yet",
            "No offsite snapshot has been made"
            + (f", though one was due at {clock(due, tz, now)}" if due else "")
            + ". Check the internet connection and the offsite server, or call your technician.",
        )
    if good_age > t["offsite_hours"] * 3600:
        state = RED
        advice = f"The newest offsite copy is older than the {t['offsite_hours']:.0f}-hour target. " + (
            f"Last attempt: {last_error}"
            if last_state == "failed"
            else "Check the internet connection and the offsite server."
        )
    elif last_state == "failed":
        state, advice = AMBER, f"The last snapshot failed and will be tried again: {last_error}"
    else:
        state, advice = GREEN, "Nothing to do."
    return Light(f"offsite-{name}", label, state, f"newest {_age(good_age)}", advice)


def _drive_light(name: str, info: TargetDoc, drive: DriveDoc, now: float, tz: tzinfo) -> Light:
    state = str(drive["light"]) if drive.get("light") in _RANK else AMBER
    good_age = info.get("last_good_snapshot_age_s")
    last_state, last_error = _last_snapshot(info)
    parts: list[str] = []
    if drive.get("connected"):
        value = str(drive.get("sentence") or "A backup drive is plugged in.").rstrip(".")
        if last_state == "failed":
            state = worst(state, AMBER)
            parts.append(f"The last snapshot on it failed: {last_error}")
        elif state == GREEN:
            parts.append("Nothing to do.")
    else:
        value = "no backup drive plugged in"
        advice = str(drive.get("advice") or "Plug in the backup drive.")
        parts.append(advice)
        sentence = str(drive.get("sentence") or "").replace(advice, "").strip()  # the advice once, not twice
        if sentence and "plugged in" not in sentence.lower():
            parts.append(sentence)
    if drive.get("swap_next"):
        parts.append(f"Drive to swap in next: {drive['swap_next']}.")
    parts.append(
        f"Newest snapshot on a drive: {_age(good_age)}." if good_age is not None else "No drive has had a snapshot yet."
    )
    return Light(f"drive-{name}", f"Backup drive ({name})", state, value, " ".join(parts))


def _cloud_light(cloud: CloudDoc, now: float, t: dict[str, float], tz: tzinfo) -> Light:
    label = "Cloud PACS copy"
    depth, verified = int(cloud.get("depth") or 0), int(cloud.get("verified") or 0)
    oldest = cloud.get("oldest_pending_age_s")
    if cloud.get("reachable") is False:
        since = cloud.get("unreachable_since")
        return Light(
            "cloud-pacs",
            label,
            RED,
            "not answering" + (f" since {clock(since, tz, now)}" if since else ""),
            f"{depth} images wait here and are sent when the cloud PACS answers again. Check the internet "
            "connection; if it lasts, call your technician.",
        )
    if cloud.get("failing"):
        last_error = cloud.get("last_error")
        err = (last_error.get("message") if last_error else None) or ""
        return Light(
            "cloud-pacs",
            label,
            AMBER,
            f"{cloud['failing']} images being tried again",
            ("The cloud PACS refused some images: " + err + " " if err else "")
            + "They are tried again by themselves; call your technician if this lasts.",
        )
    if oldest is not None and oldest > max(t["replication_minutes"] * 60, 3600):
        return Light(
            "cloud-pacs",
            label,
            AMBER,
            f"{depth} waiting, oldest {_age(oldest)}",
            "Images reach the cloud PACS slowly; they are sent in order. Call your technician if this lasts.",
        )
    return Light(
        "cloud-pacs",
        label,
        GREEN,
        f"{verified} images sent and checked" + (f", {depth} waiting" if depth else ""),
        "Nothing to do.",
    )


def _drill_light(copies: Mapping[str, TargetDoc], now: float, t: dict[str, float], tz: tzinfo) -> Light:
    """Green only when the last restore test of every copy checked at least one image and all were identical."""
    label = "Restore test"
    if not copies:
        return Light(
            "drill",
            label,
            AMBER,
            "never run",
            f"No restore test has run yet; press 'Run a restore test now' on {RESTORE_TESTS}.",
        )
    failed, zero, untested, repaired = [], [], [], []
    ages: list[float] = []
    checked_total = identical_total = 0
    for name, info in copies.items():
        who, run = copy_name(name, info), info.get("last_drill")
        if not run:
            untested.append((who, info.get("next_drill_at")))
            continue
        if run.get("state") == "failed":
            failed.append((who, run))
            continue
        if run.get("state") in ("queued", "running"):
            good = info.get("last_good_drill_age_s")
            if good is None:
                untested.append((who, None))
            else:
                ages.append(float(good))
            continue
        summary = run.get("summary") or {}
        checked, identical = int(summary.get("checked") or 0), int(summary.get("identical") or 0)
        fixed = int(summary.get("repaired") or 0)
        if summary.get("mismatches") or identical + fixed < checked:
            failed.append((who, run))
            continue
        if checked == 0:
            zero.append((who, summary.get("note")))
            continue
        if fixed:
            repaired.append(who)
        checked_total, identical_total = checked_total + checked, identical_total + identical
        age = _run_age(run, now)
        if age is not None:
            ages.append(age)
    if failed:
        who, run = failed[0]
        error = run.get("error") or f"{who} did not come back identical."
        return Light(
            "drill",
            label,
            RED,
            f"{len(failed)} failed",
            f"A restore test of {who} found a problem: {error} Call your technician.",
        )
    if zero:
        who, note = zero[0]
        return Light(
            "drill",
            label,
            AMBER,
            "checked no images",
            f"The last restore test of {who} checked no images, so it proves nothing yet"
            + (f" ({str(note).rstrip('.')})" if note else "")
            + ". It checks images once some are "
            f"backed up; to test now, press 'Run a restore test now' on {RESTORE_TESTS}.",
        )
    if untested:
        who, due = untested[0]
        if due is not None and float(due) > now:
            return Light(
                "drill",
                label,
                AMBER,
                f"first test at {clock(due, tz, now)}",
                f"{who[0].upper() + who[1:]} has not been tested yet; the first restore test runs by itself "
                f"at {clock(due, tz, now)}, or press 'Run a restore test now' on {RESTORE_TESTS}.",
            )
        return Light(
            "drill",
            label,
            AMBER,
            "never run",
            f"{who[0].upper() + who[1:]} has never been tested; press 'Run a restore test now' on {RESTORE_TESTS}.",
        )
    oldest = max(ages) if ages else None
    if oldest is None or oldest > t["drill_hours"] * 3600:
        return Light(
            "drill",
            label,
            AMBER,
            f"last {_age(oldest)}",
            f"The last restore test is older than the {t['drill_hours']:.0f}-hour target; press "
            f"'Run a restore test now' on {RESTORE_TESTS}.",
        )
    checked_text = f" ({identical_total} of {checked_total} images identical)" if checked_total else ""
    if repaired:
        return Light(
            "drill",
            label,
            AMBER,
            f"passed {_age(oldest)}, with repairs",
            f"A damaged image in {repaired[0]} was repaired from the PACS. Nothing to do unless this "
            "happens again; then call your technician.",
        )
    return Light("drill", label, GREEN, f"passed {_age(oldest)}{checked_text}", "Nothing to do.")


def _space_light(key: str, who: str, fc: Forecast) -> Light:
    growth = int(fc.get("growth_bytes_per_month") or 0)
    value = f"{size(fc.get('size_bytes'))} of {size(fc.get('quota_bytes'))}, +{size(growth)} a month"
    when_full = months(fc.get("months_until_full"))
    state = str(fc["light"]) if fc.get("light") in _RANK else GREEN
    advice = str(fc.get("advice") or "")
    if state == GREEN:
        advice = (
            f"At this pace it is {when_full}. "
            if when_full
            else "At this pace it is not full within 10 years. "
            if growth
            else "It does not grow at the moment. "
        ) + "Nothing to do."
    elif when_full and when_full not in advice:
        advice = f"At this pace it is {when_full}. {advice}"
    return Light(f"space-{key}", f"Space for {who}", state, value, advice.strip())


def _disk_light(disk: DiskDoc, t: dict[str, float]) -> Light:
    used = 100.0 * (1 - disk["free_bytes"] / disk["total_bytes"])
    state = RED if used >= 97 else AMBER if used >= t["disk_warn_percent"] else GREEN
    advice = "Nothing to do." if state == GREEN else "The PACS disk is nearly full: free space or add a disk."
    fc = disk.get("forecast") or {}
    if fc:
        growth = int(fc.get("growth_bytes_per_month") or 0)
        when_full = months(fc.get("months_until_full"))
        pace = (
            (f"It grows about {size(growth)} a month" + (f"; {when_full}." if when_full else "."))
            if growth
            else "It does not grow at the moment."
        )
        if fc.get("light") in _RANK and _RANK[fc["light"]] > _RANK[state]:
            state = str(fc["light"])
            advice = str(fc.get("advice") or "Order a larger disk.")
        advice = f"{pace} {advice}"
    return Light("disk", "PACS disk space", state, f"{used:.0f}% used, {size(disk['free_bytes'])} free", advice)


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


def overall(ls: list[Light]) -> str:
    """The worst state of all lights."""
    states = {light.state for light in ls}
    return RED if RED in states else AMBER if AMBER in states else GREEN


def as_json(ls: list[Light]) -> list[dict[str, str]]:
    return [asdict(light) for light in ls]
