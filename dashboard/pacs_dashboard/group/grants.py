"""Who sees which clinics in group mode: the group's administrators see every clinic; staff and monitors see
only the clinics an administrator granted them (table ``group_grants`` in the dashboard's SQLite file).

A clinic's staff are granted their own clinic; granting more lets them search, view and bring studies of
those clinics too. Every change is audited.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from ..db import Database
from ..roles import ADMIN
from .settings import is_clinic_id


def granted(db: Database, username: str) -> list[str]:
    """The clinics granted to ``username`` (sorted)."""
    rows = db.query("SELECT clinic FROM group_grants WHERE username=? ORDER BY clinic", (username,))
    return [str(r[0]) for r in rows]


def visible(db: Database, username: str | None, role: str | None, every: Iterable[str]) -> list[str]:
    """The clinics among ``every`` that this user may see: all of them for an administrator."""
    clinics = sorted(set(every))
    if role == ADMIN:
        return clinics
    if not username:
        return []
    mine = set(granted(db, username))
    return [c for c in clinics if c in mine]


def may_see(db: Database, username: str | None, role: str | None, clinic: str) -> bool:
    return role == ADMIN or bool(username and clinic in granted(db, username))


def set_grants(db: Database, username: str, clinics: Iterable[str], by: str, ip: str | None) -> list[str]:
    """Give ``username`` exactly ``clinics`` (invalid ids are left out); audits what changed. Returns them."""
    wanted = sorted({c for c in clinics if is_clinic_id(c)})
    before = granted(db, username)
    db.execute("DELETE FROM group_grants WHERE username=?", (username,))
    now = time.time()
    for clinic in wanted:
        db.execute(
            "INSERT INTO group_grants (username, clinic, granted_by, granted_at) VALUES (?, ?, ?, ?)",
            (username, clinic, by, now),
        )
    if before != wanted:
        detail = (
            f"{username} may now see clinics: {', '.join(wanted) or 'none'} (before: {', '.join(before) or 'none'})"
        )
        db.audit("group_grants_changed", by, ip, detail)
    return wanted


def forget_user(db: Database, username: str) -> None:
    """Remove a removed account's grants."""
    db.execute("DELETE FROM group_grants WHERE username=?", (username,))
