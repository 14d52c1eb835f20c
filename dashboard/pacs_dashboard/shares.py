"""Share links: one study each, for an owner or a referring vet, opened without an account.

A link is a random token of 256 bits; the dashboard keeps only its sha256, so a copy of the database gives
no working link. Each link has an expiry, an optional PIN (hashed like account passwords), can be revoked,
and every open is kept (time, address, browser). The tables are made by step 4 of db.MIGRATIONS.

Failed tokens and wrong PINs are counted per address in the login throttle's table (security.py), under
keys of their own, so a recipient's typing never locks staff out of the login page.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from werkzeug.security import check_password_hash, generate_password_hash

from pacs_backup.contracts.errors import ConfigError
from pacs_backup.settings.env_values import number

from .db import Database
from .viewer_page import ViewerHeader

TOKEN_BYTES = 32  # 256 bits; secrets.token_urlsafe(32) is 43 characters
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
_PIN = re.compile(r"[A-Za-z0-9]{4,12}")
PIN_RULE = "A PIN has 4 to 12 letters or digits."

# Throttling (per address, in the login throttle's 15-minute window): failed tokens and wrong PINs together,
# wrong PINs for one link, and opens of the recipient's page.
WINDOW_S = 15 * 60
MAX_FAILURES_PER_ADDRESS = 10
MAX_WRONG_PINS_PER_LINK = 5
# Wrong PINs for one link from every address together: past this the link is withdrawn for good (a leaked link
# tried from many addresses gets 20 guesses at its PIN in all, not 5 per address).
MAX_WRONG_PINS_ALL = 20
MAX_OPENS_PER_ADDRESS = 60
RECENT_S = 30 * 86400  # ended links stay on the "Shared links" page this long

State = Literal["live", "expired", "revoked"]


@dataclass(frozen=True)
class ShareSettings:
    """How long a new link lasts unless staff choose (``DASHBOARD_SHARE_DAYS``) and the longest allowed
    (``DASHBOARD_SHARE_MAX_DAYS``)."""

    default_days: float = 7.0
    max_days: float = 90.0
    # The address recipients reach the dashboard by (``DASHBOARD_SHARE_URL``, e.g. https://pacs.clinic.example);
    # "" = the address the member of staff making the link used.
    base_url: str = ""


def load_share_settings(env: Mapping[str, str]) -> ShareSettings:
    """Read the settings; ConfigError naming the variable when out of range or not an http(s) address."""
    most = number(env, "DASHBOARD_SHARE_MAX_DAYS", 90.0, 1, 365)
    base = (env.get("DASHBOARD_SHARE_URL") or "").strip().rstrip("/")
    parts = urlsplit(base)
    if base and (parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment):
        raise ConfigError(
            f"DASHBOARD_SHARE_URL={base!r} is not an http(s) address such as https://pacs.clinic.example."
        )
    default = number(env, "DASHBOARD_SHARE_DAYS", min(7.0, most), 0.01, most)
    return ShareSettings(default_days=default, max_days=most, base_url=base)


# What the recipient's page says about the study: the viewer's header, kept when the link is made.
ShareHeader = ViewerHeader


@dataclass(frozen=True)
class ShareOpen:
    at: float
    ip: str
    user_agent: str


@dataclass(frozen=True)
class ShareLink:
    """A link as the store keeps it (never its token)."""

    id: int
    study_uid: str
    header: ShareHeader
    made_by: str
    made_at: float
    expires_at: float
    pin_hash: str | None
    revoked_at: float | None
    revoked_by: str | None

    def state(self, now: float) -> State:
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if now >= self.expires_at else "live"

    @property
    def has_pin(self) -> bool:
        return self.pin_hash is not None


@dataclass(frozen=True)
class ListedLink:
    """A row of the "Shared links" page: the link, how often it was opened and its latest opens."""

    link: ShareLink
    state: State
    opens: int
    latest: list[ShareOpen]


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def is_token(text: str) -> bool:
    """Whether ``text`` is shaped like a token this dashboard makes (anything else is unknown at once)."""
    return _TOKEN.fullmatch(text) is not None


def pin_problem(pin: str) -> str | None:
    return None if _PIN.fullmatch(pin) else PIN_RULE


def new_pin() -> str:
    """Six digits, for staff who do not choose one."""
    return f"{secrets.randbelow(10**6):06d}"


def check_pin(link: ShareLink, pin: str) -> bool:
    return link.pin_hash is not None and check_password_hash(link.pin_hash, pin)


_SELECT = "SELECT id, study_uid, header, made_by, made_at, expires_at, pin_hash, revoked_at, revoked_by FROM shares"


def _link(row: tuple[object, ...]) -> ShareLink:
    header: ShareHeader = json.loads(str(row[2]))
    return ShareLink(
        id=int(str(row[0])),
        study_uid=str(row[1]),
        header=header,
        made_by=str(row[3]),
        made_at=float(str(row[4])),
        expires_at=float(str(row[5])),
        pin_hash=None if row[6] is None else str(row[6]),
        revoked_at=None if row[7] is None else float(str(row[7])),
        revoked_by=None if row[8] is None else str(row[8]),
    )


class ShareStore:
    """The links and their opens, in the dashboard's database."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def create(
        self, study_uid: str, header: ShareHeader, made_by: str, days: float, pin: str | None, now: float | None = None
    ) -> tuple[str, ShareLink]:
        """Make a link; returns its token (shown once, never stored) and the link."""
        at = time.time() if now is None else now
        token = secrets.token_urlsafe(TOKEN_BYTES)
        pin_hash = generate_password_hash(pin) if pin else None
        self.db.execute(
            "INSERT INTO shares (token_hash, study_uid, header, made_by, made_at, expires_at, pin_hash)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (token_digest(token), study_uid, json.dumps(header), made_by, at, at + days * 86400, pin_hash),
        )
        link = self.find(token)
        if link is None:  # cannot happen: the row was written a moment ago
            raise LookupError("the new share link was not saved")
        return token, link

    def find(self, token: str) -> ShareLink | None:
        """The link of ``token`` (live or ended), or None when there is none."""
        if not is_token(token):
            return None
        rows = self.db.query(_SELECT + " WHERE token_hash=?", (token_digest(token),))
        return _link(rows[0]) if rows else None

    def get(self, link_id: int) -> ShareLink | None:
        rows = self.db.query(_SELECT + " WHERE id=?", (link_id,))
        return _link(rows[0]) if rows else None

    def revoke(self, link_id: int, by: str, now: float | None = None) -> bool:
        """End a link now; False when it was revoked already (or does not exist)."""
        at = time.time() if now is None else now
        done = self.db.execute(
            "UPDATE shares SET revoked_at=?, revoked_by=? WHERE id=? AND revoked_at IS NULL", (at, by, link_id)
        )
        return done == 1

    def set_expiry(self, link_id: int, at: float) -> None:
        """Move a link's expiry (a technician's repair, and tests)."""
        self.db.execute("UPDATE shares SET expires_at=? WHERE id=?", (at, link_id))

    def record_open(self, link_id: int, ip: str, user_agent: str, now: float | None = None) -> None:
        at = time.time() if now is None else now
        self.db.execute(
            "INSERT INTO share_opens (share_id, at, ip, user_agent) VALUES (?, ?, ?, ?)",
            (link_id, at, ip[:100], user_agent[:300]),
        )

    def opens(self, link_id: int, limit: int = 5) -> list[ShareOpen]:
        rows = self.db.query(
            "SELECT at, ip, user_agent FROM share_opens WHERE share_id=? ORDER BY at DESC, id DESC LIMIT ?",
            (link_id, limit),
        )
        return [ShareOpen(float(r[0]), str(r[1]), str(r[2])) for r in rows]

    def opens_from(self, ip: str, since: float) -> int:
        return int(self.db.query("SELECT COUNT(*) FROM share_opens WHERE ip=? AND at>=?", (ip, since))[0][0])

    def listing(self, now: float | None = None, latest: int = 5) -> list[ListedLink]:
        """Live links and those ended in the last 30 days, newest first, with their opens."""
        at = time.time() if now is None else now
        since = at - RECENT_S
        rows = self.db.query(
            _SELECT + " WHERE (revoked_at IS NULL AND expires_at > ?) OR revoked_at > ?"
            " ORDER BY made_at DESC, id DESC LIMIT 1000",
            (since, since),
        )
        counts = dict(self.db.query("SELECT share_id, COUNT(*) FROM share_opens GROUP BY share_id"))
        out = []
        for row in rows:
            link = _link(row)
            out.append(ListedLink(link, link.state(at), int(counts.get(link.id, 0)), self.opens(link.id, latest)))
        return out


