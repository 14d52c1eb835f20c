"""Which alert addresses (Apprise URLs) the dashboard may send to, and sending one test alert.

Apprise speaks to well over a hundred services, and some of its URLs let the writer choose HTTP
headers, the method, the payload and the host (``json://10.0.0.5:6379/?+X=1&method=GET``). An
administrator's browser could thus make the box talk to any machine on the clinic's network. Only the
services a clinic uses are allowed; webhooks only to hosts the installer listed in
DASHBOARD_WEBHOOK_HOSTS; and no option that sets headers, payload fields or the method.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import unquote

log = logging.getLogger(__name__)

SERVICES = {
    "mailto": "e-mail",
    "mailtos": "e-mail",
    "ntfy": "ntfy",
    "ntfys": "ntfy",
    "slack": "Slack",
    "msteams": "Microsoft Teams",
    "discord": "Discord",
    "tgram": "Telegram",
    "gotify": "Gotify",
    "gotifys": "Gotify",
    "json": "webhook",
    "jsons": "webhook",
}
WEBHOOKS = {"json", "jsons"}
MAX_URL = 2000
ALLOWED_TEXT = (
    "e-mail (mailto://, mailtos://), ntfy (ntfy://, ntfys://), Slack (slack://), Teams (msteams://), "
    "Discord (discord://), Telegram (tgram://), Gotify (gotify://, gotifys://) or a webhook "
    "(json://, jsons://) to a host listed in DASHBOARD_WEBHOOK_HOSTS"
)

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


def _host(rest: str) -> str:
    netloc = re.split(r"[/?#]", rest, maxsplit=1)[0].rpartition("@")[2]
    if netloc.startswith("["):
        return netloc[1:].partition("]")[0].lower()
    return netloc.partition(":")[0].lower()


def check_alert_url(url: str, webhook_hosts: Iterable[str]) -> str | None:
    """Why ``url`` may not be used as an alert address (a sentence naming it), or None when it may."""
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
            key = unquote(pair.partition("=")[0]).strip()
            if key[:1] in ("+", "-", ":") and key:
                return (
                    f"{name}: options starting with +, - or : (extra HTTP headers, parameters or payload "
                    "fields) are not allowed in alert addresses."
                )
            if key.lower() == "method":
                return f"{name}: choosing the HTTP method (method=) is not allowed in alert addresses."
    if kind in WEBHOOKS:
        allowed = sorted({h.lower() for h in webhook_hosts})
        if _host(rest) not in allowed:
            listed = ", ".join(allowed) if allowed else "none is set"
            return (
                f"{name}: webhooks may only go to the hosts listed in DASHBOARD_WEBHOOK_HOSTS ({listed}). "
                "Ask your technician to add the host there."
            )
    return None


def send_alert(url: str, title: str, body: str) -> bool:
    """Send one alert through Apprise; True when the service accepted it. Details go to the log only."""
    import apprise

    app = apprise.Apprise()
    if not app.add(url):
        log.warning("alert address for %s not understood by Apprise", service_name(url))
        return False
    try:
        return bool(app.notify(title=title, body=body))
    except Exception:  # a broken alert service must never break the page; the log has the details
        log.exception("sending an alert through %s failed", service_name(url))
        return False
