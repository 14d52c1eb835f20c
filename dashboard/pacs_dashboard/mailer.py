"""Plain e-mail alerts through the clinic's own mail server (DASHBOARD_SMTP_*), with the standard library.

smtplib rather than Apprise so that each failure is known by its exception type and told as a sentence
the technician can act on ("the mail server refused the login: check DASHBOARD_SMTP_USERNAME..."). The
mail server is set by the technician in the environment, never from a page, so its name may be shown.
The password is never shown or logged.
"""

from __future__ import annotations

import logging
import re
import smtplib
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from pacs_backup.contracts.errors import ConfigError
from pacs_backup.settings.env_values import secret

log = logging.getLogger(__name__)

SECURITY = ("starttls", "tls", "none")
TIMEOUT_S = 20.0
MAX_ADDRESS = 254
# One address, no display name, nothing a mail header could be split on.
_ADDRESS = re.compile(
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)+"
)


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    username: str | None
    password: str | None
    sender: str
    security: str  # starttls | tls | none

    def __repr__(self) -> str:  # never the password
        return f"SmtpSettings(host={self.host!r}, port={self.port}, security={self.security!r})"


@dataclass(frozen=True)
class MailResult:
    ok: bool
    sentence: str  # for the page and the log: which part failed and what to check; never the password


def is_plain_address(text: str) -> bool:
    """Whether ``text`` is a plain e-mail address (reception@clinic.example), not an Apprise URL."""
    return "://" not in text and "@" in text


def check_address(text: str) -> str | None:
    """Why ``text`` is not an e-mail address this box can write to (a sentence), or None."""
    if len(text) > MAX_ADDRESS or not _ADDRESS.fullmatch(text):
        shown = text if len(text) <= 100 else text[:97] + "..."
        return f"{shown!r} is not an e-mail address: write it as name@clinic.example, one address only."
    return None


def load_smtp_settings(env: Mapping[str, str]) -> SmtpSettings | None:
    """The clinic's mail server, or None when DASHBOARD_SMTP_HOST is not set. Raises ConfigError naming
    the variable that is wrong."""
    host = (env.get("DASHBOARD_SMTP_HOST") or "").strip()
    if not host:
        return None
    raw_port = (env.get("DASHBOARD_SMTP_PORT") or "587").strip()
    if not raw_port.isdigit() or not 1 <= int(raw_port) <= 65535:
        raise ConfigError(f"DASHBOARD_SMTP_PORT={raw_port!r} is not a port number (1 to 65535, usually 587 or 465).")
    security = (env.get("DASHBOARD_SMTP_SECURITY") or "starttls").strip().lower()
    if security not in SECURITY:
        raise ConfigError(f"DASHBOARD_SMTP_SECURITY={security!r} must be starttls, tls or none.")
    username = (env.get("DASHBOARD_SMTP_USERNAME") or "").strip() or None
    password = secret(env, "DASHBOARD_SMTP_PASSWORD", required=False) or None
    if username and not password:
        raise ConfigError("DASHBOARD_SMTP_USERNAME is set but no password: set DASHBOARD_SMTP_PASSWORD (or _FILE).")
    sender = (env.get("DASHBOARD_SMTP_FROM") or "").strip() or (username if username and "@" in username else "")
    if not sender:
        raise ConfigError("DASHBOARD_SMTP_FROM is not set: set it to the address alerts come from.")
    if check_address(sender):
        raise ConfigError(f"DASHBOARD_SMTP_FROM={sender!r} is not an e-mail address.")
    return SmtpSettings(host, int(raw_port), username, password, sender, security)


def send_mail(smtp: SmtpSettings, to: str, subject: str, body: str) -> MailResult:
    """Send one plain-text message to one address; the result says in words what went wrong."""
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = smtp.sender, to, subject
    msg["Date"], msg["Message-ID"] = formatdate(localtime=True), make_msgid(domain=smtp.sender.rpartition("@")[2])
    msg.set_content(body)
    try:
        _deliver(smtp, msg)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a sentence; the type is logged
        result = MailResult(False, _why(smtp, to, exc))
        log.warning("e-mail alert not sent (%s): %s", type(exc).__name__, result.sentence)
        return result
    return MailResult(True, f"sent to {to}")


