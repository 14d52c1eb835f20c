"""The dead-man's switch: while the box is healthy it pings a heartbeat address (Healthchecks-style) every
few minutes; while a light is red it pings ``<address>/fail``. If the box dies, the pings stop and the
outside service tells someone - alerts sent by the box itself cannot report its own death.

The address holds a secret token (anyone with it can fake "all is well"): pages show it masked and the
log never has it. A heartbeat address typed on a page is held to the rules of alert addresses
(alert_hosts.py), with DASHBOARD_HEARTBEAT_HOSTS (default: Healthchecks.io's hc-ping.com) as the list:
its host must be listed; an address on this box or the clinic's network (loopback, private, link-local)
needs that address or its network listed too; checked when it is saved and again at every call, which
goes directly (no proxy) and follows no redirect. Saving an address calls it at once, so the page says
only whether a call worked; why not (refused host, closed port, no answer) goes to the audit log. The
technician's DASHBOARD_HEARTBEAT_URL is trusted as it is.
"""

from __future__ import annotations

import http.client
import logging
import socket
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

from pacs_backup.contracts.errors import ConfigError

from .alert_hosts import Allowed, Guard, guarded, normal, not_reachable
from .db import Database

log = logging.getLogger(__name__)

DEFAULT_HOSTS = ("hc-ping.com",)
STORED = "heartbeat_url"
LAST = "heartbeat_last"
TIMEOUT_S = 10.0
MAX_URL = 500
NOT_WORKED = "did not work (the audit log says why)"  # the same for every failure: no page maps the network


@dataclass(frozen=True)
class HeartbeatSettings:
    url: str = ""  # DASHBOARD_HEARTBEAT_URL; when set, the page cannot change it
    minutes: float = 5.0
    hosts: tuple[str, ...] = DEFAULT_HOSTS

    def __repr__(self) -> str:  # never the address
        return f"HeartbeatSettings(url={'set' if self.url else 'not set'}, minutes={self.minutes:g})"


@dataclass(frozen=True)
class Ping:
    at: float
    ok: bool
    fail: bool  # the ping said "something is red"
    sentence: str  # for the page: "worked" or NOT_WORKED
    detail: str = ""  # why not, for the audit log (administrators only); never the address


def check_url(url: str, hosts: tuple[str, ...] | None, *, resolve: bool = True) -> str | None:
    """Why ``url`` cannot be a heartbeat address (a sentence, without the address), or None.
    ``hosts`` None: any host (the technician's own setting). ``resolve``: also look up where the host's
    name points now (when typed; not for every listing, which must not wait on name lookups)."""
    if len(url) > MAX_URL:
        return f"The heartbeat address is longer than {MAX_URL} characters."
    if any(not c.isprintable() or c.isspace() for c in url):
        return "The heartbeat address may not contain spaces or invisible characters."
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "The heartbeat address must start with https:// (for example https://hc-ping.com/<your check's id>)."
    if parts.username or parts.password:
        return "The heartbeat address may not hold a user name or password."
    try:
        parts.port  # noqa: B018 - raises for a port that is not a number up to 65535
    except ValueError:
        return "The heartbeat address has a port that is not a number from 1 to 65535."
    if hosts is None:
        return None
    allowed = Allowed.of(hosts)
    if not allowed.has_host(parts.hostname):
        listed = ", ".join(hosts) if hosts else "none is set"
        return (
            f"Heartbeats may only go to the hosts listed in DASHBOARD_HEARTBEAT_HOSTS ({listed}). "
            "Ask your technician to add the host there."
        )
    private = not_reachable((normal(parts.hostname),), allowed) if resolve else None
    if private is not None:
        host, ip = private
        return (
            f"{host} is at {ip}, on this box or the clinic's own network. Heartbeats go there only when "
            f"your technician also lists {ip} (or its network) in DASHBOARD_HEARTBEAT_HOSTS."
        )
    return None


