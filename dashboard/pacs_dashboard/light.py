"""A traffic light and the words every light uses: its three states, the worst of several, how long ago
something happened, and how staff call each copy.

Pure (no Flask, no I/O), like every module of lights: health.py (the whole page), copy_lights.py (each
copy), drill_light.py (the restore tests) and space_lights.py (space and the PACS disk).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Final

from pacs_backup.contracts.documents import LightColour, TargetDoc

GREEN: Final = "green"
AMBER: Final = "amber"
RED: Final = "red"
RANK: dict[LightColour, int] = {GREEN: 0, AMBER: 1, RED: 2}

# The clinic's targets (the settings page changes them): how fresh each copy must be, when the disk is full.
DEFAULT_TARGETS = {"replication_minutes": 5.0, "offsite_hours": 3.0, "drill_hours": 48.0, "disk_warn_percent": 90.0}

MINIO = "minio"  # the local backup copy's name as a source or a drill's target


@dataclass(frozen=True)
class Light:
    key: str
    label: str
    state: LightColour
    value: str
    advice: str
    note: str = ""  # e.g. "Last known state, at 14:01": shown when the part cannot be checked now


def age(seconds: float | None) -> str:
    """How long ago, as people say it: "90 seconds ago", "3.5 hours ago", "never"."""
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{seconds:.0f} seconds ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} minutes ago"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} hours ago"
    return f"{seconds / 86400:.1f} days ago"


def colour(value: object, default: LightColour) -> LightColour:
    """A light's colour as the plugin sent it, or ``default`` for anything else (a newer plugin's word)."""
    for known in RANK:
        if value == known:
            return known
    return default


def worst(*states: LightColour) -> LightColour:
    return max(states, key=lambda s: RANK[s]) if states else GREEN


def overall(ls: list[Light]) -> LightColour:
    """The worst state of all lights."""
    states = {light.state for light in ls}
    return RED if RED in states else AMBER if AMBER in states else GREEN


def as_json(ls: list[Light]) -> list[dict[str, str]]:
    return [asdict(light) for light in ls]


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
