"""Several users with roles, the Users page, and 2-step login (codes from an authenticator app)."""

from __future__ import annotations

import base64
import re
import sqlite3
import time

import pytest

from pacs_dashboard import roles, totp
from pacs_dashboard.db import Database
from pacs_dashboard.security import hash_password
from tests.dashboard.test_security import concrete
from tests.support.dashboard_fakes import PASSWORD, csrf_of

OTHER_PASSWORD = "another-long-password-2"
# Pages about one's own account, which every role may use (a monitor account changes its password too).
OWN_ACCOUNT = {"auth.logout", "auth.change_password", "accounts.two_step_start", "accounts.two_step"}
OWN_ACCOUNT |= {"accounts.two_step_self_off", "accounts.account"}
PUBLIC = {"status.healthz", "auth.login", "auth.login_code", "auth.setup", "static"}
PUBLIC |= {"shares.recipient", "shares.recipient_dicomweb"}  # a share link's recipient (test_shares.py)
PUBLIC |= {"viewer.vendor"}  # the viewer's npm files, no patient data (test_viewer_page.py)


def login(app, username, password=PASSWORD):
    client = app.test_client()
    token = csrf_of(client.get("/login").get_data(as_text=True))
    resp = client.post("/login", data={"username": username, "password": password, "csrf_token": token})
    assert resp.status_code == 302, resp.get_data(as_text=True)
    return client


def user_with_role(app, username, role, password=PASSWORD):
    assert app.extensions["db"].add_user(username, hash_password(password), role)
    return login(app, username, password)


def token_of(client, url="/account"):
    return csrf_of(client.get(url).get_data(as_text=True))


def audit_details(app):
    return [(r[3], r[4]) for r in app.extensions["db"].audit_rows()]


# --- roles on every endpoint ---------------------------------------------------------------------
def every_request(app):
    """(endpoint, method, url) for every route of the app, public ones left out."""
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule.endpoint, method, concrete(rule)


def test_a_monitor_gets_403_on_every_post_and_every_page_beyond_reading_status(app, backend):
    monitor = user_with_role(app, "nagios", "monitor")
    token = token_of(monitor)
    read_only = {"status.index", "status.api_status", "status.metrics", "drills.history"}
    read_only |= {"reports.staff_guide", "reports.restore_test_report"}
    group_read_only = {"group_pages.overview", "group_pages.api_overview"}  # group mode only: not routes here
    monitor_may = {e for e, allowed in roles.ALLOWED.items() if "monitor" in allowed}
    assert monitor_may - group_read_only == read_only | OWN_ACCOUNT
    refused = 0
    for endpoint, method, url in every_request(app):
        if endpoint in OWN_ACCOUNT:
            continue
        resp = monitor.open(url, method=method, data={"csrf_token": token})
        if method == "GET" and endpoint in read_only:
            assert resp.status_code == 200, f"{method} {url} answered {resp.status_code}"
            continue
        assert resp.status_code == 403, f"{method} {url} answered {resp.status_code} to a monitor"
        assert b"Your account (monitor) cannot" in resp.data and b"DOE^JANE" not in resp.data
        if url.startswith("/api/"):
            assert resp.is_json and "Ask the clinic's administrator" in resp.get_json()["error"]
        refused += 1
    assert refused >= 20 and backend.restores == []


def test_staff_can_search_and_restore_but_not_open_settings_users_or_audit(app, backend):
    staff = user_with_role(app, "anna", "staff")
    assert staff.get("/studies?q=DOE").status_code == 200
    page = staff.get("/studies/1.2.3").get_data(as_text=True)
    resp = staff.post(
        "/studies/1.2.3/restore", data={"source": "minio", "confirmed": "yes", "csrf_token": csrf_of(page)}
    )
    assert resp.status_code == 302 and backend.restores == [("1.2.3", "minio", None)]
    settings = staff.get("/settings")
    assert settings.status_code == 403
    assert "Your account (staff) cannot change settings. Ask the clinic&#39;s administrator." in settings.get_data(
        as_text=True
    )
    token = token_of(staff)
    for endpoint, method, url in every_request(app):
        if endpoint in roles.ALLOWED:
            continue  # everything not named there is for administrators only
        resp = staff.open(url, method=method, data={"csrf_token": token})
        assert resp.status_code == 403, f"{method} {url} answered {resp.status_code} to staff"
    assert {"settings.edit", "accounts.users", "audit.view", "audit.export"} <= {
        e for e, _, _ in every_request(app) if e not in roles.ALLOWED
    }


def test_an_endpoint_nobody_listed_is_for_administrators_only():
    assert roles.allowed("admin", "alerts.new_page")
    assert not roles.allowed("staff", "alerts.new_page") and not roles.allowed("monitor", "alerts.new_page")
    assert not roles.allowed("someone-else", "status.index")  # a role this dashboard does not know
    assert (
        roles.refusal("staff", "alerts.edit")
        == "Your account (staff) cannot change alerts. Ask the clinic's administrator."
    )


