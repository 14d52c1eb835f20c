"""The one migration helper of the project's SQLite files (issue 26, item 5): steps in order, each with its
version in one transaction; a file newer than the steps is refused with a sentence."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from pacs_backup.state.migrate import SchemaTooNew, migrate, sql, user_version
from pacs_backup.state.sqlite import open_db

STEPS = [
    sql("CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL)"),
    sql("ALTER TABLE notes ADD COLUMN at REAL NOT NULL DEFAULT 0", "UPDATE notes SET at = 1"),
]


def test_steps_run_once_in_order_and_the_version_counts_them(tmp_path):
    db = open_db(tmp_path / "f.sqlite", "")
    assert migrate(db, STEPS[:1], "The file") == 1
    db.execute("INSERT INTO notes (text) VALUES ('kept')")
    assert migrate(db, STEPS, "The file") == 2 == user_version(db)
    assert migrate(db, STEPS, "The file") == 2  # again: nothing to do
    assert db.execute("SELECT text, at FROM notes").fetchall() == [("kept", 1.0)]


def test_a_step_that_fails_after_its_first_statement_leaves_the_previous_version_and_the_data(tmp_path):
    path = tmp_path / "f.sqlite"
    db = open_db(path, "")
    migrate(db, STEPS[:1], "The file")
    db.execute("INSERT INTO notes (text) VALUES ('kept')")

    def half(db: sqlite3.Connection) -> None:
        db.execute("DELETE FROM notes")
        db.execute("ALTER TABLE notes ADD COLUMN gone TEXT")
        raise OSError("the power went")

    with pytest.raises(OSError, match="the power went"):
        migrate(db, [STEPS[0], half], "The file")
    assert not db.in_transaction
    db.close()
    again = open_db(path, "")
    assert user_version(again) == 1 and again.execute("SELECT text FROM notes").fetchall() == [("kept",)]
    assert "gone" not in [c[1] for c in again.execute("PRAGMA table_info(notes)")]
    assert migrate(again, STEPS, "The file") == 2  # the next start runs the step again


def test_a_newer_file_is_refused_with_a_sentence_naming_it_and_both_versions(tmp_path):
    path = tmp_path / "f.sqlite"
    db = open_db(path, "")
    migrate(db, STEPS, "The file")
    db.execute("PRAGMA user_version = 5")
    with pytest.raises(SchemaTooNew) as refused:
        migrate(db, STEPS, "The clinic's file")
    assert str(refused.value) == (
        f"The clinic's file {path} was written by a newer release (version 5; this release knows versions up to "
        "2): install that release or newer, or put back the file as it was before the upgrade."
    )
    assert (refused.value.path, refused.value.version, refused.value.newest) == (str(path), 5, 2)
    assert user_version(db) == 5 and not db.in_transaction


def test_a_step_that_commits_by_itself_is_a_mistake_said_at_once(tmp_path):
    db = open_db(tmp_path / "f.sqlite", "")

    def script(db: sqlite3.Connection) -> None:
        db.executescript("CREATE TABLE t (x);")  # commits the transaction first: not atomic any more

    with pytest.raises(RuntimeError, match="ended the transaction"):
        migrate(db, [script], "The file")
    assert user_version(db) == 0


def test_two_openers_at_once_run_each_step_once(tmp_path):
    path = tmp_path / "f.sqlite"
    runs: list[int] = []

    def counted(db: sqlite3.Connection) -> None:
        runs.append(1)
        db.execute("CREATE TABLE once (x)")  # a second run would fail: the table exists

    def open_and_migrate() -> None:
        migrate(open_db(path, ""), [counted], "The file")

    threads = [threading.Thread(target=open_and_migrate) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other = sqlite3.connect(path, isolation_level=None)  # another process's connection, no shared lock
    assert migrate(other, [counted], "The file") == 1 and runs == [1]
