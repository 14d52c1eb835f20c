"""restic tells the restore about each file as soon as it is written (real restic, local repository)."""

from __future__ import annotations

import hashlib
import os
import sys

import pytest

from pacs_backup.clients.restic import Restic, ResticError
from pacs_backup.clients.runner import CommandError, stream


@pytest.fixture
def repo_with_files(tmp_path):
    data = tmp_path / "storage"
    files = {}
    for i in range(40):
        f = data / f"{i:02x}" / f"instance-{i}"
        f.parent.mkdir(parents=True, exist_ok=True)
        blob = os.urandom(50_000 + i * 1000)
        f.write_bytes(blob)
        files[str(f)] = hashlib.sha256(blob).hexdigest()
    pw = tmp_path / "pw"
    pw.write_text("a-test-repository-password")
    restic = Restic(str(tmp_path / "repo"), password_file=pw)
    restic.init()
    summary = restic.backup([str(data)], tags=["t"])
    return restic, str(summary["snapshot_id"]), files


def test_each_file_is_announced_once_and_is_complete_when_announced(repo_with_files, tmp_path):
    restic, snap, files = repo_with_files
    target = tmp_path / "out"
    announced: dict[str, str] = {}

    def on_file(path: str) -> None:
        restored = target / path.lstrip("/")
        if restored.is_file():  # directories are announced too
            announced[path] = hashlib.sha256(restored.read_bytes()).hexdigest()

    restic.restore(snap, target, on_file=on_file)
    assert announced == files  # every file, with its final bytes already there when announced


def test_only_the_included_files_are_announced(repo_with_files, tmp_path):
    restic, snap, files = repo_with_files
    some = sorted(files)[:3]
    announced: list[str] = []
    restic.restore(snap, tmp_path / "out", includes=some, on_file=announced.append)
    assert sorted(p for p in announced if p in files) == some


def test_a_streamed_restic_failure_is_the_named_error(repo_with_files, tmp_path):
    restic, _, _ = repo_with_files
    with pytest.raises(ResticError, match=r"no matching ID|not found|no snapshot"):
        restic.restore("deadbeef", tmp_path / "out", on_file=lambda p: None)


def test_a_streamed_program_that_hangs_is_stopped_with_a_sentence():
    lines: list[bytes] = []
    code = "import time; print('one', flush=True); time.sleep(30)"
    with pytest.raises(CommandError, match="did not finish within 1 s"):
        stream([sys.executable, "-c", code], env={}, timeout_s=1, on_line=lines.append)
    assert lines == [b"one\n"]
