"""The "Time to get everything back" table: one row per copy, from the plugin's ``recovery_time``.

Pure functions (no Flask, no I/O): the page hands in the status and the clinic's time zone. A status of an
older plugin has no ``recovery_time`` key, and then there is no table (``None``), never an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from pacs_backup.contracts.documents import StatusDoc, TargetDoc

from .light import copy_name
from .timefmt import when

CLOUD_PACS = "cloud-pacs"


@dataclass(frozen=True)
class RecoveryRow:
    """One copy: how staff call it, the plugin's sentence, and when it was measured (in words)."""

    copy: str
    sentence: str
    measured: str  # "3 Dec 2026 14:02", or "Not yet"
    is_measured: bool


def _copy_words(name: str, kind: str, offsite: Mapping[str, Any]) -> str:
    if kind == "cloud_pacs" or name == CLOUD_PACS:
        return "the cloud PACS"
    info = offsite.get(name)
    target: TargetDoc | None = info if isinstance(info, dict) else None  # type: ignore[assignment]
    return copy_name(name, target)


def _row(entry: Mapping[str, Any], offsite: Mapping[str, Any], zone: tzinfo) -> RecoveryRow | None:
    name, sentence = entry.get("copy"), entry.get("sentence")
    if not isinstance(name, str) or not isinstance(sentence, str):
        return None  # not a row this page can read: left out rather than shown half
    at = entry.get("measured_on")
    measured = bool(entry.get("measured")) and isinstance(at, int | float)
    words = _copy_words(name, str(entry.get("kind") or ""), offsite)
    return RecoveryRow(
        copy=words[:1].upper() + words[1:],
        sentence=sentence,
        measured=when(float(at), zone) if measured and isinstance(at, int | float) else "Not yet",
        is_measured=measured,
    )


def recovery_rows(status: StatusDoc | None, zone: tzinfo) -> list[RecoveryRow] | None:
    """The table's rows; None when the status has no recovery times (an older plugin, or none known)."""
    if not status:
        return None
    entries: object = status.get("recovery_time")
    if not isinstance(entries, list):
        return None
    offsite: object = status.get("offsite")
    known = offsite if isinstance(offsite, Mapping) else {}
    rows = [_row(e, known, zone) for e in entries if isinstance(e, Mapping)]
    return [r for r in rows if r is not None]
