"""Start and stop the appliance's programs natively on loopback.

Used by ``make run`` / ``make down`` (through ``dev/stack``) and by the test fixtures, so that the
tests start the very same programs, with the same configuration, as the running appliance.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "orthanc"))
import entrypoint as orthanc_entrypoint  # noqa: E402 - the container's config renderer, shared

TOOLS_BIN = ROOT / ".tools" / "bin"
VENV = ROOT / ".venv"
PLUGINS_DIR = ROOT / "plugins"


class StackError(RuntimeError):
    """A program did not start or stop; the message says which and where its log is."""


_HANDED_OUT: set[int] = set()
_HANDED_OUT_LOCK = threading.Lock()


# Test processes run side by side (pytest-xdist sets PYTEST_XDIST_WORKER=gw0, gw1...): each takes its
# ports from a band of its own below the kernel's ephemeral range, so two processes never get the same
# port, and no outgoing connection is given a port a server is about to listen on.
_BANDS = range(20000, 32000)


def _worker_band() -> range | None:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    count = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    if not worker.startswith("gw") or not worker[2:].isdigit() or not count.isdigit() or int(count) < 1:
        return None
    size = len(_BANDS) // int(count)
    start = _BANDS.start + int(worker[2:]) % int(count) * size
    return range(start, start + size)


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now and not handed out before by this process.

    The kernel may offer a port it just offered again while nothing listens on it yet: one Orthanc
    was given the same port for HTTP and DICOM and could not start. Each port is handed out once.
    """
    with _HANDED_OUT_LOCK:
        band = _worker_band()
        if band is not None:
            for port in band:
                if port not in _HANDED_OUT and _bindable(port):
                    _HANDED_OUT.add(port)
                    return port
            raise StackError(f"No free port left in {band.start}-{band.stop - 1} for this test process.")
        while True:
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                port = int(s.getsockname()[1])
            if port not in _HANDED_OUT:
                _HANDED_OUT.add(port)
                return port


def new_secret(nbytes: int = 24) -> str:
    """Return a random secret made of URL-safe characters."""
    return secrets.token_urlsafe(nbytes)


def require_program(path: Path | str) -> str:
    """Return the program's path, or raise StackError telling how to install it."""
    p = Path(path)
    if p.is_absolute():
        if p.exists():
            return str(p)
    else:
        for d in os.environ.get("PATH", "").split(os.pathsep):
            if (Path(d) / p).exists():
                return str(Path(d) / p)
    raise StackError(f"{path} is missing; run 'make setup' (dev/setup) to install it.")


@dataclass
class Process:
    """A started program: its Popen (or pid when adopted from a pid file) and log file."""

    name: str
    pid: int
    log: Path
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def stop(self, timeout_s: float = 60.0) -> None:
        """SIGTERM, wait up to ``timeout_s`` for a clean exit, then SIGKILL."""
        if not self.alive():
            return
        os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                return
            time.sleep(0.1)
        self.kill()

    def kill(self) -> None:
        """SIGKILL and reap."""
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
        if self.popen is not None:
            self.popen.wait(10)
        else:
            for _ in range(100):
                if not self.alive():
                    break
                time.sleep(0.05)


def spawn(
    name: str, argv: list[str], log: Path, env: Mapping[str, str] | None = None, cwd: Path | None = None
) -> Process:
    """Start ``argv`` in its own session with output appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        # umask 077: whatever the programs write (images, queue, databases, logs) is owner-only.
        popen = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
            umask=0o077,
        )
    return Process(name=name, pid=popen.pid, log=log, popen=popen)


def _tail(log: Path, lines: int = 15) -> str:
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def wait_http(proc: Process, url: str, timeout_s: float = 60.0, auth: tuple[str, str] | None = None) -> None:
    """Wait until ``url`` answers 200; raise StackError with the log's tail if it does not.

    A program that does not answer in time is stopped: with no pid file written, nothing (not `make down`)
    would stop it later.
    """
    headers = {}
    if auth:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not proc.alive():
            raise StackError(f"{proc.name} exited during start; log {proc.log}:\n{_tail(proc.log)}")
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=2) as r:  # noqa: S310
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    proc.stop(60)
    raise StackError(
        f"{proc.name} did not answer {url} within {timeout_s:.0f} s (stopped it); log {proc.log}:\n{_tail(proc.log)}"
    )


# --- MinIO --------------------------------------------------------------------------------------
def start_minio(data_dir: Path, port: int, console_port: int, user: str, password: str, log: Path) -> Process:
    """Start MinIO (built from source into .tools/bin) on 127.0.0.1:port.

    ``user`` / ``password`` are its root account: the appliance uses it only to set the store up
    (pacs_backup.cli.store_setup); the plugin gets an account of its own that cannot delete copies.
    """
    exe = require_program(TOOLS_BIN / "minio")
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(data_dir),
        "MINIO_ROOT_USER": user,
        "MINIO_ROOT_PASSWORD": password,
        "MINIO_BROWSER": "off",
        "MINIO_UPDATE": "off",
    }
    proc = spawn(
        "minio",
        [
            exe,
            "server",
            str(data_dir),
            "--address",
            f"127.0.0.1:{port}",
            "--console-address",
            f"127.0.0.1:{console_port}",
            "--quiet",
        ],
        log,
        env,
    )
    wait_http(proc, f"http://127.0.0.1:{port}/minio/health/ready", 60)
    return proc


# --- Versity S3 Gateway (the default object store) ----------------------------------------------
def xattr_problem(folder: Path) -> str | None:
    """Why Versity S3 Gateway cannot keep its copies in ``folder`` (None: it can): its posix backend keeps
    each object's metadata, versions and retention in user extended attributes."""
    folder.mkdir(parents=True, exist_ok=True)
    probe = folder / ".xattr-probe"
    try:
        probe.touch()
        os.setxattr(probe, "user.pacs-backup-probe", b"1")
    except OSError as exc:
        return (
            f"the filesystem of {folder} does not support user extended attributes ({exc.strerror}), which "
            "Versity S3 Gateway needs: put the stack on ext4, XFS or Btrfs (STACK_STATE_DIR) or set "
            "OBJECT_STORE=minio in .env"
        )
    finally:
        probe.unlink(missing_ok=True)
    return None


