"""What a page may take from a request: bounded, checked text; identifiers checked by the plugin's own rules
(:mod:`pacs_backup.contracts.inputs`) before any of them reaches a request the dashboard makes with its Orthanc
credentials; the rules of user names and passwords; and plain answers when the backend fails.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping
from typing import NoReturn

from flask import abort, request

from pacs_backup.contracts.errors import BackupError
from pacs_backup.contracts.inputs import MAX_NAME_CHARS, UID_RULE, is_name, is_run_id, is_snapshot_id, is_uid

from .backend_api import BackendError, BackendRefused, NotInBackend
from .light import MINIO

log = logging.getLogger(__name__)

# --- accounts ------------------------------------------------------------------------------------------
MAX_USERNAME, MAX_PASSWORD, MIN_PASSWORD = 100, 1000, 12
# Names that read the same in the audit log, an address and a monitoring tool's configuration.
_USERNAME = re.compile(r"[A-Za-z0-9._@-]{1,100}")
USERNAME_RULE = "A username may hold letters, digits and . _ @ - only, at most 100 characters."


def username_problem(username: str) -> str | None:
    """Why ``username`` cannot be a new user's name, or None."""
    return None if _USERNAME.fullmatch(username) else USERNAME_RULE


def new_password_problem(new: str, again: str) -> str | None:
    """Why a new password (typed twice) cannot be used, or None."""
    if len(new) < MIN_PASSWORD:
        return f"Choose a new password of {MIN_PASSWORD} characters or more."
    if new != again:
        return "The two new passwords are not the same."
    return None


# --- text of a form or an address ------------------------------------------------------------------------
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


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MODALITY = re.compile(r"[A-Z0-9]{0,16}")


def search_args() -> tuple[str, str, str, str]:
    """A search's text, first and last study date (``2026-11-27``) and modality (``CR``), each checked (400)."""
    q = arg_text("q", 200, "The search text")
    date_from, date_to = arg_text("from", 10, "The first date"), arg_text("to", 10, "The last date")
    modality = arg_text("modality", 16, "The modality").upper()
    for day in (date_from, date_to):
        if day and not _DATE.fullmatch(day):
            abort(400, f"{day!r} is not a date: write dates as 2026-11-27.")
    if not _MODALITY.fullmatch(modality):
        abort(400, "A modality is a short code of letters and digits, such as CR, DX or US.")
    return q, date_from, date_to, modality


# --- identifiers, by the plugin's rules -------------------------------------------------------------------
def study_uid_or_404(uid: str, sentence: str = f"There is no such study: {UID_RULE}.") -> str:
    """``uid`` when it is a study UID, else a 404. Checked before any call: the dashboard talks to Orthanc
    with its own credentials, so a path such as /studies/..%2F..%2Fsystem must never reach it."""
    if not is_uid(uid):
        abort(404, sentence)
    return uid


def run_id_or_404(run_id: int, sentence: str = "There is no such restore.") -> int:
    if not is_run_id(run_id):
        abort(404, sentence)
    return run_id


def restore_source(values: Mapping[str, str]) -> tuple[str, str | None]:
    """The copy (and snapshot) a restore is asked from: the local backup copy unless another is chosen;
    a 400 when it is not shaped like one the study's page lists."""
    source = (values.get("source") or MINIO).strip()[:MAX_NAME_CHARS]
    snapshot = (values.get("snapshot") or "").strip()[:MAX_NAME_CHARS] or None
    if not is_name(source) or (snapshot is not None and not is_snapshot_id(snapshot)):
        abort(400, "Choose a backup copy (and snapshot) from the list on the study's page.")
    return source, snapshot


# --- answers when the backend fails -------------------------------------------------------------------------
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