def _deliver(smtp: SmtpSettings, msg: EmailMessage) -> None:
    context = ssl.create_default_context()
    client: smtplib.SMTP
    if smtp.security == "tls":
        client = smtplib.SMTP_SSL(smtp.host, smtp.port, timeout=TIMEOUT_S, context=context)
    else:
        client = smtplib.SMTP(smtp.host, smtp.port, timeout=TIMEOUT_S)
    with client:
        client.ehlo()
        if smtp.security == "starttls":
            client.starttls(context=context)
            client.ehlo()
        if smtp.username and smtp.password:
            try:
                client.login(smtp.username, smtp.password)
            except smtplib.SMTPServerDisconnected as exc:
                # smtplib tries the next login method after a refusal; servers that hang up on the
                # second try (aiosmtpd, some hosted ones) refused the login all the same.
                raise smtplib.SMTPAuthenticationError(535, b"closed during login") from exc
        client.send_message(msg)


# Each failure as a sentence naming what to check, by exception type; the first match wins, so specific
# types come before their bases. {where}: host:port, {to}: the recipient, {sender}: DASHBOARD_SMTP_FROM.
_WHY: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], str], ...] = (
    (
        smtplib.SMTPAuthenticationError,
        "The mail server refused the login: check DASHBOARD_SMTP_USERNAME and the password.",
    ),
    (smtplib.SMTPRecipientsRefused, "The mail server refused to send to {to}: check the address."),
    (smtplib.SMTPSenderRefused, "The mail server refused the sender {sender}: check DASHBOARD_SMTP_FROM."),
    (smtplib.SMTPDataError, "The mail server refused the message itself; its log says why."),
    (
        ssl.SSLCertVerificationError,
        "The mail server at {where} has a certificate this box does not trust: check DASHBOARD_SMTP_HOST.",
    ),
    (ssl.SSLError, "No secure connection to the mail server at {where}: check DASHBOARD_SMTP_SECURITY and the port."),
    (socket.gaierror, "The mail server name {host} is not known: check DASHBOARD_SMTP_HOST."),
    (
        ConnectionRefusedError,
        "The mail server at {where} refused the connection: check DASHBOARD_SMTP_HOST and DASHBOARD_SMTP_PORT.",
    ),
    (TimeoutError, "The mail server at {where} did not answer within " + f"{TIMEOUT_S:.0f} seconds."),
    (
        (smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError),
        "The mail server at {where} closed the connection: check DASHBOARD_SMTP_PORT and DASHBOARD_SMTP_SECURITY.",
    ),
    (smtplib.SMTPException, "The mail server did not accept the message; its log says why."),
    (OSError, "The mail server at {where} cannot be reached: check the network and DASHBOARD_SMTP_HOST."),
)


def _why(smtp: SmtpSettings, to: str, exc: Exception) -> str:
    words = {"where": f"{smtp.host}:{smtp.port}", "to": to, "sender": smtp.sender, "host": smtp.host}
    if isinstance(exc, smtplib.SMTPNotSupportedError):  # one type for two causes: the message tells which
        if "STARTTLS" in str(exc):
            return (
                "The mail server at {where} does not offer STARTTLS: check DASHBOARD_SMTP_PORT, or set "
                "DASHBOARD_SMTP_SECURITY=tls for port 465.".format(**words)
            )
        return "The mail server does not accept logins here: check DASHBOARD_SMTP_SECURITY and DASHBOARD_SMTP_USERNAME."
    for kinds, sentence in _WHY:
        if isinstance(exc, kinds):
            return sentence.format(**words)
    return "The e-mail could not be sent; the technician log has the details."