def start_versitygw(data_dir: Path, port: int, user: str, password: str, log: Path, name: str = "versitygw") -> Process:
    """Start Versity S3 Gateway (built from source into .tools/bin) on 127.0.0.1:port, posix backend.

    Under ``data_dir``: ``data`` (each copy a plain file, ``<bucket>/<key>``), ``versions`` (older versions)
    and ``iam`` (its accounts). ``user`` / ``password`` are its root account, used only by the set-up step.
    """
    exe = require_program(TOOLS_BIN / "versitygw")
    data, versions, iam = data_dir / "data", data_dir / "versions", data_dir / "iam"
    for folder in (data, versions, iam):
        folder.mkdir(parents=True, exist_ok=True)
    problem = xattr_problem(data)
    if problem:
        raise StackError(problem)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(data_dir),
        "ROOT_ACCESS_KEY": user,
        "ROOT_SECRET_KEY": password,
    }
    argv = [exe, "--port", f"127.0.0.1:{port}", "--iam-dir", str(iam), "--health", "/health", "--quiet"]
    proc = spawn(name, [*argv, "posix", "--versioning-dir", str(versions), str(data)], log, env)
    wait_http(proc, f"http://127.0.0.1:{port}/health", 60)
    return proc


# --- rest-server (offsite stand-in) -------------------------------------------------------------
def start_rest_server(
    data_dir: Path, port: int, log: Path, append_only: bool = True, htpasswd: Path | None = None
) -> Process:
    """Start rest-server on 127.0.0.1:port (append-only by default: a NAS cannot erase history).

    With ``htpasswd`` (see write_htpasswd) only its user gets in, as `make run` starts it; without it
    anyone who reaches the port may read and add snapshots (the test fixtures, for speed).
    """
    exe = require_program(TOOLS_BIN / "rest-server")
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [exe, "--path", str(data_dir), "--listen", f"127.0.0.1:{port}"]
    argv += ["--htpasswd-file", str(htpasswd)] if htpasswd is not None else ["--no-auth"]
    if append_only:
        argv.append("--append-only")
    proc = spawn("rest-server", argv, log)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        if not proc.alive():
            break
        time.sleep(0.1)
    proc.stop(10)
    raise StackError(f"rest-server did not start; log {log}:\n{_tail(log)}")


def write_htpasswd(path: Path, user: str, password: str) -> Path:
    """Write rest-server's htpasswd file for one user (bcrypt, mode 0600), as the Compose stack does."""
    try:
        return orthanc_entrypoint.write_htpasswd(path, user, password)
    except orthanc_entrypoint.ConfigError as exc:
        raise StackError(f"{exc} (run 'make setup' to install htpasswd)") from None


# --- Orthanc ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OrthancSettings:
    """What a native Orthanc with our plugin needs."""

    work_dir: Path
    http_port: int
    dicom_port: int
    username: str
    password: str
    aet: str = "PACS"
    plugin: bool = True
    # DICOM_MODALITIES' text: when it lists devices, only they may store (by AE title and address).
    modalities: str = ""
    # Orthanc cannot bind to one address; with remote access off it answers HTTP only from this machine.
    remote_access: bool = False


