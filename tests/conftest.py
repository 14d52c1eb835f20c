"""Shared fixtures: real MinIO, Orthanc (+ our plugin) and rest-server on free loopback ports.

Programs come from `make setup`; a missing one fails the test with a message saying so (never skips).
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "dev"))
sys.path.insert(0, str(ROOT))

import devstack  # noqa: E402
from tests.support.background import stop_later, wait_for_stops  # noqa: E402
from tests.support.common import sha256, wait_until  # noqa: E402, F401 - re-exported for older tests
from tests.support.file_costs import file_cost  # noqa: E402
from tests.support.rclone_user import rclone_folder  # noqa: E402, F401 - a fixture for rclone's own user
from tests.support.servers import DashboardServer, MinioServer, OrthancServer, RestServer  # noqa: E402


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest files first, so the two processes of `make test` end together (tests/support/file_costs.py);
    a file's own order is kept."""
    items.sort(key=lambda item: (-file_cost(item.path), str(item.path)))


def pytest_sessionfinish(session: pytest.Session) -> None:
    """No server a test started outlives the run (see tests/support/background.py)."""
    wait_for_stops()


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
    trigger snapshots and drills themselves. The rest-server runs on loopback, so it is on the same box
    (an amber "not offsite" light); here it stands in for a server in another building, as the setting
    for tests and trials says (tests/integration/test_dashboard_stack.py drops it to see the amber light)."""
    return {
        "RESTIC_REPOSITORY": rest_server.new_repository(),
        "RESTIC_PASSWORD_FILE": str(restic_password_file),
        "BACKUP_FIRST_RUN_DELAY_SECONDS": "86400",
        "BACKUP_TREAT_AS_OFFSITE": "offsite",
    }


@pytest.fixture
def bucket() -> str:
    return "t-" + uuid.uuid4().hex[:20]


@pytest.fixture
def orthanc_factory(tmp_path: Path) -> Iterator[Callable[..., OrthancServer]]:
    made: list[OrthancServer] = []

    def make(
        backup_env: dict[str, str], plugin: bool = True, name: str = "orthanc", aet: str = "PACS"
    ) -> OrthancServer:
        server = OrthancServer(tmp_path / name, backup_env, plugin, aet)
        made.append(server)
        server.start()
        return server

    yield make
    for server in made:
        # Shown by pytest only when the test failed: the plugin's lines explain most failures.
        lines = server.log.read_text(errors="replace").splitlines() if server.log.exists() else []
        print(f"--- tail of {server.log}:\n" + "\n".join(lines[-40:]))
        stop_later(server.stop)  # a clean stop takes ~3.5 s: the next test need not wait for it


@pytest.fixture
def orthanc(
    orthanc_factory: Callable[..., OrthancServer], minio_server: MinioServer, bucket: str, offsite_env: dict[str, str]
) -> OrthancServer:
    """Orthanc + plugin replicating to a fresh bucket of the session's MinIO, with an offsite repository."""
    return orthanc_factory({**minio_server.env(bucket), **offsite_env})


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
        stop_later(d.stop)
