"""The Alerts page: who is told when something breaks, and that nothing typed is ever dropped."""

from __future__ import annotations

import re
import socket
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from markupsafe import escape

from pacs_backup.contracts.errors import ConfigError
from pacs_dashboard import summary
from pacs_dashboard.config import load_dashboard_settings
from pacs_dashboard.destinations import Delivery, Destination
from pacs_dashboard.health import lights
from pacs_dashboard.mailer import SmtpSettings, send_mail
from tests.dashboard.test_hardening import logged_in_client, make_app
from tests.support.dashboard_fakes import FakeBackend, csrf_of, healthy_status

BERLIN = ZoneInfo("Europe/Berlin")
SMTP = {"DASHBOARD_SMTP_HOST": "mail.clinic.example", "DASHBOARD_SMTP_FROM": "pacs@clinic.example"}
SECRET_URL = "mailtos://alerts:very-secret-pw@mail.example.com"


def make(tmp_path, **env):
    app = make_app(tmp_path, FakeBackend(), **env)
    return app, logged_in_client(app)


def post(client, url, **data):
    token = csrf_of(client.get("/alerts").get_data(as_text=True))
    return client.post(url, data={"csrf_token": token, **data})


def errors(resp) -> str:
    return " ".join(re.findall(r'<div class="error" role="alert">(.*?)</div>', resp.get_data(as_text=True), re.S))


def row_key(html: str, shown: str) -> str:
    found = re.search(r'<tr id="dest-([0-9a-f]+)">\s*<td data-label="Address">' + re.escape(shown), html)
    assert found, shown
    return found.group(1)


def test_alerts_off_is_an_amber_light_and_the_banner_does_not_say_safe(tmp_path):
    _app, client = make(tmp_path, **SMTP)
    html = client.get("/").get_data(as_text=True)
    assert "Your images are safe." not in html
    assert "Nobody is told when something breaks. Add an e-mail address under Settings → Alerts." in html
    assert client.get("/healthz").get_json()["parts"]["alerts"] == "amber"
    assert "Alerts are off" in client.get("/settings").get_data(as_text=True)

    assert post(client, "/alerts/add", address="reception@clinic.example").status_code == 302
    html = client.get("/").get_data(as_text=True)
    assert "Your images are safe." in html and "Nobody is told" not in html
    assert "Alerts go to 1 address." in client.get("/settings").get_data(as_text=True)


def test_a_plain_address_without_a_mail_server_is_refused_saying_what_to_set_and_stays_typed(tmp_path):
    app, client = make(tmp_path)
    resp = post(client, "/alerts/add", address="reception@clinic.example")
    assert resp.status_code == 400
    assert "DASHBOARD_SMTP_HOST" in errors(resp) and errors(resp).startswith("Not added: reception@clinic.example")
    assert 'value="reception@clinic.example"' in resp.get_data(as_text=True)
    assert app.extensions["db"].setting("alert_urls", []) == []


def test_add_edit_remove_each_address_audited_e_mail_in_full_apprise_masked(tmp_path):
    app, client = make(tmp_path, **SMTP, DASHBOARD_WEBHOOK_HOSTS="mail.example.com")
    db = app.extensions["db"]
    for address in ("reception@clinic.example", SECRET_URL, "vet@clinic.example"):
        assert post(client, "/alerts/add", address=address).status_code == 302
    html = client.get("/alerts").get_data(as_text=True)
    assert "reception@clinic.example" in html and "very-secret-pw" not in html
    assert "mailtos://mail…" in html and "alerts:" not in html

    key = row_key(html, "reception@clinic.example")
    assert post(client, f"/alerts/{key}/edit", address="front-desk@clinic.example").status_code == 302
    assert db.setting("alert_urls", []) == ["front-desk@clinic.example", SECRET_URL, "vet@clinic.example"]

    # A refused change comes back in its own row's box, with the sentence; nothing changes.
    key = row_key(client.get("/alerts").get_data(as_text=True), "vet@clinic.example")
    resp = post(client, f"/alerts/{key}/edit", address="vet@clinic")
    assert resp.status_code == 400 and "&#39;vet@clinic&#39; is not an e-mail address" in errors(resp)
    assert 'value="vet@clinic"' in resp.get_data(as_text=True)
    assert db.setting("alert_urls", [])[2] == "vet@clinic.example"

    assert post(client, f"/alerts/{key}/remove").status_code == 302
    assert db.setting("alert_urls", []) == ["front-desk@clinic.example", SECRET_URL]
    assert post(client, f"/alerts/{key}/remove").status_code == 404  # removed already: said, nothing else
    audit = " ".join(f"{row[3]} {row[4]}" for row in db.audit_rows())
    assert "alert_address_added Added e-mail reception@clinic.example" in audit
    assert "changed to e-mail front-desk@clinic.example" in audit and "Removed e-mail vet@clinic.example" in audit
    assert "very-secret-pw" not in audit