def render_orthanc_config(s: OrthancSettings) -> dict:
    """Orthanc's configuration for ``s``, made by the container's renderer; StackError on a bad setting."""
    try:
        return orthanc_entrypoint.render(
            json.loads(orthanc_entrypoint.TEMPLATE.read_text()),
            storage=s.work_dir / "storage",
            index=s.work_dir / "index",
            http_port=s.http_port,
            dicom_port=s.dicom_port,
            aet=s.aet,
            users={s.username: s.password},
            entry_script=PLUGINS_DIR / "orthanc_entry.py",
            python_plugin=s.plugin,
            modalities=s.modalities,
            remote_access=s.remote_access,
        )
    except orthanc_entrypoint.ConfigError as exc:
        raise StackError(str(exc)) from None


def write_orthanc_config(s: OrthancSettings) -> Path:
    """Write Orthanc's configuration (mode 0600: it holds the REST password). Returns its path."""
    config = render_orthanc_config(s)
    s.work_dir.mkdir(parents=True, exist_ok=True)
    path = s.work_dir / "orthanc.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(config, f, indent=2)
    return path


def plugin_pythonpath() -> str:
    """PYTHONPATH for Orthanc's embedded interpreter: our package plus the venv's packages."""
    site = sorted((VENV / "lib").glob("python3*/site-packages"))
    return os.pathsep.join([str(PLUGINS_DIR), *map(str, site)])


# Instance files are read and uploaded as whole buffers of 0.5-10 MB by several threads. With glibc's
# defaults each thread gets its own arena and the mmap threshold rises after the first large free, so
# freed buffers stay resident; a fixed threshold returns them to the system at once.
MALLOC_TUNING = {"MALLOC_ARENA_MAX": "2", "MALLOC_MMAP_THRESHOLD_": "262144", "MALLOC_TRIM_THRESHOLD_": "1048576"}


def orthanc_command(s: OrthancSettings, backup_env: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    """Write Orthanc's configuration; return its command line and environment (with the plugin's settings)."""
    exe = require_program("Orthanc")
    config = write_orthanc_config(s)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(s.work_dir),
        "PYTHONPATH": plugin_pythonpath(),
        "LANG": "C.UTF-8",
        **MALLOC_TUNING,
        **backup_env,
    }
    return [exe, str(config)], env


def start_orthanc(s: OrthancSettings, backup_env: Mapping[str, str], log: Path, wait: bool = True) -> Process:
    """Start Orthanc with our plugin; ``backup_env`` holds the plugin's MINIO_* / BACKUP_* settings."""
    argv, env = orthanc_command(s, backup_env)
    proc = spawn("orthanc", argv, log, env, cwd=s.work_dir)
    if wait:
        wait_http(proc, f"http://127.0.0.1:{s.http_port}/system", 90, (s.username, s.password))
    return proc


SUPERVISOR = ROOT / "dev" / "supervise.py"


def start_supervised_orthanc(
    s: OrthancSettings,
    backup_env: Mapping[str, str],
    log: Path,
    supervisor_log: Path,
    child_pid_file: Path,
    wait: bool = True,
    min_backoff_s: float = 1.0,
    max_backoff_s: float = 30.0,
) -> Process:
    """Start Orthanc under dev/supervise.py, which restarts it whenever it exits unasked (it crashes on some
    input nothing can filter first). The returned Process is the supervisor: stopping it stops Orthanc.
    Orthanc's current pid is in ``child_pid_file``; one line per start and restart goes to ``supervisor_log``."""
    argv, env = orthanc_command(s, backup_env)
    child_pid_file.parent.mkdir(parents=True, exist_ok=True)
    supervise = [
        sys.executable,
        str(SUPERVISOR),
        "--name",
        "orthanc",
        "--log",
        str(supervisor_log),
        "--child-pid-file",
        str(child_pid_file),
        "--min-backoff",
        str(min_backoff_s),
        "--max-backoff",
        str(max_backoff_s),
        "--",
    ]
    proc = spawn("orthanc", supervise + argv, log, env, cwd=s.work_dir)
    if wait:  # stops the supervisor (and Orthanc) when Orthanc does not come up
        wait_http(proc, f"http://127.0.0.1:{s.http_port}/system", 90, (s.username, s.password))
    return proc


# --- Dashboard ----------------------------------------------------------------------------------
def start_dashboard(port: int, data_dir: Path, env: Mapping[str, str], log: Path, host: str = "127.0.0.1") -> Process:
    """Start the dashboard (waitress) on host:port; ``env`` holds ORTHANC_* and DASHBOARD_*."""
    python = VENV / "bin" / "python"
    require_program(python)
    full = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(data_dir),
        "LANG": "C.UTF-8",
        "PYTHONPATH": os.pathsep.join([str(PLUGINS_DIR), str(ROOT / "dashboard")]),
        "DASHBOARD_HOST": host,
        "DASHBOARD_PORT": str(port),
        "DASHBOARD_DATA_DIR": str(data_dir),
        "DASHBOARD_COOKIE_SECURE": "false",
        **env,
    }
    proc = spawn("dashboard", [str(python), "-m", "pacs_dashboard"], log, full)
    wait_http(proc, f"http://127.0.0.1:{port}/healthz", 60)
    return proc
