"""The recovery sheet carries the offsite server's own login too: without it nothing can be read back."""

from __future__ import annotations

import os
import subprocess

from tests.support.common import ROOT


def test_sheet_has_the_offsite_servers_login():
    env = {
        "PATH": os.environ["PATH"],
        "RESTIC_REPOSITORY": "rest:https://backup.example:8000/clinic",
        "RESTIC_PASSWORD": "repository-password",
        "RESTIC_REST_USERNAME": "clinic",
        "RESTIC_REST_PASSWORD": "server-password",
    }
    sheet = subprocess.run(
        [str(ROOT / "scripts" / "recovery-sheet")], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert "RESTIC_REST_USERNAME='clinic'" in sheet and "RESTIC_REST_PASSWORD='server-password'" in sheet
    kept = subprocess.run(
        [str(ROOT / "scripts" / "recovery-sheet"), "--without-password"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "server-password" not in kept and "repository-password" not in kept
