"""Folders for rclone remotes of type ``local`` in tests: rclone runs as the unprivileged user ``pacs-rclone``
when the tests run as root, and pytest's own temporary folders are root's alone (0700), so a folder that
stands in for a cloud drive must belong to that user."""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pacs_backup.rclone.sandbox import USER


def rclone_user_of_root_run() -> pwd.struct_passwd:
    """The unprivileged user rclone runs as, for a test that needs the tests to run as root. A run that is not
    root fails (it never skips): a check of the privilege drop left out would pass unseen, and CI runs as root.
    A missing user fails too (dev/setup makes it)."""
    if os.geteuid() != 0:
        pytest.fail(
            "rclone runs as its own user only when started by root, and these tests do not run as root: "
            "run them as root (CI does), e.g. sudo make test."
        )
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        pytest.fail(f"the user {USER} is missing; run dev/setup user")


@contextmanager
def folder_for_rclone() -> Iterator[Path]:
    """A new empty folder that the user rclone runs as may write (removed afterwards)."""
    path = Path(tempfile.mkdtemp(prefix="pacs-rclone-test-"))
    if os.geteuid() == 0:
        pw = pwd.getpwnam(USER)
        os.chown(path, pw.pw_uid, pw.pw_gid)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def rclone_folder() -> Iterator[Path]:
    """:func:`folder_for_rclone` as a fixture (import it into a test module to use it there)."""
    with folder_for_rclone() as path:
        yield path
