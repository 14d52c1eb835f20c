"""A restore as a person reads it: which copy it comes from ("the offsite copy as it was at 27 Nov 2026
14:05"), and what its progress page says at each step ("Getting the images ready", "Restoring: 3 of 6
images", never "0 of ?").

Pure functions (no Flask, no I/O): the pages hand in the plugin's run and the clinic's time zone.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import tzinfo
from typing import Any, TypedDict

from pacs_backup.contracts.runs import RestoreSummary

from .light import copy_name
from .timefmt import parse_iso, when

CLOUD_PACS = "cloud-pacs"  # the restore source that is the cloud PACS, not a backup copy


class Progress(TypedDict):
    """The progress page's words for a restore run, and its bar (``done`` of ``total``, when known)."""

    state: str | None
    total: int | None
    done: int | None
    headline: str
    detail: str


def source_words(source: str, snapshot_time: str | None, zone: tzinfo) -> str:
    """ "the local backup copy", "the offsite copy as it was at 27 Nov 2026 14:05" (named as the lights name it)."""
    if source == CLOUD_PACS:
        return "the cloud PACS"
    at = parse_iso(snapshot_time) if snapshot_time else None
    return copy_name(source) + (f" as it was at {when(at, zone)}" if at else "")


def progress_text(run: Mapping[str, Any], zone: tzinfo) -> Progress:
    """What the progress page says about a restore run: never "0 of ?", always a sentence."""
    s = RestoreSummary.from_json(run.get("summary"))
    total, done = s.total, s.done
    state = run.get("state")
    snaps = s.snapshots or ()
    used = source_words(str(run.get("target") or ""), snaps[0].time if len(snaps) == 1 else None, zone)
    out = Progress(state=state, total=total or None, done=done if total else None, headline="", detail="")
    if state == "queued":
        out["headline"] = "Waiting to start"
        out["detail"] = "The restore starts as soon as the backup service has finished what it is doing."
    elif state == "running" and not total:
        out["headline"] = "Getting the images ready"
        out["detail"] = "Finding the study in " + used + "; from an offsite copy this can take a few minutes."
    elif state == "running":
        out["headline"] = f"Restoring: {done or 0} of {total} images"
    elif state == "ok":
        out["headline"] = (
            f"Done: {total if s.verified is None else s.verified} of {total} images restored and verified "
            "identical to the backup."
        )
        out["detail"] = f"Restored from {used}."
        out["done"] = total
    else:
        out["headline"] = "The restore did not complete."
        error = str(run.get("error") or "The backup service did not say why.")
        error = error.replace("instances", "images").replace("instance", "image")
        if total and s.verified:
            error = f"{s.verified} of {total} images were restored and verified. {error}"
        out["detail"] = error + " Try again, or call your technician."
    return out