def test_remove_all_asks_first(tmp_path):
    app, client = make(tmp_path, **SMTP, APPRISE_URLS="ntfys://clinic-alerts")
    db = app.extensions["db"]
    for address in ("a@clinic.example", "b@clinic.example"):
        post(client, "/alerts/add", address=address)
    resp = post(client, "/alerts/remove-all")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200 and "Remove all alert addresses?" in html and "Yes, remove all 2" in html
    assert db.setting("alert_urls", []) == ["a@clinic.example", "b@clinic.example"]  # only asked
    assert post(client, "/alerts/remove-all", confirmed="yes").status_code == 302
    assert db.setting("alert_urls", []) == []
    html = client.get("/alerts").get_data(as_text=True)
    assert "ntfys://clin…" in html and "set in the configuration" in html  # the configuration's stays


def test_nothing_typed_is_dropped(tmp_path):
    _app, client = make(tmp_path, **SMTP)
    post(client, "/alerts/add", address="a@clinic.example")
    resp = post(client, "/alerts/add", address="a@clinic.example")
    assert (
        resp.status_code == 400
        and "already in the list" in errors(resp)
        and 'value="a@clinic.example"' in resp.get_data(as_text=True)
    )
    resp = post(client, "/alerts/add", address="")
    assert resp.status_code == 400 and "Type an e-mail address" in errors(resp)
    token = csrf_of(client.get("/settings").get_data(as_text=True))
    form = {"replication_minutes": "five", "offsite_hours": "3", "drill_hours": "48", "disk_warn_percent": "90"}
    resp = client.post("/settings", data={**form, "csrf_token": token})
    assert resp.status_code == 400 and "&#39;five&#39; is not a number" in resp.get_data(as_text=True)
    assert 'name="replication_minutes" value="five"' in resp.get_data(as_text=True)


def test_summary_choice_and_sent_once_per_period_even_across_a_restart(tmp_path):
    app, client = make(tmp_path, **SMTP)
    db = app.extensions["db"]
    resp = post(client, "/alerts/summary", every="daily")
    assert resp.status_code == 400 and "tick at least one address" in errors(resp)
    assert 'value="daily" checked' in resp.get_data(as_text=True)  # the choice stays
    post(client, "/alerts/add", address="reception@clinic.example")
    key = row_key(client.get("/alerts").get_data(as_text=True), "reception@clinic.example")
    assert post(client, "/alerts/summary", every="daily", to=key).status_code == 302

    dest = Destination("reception@clinic.example", key, "e-mail", "reception@clinic.example", True, False, None)
    sent = []

    def send(to, subject, body):
        sent.append((to, subject, body))
        return [Delivery(d.key, d.shown, True, "sent") for d in to]

    status = healthy_status()
    morning = datetime(2026, 11, 28, 8, 0, tzinfo=BERLIN).timestamp()
    ls = lights(status, None, morning)
    assert summary.maybe_send(db, ls, status, morning - 2 * 3600, BERLIN, [dest], send) is None  # 06:00: too early
    assert summary.maybe_send(db, ls, status, morning, BERLIN, [dest], send)
    assert summary.maybe_send(db, ls, status, morning + 3600, BERLIN, [dest], send) is None  # same day: not again
    assert summary.maybe_send(db, ls, status, morning + 86400, BERLIN, [dest], send)  # the next morning
    (to, subject, body), _ = sent
    assert [d.address for d in to] == ["reception@clinic.example"]
    assert subject == "PACS backup daily summary, Saturday 28 November 2026: all is well"
    assert "All is well" in body and "Images backed up:" in body and "Last restore test: passed" in body
    assert "PACS disk:" in body and "free" in body


