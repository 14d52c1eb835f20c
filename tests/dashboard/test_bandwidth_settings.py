"""Upload timetables changed on the settings page: administrators save a rule (CSRF, audited), a rule the
plugin refuses shows its sentence, staff may not change it."""

from __future__ import annotations

from pacs_dashboard.security import hash_password
from tests.support.dashboard_fakes import PASSWORD, csrf_of


def audit_actions(app) -> list[tuple]:
    return [(r[3], r[4]) for r in app.extensions["db"].audit_rows(50)]


def test_bandwidth_admin_sees_each_copy_and_saves_a_rule(app, logged_in, backend):
    html = logged_in.get("/settings").get_data(as_text=True)
    assert 'id="upload-limit-offsite"' in html and 'placeholder="08:00,2Mbit 18:00,off"' in html
    assert "08:00 2 Mbit/s, 18:00 unlimited" in html  # the .env rule is in force
    token = csrf_of(html)
    resp = logged_in.post(
        "/settings/upload-limits", data={"copy": "offsite", "rule": "06:00,0 20:00,off", "csrf_token": token}
    )
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/settings#uploads")
    assert backend.upload_overrides == {"offsite": "06:00,0 20:00,off"}
    html = logged_in.get("/settings").get_data(as_text=True)
    assert "applies from its next upload" in html
    assert "06:00 no upload, 20:00 unlimited" in html and "(set here)" in html
    assert ("upload_limit_saved", "offsite: 06:00,0 20:00,off") in audit_actions(app)
    # An empty rule goes back to the .env rule.
    resp = logged_in.post("/settings/upload-limits", data={"copy": "offsite", "rule": "", "csrf_token": token})
    assert resp.status_code == 302 and backend.upload_overrides == {}
    assert ("upload_limit_saved", "offsite: .env rule") in audit_actions(app)


def test_bandwidth_refused_rule_shows_the_plugins_sentence(app, logged_in, backend):
    token = csrf_of(logged_in.get("/settings").get_data(as_text=True))
    resp = logged_in.post(
        "/settings/upload-limits", data={"copy": "offsite", "rule": "08:00,fast", "csrf_token": token}
    )
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and 'role="alert"' in html
    assert "The upload timetable of offsite was not saved:" in html and "that is not understood; use off" in html
    assert backend.upload_overrides == {} and audit_actions(app)[0][0] == "upload_limit_refused"
    no_csrf = logged_in.post("/settings/upload-limits", data={"copy": "offsite", "rule": "off"})
    assert no_csrf.status_code == 400 and backend.upload_overrides == {}


def test_bandwidth_staff_may_not_change_a_timetable(app, backend):
    assert app.extensions["db"].add_user("anna", hash_password(PASSWORD), "staff")
    staff = app.test_client()
    token = csrf_of(staff.get("/login").get_data(as_text=True))
    staff.post("/login", data={"username": "anna", "password": PASSWORD, "csrf_token": token})
    token = csrf_of(staff.get("/").get_data(as_text=True))
    resp = staff.post("/settings/upload-limits", data={"copy": "offsite", "rule": "off", "csrf_token": token})
    assert resp.status_code == 403 and backend.upload_overrides == {}
    assert "set_upload_limit" not in backend.asked


def test_bandwidth_settings_page_while_the_pacs_is_down(logged_in, backend):
    backend.down = True
    html = logged_in.get("/settings").get_data(as_text=True)
    assert "The upload timetables cannot be changed now:" in html and 'id="upload-limits"' not in html
