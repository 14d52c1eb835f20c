"""The offsite stand-in of `make run` (and Compose's offsite-demo) has a login: rest-server with a bcrypt
htpasswd file instead of --no-auth (issue 16.15). The RestServer fixture stays --no-auth for speed."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

import devstack

pytestmark = pytest.mark.timeout(300)

RESTIC = str(devstack.TOOLS_BIN / "restic")


def restic(
    repo: str, *args: str, cwd: Path, user: str | None = None, password: str | None = None
) -> subprocess.CompletedProcess[str]:
    """restic as the plugin and the technician scripts run it: the login comes from RESTIC_REST_*."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(cwd),
        "RESTIC_PASSWORD": "repo-secret",
        "RESTIC_CACHE_DIR": str(cwd / ".cache"),
    }
    if user is not None:
        env["RESTIC_REST_USERNAME"] = user
    if password is not None:
        env["RESTIC_REST_PASSWORD"] = password
    return subprocess.run(
        [RESTIC, "-r", repo, *args], env=env, capture_output=True, text=True, timeout=120, check=False, cwd=cwd
    )


@pytest.fixture
def logged_in_rest_server(tmp_path):
    """rest-server exactly as dev/stack.py starts it: append-only, --htpasswd-file from write_htpasswd."""
    user, password = "pacs-" + devstack.new_secret(6).lower().replace("_", "-"), devstack.new_secret()
    htpasswd = devstack.write_htpasswd(tmp_path / "secrets" / "rest-server.htpasswd", user, password)
    port = devstack.free_port()
    proc = devstack.start_rest_server(tmp_path / "offsite", port, tmp_path / "rest-server.log", htpasswd=htpasswd)
    yield f"rest:http://127.0.0.1:{port}/clinic", user, password, htpasswd, tmp_path / "rest-server.log"
    proc.stop(10)


def test_rest_server_refuses_anonymous_and_wrong_logins_and_admits_its_user(logged_in_rest_server, tmp_path):
    repo, user, password, htpasswd, log = logged_in_rest_server
    assert stat.S_IMODE(htpasswd.stat().st_mode) == 0o600
    assert htpasswd.read_text().startswith(f"{user}:$2") and password not in htpasswd.read_text()

    for who, pw in ((None, None), (user, "wrong-" + password), ("intruder", password)):
        refused = restic(repo, "init", user=who, password=pw, cwd=tmp_path)
        assert refused.returncode != 0, refused.stdout
        assert "401" in refused.stderr or "Unauthorized" in refused.stderr, refused.stderr

    done = restic(repo, "init", user=user, password=password, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "f.txt").write_text("x-ray")
    assert restic(repo, "backup", "data", user=user, password=password, cwd=tmp_path).returncode == 0
    assert restic(repo, "snapshots", user=user, password=password, cwd=tmp_path).returncode == 0
    # Once the repository exists, reading it still needs the login.
    anonymous_read = restic(repo, "snapshots", cwd=tmp_path)
    assert anonymous_read.returncode != 0 and "data" not in anonymous_read.stdout
    assert password not in log.read_text()