# --- who may make links ---------------------------------------------------------------------------------
def may_share(db: Database, username: str | None, role: str | None) -> bool:
    """Administrators always may; staff when their account has the permission; monitor accounts never."""
    if username is None or role not in ("admin", "staff"):
        return False
    if role == "admin":
        return True
    rows = db.query("SELECT may_share FROM users WHERE username=?", (username,))
    return bool(rows and rows[0][0])


def account_may_share(db: Database, username: str) -> bool:
    """The permission as stored on the account (administrators may share whatever it says)."""
    rows = db.query("SELECT may_share FROM users WHERE username=?", (username,))
    return bool(rows and rows[0][0])


def set_may_share(db: Database, username: str, allowed: bool) -> None:
    db.execute("UPDATE users SET may_share=? WHERE username=?", (1 if allowed else 0, username))


# --- throttling of failed tokens and wrong PINs (per address) --------------------------------------------------
def _count(db: Database, key: str, since: float) -> int:
    return int(db.query("SELECT COUNT(*) FROM login_failures WHERE key=? AND at>=?", (key, since))[0][0])


def _wait(db: Database, key: str, limit: int, at: float) -> float:
    rows = db.query("SELECT at FROM login_failures WHERE key=? ORDER BY at DESC LIMIT ?", (key, limit))
    return max(0.0, float(rows[-1][0]) + WINDOW_S - at) if len(rows) >= limit else 0.0


