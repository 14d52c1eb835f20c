"""Passwords of HTTP basic authentication checked recently, so a DICOMweb viewer's hundreds of requests (one
per frame) do not each pay a full password hash (about 0.1 s of CPU and 32 MB with scrypt).

What is kept is a keyed digest (HMAC with a key made at start, never written) of the user name, the
password and the stored hash, with when it stops counting: a changed password (a new stored hash), a
removed user or five minutes end it. The password itself is never kept.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time

from .db import Database

TTL_S = 300.0
MAX_ENTRIES = 512
_KEY = secrets.token_bytes(32)
_lock = threading.Lock()
_verified: dict[str, float] = {}


def _digest(username: str, password: str, stored: str) -> str:
    text = "\0".join((username, password, stored)).encode("utf-8", "surrogatepass")
    return hmac.new(_KEY, text, hashlib.sha256).hexdigest()


def recently_verified(db: Database, username: str, password: str) -> bool:
    """Whether this password of ``username`` was verified in the last TTL_S seconds (and is still its own)."""
    stored = db.user_hash(username)
    if stored is None:
        return False
    key, now = _digest(username, password, stored), time.monotonic()
    with _lock:
        until = _verified.get(key)
    return until is not None and until > now


def remember(db: Database, username: str, password: str) -> None:
    """Note that ``password`` was just verified for ``username``."""
    stored = db.user_hash(username)
    if stored is None:
        return
    now = time.monotonic()
    with _lock:
        if len(_verified) >= MAX_ENTRIES:
            for key in [k for k, until in _verified.items() if until <= now] or list(_verified)[: MAX_ENTRIES // 2]:
                _verified.pop(key, None)
        _verified[_digest(username, password, stored)] = now + TTL_S
