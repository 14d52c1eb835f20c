"""The light of each copy outside the PACS's own disk: an offsite copy (a restic repository, also a cloud
storage one through rclone), a backup drive that is plugged in and swapped, and the cloud PACS.

Pure functions (no Flask, no I/O). A light is green only when its copy was really made and is fresh enough:
an offsite copy that has not had its first snapshot yet says when it will.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import tzinfo

from pacs_backup.contracts.documents import CloudDoc, DriveDoc, LightColour, TargetDoc

from .light import AMBER, GREEN, RED, Light, age, colour, copy_name, worst
from .timefmt import clock
from .upload_window import held, judged_age, window_note

NOT_OFFSITE = "not offsite - protects against mistakes, not against fire or theft"
TREATED = "treated as offsite by setting"


def same_box(info: TargetDoc | CloudDoc) -> bool:
    """On this box, and not treated as offsite by BACKUP_TREAT_AS_OFFSITE (an older plugin says neither)."""
    return info.get("same_box") is True and not info.get("treated_as_offsite")


def placed(light: Light, info: TargetDoc | CloudDoc) -> Light:
    """A copy on this box is at best amber, saying so; one a setting treats as offsite says that instead."""
    where = str(info.get("same_box_reason") or "it is on this box")
    if info.get("same_box") is True and info.get("treated_as_offsite"):
        return replace(
            light,
            advice=f"{light.advice} This copy is {TREATED} (BACKUP_TREAT_AS_OFFSITE, for tests and trials): {where}.",
        )
    if not same_box(info):
        return light
    lost = (
        f"This copy is on the same box as the PACS ({where}): a fire, flood or theft of the box loses it too. "
        "Ask your technician for an offsite copy: a server in another building, cloud storage, or backup "
        "drives taken home."
    )
    if light.state == RED:  # what is broken first; where the copy is after
        return replace(light, advice=f"{light.advice} {lost}")
    first = light.value[0].upper() + light.value[1:] + "."  # "Newest 20 seconds ago." "First snapshot at 14:05."
    rest = "" if light.advice.startswith("Nothing to do") else f" {light.advice}"  # it is amber: there is
    return replace(light, state=AMBER, value=NOT_OFFSITE, advice=f"{first}{rest} {lost}")


def _last_snapshot(info: TargetDoc) -> tuple[str | None, str | None]:
    """The state and the error of a copy's last snapshot; ``(None, None)`` before the first."""
    last = info.get("last_snapshot")
    return (last.get("state"), last.get("error")) if last else (None, None)


def _with_window(light: Light, info: TargetDoc | CloudDoc, now: float, tz: tzinfo) -> Light:
    """The copy's upload rule and next window after its advice (a copy that shares the clinic's internet)."""
    note = window_note(info, now, tz)
    return replace(light, advice=f"{light.advice} {note}") if note else light


def offsite_light(name: str, info: TargetDoc, now: float, t: dict[str, float], tz: tzinfo) -> Light:
    return placed(_with_window(_offsite_light(name, info, now, t, tz), info, now, tz), info)


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
    state: LightColour
    if judged_age(info, good_age, now, tz) > t["offsite_hours"] * 3600:  # counting only its upload window
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
    return Light(f"offsite-{name}", label, state, f"newest {age(good_age)}", advice)


def drive_light(name: str, info: TargetDoc, drive: DriveDoc, now: float, tz: tzinfo) -> Light:
    state = colour(drive.get("light"), AMBER)
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
        f"Newest snapshot on a drive: {age(good_age)}." if good_age is not None else "No drive has had a snapshot yet."
    )
    return Light(f"drive-{name}", f"Backup drive ({name})", state, value, " ".join(parts))


def cloud_light(cloud: CloudDoc, now: float, t: dict[str, float], tz: tzinfo) -> Light:
    return placed(_with_window(_cloud_light(cloud, now, t, tz), cloud, now, tz), cloud)


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
    if held(cloud):
        return Light(
            "cloud-pacs",
            label,
            GREEN,
            f"{verified} images sent and checked" + (f", {depth} waiting for the upload window" if depth else ""),
            "Nothing to do: images are sent when the upload window opens.",
        )
    if oldest is not None and judged_age(cloud, oldest, now, tz) > max(t["replication_minutes"] * 60, 3600):
        return Light(
            "cloud-pacs",
            label,
            AMBER,
            f"{depth} waiting, oldest {age(oldest)}",
            "Images reach the cloud PACS slowly; they are sent in order. Call your technician if this lasts.",
        )
    return Light(
        "cloud-pacs",
        label,
        GREEN,
        f"{verified} images sent and checked" + (f", {depth} waiting" if depth else ""),
        "Nothing to do.",
    )
