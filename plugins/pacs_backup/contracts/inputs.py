"""The shapes of what callers name in a request: a study's UID, a copy's (target's) name, a snapshot id, a run
id, a short line of text. One set of rules for both sides of the REST API: the plugin checks what arrives
(:mod:`pacs_backup.api.http_input`, a 400 when it does not fit) and the dashboard checks what it is about to
send with its Orthanc credentials (a 404 or 400 with a sentence before any request is made).

Pure predicates on text, nothing else: each side says no in its own way.
"""

from __future__ import annotations

import re

# DICOM UIDs are digits and dots; the PACS may hold other values a modality sent, which are kept but
# must still be one plain path segment (no separators, no control characters, no "..").
UID = re.compile(r"[0-9A-Za-z][0-9A-Za-z._-]{0,127}")
UID_RULE = "a study's identifier is digits and dots (letters, '-' and '_' are allowed), at most 128 characters"
# A copy (target or restore source) as the settings name it: letters, digits, - and _.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
MAX_NAME_CHARS = 64
# A restic snapshot id, whole or short.
SNAPSHOT_ID = re.compile(r"[0-9a-f]{6,64}")
# A backup drive's label, as staff type it when preparing one.
MAX_LABEL_CHARS = 64
# A run id: a whole number of at most this many digits.
RUN_ID_DIGITS = 15
MAX_RUN_ID: int = 10**RUN_ID_DIGITS - 1


def is_uid(text: str) -> bool:
    """One plain path segment shaped like a UID (never ``..``, ``/`` or a control character)."""
    return bool(UID.fullmatch(text)) and ".." not in text


def is_name(text: str) -> bool:
    return bool(NAME.fullmatch(text))


def is_snapshot_id(text: str) -> bool:
    return bool(SNAPSHOT_ID.fullmatch(text))


def is_run_id(number: int) -> bool:
    return 0 < number <= MAX_RUN_ID


def is_run_id_text(text: str) -> bool:
    """A run id as written in a path: digits only, at most RUN_ID_DIGITS of them."""
    return text.isdigit() and len(text) <= RUN_ID_DIGITS


def is_plain_text(text: str, max_chars: int) -> bool:
    """At most ``max_chars`` characters, none of them a control character (a label, a search word)."""
    return len(text) <= max_chars and not any(ord(c) < 32 for c in text)
