"""Where alerts go: plain e-mail addresses (sent through the clinic's mail server) and Apprise URLs, from
the configuration (APPRISE_URLS) and stored from the alerts page; and sending to them.

Each destination has a short key (a hash of the address) so pages can name one in a form without putting
an Apprise URL, which may hold a password, into the page.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import alerts
from .db import Database
from .health import Light, alerts_off_light
from .mailer import SmtpSettings, check_address, is_plain_address, send_mail

if TYPE_CHECKING:
    from .config import DashboardSettings

log = logging.getLogger(__name__)

STORED = "alert_urls"  # the stored list's settings key (kept from when it held Apprise URLs only)
MAX_STORED = 20
NO_SMTP = (
    "is a plain e-mail address, but this box has no mail server set up to send it. Ask your technician to "
    "set DASHBOARD_SMTP_HOST (and DASHBOARD_SMTP_FROM, the user name and password) in the configuration, "
    "or use an Apprise address such as mailtos://user:password@mail.example.com."
)


@dataclass(frozen=True)
class Destination:
    address: str
    key: str
    kind: str  # "e-mail", "ntfy", "webhook"...
    shown: str  # e-mail addresses in full; Apprise URLs masked (they may hold passwords)
    plain: bool  # a plain e-mail address (sent through the clinic's mail server)
    from_config: bool
    problem: str | None  # why it is not used, or None


@dataclass(frozen=True)
class Delivery:
    key: str
    shown: str
    ok: bool
    sentence: str  # "sent" or why not, fit for an administrator's page


def key_of(address: str) -> str:
    return hashlib.sha256(address.encode()).hexdigest()[:16]


def masked(url: str) -> str:
    """Enough of an Apprise URL to recognise it, never its user name or password."""
    scheme, _, rest = url.partition("://")
    if not rest:
        return url[:8] + "…"
    host = rest.split("/", 1)[0].rpartition("@")[2]  # what follows any user:password@
    return f"{scheme}://{host[:4]}…"


def check(address: str, webhook_hosts: tuple[str, ...], smtp: SmtpSettings | None) -> str | None:
    """Why ``address`` cannot be an alert destination now (a sentence), or None."""
    if is_plain_address(address):
        problem = check_address(address)
        if problem:
            return problem
        return None if smtp else f"{address} {NO_SMTP}"
    return alerts.check_alert_url(address, webhook_hosts)


def _destination(address: str, from_config: bool, problem: str | None) -> Destination:
    plain = is_plain_address(address)
    shown = address if plain else masked(address)
    if problem and not plain:  # the sentence starts with the whole address, which may hold a password
        problem = problem.replace(alerts.shown(address), shown, 1)
    return Destination(
        address,
        key_of(address),
        "e-mail" if plain else alerts.service_name(address),
        shown,
        plain,
        from_config,
        problem,
    )


def stored(db: Database) -> list[str]:
    return [u for u in db.setting(STORED, []) if isinstance(u, str)]


def listing(
    db: Database, env_urls: tuple[str, ...], webhook_hosts: tuple[str, ...], smtp: SmtpSettings | None
) -> list[Destination]:
    """Every destination: the configuration's first (trusted as set), then the stored ones, each checked
    again (one saved before a rule existed, or an e-mail address after the mail server was removed, is
    listed with why it is not used)."""
    out = [_destination(u, True, f"{u} {NO_SMTP}" if is_plain_address(u) and not smtp else None) for u in env_urls]
    seen = set(env_urls)
    for u in stored(db):
        if u not in seen:
            seen.add(u)
            out.append(_destination(u, False, check(u, webhook_hosts, smtp)))
    return out


def usable(
    db: Database, env_urls: tuple[str, ...], webhook_hosts: tuple[str, ...], smtp: SmtpSettings | None
) -> list[Destination]:
    return [d for d in listing(db, env_urls, webhook_hosts, smtp) if d.problem is None]


def deliver(dest: Destination, title: str, body: str, smtp: SmtpSettings | None) -> Delivery:
    if is_plain_address(dest.address):
        if smtp is None:
            return Delivery(dest.key, dest.shown, False, "not sent: no mail server is set up")
        result = send_mail(smtp, dest.address, title, body)
        return Delivery(dest.key, dest.shown, result.ok, "sent" if result.ok else f"not sent. {result.sentence}")
    # Apprise: only "sent" or not. The reason (refused connection, which port answered) would let the page
    # be used to explore the clinic's network; the log has it.
    ok = alerts.send_alert(dest.address, title, body)
    return Delivery(dest.key, dest.shown, ok, "sent" if ok else "could not be sent (the technician log has why)")


def deliver_all(dests: list[Destination], title: str, body: str, smtp: SmtpSettings | None) -> list[Delivery]:
    return [deliver(d, title, body, smtp) for d in dests]


def of_settings(db: Database, settings: DashboardSettings) -> list[Destination]:
    return listing(db, settings.apprise_urls, settings.webhook_hosts, settings.smtp)


def alerts_lights(db: Database, settings: DashboardSettings) -> list[Light]:
    """The amber "alerts are off" light when no destination can be used, else none."""
    return [] if any(d.problem is None for d in of_settings(db, settings)) else [alerts_off_light()]
