"""`make run` itself (dev/stack.py up / status / down) in a scratch state directory on free ports:
a supervised Orthanc that comes back after a crash (16.1), the offsite stand-in's login (16.15) and a
stack that answers this machine only (16.16)."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import devstack
from tests.support.common import ROOT, raw_request, wait_until

pytestmark = pytest.mark.timeout(600)


def outward_address() -> str | None:
    """This machine's address on its default route (not loopback), or None without one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the route
        except OSError:
            return None
        address = s.getsockname()[0]
    return None if address.startswith("127.") else address


def cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return []


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def get(url: str, auth: tuple[str, str], body: bytes | None = None) -> int | str:
    try:
        return raw_request(url, "POST" if body is not None else "GET", body, auth, timeout=20)[0]
    except OSError as exc:
        return type(exc).__name__


class Stack:
    def __init__(self, state: Path) -> None:
        self.state = state
        (state.parent / "dotenv").write_text("# no STACK_BIND: the default, this machine only\n")
        self.env = {**os.environ, "STACK_STATE_DIR": str(state), "STACK_ENV_FILE": str(state.parent / "dotenv")}
        for name in ("ORTHANC_HTTP", "DICOM", "MINIO", "MINIO_CONSOLE", "REST_SERVER", "DASHBOARD"):
            self.env[f"STACK_{name}_PORT"] = str(devstack.free_port())
        for name in ("STACK_BIND", "DICOM_MODALITIES"):
            self.env.pop(name, None)

    def run(self, action: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(ROOT / "dev" / "stack.py"), action],
            env=self.env,
            text=True,
            capture_output=True,
            timeout=timeout,
            check=False,
            cwd=ROOT,
        )

    def pid(self, name: str) -> int:
        return int((self.state / "pids" / f"{name}.pid").read_text())

    def orthanc_pid(self) -> int | None:
        """Orthanc's own pid (None between a crash and the restart)."""
        try:
            return int((self.state / "pids" / "orthanc.child.pid").read_text())
        except (OSError, ValueError):
            return None

    def settings(self) -> dict[str, str]:
        lines = (self.state / "stack.env").read_text().splitlines()
        return dict(ln.split("=", 1) for ln in lines if "=" in ln and not ln.startswith("#"))


@pytest.fixture
def stack(tmp_path):
    s = Stack(tmp_path / "devstack")
    yield s
    down = s.run("down", 240)
    print(down.stdout, down.stderr)
    for log in sorted((s.state / "logs").glob("*.log")):
        print(f"--- tail of {log}:\n" + "\n".join(log.read_text(errors="replace").splitlines()[-25:]))


