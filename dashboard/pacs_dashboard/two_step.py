"""Changing an account's 2-step login: what it takes and what follows.

A browser left logged in (or a stolen session cookie) must not be enough to turn the second step on with
someone else's phone, move it to a new phone or turn it off. Each change needs the password of the account
making it, and a code from the current phone when that account has 2-step login on; wrong ones count
towards the same lockout as wrong logins. After a change the account's other browsers are logged out
(this one carries on), the account is told by e-mail when its user name is an e-mail address, and the
audit log says who did it. A new key is shown and confirmed only within PROOF_S of the password.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import tzinfo

from flask import session

from . import mailer, security, totp
from .db import Database
from .mailer import SmtpSettings, check_address, is_plain_address
from .security import client_ip, record_failure, throttled, verify, wait_sentence
from .timefmt import when

log = logging.getLogger(__name__)

PROOF_S = 10 * 60  # how long after the password a new key may be shown and confirmed
_STARTED = "two_step_started"  # this browser's session: when it proved the password for a new key

WRONG_PASSWORD = "The password is wrong; nothing was changed."  # noqa: S105 - a sentence, not a password
WRONG_CODE = "The code from your app is wrong or was used already; nothing was changed. Type the code it shows now."
NOT_DIGITS = "Type the code with the digits 0 to 9, as your app shows it."


@dataclass(frozen=True)
class Refusal:
    sentence: str
    status: int


def prove(db: Database, user: str, password: str, code: str, what: str) -> Refusal | None:
    """None when ``password`` is ``user``'s and, if ``user`` has 2-step login on, ``code`` is a fresh code from
    their app (then used up). Otherwise why not; each failure counts towards the lockout and is audited."""
    wait = throttled(db, user)
    if wait > 0:
        return Refusal(wait_sentence(wait), 429)
    secret = db.totp_secret(user)
    problem: Refusal | None = None
    if secret and code and not totp.is_code(code):
        problem, why = Refusal(NOT_DIGITS, 400), "code not in the digits 0 to 9"
    elif not verify(db, user, password):  # before the code, so a wrong password does not use a code up
        problem, why = Refusal(WRONG_PASSWORD, 403), "wrong password"
    elif secret:
        step = totp.matching_step(secret, code, security.now(), db.totp_last_step(user))
        if step is None or not db.use_totp_step(user, step):
            problem, why = Refusal(WRONG_CODE, 403), "wrong code"
    if problem is not None:
        record_failure(db, user)
        db.audit("two_step_change_failed", user, client_ip(), f"{what}: {why}")
    return problem


def code_refused(db: Database, user: str) -> None:
    """A code typed in other digits than 0-9 where a new key is confirmed: counted like a wrong attempt."""
    record_failure(db, user)
    db.audit("two_step_change_failed", user, client_ip(), "confirm a new key: code not in the digits 0 to 9")


def started() -> None:
    """This browser proved the password: it may see and confirm a new key for PROOF_S."""
    session[_STARTED] = security.now()


def started_recently() -> bool:
    at = session.get(_STARTED)
    return isinstance(at, int | float) and 0 <= security.now() - at <= PROOF_S


def finished() -> None:
    session.pop(_STARTED, None)


@dataclass(frozen=True)
class Change:
    """One change to ``target``'s 2-step login made by ``actor`` (the same user, or an administrator)."""

    actor: str
    target: str
    action: str  # the audit log's name for it
    detail: str  # the audit log's words, without the sessions
    happened: str  # for the e-mail: "turned on", "moved to a new phone", ...


def after(db: Database, change: Change, smtp: SmtpSettings | None, tz: tzinfo) -> int:
    """Log out the target's other browsers (all of them when an administrator made the change for
    someone else), audit the change and e-mail the target. Returns how many sessions ended."""
    own = change.actor == change.target
    sid = session.get("sid")
    ended = db.end_sessions_of(change.target, sid if own and isinstance(sid, str) else None)
    sessions = f"{ended} other session(s)" if own else f"{ended} session(s)"
    db.audit(change.action, change.actor, client_ip(), f"{change.detail}; {sessions} logged out")
    _tell(db, change, smtp, tz)
    return ended


def _tell(db: Database, change: Change, smtp: SmtpSettings | None, tz: tzinfo) -> None:
    """E-mail the target when their user name is an e-mail address; a failure is audited, never raised."""
    address = change.target
    if not is_plain_address(address) or check_address(address):
        return
    if smtp is None:
        db.audit("two_step_notice_failed", change.actor, client_ip(), f"{address}: no mail server is set up")
        return
    by = "" if change.actor == change.target else f" by the administrator {change.actor}"
    body = (
        f"2-step login was {change.happened}{by} for your PACS backup account\n"
        f"{address} on {when(security.now(), tz)}, from the computer at {client_ip()}.\n"
        "Every other browser logged in as you was logged out.\n\n"
        "If this was not you, tell the clinic's administrator at once:\n"
        "someone may know your password.\n"
    )
    ip = client_ip()

    def send() -> None:
        try:
            result = mailer.send_mail(smtp, address, "PACS backup: your 2-step login was changed", body)
        except Exception as exc:  # noqa: BLE001 - never lost: the audit log says it was not sent
            result = mailer.MailResult(False, f"the e-mail could not be sent ({type(exc).__name__})")
        if not result.ok:
            db.audit("two_step_notice_failed", change.actor, ip, f"{address}: {result.sentence}")

    # Not in the request: a mail server that does not answer must not hold the page for its timeout.
    threading.Thread(target=send, name="two-step-notice", daemon=True).start()
