"""The dashboard's own small database: users, sessions, audit log, alert state, settings and history samples.

The file lives on the clinic's volume for years and outlives many upgrades, so its layout is versioned:
``PRAGMA user_version`` says which of MIGRATIONS have run, and opening the file runs the missing ones in
order, each in one transaction (:mod:`pacs_backup.state.migrate`, as for the plugin's database); a file
from a newer dashboard is refused with a sentence.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pacs_backup.state.migrate import Step, migrate, sql
from pacs_backup.state.sqlite import open_db

from .roles import Role

log = logging.getLogger(__name__)

# Version 1: the schema as first shipped, exactly (IF NOT EXISTS): files of the first release have no
# user_version (0), and pass through it unchanged.
_SCHEMA_V1 = """
CREATE TABLE IF NOT EXISTS users (username TEXT PRIMARY KEY, password_hash TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, username TEXT,
    ip TEXT, action TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS login_failures (key TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS alerts (problem TEXT PRIMARY KEY, raised_at REAL NOT NULL, message TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS settings (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS samples (at REAL PRIMARY KEY, data TEXT NOT NULL);
"""

# MIGRATIONS[n - 1] brings a file from version n - 1 to version n. Append only; never edit a shipped one.
MIGRATIONS: list[Step] = [
    sql(*(statement for statement in _SCHEMA_V1.split(";") if statement.strip())),  # 1
    sql(  # 2: server-side sessions (logout and password changes end them); failures keyed per address
        "CREATE TABLE IF NOT EXISTS sessions (id_hash TEXT PRIMARY KEY, username TEXT NOT NULL, csrf TEXT NOT NULL,"
        " created_at REAL NOT NULL, last_seen REAL NOT NULL, ip TEXT)",
        "CREATE INDEX IF NOT EXISTS sessions_username ON sessions (username)",
        "CREATE INDEX IF NOT EXISTS login_failures_key ON login_failures (key, at)",
        # Old rows were keyed per user name alone; the new keys mean something else (see security.py).
        "DELETE FROM login_failures",
    ),
    sql(  # 3: roles (users from before stay administrators), 2-step login, last login, logins awaiting a code
        "ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'admin'",
        "ALTER TABLE users ADD COLUMN totp_secret TEXT",
        "ALTER TABLE users ADD COLUMN totp_pending TEXT",  # shown to the user, not yet confirmed by a code
        "ALTER TABLE users ADD COLUMN totp_last_step INTEGER",  # the last code used cannot be used again
        "ALTER TABLE users ADD COLUMN last_login REAL",
        "CREATE TABLE IF NOT EXISTS pending_logins (id_hash TEXT PRIMARY KEY, username TEXT NOT NULL,"
        " created_at REAL NOT NULL, next TEXT NOT NULL DEFAULT '')",
    ),
    sql(  # 4: share links of one study each (only a digest of the token is kept) and every open of them
        "ALTER TABLE users ADD COLUMN may_share INTEGER NOT NULL DEFAULT 0",
        "CREATE TABLE IF NOT EXISTS shares (id INTEGER PRIMARY KEY AUTOINCREMENT, token_hash TEXT NOT NULL UNIQUE,"
        " study_uid TEXT NOT NULL, header TEXT NOT NULL, made_by TEXT NOT NULL, made_at REAL NOT NULL,"
        " expires_at REAL NOT NULL, pin_hash TEXT, revoked_at REAL, revoked_by TEXT)",
        "CREATE TABLE IF NOT EXISTS share_opens (id INTEGER PRIMARY KEY AUTOINCREMENT, share_id INTEGER NOT NULL,"
        " at REAL NOT NULL, ip TEXT NOT NULL, user_agent TEXT NOT NULL)",
        "CREATE INDEX IF NOT EXISTS share_opens_share ON share_opens (share_id, at)",
        "CREATE INDEX IF NOT EXISTS share_opens_ip ON share_opens (ip, at)",
    ),
    sql(  # 5: group mode (group/grants.py, group/deliveries.py, group/drill_log.py): who sees which clinics,
        # "bring this study to my clinic" requests, and the restore tests seen in the clinics' heartbeats
        "CREATE TABLE IF NOT EXISTS group_grants (username TEXT NOT NULL, clinic TEXT NOT NULL,"
        " granted_by TEXT NOT NULL, granted_at REAL NOT NULL, PRIMARY KEY (username, clinic))",
        "CREATE TABLE IF NOT EXISTS group_deliveries (id INTEGER PRIMARY KEY AUTOINCREMENT,"
        " source_clinic TEXT NOT NULL, study_uid TEXT NOT NULL, target_clinic TEXT NOT NULL,"
        " requested_by TEXT NOT NULL, requested_at REAL NOT NULL, state TEXT NOT NULL DEFAULT 'pending',"
        " taken_at REAL, finished_at REAL, sentence TEXT NOT NULL DEFAULT '', report TEXT NOT NULL DEFAULT '{}')",
        "CREATE INDEX IF NOT EXISTS group_deliveries_target ON group_deliveries (target_clinic, state)",
        "CREATE TABLE IF NOT EXISTS group_drills (clinic TEXT NOT NULL, target TEXT NOT NULL, run_id INTEGER NOT NULL,"
        " state TEXT NOT NULL, finished_at REAL NOT NULL, PRIMARY KEY (clinic, target, run_id))",
    ),
]
SCHEMA_VERSION = len(MIGRATIONS)

# Sessions seen within this many seconds are not written again (one write a minute, not one a request).
_TOUCH_S = 30.0


@dataclass(frozen=True)
class User:
    """A dashboard account as the Users page shows it (never its password hash or 2-step secret)."""

    username: str
    role: str
    two_step: bool
    created_at: float
    last_login: float | None


@dataclass(frozen=True)
class LiveSession:
    username: str
    csrf: str
    role: str


@dataclass(frozen=True)
class PendingLogin:
    """A login whose password was right and which waits for its 2-step code (not a session)."""

    username: str
    next: str


_SELECT_USERS = "SELECT username, role, totp_secret IS NOT NULL, created_at, last_login FROM users"


def _user(row: tuple[Any, ...]) -> User:
    return User(str(row[0]), str(row[1]), bool(row[2]), float(row[3]), None if row[4] is None else float(row[4]))


def _sid_hash(sid: str) -> str:
    # Only a digest is stored: a copy of the database does not hold usable session cookies.
    return hashlib.sha256(sid.encode()).hexdigest()


class Database:
    """Thread-safe SQLite access (the WSGI server and the monitor thread share it)."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = open_db(path, "")
        try:
            migrate(self._db, MIGRATIONS, "The dashboard database")  # a newer dashboard's: SchemaTooNew
        except BaseException:
            self._db.close()
            raise

    def query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def execute(self, sql: str, args: tuple[Any, ...] = ()) -> int:
        with self._lock:
            return self._db.execute(sql, args).rowcount

    # --- users ---
    def user_hash(self, username: str) -> str | None:
        rows = self.query("SELECT password_hash FROM users WHERE username=?", (username,))
        return str(rows[0][0]) if rows else None

    def user_count(self) -> int:
        return int(self.query("SELECT COUNT(*) FROM users")[0][0])

    def add_user(self, username: str, password_hash: str, role: Role = "admin") -> bool:
        """Add a user; False (and nothing changed) when one of that name, in any case, exists."""
        with self._lock:
            if self._db.execute("SELECT 1 FROM users WHERE lower(username)=lower(?)", (username,)).fetchone():
                return False
            self._db.execute(
                "INSERT INTO users (username, password_hash, created_at, role) VALUES (?, ?, ?, ?)",
                (username, password_hash, time.time(), role),
            )
            self._db.execute("DELETE FROM sessions WHERE username=?", (username,))
        return True

    def user(self, username: str) -> User | None:
        rows = self.query(_SELECT_USERS + " WHERE username=?", (username,))
        return _user(rows[0]) if rows else None

    def users(self) -> list[User]:
        return [_user(r) for r in self.query(_SELECT_USERS + " ORDER BY lower(username)")]

    def _only_admin(self, username: str) -> bool:
        """Whether ``username`` is the last administrator (call with the lock held, in a transaction)."""
        admins = [r[0] for r in self._db.execute("SELECT username FROM users WHERE role='admin'").fetchall()]
        return admins == [username]

    def _change_user(
        self, username: str, statements: list[tuple[str, tuple[Any, ...]]], *, keeps_admin: bool = False
    ) -> int | None:
        """Run ``statements`` and end the user's sessions, unless that would leave no administrator.

        Returns how many sessions ended, or None when refused. One transaction: two administrators
        demoting each other at the same moment cannot both succeed.
        """
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if not keeps_admin and self._only_admin(username):
                    self._db.execute("ROLLBACK")
                    return None
                for sql, args in statements:
                    self._db.execute(sql, args)
                ended = self._db.execute("DELETE FROM sessions WHERE username=?", (username,)).rowcount
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return int(ended)

    def set_role(self, username: str, role: Role) -> int | None:
        """Change a role and end the user's sessions; None when it would leave no administrator."""
        return self._change_user(
            username, [("UPDATE users SET role=? WHERE username=?", (role, username))], keeps_admin=role == "admin"
        )

    def remove_user(self, username: str) -> int | None:
        """Remove a user and end their sessions; None when they are the last administrator."""
        return self._change_user(
            username,
            [
                ("DELETE FROM users WHERE username=?", (username,)),
                ("DELETE FROM pending_logins WHERE username=?", (username,)),
            ],
        )

    def note_login(self, username: str, at: float) -> None:
        self.execute("UPDATE users SET last_login=? WHERE username=?", (at, username))

    # --- 2-step login (the secret never leaves the dashboard except once, to the user enabling it) ---
    def totp_secret(self, username: str) -> str | None:
        rows = self.query("SELECT totp_secret FROM users WHERE username=?", (username,))
        return str(rows[0][0]) if rows and rows[0][0] else None

    def totp_pending(self, username: str) -> str | None:
        rows = self.query("SELECT totp_pending FROM users WHERE username=?", (username,))
        return str(rows[0][0]) if rows and rows[0][0] else None

    def set_totp_pending(self, username: str, secret: str | None) -> None:
        self.execute("UPDATE users SET totp_pending=? WHERE username=?", (secret, username))

    def enable_totp(self, username: str, used_step: int) -> None:
        """The pending secret becomes the user's; the code that confirmed it cannot be used again."""
        self.execute(
            "UPDATE users SET totp_secret=totp_pending, totp_pending=NULL, totp_last_step=? WHERE username=?",
            (used_step, username),
        )

    def disable_totp(self, username: str) -> None:
        self.execute(
            "UPDATE users SET totp_secret=NULL, totp_pending=NULL, totp_last_step=NULL WHERE username=?", (username,)
        )

    def totp_last_step(self, username: str) -> int | None:
        rows = self.query("SELECT totp_last_step FROM users WHERE username=?", (username,))
        return int(rows[0][0]) if rows and rows[0][0] is not None else None

    def use_totp_step(self, username: str, step: int) -> bool:
        """Record ``step`` as used; False if it (or a later one) was used already, even a moment ago."""
        return (
            self.execute(
                "UPDATE users SET totp_last_step=? WHERE username=? AND (totp_last_step IS NULL OR totp_last_step < ?)",
                (step, username, step),
            )
            == 1
        )

    # --- logins waiting for their 2-step code (the cookie holds only a random id) ---
    def create_pending_login(self, username: str, next_page: str, now: float) -> str:
        pid = secrets.token_urlsafe(32)
        self.execute("INSERT INTO pending_logins VALUES (?, ?, ?, ?)", (_sid_hash(pid), username, now, next_page))
        return pid

    def pending_login(self, pid: str, now: float, max_age_s: float) -> PendingLogin | None:
        self.execute("DELETE FROM pending_logins WHERE created_at < ?", (now - max_age_s,))
        rows = self.query("SELECT username, next FROM pending_logins WHERE id_hash=?", (_sid_hash(pid),))
        return PendingLogin(str(rows[0][0]), str(rows[0][1])) if rows else None

    def end_pending_login(self, pid: str) -> None:
        self.execute("DELETE FROM pending_logins WHERE id_hash=?", (_sid_hash(pid),))

    def set_password(self, username: str, password_hash: str) -> int:
        """Change a password and end every session of that user (everywhere). Returns how many ended.

        Every way of changing a password must come through here, so that a session opened with the
        old password (perhaps by whoever learnt it) does not outlive it.
        """
        ended = self._change_user(
            username,
            [("UPDATE users SET password_hash=? WHERE username=?", (password_hash, username))],
            keeps_admin=True,
        )
        return ended or 0

    # --- sessions (the cookie holds only a random id; the server decides whether it is valid) ---
    def create_session(self, username: str, ip: str | None, now: float) -> tuple[str, str]:
        """Start a session. Returns ``(session id for the cookie, CSRF token for its forms)``."""
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        self.execute("INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?)", (_sid_hash(sid), username, csrf, now, now, ip))
        return sid, csrf

    def session(self, sid: str, now: float, lifetime_s: float, idle_s: float) -> LiveSession | None:
        """The user, CSRF token and role of a live session, or None (unknown, ended, too old, idle too long)."""
        key = _sid_hash(sid)
        with self._lock:
            row = self._db.execute(
                "SELECT s.username, s.csrf, s.created_at, s.last_seen, u.role FROM sessions s "
                "JOIN users u ON u.username = s.username WHERE s.id_hash=?",
                (key,),
            ).fetchone()
            if row is None:
                return None
            username, csrf, created, seen, role = row
            if now - created > lifetime_s or (idle_s > 0 and now - seen > idle_s):
                self._db.execute("DELETE FROM sessions WHERE id_hash=?", (key,))
                return None
            if now - seen > _TOUCH_S:
                self._db.execute("UPDATE sessions SET last_seen=? WHERE id_hash=?", (now, key))
        return LiveSession(str(username), str(csrf), str(role))

    def end_sessions_of(self, username: str, keep_sid: str | None = None) -> int:
        """End every session of ``username`` but ``keep_sid`` (this browser's), and their logins waiting for
        a 2-step code. Returns how many sessions ended."""
        keep = _sid_hash(keep_sid) if keep_sid else ""
        with self._lock:
            ended = self._db.execute("DELETE FROM sessions WHERE username=? AND id_hash<>?", (username, keep)).rowcount
            self._db.execute("DELETE FROM pending_logins WHERE username=?", (username,))
        return int(ended)

    def end_session(self, sid: str) -> None:
        self.execute("DELETE FROM sessions WHERE id_hash=?", (_sid_hash(sid),))

    def prune_sessions(self, now: float, lifetime_s: float, idle_s: float) -> None:
        self.execute(
            "DELETE FROM sessions WHERE created_at < ? OR (? > 0 AND last_seen < ?)",
            (now - lifetime_s, idle_s, now - idle_s),
        )

    # --- audit ---
    def audit(self, action: str, username: str | None, ip: str | None, detail: str = "") -> None:
        self.execute(
            "INSERT INTO audit (at, username, ip, action, detail) VALUES (?, ?, ?, ?, ?)",
            (time.time(), username, ip, action, detail[:2000]),
        )

    def audit_rows(self, limit: int = 500) -> list[tuple[Any, ...]]:
        return self.query("SELECT at, username, ip, action, detail FROM audit ORDER BY id DESC LIMIT ?", (limit,))

    # --- settings (JSON values) ---
    def setting(self, key: str, default: Any) -> Any:
        rows = self.query("SELECT v FROM settings WHERE k=?", (key,))
        return json.loads(rows[0][0]) if rows else default

    def set_setting(self, key: str, value: Any) -> None:
        self.execute(
            "INSERT INTO settings VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v=excluded.v", (key, json.dumps(value))
        )

    # --- history samples for the charts ---
    def add_sample(self, at: float, data: dict[str, Any]) -> None:
        self.execute("INSERT OR REPLACE INTO samples VALUES (?, ?)", (at, json.dumps(data)))
        self.execute("DELETE FROM samples WHERE at < ?", (at - 31 * 86400,))

    def samples(self, since: float) -> list[tuple[float, dict[str, Any]]]:
        return [
            (float(a), json.loads(d))
            for a, d in self.query("SELECT at, data FROM samples WHERE at >= ? ORDER BY at", (since,))
        ]