def load_heartbeat_settings(env: Mapping[str, str]) -> HeartbeatSettings:
    """Raises ConfigError naming the variable that is wrong (never showing the address)."""
    url = (env.get("DASHBOARD_HEARTBEAT_URL") or "").strip()
    problem = check_url(url, None) if url else None
    if problem:
        raise ConfigError(f"DASHBOARD_HEARTBEAT_URL: {problem}")
    raw = (env.get("DASHBOARD_HEARTBEAT_MINUTES") or "5").strip()
    try:
        minutes = float(raw)
    except ValueError:
        raise ConfigError(f"DASHBOARD_HEARTBEAT_MINUTES={raw!r} is not a number of minutes.") from None
    if not 1 <= minutes <= 1440:
        raise ConfigError(f"DASHBOARD_HEARTBEAT_MINUTES={raw!r} must be between 1 and 1440.")
    listed = env.get("DASHBOARD_HEARTBEAT_HOSTS")
    hosts = DEFAULT_HOSTS if listed is None else tuple(h.lower() for h in listed.replace(",", " ").split())
    return HeartbeatSettings(url, minutes, hosts)


def masked(url: str) -> str:
    """Scheme and host only: the path holds the check's secret id."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}/…" if parts.hostname else "…"


def current_url(db: Database, settings: HeartbeatSettings) -> str:
    """The technician's address, else the one stored from the alerts page (if its host is still listed)."""
    if settings.url:
        return settings.url
    stored = str(db.setting(STORED, "") or "")
    return stored if stored and check_url(stored, settings.hosts, resolve=False) is None else ""


def last_ping(db: Database) -> Ping | None:
    row: Any = db.setting(LAST, None)
    return Ping(**row) if isinstance(row, dict) else None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect could lead anywhere; a heartbeat service answers directly."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)
# For an address typed on a page: no proxy either (a proxy is a host the address does not name).
_DIRECT = urllib.request.build_opener(_NoRedirect, urllib.request.ProxyHandler({}))


def ping(url: str, fail: bool, now: float, allow: tuple[str, ...] | None = None) -> Ping:
    """Call the address (at /fail when ``fail``). ``allow``: DASHBOARD_HEARTBEAT_HOSTS, for an address
    typed on a page (the call is held to its host and the addresses allowed); None: trusted as set."""
    target = url.rstrip("/") + "/fail" if fail else url
    request = urllib.request.Request(target, headers={"User-Agent": "pacs-backup-dashboard"})  # noqa: S310 - checked
    guard = None if allow is None else Guard(frozenset({normal(urlsplit(url).hostname or "")}), Allowed.of(allow))
    try:
        with guarded(guard), (_OPENER if guard is None else _DIRECT).open(request, timeout=TIMEOUT_S) as answer:
            answer.read(1024)
            return Ping(now, True, fail, "worked")
    except urllib.error.HTTPError as exc:
        exc.close()
        moved = " (a redirect, which is not followed)" if 300 <= exc.code < 400 else ""
        detail = f"the heartbeat service answered {exc.code}{moved}"
    except urllib.error.URLError as exc:
        detail = _reason(exc.reason)
    except (TimeoutError, OSError) as exc:
        detail = _reason(exc)
    except http.client.HTTPException:
        detail = "the heartbeat service did not answer as a web service"
    if guard is not None and guard.refused:
        detail = f"not called: {guard.refused}"
    log.warning("heartbeat ping did not work: %s", detail)  # never the address: it holds the check's secret id
    return Ping(now, False, fail, NOT_WORKED, detail)


def _reason(reason: object) -> str:
    if isinstance(reason, socket.gaierror):
        return "the heartbeat service's name is not known (check the internet connection)"
    if isinstance(reason, ConnectionRefusedError):
        return "the heartbeat service refused the connection (a closed port)"
    if isinstance(reason, TimeoutError):
        return f"the heartbeat service did not answer within {TIMEOUT_S:.0f} seconds"
    return "the heartbeat service cannot be reached (check the internet connection)"


def beat(db: Database, settings: HeartbeatSettings, red: bool, now: float) -> Ping | None:
    """Ping when due (every ``minutes``) or at once when the box turned red or fine again; remember it."""
    url = current_url(db, settings)
    if not url:
        return None
    last = last_ping(db)
    if last is not None and last.fail == red and now - last.at < settings.minutes * 60:
        return None
    result = ping(url, red, now, None if settings.url else settings.hosts)
    if not result.ok and (last is None or last.ok or last.detail != result.detail):  # each new reason, once
        db.audit("heartbeat_failed", None, None, f"Heartbeat to {masked(url)} did not work: {result.detail}")
    db.set_setting(LAST, asdict(result))
    return result
