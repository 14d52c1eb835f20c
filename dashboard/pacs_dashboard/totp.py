"""Time-based one-time codes (RFC 6238, the codes of authenticator apps), with the standard library only.

SHA-1, 30-second steps and 6 digits: what every authenticator app does by default. A code is accepted
one step early or late (a phone's clock drifts), and the caller stores the step it matched so the same
code cannot be used twice.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import struct
from urllib.parse import quote, urlencode

STEP_S = 30
DIGITS = 6
WINDOW = 1  # steps either side of now
# The digits 0-9 only: str.isdigit() is also true for fullwidth (U+FF10-FF19) and Arabic-Indic (U+0660-0669) digits,
# which no authenticator app shows and which hmac.compare_digest refuses (it compares ASCII text only).
_CODE = re.compile(rf"[0-9]{{{DIGITS}}}", re.ASCII)


def is_code(typed: str) -> bool:
    """Whether ``typed`` is a code as apps show it: 6 digits 0-9, spaces between them allowed."""
    return _CODE.fullmatch(typed.replace(" ", "")) is not None


def new_secret() -> str:
    """A random 160-bit secret in base32 (what the app is given), as RFC 4226 recommends."""
    return base64.b32encode(secrets.token_bytes(20)).decode()


def _key(secret_b32: str) -> bytes:
    text = secret_b32.replace(" ", "").upper()
    return base64.b32decode(text + "=" * (-len(text) % 8))


def code_at(secret_b32: str, step: int, digits: int = DIGITS) -> str:
    """The code for time step ``step`` (RFC 4226's HOTP with the step as counter)."""
    mac = hmac.new(_key(secret_b32), struct.pack(">Q", step), hashlib.sha1).digest()
    offset = mac[-1] & 0x0F
    number = struct.unpack(">I", mac[offset : offset + 4])[0] & 0x7FFFFFFF
    return str(number % 10**digits).zfill(digits)


def step_of(at: float) -> int:
    return int(at // STEP_S)


def matching_step(secret_b32: str, code: str, at: float, after_step: int | None = None) -> int | None:
    """The time step ``code`` belongs to, within one step of ``at``, or None.

    Steps at or before ``after_step`` (the last code used) do not count, so a code seen over
    someone's shoulder cannot be typed again.
    """
    if not is_code(code):
        return None
    code = code.replace(" ", "")
    now_step = step_of(at)
    for step in range(now_step - WINDOW, now_step + WINDOW + 1):
        if after_step is not None and step <= after_step:
            continue
        if hmac.compare_digest(code_at(secret_b32, step), code):
            return step
    return None


def otpauth_uri(secret_b32: str, account: str, issuer: str = "PACS backup") -> str:
    """The address authenticator apps accept by hand (Key URI Format), for the app's "enter a key" option."""
    label = quote(f"{issuer}:{account}", safe=":@")
    query = urlencode({"secret": secret_b32, "issuer": issuer, "algorithm": "SHA1", "digits": DIGITS, "period": STEP_S})
    return f"otpauth://totp/{label}?{query}"
