"""The dashboard's own small database: users, audit log, alert state, settings and history samples."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from pacs_backup.sqlite import open_db

_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (username TEXT PRIMARY KEY, password_hash TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, username TEXT,
    ip TEXT, action TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS login_failures (key TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS alerts (problem TEXT PRIMARY KEY, raised_at REAL NOT NULL, message TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS settings (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS samples (at REAL PRIMARY KEY, data TEXT NOT NULL);
"""


class Database:
    """Thread-safe SQLite access (the WSGI server and the monitor thread share it)."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = open_db(path, _SCHEMA)

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
        self.execute("INSERT OR REPLACE INTO users VALUES (?, ?, ?)", (username, password_hash, time.time()))

    # --- audit ---
    def audit(self, action: str, username: str | None, ip: str | None, detail: str = "") -> None:
        self.execute("INSERT INTO audit (at, username, ip, action, detail) VALUES (?, ?, ?, ?, ?)",
                     (time.time(), username, ip, action, detail[:2000]))

    def audit_rows(self, limit: int = 500) -> list[tuple[Any, ...]]:
        return self.query("SELECT at, username, ip, action, detail FROM audit ORDER BY id DESC LIMIT ?", (limit,))

    # --- settings (JSON values) ---
    def setting(self, key: str, default: Any) -> Any:
        rows = self.query("SELECT v FROM settings WHERE k=?", (key,))
        return json.loads(rows[0][0]) if rows else default

    def set_setting(self, key: str, value: Any) -> None:
        self.execute("INSERT INTO settings VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET v=excluded.v",
                     (key, json.dumps(value)))

    # --- history samples for the charts ---
    def add_sample(self, at: float, data: dict[str, Any]) -> None:
        self.execute("INSERT OR REPLACE INTO samples VALUES (?, ?)", (at, json.dumps(data)))
        self.execute("DELETE FROM samples WHERE at < ?", (at - 31 * 86400,))

    def samples(self, since: float) -> list[tuple[float, dict[str, Any]]]:
        return [(float(a), json.loads(d)) for a, d in self.query("SELECT at, data FROM samples WHERE at >= ? "
                                                                  "ORDER BY at", (since,))]
