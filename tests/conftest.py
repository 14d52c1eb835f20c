"""Shared fixtures: real MinIO, Orthanc (+ our plugin) and rest-server on free loopback ports.

Programs come from `make setup`; a missing one fails the test with a message saying so (never skips).
"""

from __future__ import annotations

import hashlib
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from minio import Minio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "dev"))
sys.path.insert(0, str(ROOT))

import devstack  # noqa: E402
from pacs_backup.orthanc_http import OrthancHttp  # noqa: E402


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def wait_until(cond: Callable[[], object], timeout: float, what: str, interval: float = 0.2) -> object:
    """Poll ``cond`` until truthy; fail with ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = cond()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what} (last value: {last!r})")


class MinioServer:
    """A real MinIO on 127.0.0.1 with random credentials; can be stopped and started again."""

    def __init__(self, base: Path) -> None:
        self.data = base / "minio-data"
        self.log = base / "minio.log"
        self.port, self.console = devstack.free_port(), devstack.free_port()
        self.access_key, self.secret_key = "admin-" + devstack.new_secret(6), devstack.new_secret()
        self.proc: devstack.Process | None = None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = devstack.start_minio(self.data, self.port, self.console, self.access_key, self.secret_key,
                                         self.log)

    def stop(self) -> None:
        if self.proc:
            self.proc.stop(30)

    def client(self) -> Minio:
        return Minio(self.endpoint, self.access_key, self.secret_key, secure=False)

    def env(self, bucket: str) -> dict[str, str]:
        return {"MINIO_ENDPOINT": self.endpoint, "MINIO_ACCESS_KEY": self.access_key,
                "MINIO_SECRET_KEY": self.secret_key, "MINIO_BUCKET": bucket}


@pytest.fixture(scope="session")
def minio_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinioServer]:
    server = MinioServer(tmp_path_factory.mktemp("minio"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def plugin_store_env(minio_server: MinioServer, bucket: str) -> dict[str, str]:
    """The plugin's MINIO_* variables for ``bucket`` with its own least-privilege account (made by the
    store set-up step with the root keys, as `make run` and Compose do), instead of the root keys."""
    from tests.support.store_account import plugin_account
    return plugin_account(minio_server, bucket)[0]


class RestServer:
    """A real rest-server on 127.0.0.1 (append-only by default), holding many repositories."""

    def __init__(self, base: Path, append_only: bool = True) -> None:
        self.base, self.append_only = base, append_only
        self.port = devstack.free_port()
        self.proc: devstack.Process | None = None

    def start(self) -> None:
        self.proc = devstack.start_rest_server(self.base / "repos", self.port, self.base / "rest-server.log",
                                               self.append_only)

    def stop(self) -> None:
        if self.proc:
            self.proc.stop(10)

    def new_repository(self) -> str:
        return f"rest:http://127.0.0.1:{self.port}/{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def rest_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestServer]:
    server = RestServer(tmp_path_factory.mktemp("offsite"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def restic_password_file(tmp_path: Path) -> Path:
    path = tmp_path / "restic-password"
    path.write_text(devstack.new_secret())
    path.chmod(0o600)
    return path


@pytest.fixture
def offsite_env(rest_server: RestServer, restic_password_file: Path) -> dict[str, str]:
    """A fresh repository on the append-only rest-server. Scheduled runs are pushed far out: tests
    trigger snapshots and drills themselves."""
    return {"RESTIC_REPOSITORY": rest_server.new_repository(), "RESTIC_PASSWORD_FILE": str(restic_password_file),
            "BACKUP_FIRST_RUN_DELAY_SECONDS": "86400"}


@pytest.fixture
def bucket() -> str:
    return "t-" + uuid.uuid4().hex[:20]


class OrthancServer:
    """A real Orthanc with our plugin; restartable on the same data (one process at a time)."""

    def __init__(self, work: Path, backup_env: dict[str, str], plugin: bool = True) -> None:
        self.settings = devstack.OrthancSettings(
            work_dir=work, http_port=devstack.free_port(), dicom_port=devstack.free_port(),
            username="tech", password=devstack.new_secret(), plugin=plugin)
        self.backup_env = {"BACKUP_RETRY_BASE_SECONDS": "0.2", "BACKUP_RETRY_CAP_SECONDS": "2", **backup_env}
        self.log = work / "orthanc.log"
        self.proc: devstack.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.http_port}"

    def start(self) -> None:
        assert self.proc is None or not self.proc.alive(), "two Orthancs on one index crash"
        self.proc = devstack.start_orthanc(self.settings, self.backup_env, self.log)

    def stop(self) -> None:
        if self.proc:
            self.proc.stop(60)

    def kill(self) -> None:
        if self.proc:
            self.proc.kill()

    def http(self) -> OrthancHttp:
        return OrthancHttp(self.url, self.settings.username, self.settings.password)

    def status(self) -> dict:
        return self.http().get_json("/backup/status")

    def run_job(self, kind: str, target: str | None = None, timeout: float = 300) -> list[dict]:
        """Trigger snapshots or drills through the REST API and wait for the recorded runs."""
        ids = self.http().post_json(f"/backup/{kind}", {"target": target} if target else {})["runs"]

        def finished():
            runs = [self.http().get_json(f"/backup/runs/{i}") for i in ids]
            return runs if all(r["state"] in ("ok", "failed") for r in runs) else None
        return wait_until(finished, timeout, f"{kind} to finish", 0.5)  # type: ignore[return-value]

    def wait_replicated(self, count: int, timeout: float = 120) -> dict:
        """Wait until the plugin reports ``count`` replicated and an empty queue."""
        def done():
            st = self.status()
            return st if st.get("replicated") == count and st.get("outbox_depth") == 0 else None
        return wait_until(done, timeout, f"{count} instances replicated")  # type: ignore[return-value]


@pytest.fixture
def orthanc_factory(tmp_path: Path) -> Iterator[Callable[..., OrthancServer]]:
    made: list[OrthancServer] = []

    def make(backup_env: dict[str, str], plugin: bool = True, name: str = "orthanc") -> OrthancServer:
        server = OrthancServer(tmp_path / name, backup_env, plugin)
        made.append(server)
        server.start()
        return server

    yield make
    for server in made:
        server.stop()
        # Shown by pytest only when the test failed: the plugin's lines explain most failures.
        lines = server.log.read_text(errors="replace").splitlines() if server.log.exists() else []
        print(f"--- tail of {server.log}:\n" + "\n".join(lines[-40:]))


@pytest.fixture
def orthanc(orthanc_factory: Callable[..., OrthancServer], minio_server: MinioServer, bucket: str,
            offsite_env: dict[str, str]) -> OrthancServer:
    """Orthanc + plugin replicating to a fresh bucket of the session's MinIO, with an offsite repository."""
    return orthanc_factory({**minio_server.env(bucket), **offsite_env})


