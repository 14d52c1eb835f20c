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
from .health import alerts_off_light
from .light import Light
from .mailer import SmtpSettings, check_address, is_plain_address, send_mail

if TYPE_CHECKING:
    from .config import DashboardSettings

log = logging.getLogger(__name__)

NOT_SENT = "could not be sent (the audit log says why)"
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
    # DASHBOARD_WEBHOOK_HOSTS for an address typed on the Alerts page (each send is held to them);
    # None for the technician's own APPRISE_URLS, trusted as set
    allow: tuple[str, ...] | None = None


@dataclass(frozen=True)
class Delivery:
    key: str
    shown: str
    ok: bool
    sentence: str  # "sent" or "could not be sent": the same for every failure, so no page maps the network
    detail: str = ""  # what happened, for the audit log (administrators only)


def key_of(address: str) -> str:
    return hashlib.sha256(address.encode()).hexdigest()[:16]


def masked(url: str) -> str:
    """Enough of an Apprise URL to recognise it, never its user name or password."""
    scheme, _, rest = url.partition("://")
    if not rest:
        return url[:8] + "…"
    host = rest.split("/", 1)[0].rpartition("@")[2]  # what follows any user:password@
    return f"{scheme}://{host[:4]}…"


def check(
    address: str, webhook_hosts: tuple[str, ...], smtp: SmtpSettings | None, *, resolve: bool = True
) -> str | None:
    """Why ``address`` cannot be an alert destination now (a sentence), or None. ``resolve``: also look up
    where an Apprise address's hosts point now (when typed; listings do not wait on name lookups)."""
    if is_plain_address(address):
        problem = check_address(address)
        if problem:
            return problem
        return None if smtp else f"{address} {NO_SMTP}"
    return alerts.check_alert_url(address, webhook_hosts, resolve=resolve)


def _destination(
    address: str, from_config: bool, problem: str | None, allow: tuple[str, ...] | None = None
) -> Destination:
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
        allow,
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
            out.append(_destination(u, False, check(u, webhook_hosts, smtp, resolve=False), webhook_hosts))
    return out


def usable(
    db: Database, env_urls: tuple[str, ...], webhook_hosts: tuple[str, ...], smtp: SmtpSettings | None
) -> list[Destination]:
    return [d for d in listing(db, env_urls, webhook_hosts, smtp) if d.problem is None]


def deliver(dest: Destination, title: str, body: str, smtp: SmtpSettings | None) -> Delivery:
    if is_plain_address(dest.address):
        if smtp is None:
            return Delivery(dest.key, dest.shown, False, "not sent: no mail server is set up")
        result = send_mail(smtp, dest.address, title, body)  # the technician's own mail server: its words help
        sentence = "sent" if result.ok else f"not sent. {result.sentence}"
        return Delivery(dest.key, dest.shown, result.ok, sentence, result.sentence)
    # Apprise: only "sent" or not, the same words for a refused host, a closed port or no answer: the reason
    # would let the page be used to explore the clinic's network. It goes to the audit log.
    sent = alerts.send_alert(dest.address, title, body, dest.allow)
    return Delivery(dest.key, dest.shown, sent.ok, "sent" if sent.ok else NOT_SENT, sent.detail)


def deliver_all(dests: list[Destination], title: str, body: str, smtp: SmtpSettings | None) -> list[Delivery]:
    return [deliver(d, title, body, smtp) for d in dests]


def of_settings(db: Database, settings: DashboardSettings) -> list[Destination]:
    return listing(db, settings.apprise_urls, settings.webhook_hosts, settings.smtp)


def alerts_lights(db: Database, settings: DashboardSettings) -> list[Light]:
    """The amber "alerts are off" light when no destination can be used, else none."""
    return [] if any(d.problem is None for d in of_settings(db, settings)) else [alerts_off_light()]