def test_navigation_shows_only_what_the_user_may_open(app, logged_in):
    monitor = user_with_role(app, "nagios", "monitor")
    page = monitor.get("/").get_data(as_text=True)
    assert 'href="/drills"' in page and 'href="/account"' in page
    for hidden in ('href="/studies"', 'href="/settings"', 'href="/users"', 'href="/audit"', 'href="/drives"'):
        assert hidden not in page
    admin_page = logged_in.get("/").get_data(as_text=True)
    assert 'href="/users"' in admin_page and 'href="/settings"' in admin_page


def test_a_monitor_account_reads_metrics_with_basic_auth_but_no_study(app):
    app.extensions["db"].add_user("nagios", hash_password(PASSWORD), "monitor")
    auth = {"Authorization": "Basic " + base64.b64encode(f"nagios:{PASSWORD}".encode()).decode()}
    client = app.test_client()
    assert client.get("/metrics", headers=auth).status_code == 200
    assert client.get("/api/status", headers=auth).status_code == 200
    refused = client.get("/api/runs/1", headers=auth)
    assert refused.status_code == 403 and "cannot open or restore studies" in refused.get_json()["error"]


# --- the Users page ------------------------------------------------------------------------------
def add_form(logged_in, **fields):
    data = {"username": "anna", "role": "staff", "password": OTHER_PASSWORD, "again": OTHER_PASSWORD}
    data.update(fields, csrf_token=token_of(logged_in, "/users"))
    return logged_in.post("/users/add", data=data)


def test_admin_adds_a_user_who_logs_in_with_that_role(app, logged_in):
    for bad, sentence in (
        ({"password": "short"}, "12 characters or more"),
        ({"again": OTHER_PASSWORD + "x"}, "not the same"),
        ({"username": "anna smith"}, "letters, digits"),
        ({"role": "root"}, "Choose one of the roles"),
        ({"username": "ADMIN"}, "There is already a user called ADMIN"),
    ):
        resp = add_form(logged_in, **bad)
        assert resp.status_code == 400 and sentence in resp.get_data(as_text=True), bad
    assert [u.username for u in app.extensions["db"].users()] == ["admin"]
    assert add_form(logged_in).status_code == 302
    listing = logged_in.get("/users").get_data(as_text=True)
    assert 'data-label="Role">staff' in listing and 'data-label="Last login">never' in listing
    anna = login(app, "anna", OTHER_PASSWORD)
    assert anna.get("/studies").status_code == 200 and anna.get("/users").status_code == 403
    assert ("user_created", "added anna as staff") in audit_details(app)
    assert OTHER_PASSWORD not in str(app.extensions["db"].audit_rows())
    assert app.extensions["db"].user("anna").last_login is not None


def test_changing_a_role_logs_that_user_out_and_takes_effect(app, logged_in):
    anna = user_with_role(app, "anna", "staff")
    resp = logged_in.post(
        "/users/role", data={"username": "anna", "role": "monitor", "csrf_token": token_of(logged_in, "/users")}
    )
    assert resp.status_code == 302
    assert anna.get("/").status_code == 302  # her session ended: back to the login page
    anna = login(app, "anna")
    assert anna.get("/studies").status_code == 403
    assert ("user_role_changed", "anna: staff -> monitor; 1 session(s) logged out") in audit_details(app)


def test_setting_a_password_for_a_user_logs_them_out(app, logged_in):
    anna = user_with_role(app, "anna", "staff")
    data = {"username": "anna", "new": OTHER_PASSWORD, "again": OTHER_PASSWORD}
    resp = logged_in.post("/users/password", data=dict(data, csrf_token=token_of(logged_in, "/users")))
    assert resp.status_code == 302 and anna.get("/").status_code == 302
    login(app, "anna", OTHER_PASSWORD)
    assert any(a == "user_password_set" and "anna" in d for a, d in audit_details(app))
    assert OTHER_PASSWORD not in str(app.extensions["db"].audit_rows())


def test_removing_a_user_asks_first_then_ends_their_sessions(app, logged_in):
    anna = user_with_role(app, "anna", "staff")
    edit = logged_in.get("/users/edit?name=anna").get_data(as_text=True)
    assert "<h1>User anna</h1>" in edit and 'href="/users/remove?name=anna"' in edit
    confirm = logged_in.get("/users/remove?name=anna").get_data(as_text=True)
    assert "Remove anna?" in confirm and app.extensions["db"].user("anna") is not None
    resp = logged_in.post("/users/remove", data={"username": "anna", "csrf_token": csrf_of(confirm)})
    assert resp.status_code == 302 and app.extensions["db"].user("anna") is None
    assert anna.get("/").status_code == 302
    assert ("user_removed", "removed anna (staff); 1 session(s) logged out") in audit_details(app)