def test_make_run_supervises_orthanc_logs_in_offsite_and_stays_local(stack, tmp_path):
    up = stack.run("up")
    assert up.returncode == 0, up.stdout + up.stderr
    # The default object store is Versity S3 Gateway; its pid file keeps the historic name minio.pid.
    assert "Started: versitygw, rest-server, orthanc, dashboard" in up.stdout
    assert cmdline(stack.pid("minio"))[0].endswith("/versitygw")
    env = stack.settings()
    auth = (env["ORTHANC_USERNAME"], env["ORTHANC_PASSWORD"])

    # 16.1: orthanc.pid is the supervisor's; Orthanc's own pid is in orthanc.child.pid.
    supervisor, child = stack.pid("orthanc"), stack.orthanc_pid()
    assert child is not None
    assert any(arg.endswith("supervise.py") for arg in cmdline(supervisor)), cmdline(supervisor)
    assert cmdline(child)[0].endswith("Orthanc")
    assert get(env["ORTHANC_URL"] + "/tools/find", auth, b"[" * 100_000) != 200  # crashes Orthanc 1.10.1
    wait_until(lambda: stack.orthanc_pid() not in (None, child), 30, "a new Orthanc")
    wait_until(lambda: get(env["ORTHANC_URL"] + "/system", auth) == 200, 90, "Orthanc to answer again")
    assert not alive(child) and stack.pid("orthanc") == supervisor
    assert "exited unexpectedly (signal SIGSEGV)" in (stack.state / "logs" / "supervise-orthanc.log").read_text()

    # 16.6: the stack's folders and what its programs write are owner-only.
    assert stat.S_IMODE(stack.state.stat().st_mode) == 0o700
    written = [p for p in (stack.state / "orthanc").rglob("*") if p.is_file()]
    written += [p for p in (stack.state / "dashboard").rglob("*") if p.is_file()]
    assert written and not [p for p in written if stat.S_IMODE(p.stat().st_mode) & 0o077]

    # 16.15: the plugin and the scripts log in to the offsite stand-in with stack.env's credentials.
    assert stat.S_IMODE((stack.state / "stack.env").stat().st_mode) == 0o600
    assert env["RESTIC_REST_USERNAME"] and env["RESTIC_REST_PASSWORD"]
    rest_cmd = cmdline(stack.pid("rest-server"))
    assert "--htpasswd-file" in rest_cmd and "--no-auth" not in rest_cmd and "--append-only" in rest_cmd
    snap = subprocess.run(
        [str(ROOT / "scripts" / "snapshot-now")],
        env={**os.environ, **env},
        text=True,
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert snap.returncode == 0, snap.stdout + snap.stderr
    restic_env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "RESTIC_CACHE_DIR": str(tmp_path / "cache"),
        "RESTIC_PASSWORD_FILE": env["RESTIC_PASSWORD_FILE"],
    }
    snapshots = [str(devstack.TOOLS_BIN / "restic"), "-r", env["RESTIC_REPOSITORY"], "snapshots", "--json"]
    anonymous = subprocess.run(snapshots, env=restic_env, capture_output=True, text=True, timeout=60, check=False)
    assert anonymous.returncode != 0 and "401" in anonymous.stderr + anonymous.stdout, anonymous.stderr
    logged_in = subprocess.run(
        snapshots,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={
            **restic_env,
            "RESTIC_REST_USERNAME": env["RESTIC_REST_USERNAME"],
            "RESTIC_REST_PASSWORD": env["RESTIC_REST_PASSWORD"],
        },
    )
    assert logged_in.returncode == 0 and logged_in.stdout.strip() not in ("", "[]"), logged_in.stderr

    # 16.16: remote access is off; a client of another machine is refused even with the password.
    config = json.loads((stack.state / "orthanc" / "orthanc.json").read_text())
    assert config["RemoteAccessAllowed"] is False
    assert "this machine only" in up.stdout
    address = outward_address()
    if address:  # this machine's own outward address is "another machine" to Orthanc's check
        port = env["ORTHANC_URL"].rsplit(":", 1)[1]
        assert get(f"http://{address}:{port}/system", auth) in (401, 403)
        assert get(f"{env['DASHBOARD_URL'].replace('127.0.0.1', address)}/healthz", auth) == "URLError"

    # Idempotent, and status / down know the supervisor.
    again = stack.run("up")
    assert again.returncode == 0 and "nothing (all running)" in again.stdout, again.stdout + again.stderr
    assert stack.pid("orthanc") == supervisor
    status = stack.run("status")
    assert f"supervisor pid {supervisor}" in status.stdout, status.stdout
    orthanc_now = stack.orthanc_pid()
    others = [stack.pid(n) for n in ("minio", "rest-server", "dashboard")]
    down = stack.run("down", 240)
    assert down.returncode == 0, down.stderr
    wait_until(lambda: not any(alive(p) for p in (supervisor, orthanc_now, *others)), 30, "everything to stop")
    assert not (stack.state / "pids" / "orthanc.child.pid").exists()


def test_make_runs_setup_is_quiet_and_a_failed_step_names_its_log(tmp_path):
    """Issue 28 item 6: `make run` installs quietly: one line per step; a step that fails prints the end of
    its output and the path of its full log, not pages."""
    setup = str(ROOT / "dev" / "setup")
    again = subprocess.run([setup, "run"], capture_output=True, text=True, timeout=900, check=False)
    assert again.returncode == 0, again.stdout + again.stderr
    lines = (again.stdout + again.stderr).splitlines()
    assert lines and all(line.startswith("[setup] ") for line in lines), lines
    assert len(lines) <= 10 and "present" in again.stdout, lines

    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "go").write_text(
        "#!/bin/sh\nfor i in $(seq 300); do echo \"noise line $i\"; done\necho 'the reason it failed' >&2\nexit 1\n"
    )
    (fake / "go").chmod(0o755)
    tools = tmp_path / "tools"
    env = {**os.environ, "PATH": f"{fake}:{os.environ['PATH']}", "SETUP_TOOLS_DIR": str(tools)}
    env.pop("SETUP_VERBOSE", None)
    failed = subprocess.run([setup, "go", "restic"], env=env, capture_output=True, text=True, timeout=120, check=False)
    log = tools / "logs" / "setup-go-restic.log"
    said = failed.stdout + failed.stderr
    assert failed.returncode != 0
    assert "FAILED: building restic" in failed.stderr and f"Full output: {log}" in failed.stderr, said
    assert "the reason it failed" in failed.stderr and len(said.splitlines()) < 40, said
    assert log.read_text().count("noise line 300") == 2  # go install, then the pinned wrapper module: all kept
    assert not (tools / "versions" / "restic").exists()
