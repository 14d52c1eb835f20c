"""Opening the project's SQLite databases the one way they are all used."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def open_db(path: Path, schema: str) -> sqlite3.Connection:
    """Open (creating folder and file if needed) a database shared by threads, in WAL mode.

    Callers serialise access with their own lock. ``schema`` is run on every open, so it must use
    ``IF NOT EXISTS``: that is also what lets a newer version open an older file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(schema)
    return db