def test_the_last_administrator_cannot_be_demoted_or_removed_and_nobody_removes_themselves(app, logged_in):
    token = token_of(logged_in, "/users")
    demote = logged_in.post("/users/role", data={"username": "admin", "role": "staff", "csrf_token": token})
    assert demote.status_code == 400 and "admin is the only administrator" in demote.get_data(as_text=True)
    itself = logged_in.post("/users/remove", data={"username": "admin", "csrf_token": token})
    assert itself.status_code == 400 and "You cannot remove your own account" in itself.get_data(as_text=True)
    db = app.extensions["db"]
    assert db.remove_user("admin") is None and db.user("admin").role == "admin"
    db.add_user("boss", hash_password(PASSWORD), "admin")
    assert db.set_role("admin", "staff") == 1  # another administrator remains: allowed
    assert db.set_role("boss", "monitor") is None


def test_removing_the_configured_administrator_says_it_comes_back_at_the_next_start(app, backend):
    from pacs_dashboard import create_app

    boss = user_with_role(app, "boss", "admin")
    page = boss.get("/users/remove?name=admin").get_data(as_text=True)
    assert "comes back" in page and "DASHBOARD_USERNAME" in page
    app.extensions["db"].add_user("reception", hash_password(PASSWORD), "staff")
    assert "DASHBOARD_USERNAME" not in boss.get("/users/remove?name=reception").get_data(as_text=True)
    token = token_of(boss, "/users")
    assert boss.post("/users/remove", data={"username": "admin", "csrf_token": token}).status_code == 302
    assert app.extensions["db"].user("admin") is None
    again = create_app(app.extensions["settings"], start_monitor=False, backend=backend)
    assert again.extensions["db"].user("admin").role == "admin"  # as the page said


# --- 2-step login -----------------------------------------------------------------------------------
RFC6238_SHA1 = [  # RFC 6238 appendix B, SHA-1 rows: (time, 8-digit code)
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]


@pytest.mark.parametrize(("at", "code"), RFC6238_SHA1)
def test_codes_match_the_rfc_6238_test_vectors(at, code):
    secret = base64.b32encode(b"12345678901234567890").decode()
    assert totp.code_at(secret, totp.step_of(at), digits=8) == code
    assert totp.matching_step(secret, code[-6:], at) == totp.step_of(at)


def test_a_code_is_accepted_one_step_either_side_and_never_twice():
    secret, at = totp.new_secret(), 1_700_000_000.0
    step = totp.step_of(at)
    assert totp.matching_step(secret, totp.code_at(secret, step - 1), at) == step - 1
    assert totp.matching_step(secret, totp.code_at(secret, step + 1), at) == step + 1
    assert totp.matching_step(secret, totp.code_at(secret, step - 2), at) is None
    assert totp.matching_step(secret, totp.code_at(secret, step), at, after_step=step) is None
    assert totp.matching_step(secret, "12a456", at) is None
    uri = totp.otpauth_uri(secret, "anna")
    assert uri.startswith("otpauth://totp/PACS%20backup:anna?secret=" + secret) and "digits=6" in uri


def now_code(secret):
    return totp.code_at(secret, totp.step_of(time.time()))


def turn_on_two_step(client):
    client.post("/account/two-step/start", data={"password": PASSWORD, "csrf_token": token_of(client)})
    page = client.get("/account/two-step").get_data(as_text=True)
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")
    assert "otpauth://totp/" in page
    wrong = client.post("/account/two-step", data={"code": "000000", "csrf_token": csrf_of(page)})
    assert wrong.status_code == 400 and "does not match" in wrong.get_data(as_text=True)
    done = client.post("/account/two-step", data={"code": now_code(secret), "csrf_token": csrf_of(page)})
    assert done.status_code == 302
    return secret


def password_step(app, username="admin"):
    client = app.test_client()
    token = csrf_of(client.get("/login").get_data(as_text=True))
    resp = client.post(
        "/login", data={"username": username, "password": PASSWORD, "csrf_token": token, "next": "/drills"}
    )
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/login/code")
    return client


def test_login_with_two_step_needs_a_code_from_the_app(app, logged_in):
    secret = turn_on_two_step(logged_in)
    assert app.extensions["db"].user("admin").two_step
    assert ("two_step_on", "admin turned on 2-step login; 0 other session(s) logged out") in audit_details(app)
    client = password_step(app)
    assert client.get("/").status_code == 302  # the password alone is not a session
    page = client.get("/login/code").get_data(as_text=True)
    assert "Type your login code" in page
    # the code that turned 2-step on cannot be typed again (nor any earlier one)
    code = totp.code_at(secret, totp.step_of(time.time()) + 1)
    resp = client.post("/login/code", data={"code": code, "csrf_token": csrf_of(page)})
    assert resp.status_code == 302 and resp.headers["Location"] == "/drills"
    assert client.get("/").status_code == 200
    again = password_step(app)
    reused = again.post("/login/code", data={"code": code, "csrf_token": token_of(again, "/login/code")})
    assert reused.status_code == 401 and "used already" in reused.get_data(as_text=True)
    assert ("login", "with 2-step code") in audit_details(app)


