"""Helpers shared by the tests: the repository root, the fingerprint copies record, polling."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def wait_until(cond: Callable[[], object], timeout: float, what: str, interval: float = 0.2) -> object:
    """Poll ``cond`` until truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = cond()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last value: {last!r})")
