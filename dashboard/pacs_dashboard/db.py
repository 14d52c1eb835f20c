"""The dashboard's own small database: users, sessions, audit log, alert state, settings and history samples.

The file lives on the clinic's volume for years and outlives many upgrades, so its layout is versioned:
``PRAGMA user_version`` says which of MIGRATIONS have run, and opening the file runs the missing ones in
order, each in one transaction.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from pacs_backup.sqlite import open_db

log = logging.getLogger(__name__)

# Version 1: the schema as first shipped. Kept exactly as it was (run on every open, IF NOT EXISTS) so
# that a new file and a version-1 file look the same before the migrations run.
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
MIGRATIONS: list[tuple[str, ...]] = [
    (),  # 1: _SCHEMA_V1 (created by open_db)
    (  # 2: server-side sessions (logout and password changes end them); failures keyed per address
        "CREATE TABLE IF NOT EXISTS sessions (id_hash TEXT PRIMARY KEY, username TEXT NOT NULL, csrf TEXT NOT NULL,"
        " created_at REAL NOT NULL, last_seen REAL NOT NULL, ip TEXT)",
        "CREATE INDEX IF NOT EXISTS sessions_username ON sessions (username)",
        "CREATE INDEX IF NOT EXISTS login_failures_key ON login_failures (key, at)",
        # Old rows were keyed per user name alone; the new keys mean something else (see security.py).
        "DELETE FROM login_failures",
    ),
]
SCHEMA_VERSION = len(MIGRATIONS)

# Sessions seen within this many seconds are not written again (one write a minute, not one a request).
_TOUCH_S = 30.0


def _migrate(db: sqlite3.Connection) -> None:
    db.execute("BEGIN IMMEDIATE")  # two processes opening the file at once migrate it once
    try:
        version = int(db.execute("PRAGMA user_version").fetchone()[0])
        if version > SCHEMA_VERSION:
            # A newer dashboard wrote this file and was rolled back; its extra tables do no harm here.
            log.warning(
                "dashboard database is version %d, newer than this dashboard (%d); using it as is",
                version,
                SCHEMA_VERSION,
            )
            db.execute("COMMIT")
            return
        for number in range(max(version, 1) + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[number - 1]:
                db.execute(statement)
            log.info("dashboard database migrated to version %d", number)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def _sid_hash(sid: str) -> str:
    # Only a digest is stored: a copy of the database does not hold usable session cookies.
    return hashlib.sha256(sid.encode()).hexdigest()


class Database:
    """Thread-safe SQLite access (the WSGI server and the monitor thread share it)."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = open_db(path, _SCHEMA_V1)
        with self._lock:
            _migrate(self._db)

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

    def add_user(self, username: str, password_hash: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO users VALUES (?, ?, ?)", (username, password_hash, time.time()))
            self._db.execute("DELETE FROM sessions WHERE username=?", (username,))

    def set_password(self, username: str, password_hash: str) -> int:
        """Change a password and end every session of that user (everywhere). Returns how many ended.

        Every way of changing a password must come through here, so that a session opened with the
        old password (perhaps by whoever learnt it) does not outlive it.
        """
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("UPDATE users SET password_hash=? WHERE username=?", (password_hash, username))
                ended = self._db.execute("DELETE FROM sessions WHERE username=?", (username,)).rowcount
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return int(ended)

    # --- sessions (the cookie holds only a random id; the server decides whether it is valid) ---
    def create_session(self, username: str, ip: str | None, now: float) -> tuple[str, str]:
        """Start a session. Returns ``(session id for the cookie, CSRF token for its forms)``."""
        sid, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        self.execute("INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?)", (_sid_hash(sid), username, csrf, now, now, ip))
        return sid, csrf

    def session(self, sid: str, now: float, lifetime_s: float, idle_s: float) -> tuple[str, str] | None:
        """``(username, csrf)`` of a live session, or None (unknown, ended, too old, idle too long)."""
        key = _sid_hash(sid)
        with self._lock:
            row = self._db.execute(
                "SELECT s.username, s.csrf, s.created_at, s.last_seen FROM sessions s "
                "JOIN users u ON u.username = s.username WHERE s.id_hash=?",
                (key,),
            ).fetchone()
            if row is None:
                return None
            username, csrf, created, seen = row
            if now - created > lifetime_s or (idle_s > 0 and now - seen > idle_s):
                self._db.execute("DELETE FROM sessions WHERE id_hash=?", (key,))
                return None
            if now - seen > _TOUCH_S:
                self._db.execute("UPDATE sessions SET last_seen=? WHERE id_hash=?", (now, key))
        return str(username), str(csrf)

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