class DashboardServer:
    """The real dashboard (waitress) in front of a real Orthanc + plugin."""

    def __init__(self, work: Path, orthanc: OrthancServer, env: dict[str, str] | None = None) -> None:
        self.port = devstack.free_port()
        self.username, self.password = "reception", devstack.new_secret()
        self.work, self.orthanc = work, orthanc
        self.extra_env = dict(env or {})  # e.g. DASHBOARD_TZ, the read-only DASHBOARD_MINIO_* account
        self.proc: devstack.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {"ORTHANC_URL": self.orthanc.url, "ORTHANC_USERNAME": self.orthanc.settings.username,
               "ORTHANC_PASSWORD": self.orthanc.settings.password, "DASHBOARD_USERNAME": self.username,
               "DASHBOARD_PASSWORD": self.password, "DASHBOARD_MONITOR_SECONDS": "2", **self.extra_env}
        self.proc = devstack.start_dashboard(self.port, self.work, env, self.work / "dashboard.log")

    def stop(self) -> None:
        if self.proc:
            self.proc.stop(20)


@pytest.fixture
def dashboard_factory(tmp_path: Path) -> Iterator[Callable[..., DashboardServer]]:
    made: list[DashboardServer] = []

    def make(orthanc: OrthancServer, env: dict[str, str] | None = None) -> DashboardServer:
        d = DashboardServer(tmp_path / f"dashboard-{len(made)}", orthanc, env)
        made.append(d)
        d.start()
        return d

    yield make
    for d in made:
        d.stop()
