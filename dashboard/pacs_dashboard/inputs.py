"""What a page may take from a request: bounded, checked text, and plain answers when the backend fails."""

from __future__ import annotations

import logging
import math
from typing import NoReturn

from flask import abort, request

from pacs_backup.contracts.errors import BackupError

from .backend import BackendError, BackendRefused, NotInBackend

log = logging.getLogger(__name__)


def _bounded(value: str, limit: int, label: str, strip: bool) -> str:
    if len(value) > limit:
        abort(400, f"{label} is too long: at most {limit} characters. Check what you typed and try again.")
    return value.strip() if strip else value


def form_text(name: str, limit: int, label: str, *, strip: bool = True) -> str:
    """A form field, refused with a sentence (400) when longer than ``limit`` characters."""
    return _bounded(request.form.get(name, ""), limit, label, strip)


def arg_text(name: str, limit: int, label: str) -> str:
    """A query-string field, refused with a sentence (400) when longer than ``limit`` characters."""
    return _bounded(request.args.get(name, ""), limit, label, True)


def number_in(raw: str, unit: str, low: float, high: float) -> float | str:
    """The number typed, or the sentence that refuses it: "'five' is not a number of minutes.",
    "0 minutes is not allowed: give a number of minutes from 1 to 1440."."""
    what = "a percentage" if unit == "percent" else f"a number of {unit}"
    text = raw.strip()
    try:
        value = float(text)
    except ValueError:
        return f"'{text}' is not {what}." if text else f"Nothing was typed where {what} belongs."
    if not math.isfinite(value) or not low <= value <= high:
        shown = f"{text}%" if unit == "percent" else f"{text} {unit}"
        return f"{shown} is not allowed: give {what} from {low:g} to {high:g}."
    return value


GENERIC = "The backup service did not answer. Try again in a minute; the technician log has the details."


def sentence(exc: BackupError) -> str:
    """Text fit for a page: the dashboard's own backend errors carry one; anything else may hold
    internals (a stand-in, or a library's message) and goes to the log."""
    if isinstance(exc, BackendError):
        return str(exc)
    log.warning("backend call failed: %s", exc)
    return GENERIC


def abort_for(exc: BackupError) -> NoReturn:
    """Answer a failed backend call: 404 or 400 with the backend's sentence, else 503."""
    if isinstance(exc, NotInBackend):
        abort(404, str(exc))
    if isinstance(exc, BackendRefused):
        abort(400, str(exc))
    abort(503, sentence(exc))
