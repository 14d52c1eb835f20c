"""Which alert addresses (Apprise URLs) the dashboard may send to, and sending one alert.

Apprise speaks to well over a hundred services, and some of its URLs let the writer choose HTTP
headers, the method, the payload and the host (``json://10.0.0.5:6379/?+X=1&method=GET``). An
administrator's browser could thus make the box talk to any machine on the clinic's network. Only the
services a clinic uses are allowed; each host they contact must be the service's own or listed by the
installer in DASHBOARD_WEBHOOK_HOSTS, and reach the box itself or the clinic's network only when its
address is listed too (alert_hosts.py); and no option sets headers, payload fields or the method, reads a
file on the box (PGP keys, message templates) or fetches keys from the recipient's domain (wkd=).

Whether a send worked is all a page says; why not (refused host, closed port, no answer) goes to the
audit log, so the Alerts page cannot be used to map the clinic's network.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import unquote

from .alert_hosts import Allowed, Guard, guarded, not_reachable, reading, unlisted

log = logging.getLogger(__name__)

SERVICES = {
    "mailto": "e-mail",
    "mailtos": "e-mail",
    "ntfy": "ntfy",
    "ntfys": "ntfy",
    "slack": "Slack",
    "discord": "Discord",
    "tgram": "Telegram",
    "gotify": "Gotify",
    "gotifys": "Gotify",
    "json": "webhook",
    "jsons": "webhook",
}
MAX_URL = 2000
ALLOWED_TEXT = (
    "e-mail (mailto://, mailtos://), ntfy (ntfy://, ntfys://), Slack (slack://), "
    "Discord (discord://), Telegram (tgram://), Gotify (gotify://, gotifys://) or a webhook "
    "(json://, jsons://); a server of your own only when it is listed in DASHBOARD_WEBHOOK_HOSTS"
)

# Options naming a file on this box (PGP keys; a message template, which may also be a web address) or
# fetching keys from the recipient's domain (a Web Key Directory lookup): Apprise reads them from any address.
FILES_OR_FETCHES = ("pgppub", "pgpprv", "wkd", "template")
_URL = re.compile(r"([A-Za-z0-9]{1,32})://(.*)", re.S)
_SECOND_URL = re.compile(r"[,;][A-Za-z0-9]{1,32}://")  # Apprise reads "a://x,b://y" as two addresses
_ENCODED_LINE_BREAK = re.compile(r"%0[AaDd]")


def scheme(url: str) -> str:
    match = _URL.fullmatch(url)
    return match.group(1).lower() if match else ""


def service_name(url: str) -> str:
    return SERVICES.get(scheme(url), "unknown service")


def shown(url: str) -> str:
    """The address as it can be shown in a message: one line, not endless."""
    text = "".join(c if c.isprintable() else "?" for c in url)
    return text if len(text) <= 100 else text[:97] + "..."


def check_alert_url(url: str, webhook_hosts: Iterable[str], *, resolve: bool = True) -> str | None:
    """Why ``url`` may not be used as an alert address (a sentence naming it), or None when it may.
    ``resolve``: also look up where its hosts' names point now (when it is added or changed; not for every
    listing, which must not wait on name lookups)."""
    name = shown(url)
    if len(url) > MAX_URL:
        return f"{name}: this alert address is longer than {MAX_URL} characters."
    if any(not c.isprintable() or c.isspace() for c in url) or _ENCODED_LINE_BREAK.search(url):
        return f"{name}: an alert address may not contain spaces, line breaks or other invisible characters."
    match = _URL.fullmatch(url)
    if match is None:
        return f"{name}: this is not an alert address. Use {ALLOWED_TEXT}."
    kind, rest = match.group(1).lower(), match.group(2)
    if kind not in SERVICES:
        return f"{name}: {kind}:// is not an alert service this box may use. Use {ALLOWED_TEXT}."
    if _SECOND_URL.search(rest):
        return f"{name}: this holds more than one alert address; put each on its own line."
    for query in rest.split("?")[1:]:
        for pair in re.split(r"[&;]", query):
            key = unquote(pair.partition("=")[0]).strip()  # as Apprise reads it (parse_qsd), before lower()
            if key[:1] in ("+", "-", ":") and key:
                return (
                    f"{name}: options starting with +, - or : (extra HTTP headers, parameters or payload "
                    "fields) are not allowed in alert addresses."
                )
            if key.lower() == "method":
                return f"{name}: choosing the HTTP method (method=) is not allowed in alert addresses."
            if key.lower() in FILES_OR_FETCHES:
                return (
                    f"{name}: options that read files on this box or fetch keys from elsewhere (pgppub=, "
                    "pgpprv=, wkd=, template=) are not allowed in alert addresses."
                )
    return _host_problem(url, name, webhook_hosts, resolve)


def _host_problem(url: str, name: str, webhook_hosts: Iterable[str], resolve: bool) -> str | None:
    """Why the hosts ``url`` will contact are not allowed (Apprise's own reading of it), or None."""
    found = reading(url)
    if found is None:
        return (
            f"{name}: this box cannot tell where this address would send alerts, so it is not used. "
            "Check it against the service's instructions."
        )
    kind, hosts = found
    allowed = Allowed.of(webhook_hosts)
    host = unlisted(kind, hosts, allowed)
    if host is not None:
        listed = ", ".join(sorted(h.lower() for h in webhook_hosts)) or "none is set"
        return (
            f"{name}: this sends to {host}, and alerts may only go to the services' own servers or to the hosts "
            f"listed in DASHBOARD_WEBHOOK_HOSTS ({listed}). Ask your technician to add the host there."
        )
    private = not_reachable(hosts, allowed) if resolve else None
    if private is not None:
        host, ip = private
        return (
            f"{name}: {host} is at {ip}, on this box or the clinic's own network. Alerts go there only when "
            f"your technician also lists {ip} (or its network) in DASHBOARD_WEBHOOK_HOSTS."
        )
    return None


@dataclass(frozen=True)
class Sent:
    ok: bool
    detail: str  # for the audit log (administrators only): what happened, never the address or its password


# What Apprise logged while sending, as a reason in words (the first match wins). Apprise's own words may
# hold the address's path or token, so only these sentences leave this module.
_REASONS = (
    (re.compile(r"connection refused|errno 111\b|winerror 10061"), "the host refused the connection (a closed port)"),
    (re.compile(r"timed out|timeout"), "the host did not answer in time"),
    (
        re.compile(r"name or service not known|nodename nor servname|name resolution|failed to resolve|getaddrinfo"),
        "the host's name could not be found",
    ),
    (re.compile(r"authentication|\b535\b"), "the service refused the login"),
    (re.compile(r"certificate|sslerror|\[ssl"), "no secure connection (certificate or TLS problem)"),
    (re.compile(r"no route to host|network is unreachable"), "the host cannot be reached from this box"),
)
_STATUS = re.compile(r"error=(\d{3})|error code:? ?(\d{3})|\b(\d{3}) error")


def reason(notes: list[str]) -> str:
    text = " ".join(notes).lower()
    for pattern, words in _REASONS:
        if pattern.search(text):
            return words
    status = _STATUS.search(text)
    if status:
        return f"the service answered with HTTP status {next(g for g in status.groups() if g)}"
    return "the service did not accept it (the technician log has Apprise's words)"


class _Notes(logging.Filter):
    """Keeps what Apprise logs in a thread that is sending (its debug lines carry the reason), and passes on
    to the log only what the log would have shown without it."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: dict[int, list[str]] = {}
        self.own_level = logging.NOTSET  # the level Apprise's logger had before (NOTSET: its parent's)

    def filter(self, record: logging.LogRecord) -> bool:
        notes = self.threads.get(record.thread or 0)
        if notes is not None:
            notes.append(record.getMessage())
        floor = self.own_level or logging.getLogger().getEffectiveLevel()
        return record.levelno >= floor


_NOTES = _Notes()
_notes_lock = threading.Lock()


@contextmanager
def _noting() -> Iterator[list[str]]:
    apprise_log = logging.getLogger("apprise")
    with _notes_lock:
        if _NOTES not in apprise_log.filters:
            _NOTES.own_level = apprise_log.level
            apprise_log.addFilter(_NOTES)
            apprise_log.setLevel(logging.DEBUG)
    notes: list[str] = []
    _NOTES.threads[threading.get_ident()] = notes
    try:
        yield notes
    finally:
        _NOTES.threads.pop(threading.get_ident(), None)


def send_alert(url: str, title: str, body: str, webhook_hosts: tuple[str, ...] | None = None) -> Sent:
    """Send one alert through Apprise. ``webhook_hosts`` None: the technician's own address, trusted as set;
    else held to the hosts the address names and the addresses allowed (see alert_hosts)."""
    found = reading(url) if webhook_hosts is not None else None
    if webhook_hosts is not None and (found is None or unlisted(found[0], found[1], Allowed.of(webhook_hosts))):
        return Sent(False, "not sent: its host is not allowed (see the Alerts page)")
    import apprise

    plugin = apprise.Apprise.instantiate(url)
    if plugin is None:
        log.warning("alert address for %s not understood by Apprise", service_name(url))
        return Sent(False, "not sent: Apprise could not read the address")
    guard = None
    if webhook_hosts is not None and found is not None:
        guard = Guard(frozenset(found[1]), Allowed.of(webhook_hosts))
        if hasattr(plugin, "redirects"):
            plugin.redirects = False  # a redirect would go to a host the address does not name
    with _noting() as notes, guarded(guard):
        try:
            ok = bool(plugin.notify(body=body, title=title))
        except Exception as exc:  # a broken alert service must never break the page; the log has the details
            log.exception("sending an alert through %s failed", service_name(url))
            notes.append(str(exc))
            ok = False
    if ok:
        return Sent(True, "sent")
    if guard is not None and guard.refused:
        return Sent(False, f"not sent: {guard.refused}")
    return Sent(False, f"not sent: {reason(notes)}")