def test_heartbeat_address_only_to_listed_hosts_kept_when_refused_and_masked(tmp_path):
    app, client = make(tmp_path)
    resp = post(client, "/alerts/heartbeat", heartbeat_url="http://10.0.0.5:6379/ping")
    assert resp.status_code == 400 and "DASHBOARD_HEARTBEAT_HOSTS (hc-ping.com)" in errors(resp)
    assert 'value="http://10.0.0.5:6379/ping"' in resp.get_data(as_text=True)
    secret_id = "5f0e8c7a-1b2c-4d5e-9f00-123456789abc"
    assert post(client, "/alerts/heartbeat", heartbeat_url=f"https://hc-ping.com/{secret_id}").status_code == 302
    html = client.get("/alerts").get_data(as_text=True)
    assert "https://hc-ping.com/…" in html and secret_id not in html and "Not called yet." in html
    assert secret_id not in " ".join(str(row) for row in app.extensions["db"].audit_rows())


def test_configuration_errors_name_the_variable(tmp_path):
    base = {"ORTHANC_URL": "http://127.0.0.1:1", "DASHBOARD_DATA_DIR": str(tmp_path)}
    cases = {
        "DASHBOARD_SMTP_PORT": {**SMTP, "DASHBOARD_SMTP_PORT": "smtp"},
        "DASHBOARD_SMTP_SECURITY": {**SMTP, "DASHBOARD_SMTP_SECURITY": "ssl3"},
        "DASHBOARD_SMTP_FROM": {"DASHBOARD_SMTP_HOST": "mail.clinic.example"},
        "DASHBOARD_SMTP_PASSWORD": {**SMTP, "DASHBOARD_SMTP_USERNAME": "pacs"},
        "DASHBOARD_SMTP_HOST": {"APPRISE_URLS": "reception@clinic.example"},
        "DASHBOARD_HEARTBEAT_MINUTES": {"DASHBOARD_HEARTBEAT_MINUTES": "five"},
        "DASHBOARD_HEARTBEAT_URL": {"DASHBOARD_HEARTBEAT_URL": "ftp://hc.example/x"},
        "ORTHANC_URL": {"ORTHANC_URL": "http://orthanc:80a42"},
    }
    for name, env in cases.items():
        with pytest.raises(ConfigError, match=name):
            load_dashboard_settings({**base, **env})
    settings = load_dashboard_settings(
        {**base, **SMTP, "DASHBOARD_SMTP_USERNAME": "u", "DASHBOARD_SMTP_PASSWORD": "pw-9"}
    )
    assert "pw-9" not in repr(settings.smtp) and settings.smtp.port == 587 and settings.smtp.security == "starttls"


def test_mail_server_that_refuses_the_connection_is_a_sentence_naming_what_to_check():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    smtp = SmtpSettings("127.0.0.1", port, "pacs", "pw-secret", "pacs@clinic.example", "none")
    started = time.monotonic()
    result = send_mail(smtp, "reception@clinic.example", "test", "body")
    assert not result.ok and time.monotonic() - started < 10
    assert result.sentence == (
        f"The mail server at 127.0.0.1:{port} refused the connection: "
        "check DASHBOARD_SMTP_HOST and DASHBOARD_SMTP_PORT."
    )


def test_test_alert_to_one_address_with_a_sentence_each(tmp_path, monkeypatch):
    from pacs_dashboard import alerts

    monkeypatch.setattr(alerts, "send_alert", lambda url, title, body, allow=None: alerts.Sent(True, "sent"))
    _app, client = make(tmp_path, APPRISE_URLS="ntfys://clinic-alerts ntfys://vets")
    html = client.get("/alerts").get_data(as_text=True)
    key = row_key(html, "ntfys://vets")
    resp = client.post("/alerts/test", data={"csrf_token": csrf_of(html), "key": key}, follow_redirects=True)
    assert "Test alert: 1. ntfys://vets…: sent." in resp.get_data(as_text=True)
    resp = post(client, "/alerts/test", key="0" * 16)
    assert resp.status_code == 400 and "no longer in the list" in errors(resp)
    assert str(escape("Test alert")) not in errors(resp)


def test_a_masked_alert_address_never_shows_any_of_its_password():
    from pacs_dashboard.destinations import masked

    shown = masked("mailtos://clinic:s3cretpw@mail.example.com/?to=vet@example.com")
    assert "s3" not in shown and "clinic" not in shown and shown.startswith("mailtos://mail")
    assert masked("ntfys://clinic-alerts") == "ntfys://clin…"
