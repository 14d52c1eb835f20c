"""Bringing a SQLite file up to date, the one way every versioned file of the project is: the plugin's
database (:mod:`pacs_backup.state.schema`), the dashboard's own and its mirror.

A file's version is ``PRAGMA user_version``: how many of its ordered steps have run. Opening it runs the
ones it has not seen, each together with its ``PRAGMA user_version = n`` in one ``BEGIN IMMEDIATE`` ...
``COMMIT``, so a crash or a failing step leaves the file at the version before that step, with its data,
never half-way; the next start runs the step again. A file newer than this release knows (written by a
newer release, then rolled back) is refused with one sentence naming it, its version and the newest this
release knows: opening it could lose what the newer release keeps there.

A step is a function of the connection. It runs inside the transaction, so it must use ``execute``
(never ``executescript``, which commits first); :func:`sql` makes a step of plain statements.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Sequence

from pacs_backup.contracts.errors import BackupError

Step = Callable[[sqlite3.Connection], None]

log = logging.getLogger(__name__)

_lock = threading.Lock()  # the threads of one process open their files one at a time


class SchemaTooNew(BackupError):
    """The file was written by a newer release: ``str(err)`` is the sentence to show, and the fields say
    which file, its version and the newest version this release knows."""

    def __init__(self, what: str, path: str, version: int, newest: int) -> None:
        self.what, self.path, self.version, self.newest = what, path, version, newest
        where = f" {path}" if path else ""
        super().__init__(
            f"{what}{where} was written by a newer release (version {version}; this release knows versions up "
            f"to {newest}): install that release or newer, or put back the file as it was before the upgrade."
        )


def sql(*statements: str) -> Step:
    """A step made of SQL statements, run in order."""

    def step(db: sqlite3.Connection) -> None:
        for statement in statements:
            db.execute(statement)

    return step


def user_version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def file_of(db: sqlite3.Connection) -> str:
    """The path of the connection's main file ("" in memory)."""
    for _, name, path in db.execute("PRAGMA database_list").fetchall():
        if name == "main":
            return str(path or "")
    return ""


def migrate(db: sqlite3.Connection, steps: Sequence[Step], what: str) -> int:
    """Run the steps ``db`` has not seen, one transaction each; return its version, ``len(steps)``.

    ``db`` must be in autocommit mode (``isolation_level=None``, as :func:`~pacs_backup.state.sqlite.open_db`
    opens it). Two openers at once (threads, or the plugin and a script) run each step once: the version
    is read again inside each transaction.

    Args:
        what: the file in words, to start the sentence of a refusal ("The backup database").
    Raises:
        SchemaTooNew: the file's version is past ``len(steps)``; nothing was changed.
        Exception: what a step raised; the file stays at the version before that step.
    """
    newest = len(steps)
    with _lock:
        while True:
            db.execute("BEGIN IMMEDIATE")  # the write lock first: no other opener migrates meanwhile
            try:
                version = user_version(db)
                if version > newest:
                    raise SchemaTooNew(what, file_of(db), version, newest)
                if version == newest:
                    db.execute("COMMIT")
                    return newest
                steps[version](db)
                if not db.in_transaction:
                    raise RuntimeError(f"step {version + 1} of {what} ended the transaction (executescript?)")
                db.execute(f"PRAGMA user_version = {version + 1:d}")
                db.execute("COMMIT")
                log.info("%s migrated to version %d of %d", what, version + 1, newest)
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
