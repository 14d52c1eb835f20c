"""The PostgreSQL fixture of the group tests cleans up after killed test processes only: a server that another
test process is starting (initdb's short-lived postgres leaves a postmaster.pid naming a process that has just
ended, or the file is being written) must never lose its folder."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

from tests.support import postgres


def _folder(name: str, pid_text: str, age_s: float = 0.0) -> Path:
    folder = Path(tempfile.gettempdir()) / f"{postgres.PREFIX}unit-{name}"
    (folder / "data").mkdir(parents=True, exist_ok=True)
    (folder / "data" / "postmaster.pid").write_text(pid_text)
    then = time.time() - age_s
    for p in (folder / "data" / "postmaster.pid", folder / "data", folder):
        os.utime(p, (then, then))
    return folder


def test_group_postgres_fixture_keeps_a_server_being_started_and_removes_a_dead_ones_folder():
    gone = "999999999\n"  # no process has that pid
    writing, starting = _folder("writing", ""), _folder("starting", gone)
    dead = _folder("dead", gone, age_s=postgres.STALE_S + 60)
    try:
        postgres._remove_stale()
        assert writing.exists()  # postmaster.pid empty: another process writes it right now
        assert starting.exists()  # initdb's postgres just ended: initdb goes on in that folder
        assert not dead.exists()  # untouched for over an hour and its server is gone
    finally:
        for f in (writing, starting, dead):
            shutil.rmtree(f, ignore_errors=True)
