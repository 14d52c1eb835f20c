"""The viewer page with a stand-in for the plugin: who may open it, its Content-Security-Policy (only the import
map's hash as inline script, only an empty style attribute), the study's header, "View" links, a bad copy name,
and dwv's files served as JavaScript, cached for a year, to anyone (share links have no account)."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets

import pytest

from pacs_dashboard import deps
from pacs_dashboard.security import hash_password
from pacs_dashboard.viewer_page import VENDOR_DIR, vendor_version
from tests.support.dashboard_fakes import csrf_of

PW = "pw-" + secrets.token_urlsafe(12)


def log_in(app, user: str, role: str):
    app.extensions[deps.DB].add_user(user, hash_password(PW), role=role)
    client = app.test_client()
    token = csrf_of(client.get("/login").get_data(as_text=True))
    assert client.post("/login", data={"username": user, "password": PW, "csrf_token": token}).status_code == 302
    return client


@pytest.fixture
def installed():
    if not (VENDOR_DIR / "dwv.min.js").is_file():
        raise AssertionError(f"{VENDOR_DIR} holds no dwv.min.js: run dev/setup viewer")


def test_viewer_page_for_staff_with_its_own_csp(app, installed):
    staff = log_in(app, "tech", "staff")
    resp = staff.get("/studies/1.2.3/view")
    assert resp.status_code == 200
    page = resp.get_data(as_text=True)
    assert "DOE, JANE" in page and "patient ID P1" in page
    assert 'data-dicomweb="/copies/{source}/dicom-web"' in page
    importmap = re.search(r'<script type="importmap">(.*?)</script>', page, re.S)
    assert importmap is not None
    digest = base64.b64encode(hashlib.sha256(html.unescape(importmap.group(1)).encode()).digest()).decode()
    csp = resp.headers["Content-Security-Policy"]
    assert f"script-src 'self' 'sha256-{digest}';" in csp
    assert "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
    assert "style-src-attr 'unsafe-hashes' 'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='" in csp
    assert "worker-src 'self';" in csp and "frame-ancestors 'none'" in csp
    assert len(re.findall(r"<script(?![^>]*\bsrc=)(?![^>]*importmap)", page)) == 0  # no other inline script
    assert resp.headers["Cache-Control"] == "no-store"


def test_viewer_refused_to_monitor_accounts_and_bad_copy_names(app, installed):
    monitor = log_in(app, "watcher", "monitor")
    resp = monitor.get("/studies/1.2.3/view")
    assert resp.status_code == 403 and "cannot view studies" in resp.get_data(as_text=True)
    staff = log_in(app, "tech", "staff")
    assert staff.get("/studies/1.2.3/view?from=../etc").status_code == 400
    assert staff.get("/studies/1..2/view").status_code == 404
    assert app.test_client().get("/studies/1.2.3/view").status_code == 302  # to the login page


def test_viewer_links_on_the_study_page_and_in_search_results(app, installed):
    staff = log_in(app, "tech", "staff")
    assert 'href="/studies/1.2.3/view"' in staff.get("/studies/1.2.3").get_data(as_text=True)
    assert 'href="/studies/1.2.3/view"' in staff.get("/studies?q=doe").get_data(as_text=True)
    monitor = log_in(app, "watcher", "monitor")
    assert monitor.get("/studies?q=doe").status_code == 403


def test_viewer_files_are_javascript_cached_for_a_year_without_login(app, installed):
    anyone = app.test_client()
    version = vendor_version()
    for name in ("dwv.min.js", "konva.min.js", "assets/workers/rle.worker.min.js"):
        resp = anyone.get(f"/viewer/vendor/{version}/{name}")
        assert resp.status_code == 200, name
        assert resp.headers["Content-Type"] == "text/javascript; charset=utf-8"
        assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert anyone.get("/viewer/vendor/old-version/dwv.min.js").status_code == 404
    assert anyone.get(f"/viewer/vendor/{version}/../../views/viewer.py").status_code == 404
    licence = anyone.get(f"/viewer/vendor/{version}/licences/dwv-GPL-3.0.txt")
    assert licence.status_code == 200 and b"GNU GENERAL PUBLIC LICENSE" in licence.data
    sources = anyone.get(f"/viewer/vendor/{version}/SOURCES.txt").get_data(as_text=True)
    assert "dwv 0.36.4 https://registry.npmjs.org/dwv/-/dwv-0.36.4.tgz" in sources
    assert "https://github.com/ivmartel/dwv/tree/v0.36.4" in sources