def test_wrong_codes_are_throttled_like_wrong_passwords(app, logged_in):
    secret = turn_on_two_step(logged_in)
    client = password_step(app)
    token = token_of(client, "/login/code")
    for _ in range(5):
        assert client.post("/login/code", data={"code": "000000", "csrf_token": token}).status_code == 401
    resp = client.post("/login/code", data={"code": now_code(secret), "csrf_token": token})
    assert resp.status_code == 429 and b"Too many failed attempts" in resp.data
    assert ("login_failed", "wrong 2-step code") in audit_details(app)
    # logging in again with the password does not forgive the wrong codes
    fresh = app.test_client()
    token = csrf_of(fresh.get("/login").get_data(as_text=True))
    again = fresh.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token})
    assert again.status_code == 429


def test_a_code_must_follow_the_password_within_5_minutes(app, logged_in):
    secret = turn_on_two_step(logged_in)
    client = password_step(app)
    token = token_of(client, "/login/code")
    app.extensions["db"].execute("UPDATE pending_logins SET created_at = created_at - 301")
    resp = client.post("/login/code", data={"code": now_code(secret), "csrf_token": token})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/login")
    assert "within 5 minutes" in client.get("/login").get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_an_account_with_two_step_cannot_use_basic_auth(app, logged_in):
    turn_on_two_step(logged_in)
    auth = {"Authorization": "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()}
    resp = app.test_client().get("/metrics", headers=auth)
    assert resp.status_code == 401 and "monitor role and without 2-step login" in resp.get_json()["error"]


def test_admin_turns_off_two_step_for_a_lost_phone_and_a_user_turns_off_their_own(app, logged_in):
    anna = user_with_role(app, "anna", "staff")
    turn_on_two_step(anna)
    data = {"username": "anna", "password": PASSWORD, "csrf_token": token_of(logged_in, "/users")}
    resp = logged_in.post("/users/two-step-off", data=data)  # the administrator's own password
    assert resp.status_code == 302 and not app.extensions["db"].user("anna").two_step
    login(app, "anna")  # the password alone again
    detail = "2-step login turned off for anna (by an administrator); 1 session(s) logged out"
    assert ("user_two_step_off", detail) in audit_details(app)
    secret = turn_on_two_step(logged_in)
    wrong = logged_in.post("/account/two-step/off", data={"password": "nope", "csrf_token": token_of(logged_in)})
    assert wrong.status_code == 403 and app.extensions["db"].user("admin").two_step
    data = {"password": PASSWORD, "code": totp.code_at(secret, totp.step_of(time.time()) + 1)}
    ok = logged_in.post("/account/two-step/off", data={**data, "csrf_token": token_of(logged_in)})
    assert ok.status_code == 302 and not app.extensions["db"].user("admin").two_step


# --- the database from before roles ------------------------------------------------------------------
def test_a_version_2_database_keeps_its_user_as_an_administrator(tmp_path):
    from pacs_dashboard.db import _SCHEMA_V1, MIGRATIONS

    path = tmp_path / "dashboard.sqlite"
    con = sqlite3.connect(path)
    con.executescript(_SCHEMA_V1)
    MIGRATIONS[1](con)
    con.execute("INSERT INTO users VALUES ('clinic', 'pbkdf2:sha256:1$x$y', 1.0)")
    con.execute("INSERT INTO sessions VALUES ('h', 'clinic', 'c', 1.0, 1.0, NULL)")
    con.execute("PRAGMA user_version = 2")
    con.commit()
    con.close()
    db = Database(path)
    found = db.user("clinic")
    assert found is not None and found.role == "admin" and not found.two_step and found.last_login is None
    assert db.user_hash("clinic") == "pbkdf2:sha256:1$x$y"
    assert db.query("PRAGMA user_version")[0][0] == len(MIGRATIONS) >= 3


def test_pages_offer_no_button_the_account_may_not_use(app, logged_in):
    monitor = user_with_role(app, "nagios", "monitor")
    staff = user_with_role(app, "reception", "staff")
    assert "Run a restore test now" not in monitor.get("/drills").get_data(as_text=True)
    assert "Run a restore test now" in staff.get("/drills").get_data(as_text=True)
    assert "Run a restore test now" in logged_in.get("/drills").get_data(as_text=True)
