"""The dead-man's switch: while the box is healthy it pings a heartbeat address (Healthchecks-style) every
few minutes; while a light is red it pings ``<address>/fail``. If the box dies, the pings stop and the
outside service tells someone - alerts sent by the box itself cannot report its own death.

The address holds a secret token (anyone with it can fake "all is well"): pages show it masked and the
log never has it. A heartbeat address typed on a page may only go to a host listed in
DASHBOARD_HEARTBEAT_HOSTS (default: Healthchecks.io's hc-ping.com), as webhooks only go to
DASHBOARD_WEBHOOK_HOSTS, so the page cannot make the box call machines on the clinic's network. The
technician's DASHBOARD_HEARTBEAT_URL is trusted as it is.
"""

from __future__ import annotations

import logging
import socket
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlsplit

from pacs_backup.errors import ConfigError

from .db import Database

log = logging.getLogger(__name__)

DEFAULT_HOSTS = ("hc-ping.com",)
STORED = "heartbeat_url"
LAST = "heartbeat_last"
TIMEOUT_S = 10.0
MAX_URL = 500


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
    sentence: str  # what happened, without the address


def check_url(url: str, hosts: tuple[str, ...] | None) -> str | None:
    """Why ``url`` cannot be a heartbeat address (a sentence, without the address), or None.
    ``hosts`` None: any host (the technician's own setting)."""
    if len(url) > MAX_URL:
        return f"The heartbeat address is longer than {MAX_URL} characters."
    if any(not c.isprintable() or c.isspace() for c in url):
        return "The heartbeat address may not contain spaces or invisible characters."
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "The heartbeat address must start with https:// (for example https://hc-ping.com/<your check's id>)."
    if parts.username or parts.password:
        return "The heartbeat address may not hold a user name or password."
    if hosts is not None and parts.hostname.lower() not in hosts:
        listed = ", ".join(hosts) if hosts else "none is set"
        return (
            f"Heartbeats may only go to the hosts listed in DASHBOARD_HEARTBEAT_HOSTS ({listed}). "
            "Ask your technician to add the host there."
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
    return stored if stored and check_url(stored, settings.hosts) is None else ""


def last_ping(db: Database) -> Ping | None:
    row: Any = db.setting(LAST, None)
    return Ping(**row) if isinstance(row, dict) else None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect could lead anywhere; a heartbeat service answers directly."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirect)


def ping(url: str, fail: bool, now: float) -> Ping:
    target = url.rstrip("/") + "/fail" if fail else url
    request = urllib.request.Request(target, headers={"User-Agent": "pacs-backup-dashboard"})  # noqa: S310 - checked
    try:
        with _OPENER.open(request, timeout=TIMEOUT_S) as answer:
            answer.read(1024)
            return Ping(now, True, fail, "worked")
    except urllib.error.HTTPError as exc:
        sentence = f"did not work: the heartbeat service answered {exc.code}"
    except urllib.error.URLError as exc:
        sentence = "did not work: " + _reason(exc.reason)
    except (TimeoutError, OSError) as exc:
        sentence = "did not work: " + _reason(exc)
    log.warning("heartbeat ping %s", sentence)  # never the address: it holds the check's secret id
    return Ping(now, False, fail, sentence)


def _reason(reason: object) -> str:
    if isinstance(reason, socket.gaierror):
        return "the heartbeat service's name is not known (check the internet connection)"
    if isinstance(reason, ConnectionRefusedError):
        return "the heartbeat service refused the connection"
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
    result = ping(url, red, now)
    db.set_setting(LAST, asdict(result))
    return result
