"""Dashboard unit tests: the Flask app with a stand-in for the plugin's REST API."""

from __future__ import annotations

import pytest

from pacs_dashboard import create_app
from pacs_dashboard.config import load_dashboard_settings
from tests.support.dashboard_fakes import PASSWORD, FakeBackend, csrf_of


@pytest.fixture
def backend():
    return FakeBackend()


@pytest.fixture
def app(tmp_path, backend):
    env = {
        "ORTHANC_URL": "http://127.0.0.1:1",
        "DASHBOARD_DATA_DIR": str(tmp_path),
        "DASHBOARD_USERNAME": "admin",
        "DASHBOARD_PASSWORD": PASSWORD,
        "DASHBOARD_COOKIE_SECURE": "false",
        "DASHBOARD_TZ": "Europe/Berlin",
        # Someone is told when something breaks (with no alert address the health page is amber).
        "APPRISE_URLS": "ntfys://clinic-alerts",
    }
    app = create_app(load_dashboard_settings(env), start_monitor=False, backend=backend)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def logged_in(app):
    client = app.test_client()
    token = csrf_of(client.get("/login").get_data(as_text=True))
    resp = client.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token})
    assert resp.status_code == 302
    return client
