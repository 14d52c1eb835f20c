"""Nobody without a password sees anything but /healthz; forms need their CSRF token; logins are throttled."""

import re

from tests.support.dashboard_fakes import PASSWORD, csrf_of

PUBLIC = {"/healthz", "/login", "/login/code", "/setup", "/static/1.2.3"}  # static: the login page's style and scripts
PUBLIC |= {"/s/1.2.3", "/s/1.2.3/dicom-web/1.2.3"}  # a share link's recipient (tests/dashboard/test_shares.py)
PUBLIC |= {"/viewer/vendor/1.2.3/1.2.3"}  # the viewer's npm files (tests/dashboard/test_viewer_page.py)


def concrete(rule) -> str:
    return re.sub(
        r"<(?:int:)?(\w+)>",
        lambda m: "1" if "int:" in m.group(0) else "1.2.3",
        re.sub(r"<path:(\w+)>", "1.2.3", rule.rule),
    )


def test_every_route_refuses_anonymous_requests(app):
    client = app.test_client()
    checked = 0
    for rule in app.url_map.iter_rules():
        url = concrete(rule)
        if url in PUBLIC:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            resp = client.open(url, method=method)
            assert resp.status_code in (302, 401), f"{method} {url} answered {resp.status_code} without login"
            if resp.status_code == 302:
                assert "/login" in resp.headers["Location"]
            assert b"DOE^JANE" not in resp.data
            checked += 1
    assert checked >= 15


def test_healthz_is_public_and_says_nothing_about_patients(app):
    resp = app.test_client().get("/healthz")
    body = resp.get_json()
    assert resp.status_code == 200 and body["ok"] is True and body["state"] == "green"
    assert set(body) == {"ok", "state", "parts", "last_known", "checked_at"}  # part names and states only
    assert body["parts"]["pacs"] == "green" and b"DOE" not in resp.data


def test_every_post_without_csrf_token_is_refused(app, logged_in, backend):
    posts = [concrete(r) for r in app.url_map.iter_rules() if "POST" in r.methods and concrete(r) not in PUBLIC]
    assert posts
    for url in posts:
        resp = logged_in.post(url, data={"source": "minio"})
        assert resp.status_code == 400, url
        assert b"Reload the page" in resp.data
    assert backend.restores == []


def test_login_is_throttled_after_repeated_failures(app):
    client = app.test_client()
    token = csrf_of(client.get("/login").get_data(as_text=True))
    for _ in range(5):
        assert (
            client.post("/login", data={"username": "admin", "password": "wrong", "csrf_token": token}).status_code
            == 401
        )
    resp = client.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token})
    assert resp.status_code == 429 and b"Too many failed attempts" in resp.data


def test_session_cookie_flags(app):
    client = app.test_client()
    token = csrf_of(client.get("/login").get_data(as_text=True))
    resp = client.post("/login", data={"username": "admin", "password": PASSWORD, "csrf_token": token})
    cookie = resp.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie


def test_no_default_user_without_configuration(tmp_path, backend):
    from pacs_dashboard import create_app
    from pacs_dashboard.config import load_dashboard_settings

    settings = load_dashboard_settings({"ORTHANC_URL": "http://127.0.0.1:1", "DASHBOARD_DATA_DIR": str(tmp_path)})
    app = create_app(settings, start_monitor=False, backend=backend)
    client = app.test_client()
    token = csrf_of(client.get("/login").get_data(as_text=True))
    for user, pw in (("admin", "admin"), ("admin", "password"), ("orthanc", "orthanc")):
        assert client.post("/login", data={"username": user, "password": pw, "csrf_token": token}).status_code == 401
    setup_token = (tmp_path / "setup-token").read_text()
    page = client.get("/setup")
    assert page.status_code == 200
    bad = client.post(
        "/setup",
        data={
            "token": "guess",
            "username": "boss",
            "password": "x" * 12,
            "csrf_token": csrf_of(page.get_data(as_text=True)),
        },
    )
    assert bad.status_code == 403
    ok = client.post(
        "/setup",
        data={
            "token": setup_token,
            "username": "boss",
            "password": "x" * 12,
            "csrf_token": csrf_of(page.get_data(as_text=True)),
        },
    )
    assert ok.status_code == 302 and not (tmp_path / "setup-token").exists()


def test_api_accepts_basic_auth_for_monitoring(app):
    import base64

    good = base64.b64encode(f"admin:{PASSWORD}".encode()).decode()
    assert app.test_client().get("/metrics", headers={"Authorization": "Basic " + good}).status_code == 200
    bad = base64.b64encode(b"admin:nope").decode()
    assert app.test_client().get("/api/status", headers={"Authorization": "Basic " + bad}).status_code == 401


def test_audit_records_logins_and_restores(app, logged_in):
    page = logged_in.get("/studies/1.2.3").get_data(as_text=True)
    logged_in.post("/studies/1.2.3/restore", data={"source": "minio", "confirmed": "yes", "csrf_token": csrf_of(page)})
    csv_text = logged_in.get("/audit.csv").get_data(as_text=True)
    assert ",login," in csv_text and "restore_requested" in csv_text and "study 1.2.3 from minio" in csv_text
