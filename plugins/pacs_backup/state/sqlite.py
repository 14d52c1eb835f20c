"""Opening the project's SQLite databases the one way they are all used."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path


def open_db(path: Path, schema: str) -> sqlite3.Connection:
    """Open (creating folder and file if needed) a database shared by threads, in WAL mode.

    Callers serialise access with their own lock. ``schema`` is run on every open, so it must use
    ``IF NOT EXISTS`` (versioned files pass "" and migrate, see :mod:`pacs_backup.state.migrate`). The file is
    created owner-only: it holds patient names (SQLite gives its -wal and -shm files the same mode).
    """
    if not path.parent.exists():
        path.parent.mkdir(parents=True, mode=0o700)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    if schema:
        db.executescript(schema)
    return db
