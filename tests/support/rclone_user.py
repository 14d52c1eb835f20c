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


def rclone_user_or_skip() -> pwd.struct_passwd:
    """The unprivileged user rclone runs as, for a test that needs the tests to run as root. Outside root it
    is skipped on a developer's machine, but fails in CI (CI=true), which runs as root: a check of the
    privilege drop must never be skipped there. A missing user always fails (dev/setup makes it)."""
    if os.geteuid() != 0:
        why = "rclone runs as its own user only when started by root, and these tests do not run as root"
        if os.environ.get("CI"):
            pytest.fail(f"{why}: CI must run the tests as root.")
        pytest.skip(why)
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
