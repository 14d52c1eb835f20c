"""The staff guide's list of lights: what each light on the health page watches, and what to do when it is
amber or red.

The labels are not copied here: they come from :func:`health.lights` itself, evaluated on sample states
that light every kind of part, so the printed guide always names the lights exactly as the health page
does. A light this module has no words for yet still appears, with the advice the health page gives.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, cast

from pacs_backup.contracts.documents import StatusDoc
from pacs_backup.contracts.runs import DrillSummary

from .health import lights

# A copy's own name appears in its light's label ("Offsite copy (offsite)"); the guide says "its name".
_SAMPLE_NAMES = ("copy-a", "copy-b", "copy-c")
_NAME_IN_LABEL = re.compile(r"\((?:" + "|".join(_SAMPLE_NAMES) + r")\)")
NAME_PLACEHOLDER = "(its name)"

# key prefix (the part of Light.key before any copy name) -> what the light watches, what to do.
_WORDS: dict[str, tuple[str, str]] = {
    "pacs": (
        "The PACS computer itself, which receives the X-ray machine's images and shows them on the viewing stations.",
        "Red: it does not answer. Check it is switched on and connected to the network; restart it if it is "
        "stuck. Images already backed up are safe. Call your technician if it does not answer within 15 minutes.",
    ),
    "backup": (
        "Whether the backup is running at all.",
        "Red: the backup is off or a setting is wrong; call your technician. Amber right after a restart: wait "
        "a few minutes.",
    ),
    "store": (
        "The first copy of every image, kept in this box and made within seconds.",
        "Red: new images wait safely in a queue but are not copied. Check the box is running, or call your technician.",
    ),
    "queue": (
        "Images received but not copied yet: normally none, or a few for a few seconds.",
        "Amber: some images are being tried again or were set aside. Red: images wait too long. None is lost; "
        "call your technician if it lasts an hour.",
    ),
    "offsite": (
        "The encrypted copy outside the building (against fire, flood and theft), brought up to date every hour.",
        'Amber: the last update failed and is tried again by itself; or "not offsite": the copy is on this '
        "box itself, so it protects against mistakes, not against fire or theft (ask your technician for a copy "
        "elsewhere). Red: there is no copy outside, or it is too old. Check the internet connection, then call "
        "your technician.",
    ),
    "drive": (
        "The external backup drive, plugged in to receive a copy and swapped with its twin.",
        "Plug in the drive the light names (the one to swap in next). Red: no drive has had a copy for too long.",
    ),
    "cloud": (
        "Every image also sent to the clinic's cloud PACS.",
        "Amber: images arrive there slowly or some are refused; they are tried again by themselves. Red: it "
        "does not answer; check the internet connection and call your technician if it lasts.",
    ),
    "drill": (
        "The restore test: every day a sample of images is read back from each copy and compared, byte for "
        "byte, with the original. It proves the copies work.",
        "Amber: no recent test; press 'Run a restore test now' on the Restore tests page. Red: a test found a "
        "problem; call your technician.",
    ),
    "space": (
        "How full the space for a copy is, and when it will be full at the present pace.",
        "Amber or red: more space is needed soon. Tell your technician, or whoever pays for the storage.",
    ),
    "disk": (
        "How full the PACS's own disk is.",
        "Amber or red: the disk is nearly full; call your technician to free space or add a disk.",
    ),
}


@dataclass(frozen=True)
class GuideEntry:
    """One kind of light: its labels as the health page shows them, and the guide's words for it."""

    kind: str
    labels: tuple[str, ...]
    watches: str
    when_not_green: str


def _kind(key: str) -> str:
    return "cloud" if key == "cloud-pacs" else key.split("-", 1)[0]


def _sample_states(now: float) -> list[StatusDoc | None]:
    """States that, between them, light every kind of part the health page knows."""
    run = {"state": "ok", "finished_at": now - 60, "summary": DrillSummary(checked=1, identical=1).to_json()}
    fc = {"size_bytes": 1, "quota_bytes": 10, "growth_bytes_per_month": 1, "months_until_full": 9.0, "light": "green"}
    copy = {"last_good_snapshot_age_s": 60, "last_drill": run, "forecast": fc}
    drive = {"connected": True, "sentence": "", "light": "green", "drives": [], "swap_next": None}
    full: dict[str, Any] = {
        "enabled": True,
        "store": {"reachable": True, "forecast": fc},
        "outbox_depth": 0,
        "offsite": {
            "minio": {"last_drill": run},
            _SAMPLE_NAMES[0]: {**copy, "repository": "rest:https://offsite.example/clinic"},
            _SAMPLE_NAMES[1]: {**copy, "repository": "rclone:cloud:clinic"},
            _SAMPLE_NAMES[2]: {**copy, "repository": "/mnt/drive", "drive": drive},
        },
        "cloud_pacs": {"reachable": True, "depth": 0, "verified": 1, "failing": 0},
        "disk": {"free_bytes": 5, "total_bytes": 10},
    }
    no_copies = {"enabled": True, "store": {"reachable": True}, "offsite": {}}
    on_box = {**full, "offsite": {_SAMPLE_NAMES[0]: {**copy, "same_box": True}}, "cloud_pacs": None}
    return [None] + [cast(StatusDoc, s) for s in ({"enabled": False}, full, no_copies, on_box)]


def guide_entries(now: float = 1_800_000_000.0) -> list[GuideEntry]:
    """Every kind of light, in the order the health page shows them."""
    labels: dict[str, list[str]] = {}
    advice: dict[str, str] = {}
    for state in _sample_states(now):
        for light in lights(state, None, now):
            label = _NAME_IN_LABEL.sub(NAME_PLACEHOLDER, light.label)
            kind = _kind(light.key)
            if label not in labels.setdefault(kind, []):
                labels[kind].append(label)
            advice.setdefault(kind, light.advice)
    return [
        # "Offsite copy" (none configured) is said by "Offsite copy (its name)" already.
        GuideEntry(kind, tuple(n for n in names if f"{n} {NAME_PLACEHOLDER}" not in names), *_words(kind, advice))
        for kind, names in labels.items()
    ]


def _words(kind: str, advice: dict[str, str]) -> tuple[str, str]:
    """The guide's words for a kind; for a kind it does not know yet, the advice the health page gives."""
    return _WORDS.get(kind, ("", advice[kind]))
