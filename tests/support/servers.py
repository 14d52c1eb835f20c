"""The real programs the tests start on free loopback ports: MinIO, rest-server, Orthanc (+ plugin), dashboard.

Programs come from `make setup`; a missing one fails the test with a message saying so (never skips).
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import requests
from minio import Minio

import devstack
from pacs_backup.clients.orthanc_http import OrthancHttp
from tests.support.common import wait_until


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
        self.proc = devstack.start_minio(self.data, self.port, self.console, self.access_key, self.secret_key, self.log)

    def stop(self) -> None:
        if self.proc:
            self.proc.stop(30)

    def client(self) -> Minio:
        return Minio(self.endpoint, self.access_key, self.secret_key, secure=False)

    def env(self, bucket: str) -> dict[str, str]:
        return {
            "MINIO_ENDPOINT": self.endpoint,
            "MINIO_ACCESS_KEY": self.access_key,
            "MINIO_SECRET_KEY": self.secret_key,
            "MINIO_BUCKET": bucket,
        }


class RestServer:
    """A real rest-server on 127.0.0.1 (append-only by default), holding many repositories."""

    def __init__(self, base: Path, append_only: bool = True) -> None:
        self.base, self.append_only = base, append_only
        self.port = devstack.free_port()
        self.proc: devstack.Process | None = None

    def start(self) -> None:
        self.proc = devstack.start_rest_server(
            self.base / "repos", self.port, self.base / "rest-server.log", self.append_only
        )

    def stop(self) -> None:
        if self.proc:
            self.proc.stop(10)

    def new_repository(self) -> str:
        return f"rest:http://127.0.0.1:{self.port}/{uuid.uuid4().hex[:12]}"


class OrthancServer:
    """A real Orthanc with our plugin; restartable on the same data (one process at a time)."""

    def __init__(self, work: Path, backup_env: dict[str, str], plugin: bool = True, aet: str = "PACS") -> None:
        self.settings = devstack.OrthancSettings(
            work_dir=work,
            http_port=devstack.free_port(),
            dicom_port=devstack.free_port(),
            username="tech",
            password=devstack.new_secret(),
            plugin=plugin,
            aet=aet,
        )
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
        env = {
            "ORTHANC_URL": self.orthanc.url,
            "ORTHANC_USERNAME": self.orthanc.settings.username,
            "ORTHANC_PASSWORD": self.orthanc.settings.password,
            "DASHBOARD_USERNAME": self.username,
            "DASHBOARD_PASSWORD": self.password,
            "DASHBOARD_MONITOR_SECONDS": "2",
            **self.extra_env,
        }
        self.proc = devstack.start_dashboard(self.port, self.work, env, self.work / "dashboard.log")

    def login(self) -> requests.Session:
        """A browser-like session logged in with the administrator's password (CSRF token included)."""
        s = requests.Session()
        page = s.get(self.url + "/login", timeout=10).text
        found = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert found, page[:500]
        r = s.post(
            self.url + "/login",
            data={"username": self.username, "password": self.password, "csrf_token": found.group(1)},
            timeout=10,
            allow_redirects=False,
        )
        assert r.status_code == 302, r.text
        return s

    def stop(self) -> None:
        if self.proc:
            self.proc.stop(20)
