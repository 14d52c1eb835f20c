"""Dashboard unit tests: the Flask app with a stand-in for the plugin's REST API."""

from __future__ import annotations

import re
import time

import pytest

from pacs_dashboard import create_app
from pacs_dashboard.config import load_dashboard_settings

PASSWORD = "a-long-test-password-1"


def healthy_status(**over):
    now = time.time()
    run = {"id": 1, "state": "ok", "finished_at": now - 60, "queued_at": now - 70, "error": None, "summary": {}}
    st = {"state": "ok", "enabled": True, "outbox_depth": 0, "oldest_pending_age_s": None, "replicated": 10,
          "replicated_bytes": 10_000, "failed": 0, "quarantined": 0, "lag_s": {"p50": 0.1, "p99": 0.3},
          "store": {"reachable": True}, "disk": {"free_bytes": 50e9, "total_bytes": 100e9},
          "offsite": {"offsite": {"last_snapshot": dict(run, kind="snapshot"), "last_good_snapshot_age_s": 60,
                                  "last_drill": dict(run, kind="drill")},
                      "minio": {"last_drill": dict(run, kind="drill")}}}
    st.update(over)
    return st


class FakeBackend:
    def __init__(self):
        self.status_value = healthy_status()
        self.error = None
        self.restores = []

    def status(self):
        return (None, self.error) if self.error else (self.status_value, None)

    def runs(self, kind=None, limit=100):
        return []

    def run(self, run_id):
        return {"id": run_id, "state": "running", "target": "minio", "summary": {"done": 1, "total": 2}}

    def trigger(self, kind, target=None):
        return [1]

    def studies(self, q, a, b, m):
        return [{"study_uid": "1.2.3", "patient_name": "DOE^JANE", "patient_id": "P1", "accession": "A1",
                 "study_date": "20261127", "description": "Chest", "modalities": "CR", "series": 1, "instances": 2}]

    def study(self, uid):
        return {"study_uid": uid, "instances": [{"series_uid": "1.2.3.4", "modality": "CR", "patient_name": "DOE^JANE",
                                                 "patient_id": "P1", "description": "Chest", "study_date": "20261127",
                                                 "accession": "A1"}]}

    def snapshots(self, target):
        return []

    def restore(self, uid, source, snapshot):
        self.restores.append((uid, source, snapshot))
        return 7

    def instance_in_pacs(self, uid):
        return None

    def preview(self, oid):
        return b""


@pytest.fixture
def backend():
    return FakeBackend()


@pytest.fixture
def app(tmp_path, backend):
    env = {"ORTHANC_URL": "http://127.0.0.1:1", "DASHBOARD_DATA_DIR": str(tmp_path), "DASHBOARD_USERNAME": "admin",
           "DASHBOARD_PASSWORD": PASSWORD, "DASHBOARD_COOKIE_SECURE": "false"}
    app = create_app(load_dashboard_settings(env), start_monitor=False, backend=backend)
    app.config["TESTING"] = True
    return app


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


@pytest.fixture
def logged_in(app):
    client = app.test_client()
    token = csrf_of(client.get("/login").get_data(as_text=True))
    resp = client.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token})
    assert resp.status_code == 302
    return client
