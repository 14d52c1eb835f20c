"""Checking what arrives at the plugin's REST routes before anything acts on it.

The plugin answers inside Orthanc's own web threads: a request that makes Python recurse deeply (a JSON
body nested some hundreds of levels) overflows that thread's stack and takes the whole PACS down,
which no ``except`` can catch. So bodies are measured without recursion before they are parsed, and
every value is checked for size and form (the shapes of identifiers are in
:mod:`pacs_backup.contracts.inputs`, which the dashboard checks too); anything else is a
:class:`BadRequest` (HTTP 400) with a sentence, never a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus

from pacs_backup.contracts.errors import BadRequest
from pacs_backup.contracts.inputs import is_name, is_plain_text, is_run_id_text, is_snapshot_id, is_uid

MAX_BODY_BYTES = 64 * 1024
MAX_JSON_DEPTH = 16
MAX_VALUE_CHARS = 256


def json_depth(text: str) -> int:
    """Deepest nesting of ``[`` / ``{`` in a JSON text, counted without recursion (strings skipped)."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def json_object(body: bytes) -> dict[str, Any]:
    """Parse a request body that must be a small JSON object (an empty body is ``{}``).

    Raises:
        BadRequest: too large, not UTF-8, nested too deep, not JSON, or not an object.
    """
    if not body.strip():
        return {}
    if len(body) > MAX_BODY_BYTES:
        raise BadRequest(f"The request is too large (more than {MAX_BODY_BYTES // 1024} KB).")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("The request is not UTF-8 text.") from None
    if json_depth(text) > MAX_JSON_DEPTH:
        raise BadRequest(f"The request nests more than {MAX_JSON_DEPTH} levels; send a flat JSON object.")
    try:
        value = json.loads(text)
    except ValueError:
        raise BadRequest("The request is not valid JSON.") from None
    if not isinstance(value, dict):
        raise BadRequest('Send a JSON object, e.g. {"target": "offsite"}.')
    return value


def text_field(
    payload: Mapping[str, Any], name: str, *, required: bool = False, max_chars: int = MAX_VALUE_CHARS
) -> str | None:
    """One string field of a JSON object, checked for type, length and control characters."""
    value = payload.get(name)
    if value is None or value == "":
        if required:
            raise BadRequest(f"The request needs {name!r}.")
        return None
    if not isinstance(value, str):
        raise BadRequest(f"{name!r} must be text.")
    if not is_plain_text(value, max_chars):
        raise BadRequest(f"{name!r} is too long or holds control characters.")
    return value


def decoded_query(raw: Mapping[str, str]) -> dict[str, str]:
    """Query arguments as typed: Orthanc hands them to plugins still URL-encoded (``Smith%5EBella``)."""
    out: dict[str, str] = {}
    for key, value in raw.items():
        try:
            text = unquote_plus(str(value), errors="strict")
        except UnicodeDecodeError:
            raise BadRequest(f"The value of {key!r} is not UTF-8 text.") from None
        if not is_plain_text(text, MAX_VALUE_CHARS):
            raise BadRequest(f"The value of {key!r} is too long or holds control characters.")
        out[str(key)] = text
    return out


def uid(value: str, what: str = "study") -> str:
    """A UID from a URL path, checked to be one plain segment (else BadRequest)."""
    text = unquote_plus(value)
    if not is_uid(text):
        raise BadRequest(f"That is not a valid {what} identifier.")
    return text


def snapshot_id(value: str | None) -> str | None:
    """A restic snapshot id (hex, 6 to 64 characters) or None."""
    if value is None:
        return None
    if not is_snapshot_id(value):
        raise BadRequest("A snapshot id is 8 or more hexadecimal characters, as listed for the study.")
    return value


def name(value: str | None, what: str) -> str | None:
    """A target or source name (letters, digits, - and _) or None."""
    if value is None:
        return None
    if not is_name(value):
        raise BadRequest(f"{value[:40]!r} is not a valid {what} name.")
    return value


def run_id(value: str) -> int:
    """A run id from a URL path."""
    if not is_run_id_text(value):
        raise BadRequest("A run id is a number.")
    return int(value)


def limit(value: str | None, default: int, highest: int) -> int:
    """A ``limit`` argument: a whole number, capped."""
    if not value:
        return default
    if not value.isdigit() or len(value) > 7:
        raise BadRequest(f"'{value[:20]}' is not a whole number.")
    return max(1, min(int(value), highest))
