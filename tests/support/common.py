"""Helpers shared by the tests: the repository root, the fingerprint copies record, polling, raw HTTP."""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import time
import urllib.error
import urllib.request
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


def raw_request(
    url: str,
    method: str = "GET",
    body: bytes | None = None,
    auth: tuple[str, str] | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 30,
) -> tuple[int, str]:
    """Send one request to a test's own loopback server as an attacker would (no client-side checks);
    return the status and the body, for an error status too. Raises OSError when nothing (or a cut-off
    answer) comes back, as when the server dies on the request."""
    sent = dict(headers or {})
    if auth is not None:
        sent["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    req = urllib.request.Request(url, data=body, method=method, headers=sent)  # noqa: S310 - loopback test URL
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
            return resp.status, resp.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace")
    except http.client.HTTPException as exc:  # e.g. IncompleteRead: the server died while answering
        raise ConnectionError(f"{type(exc).__name__}: {exc}") from exc


def figure(name: str, **values: float | int | str) -> None:
    """Record a measured figure of a test run (never asserted on: performance is the benchmarks' job).

    Printed, and appended to test-artifacts/figures.jsonl so a `make test` run leaves them for the
    docs and the closing note.
    """
    line = json.dumps({"figure": name, **values})
    print(line)
    out = ROOT / "test-artifacts"
    out.mkdir(exist_ok=True)
    with (out / "figures.jsonl").open("a") as f:
        f.write(line + "\n")
