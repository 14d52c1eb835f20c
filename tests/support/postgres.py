"""A real PostgreSQL for the group service's catalog: Debian's server programs, a cluster of our own.

``initdb`` makes a cluster in a temporary folder, ``postgres`` serves it on a free loopback port with its
unix socket in that folder, trust authentication for the loopback only (the test's own throwaway cluster),
and it is always stopped (fast shutdown) and removed afterwards. PostgreSQL refuses to run as root: when the
tests run as root, the server runs as Debian's ``postgres`` user (made by the package) in a folder it owns.

Fixtures: ``postgres_server`` (one server per test process, however many modules import it) and
``group_database_url`` (a fresh database per test). Import them into a test module to use them there. A test
process killed before its teardown takes its server with it (the parent-death signal), and folders such
processes left behind are removed by the next start.
"""

from __future__ import annotations

import ctypes
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import devstack
from tests.support.common import wait_until

SUPERUSER = "group_test"
PREFIX = "group-pg-"
STALE_S = 3600.0  # a folder untouched this long, whose server is gone, is a killed test run's leftover
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the server's process before exec: a fast shutdown (SIGINT) when the test process ends, even killed."""
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGINT, 0, 0, 0)


def _remove_stale() -> None:
    """Folders of servers whose test process was killed: untouched for STALE_S and no live postmaster in them.
    A folder made or used lately is never removed: another test process may be running initdb there, whose
    short-lived postgres leaves a postmaster.pid naming a process that has just ended."""
    for folder in Path(tempfile.gettempdir()).glob(PREFIX + "*"):
        pid_file = folder / "data" / "postmaster.pid"
        try:
            touched = max(p.stat().st_mtime for p in (folder, folder / "data", pid_file) if p.exists())
            pid = int(pid_file.read_text().split()[0]) if pid_file.exists() else 0
        except (ValueError, IndexError, OSError):
            continue  # being written or removed right now
        if time.time() - touched < STALE_S:
            continue
        if pid:
            try:
                os.kill(pid, 0)
                continue  # a server still runs there
            except ProcessLookupError:
                pass  # its server is gone: the folder is left over
            except OSError:
                continue
        shutil.rmtree(folder, ignore_errors=True)


def server_bin() -> Path:
    """The newest /usr/lib/postgresql/<version>/bin holding initdb and postgres (Debian's layout)."""
    root = Path("/usr/lib/postgresql")
    versions = sorted((p for p in root.glob("*/bin") if (p / "postgres").exists()), key=lambda p: int(p.parent.name))
    if not versions:
        pytest.fail("PostgreSQL's server programs are missing (/usr/lib/postgresql/*/bin); run dev/setup apt")
    return versions[-1]


class PostgresServer:
    """A throwaway PostgreSQL cluster on 127.0.0.1 (``durable=False``: no fsync, for tests)."""

    def __init__(self, durable: bool = False, settings: dict[str, str] | None = None) -> None:
        self.bin = server_bin()
        _remove_stale()
        self.base = Path(tempfile.mkdtemp(prefix=PREFIX))
        self.data, self.socket_dir, self.log = self.base / "data", self.base / "sock", self.base / "postgres.log"
        self.port = devstack.free_port()
        self.durable, self.settings = durable, dict(settings or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self._user: str | None = None
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                pytest.fail("the user postgres is missing (Debian's postgresql package makes it); run dev/setup apt")
            self._user = "postgres"
            os.chown(self.base, pw.pw_uid, pw.pw_gid)
        self.socket_dir.mkdir()
        if self._user:
            shutil.chown(self.socket_dir, self._user, self._user)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _run(self, *argv: str) -> None:
        done = subprocess.run(argv, capture_output=True, text=True, user=self._user, group=self._user, check=False)
        if done.returncode != 0:
            raise AssertionError(f"{argv[0]} failed ({done.returncode}): {done.stdout[-2000:]}{done.stderr[-2000:]}")

    def start(self) -> None:
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "--auth=trust",  # a throwaway cluster on loopback, for this test run only
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        )
        options = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.socket_dir),
            "max_connections": "60",
            **({} if self.durable else {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}),
            **self.settings,
        }
        argv = [str(self.bin / "postgres"), "-D", str(self.data)]
        for name, value in options.items():
            argv += ["-c", f"{name}={value}"]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                user=self._user,
                group=self._user,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # after the change of user, which would clear it
            )
        wait_until(self._ready, 60, f"PostgreSQL on port {self.port} (log {self.log})")

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"PostgreSQL exited during start; log {self.log}:\n{self.log.read_text()[-2000:]}")
        done = subprocess.run(
            [str(self.bin / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER],
            capture_output=True,
            check=False,
        )
        return done.returncode == 0

    def create_database(self) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:16]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")  # a name we made: letters and digits
        return self.url(name)

    def drop_database(self, url: str) -> None:
        import psycopg

        name = url.rsplit("/", 1)[1]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def stop(self) -> None:
        """Fast shutdown (SIGINT), waited on; SIGKILL if it does not end within 30 s; then remove the folder."""
        proc, self.proc = self.proc, None
        try:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(10)
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


_shared: list[PostgresServer] = []  # the process's server while any module's fixture holds it
_holders = [0]


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One server for the whole test process: each module importing this fixture gets a session fixture of its
    own, and they share the server, stopped when the last one ends."""
    if not _shared:
        server = PostgresServer()
        try:
            server.start()
        except BaseException:
            server.stop()
            raise
        _shared.append(server)
    _holders[0] += 1
    try:
        yield _shared[0]
    finally:
        _holders[0] -= 1
        if _holders[0] == 0:
            _shared.pop().stop()


@pytest.fixture
def group_database_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database for one test (dropped afterwards)."""
    url = postgres_server.create_database()
    yield url
    postgres_server.drop_database(url)