def blocked(db: Database, ip: str, link_id: int | None = None, now: float | None = None) -> float:
    """Seconds before this address may try share links again (0: allowed): too many failed tokens or wrong
    PINs from it, too many wrong PINs for this link from it, or too many opens from it."""
    at = time.time() if now is None else now
    waits = [_wait(db, f"share:{ip}", MAX_FAILURES_PER_ADDRESS, at)]
    if link_id is not None:
        waits.append(_wait(db, f"share-pin:{ip}\n{link_id}", MAX_WRONG_PINS_PER_LINK, at))
    store = ShareStore(db)
    if store.opens_from(ip, at - WINDOW_S) >= MAX_OPENS_PER_ADDRESS:
        waits.append(60.0)
    return max(waits)


def record_failure(db: Database, ip: str, link_id: int | None = None, now: float | None = None) -> None:
    """A token that opens nothing (``link_id`` None) or a wrong PIN for ``link_id``, from ``ip``."""
    at = time.time() if now is None else now
    db.execute("DELETE FROM login_failures WHERE key LIKE 'share%' AND at < ?", (at - WINDOW_S,))
    db.execute("INSERT INTO login_failures VALUES (?, ?)", (f"share:{ip}", at))
    if link_id is not None:
        db.execute("INSERT INTO login_failures VALUES (?, ?)", (f"share-pin:{ip}\n{link_id}", at))
        db.execute("INSERT INTO login_failures VALUES (?, ?)", (f"share-pin-all:{link_id}", at))


def too_many_wrong_pins(db: Database, link_id: int, now: float | None = None) -> bool:
    """The link's PIN was typed wrong MAX_WRONG_PINS_ALL times lately, from whatever addresses."""
    at = time.time() if now is None else now
    return _count(db, f"share-pin-all:{link_id}", at - WINDOW_S) >= MAX_WRONG_PINS_ALL


def failures_from(db: Database, ip: str, now: float | None = None) -> int:
    at = time.time() if now is None else now
    return _count(db, f"share:{ip}", at - WINDOW_S)
