"""Alerts that reach a person, with real parts: the real dashboard (waitress) in front of a real Orthanc +
plugin, a real SMTP server (aiosmtpd) on a loopback port, and a real HTTP server for the heartbeat.

A plain e-mail address added on the Alerts page gets the test alert and the daily summary through the
mail server; the heartbeat service is called while all is well and at ``/fail`` once a light is red.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from datetime import UTC, datetime
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from devstack import free_port
from pacs_dashboard.mailer import SmtpSettings, send_mail
from tests.support.common import wait_until

SMTP_USER, SMTP_PASSWORD = "pacs-box", "smtp-pw-" + uuid.uuid4().hex[:12]


class Inbox:
    """aiosmtpd handler: keeps every message with its envelope recipients."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.original_content)))
        return "250 OK"

    def find(self, subject_part: str) -> list[tuple[list[str], Message]]:
        return [(to, m) for to, m in self.messages if subject_part in str(m["Subject"])]


def authenticate(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        SMTP_USER.encode(),
        SMTP_PASSWORD.encode(),
    )
    # handled=False: a refused login is answered at once with 535, as real mail servers do (by default
    # aiosmtpd leaves it to the authenticator, and the client waits for its timeout).
    return AuthResult(success=ok, handled=False)


def heartbeat_service() -> tuple[ThreadingHTTPServer, list[str]]:
    paths: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            paths.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"OK")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, paths


def zone_where_it_is_noon() -> str:
    """A fixed-offset zone where it is about noon now, so the daily summary (sent after 07:00) is due.
    Etc/GMT-N is UTC+N (the sign is POSIX's)."""
    offset = 12 - datetime.now(UTC).hour  # -11 .. +12
    return "Etc/GMT" + (f"{-offset:+d}" if offset else "")


MONITOR_S = 1  # the dashboard's check interval (its smallest): the rounds below take seconds


def test_e_mail_test_alert_summary_and_heartbeat_reach_real_servers(orthanc, dashboard_factory):
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port(), authenticator=authenticate, auth_require_tls=False)
    smtp.start()
    hb_server, pings = heartbeat_service()
    check_id = str(uuid.uuid4())
    hb_url = f"http://127.0.0.1:{hb_server.server_address[1]}/ping/{check_id}"
    try:
        d = dashboard_factory(
            orthanc,
            {
                "DASHBOARD_SMTP_HOST": "127.0.0.1",
                "DASHBOARD_SMTP_PORT": str(smtp.port),
                "DASHBOARD_SMTP_SECURITY": "none",
                "DASHBOARD_SMTP_USERNAME": SMTP_USER,
                "DASHBOARD_SMTP_PASSWORD": SMTP_PASSWORD,
                "DASHBOARD_SMTP_FROM": "pacs@clinic.example",
                "DASHBOARD_HEARTBEAT_URL": hb_url,
                "DASHBOARD_HEARTBEAT_MINUTES": "1",
                "DASHBOARD_TZ": zone_where_it_is_noon(),
                "DASHBOARD_MONITOR_SECONDS": str(MONITOR_S),
            },
        )
        # While all is well the heartbeat is called (at once, then every minute), never at /fail.
        wait_until(lambda: f"/ping/{check_id}" in pings, 30, "first heartbeat")
        s = d.login()

        def csrf() -> str:
            return re.search(r'name="csrf_token" value="([^"]+)"', s.get(d.url + "/alerts", timeout=10).text).group(1)

        r = s.post(
            d.url + "/alerts/add", data={"csrf_token": csrf(), "address": "reception@clinic.example"}, timeout=10
        )
        assert r.status_code == 200 and "Added reception@clinic.example" in r.text, r.text[:2000]
        assert check_id not in r.text and "http://127.0.0.1/…" in r.text  # the heartbeat address is masked
        assert "Last call" in r.text and "worked" in r.text

        r = s.post(d.url + "/alerts/test", data={"csrf_token": csrf()}, timeout=30)
        assert "Test alert: 1. reception@clinic.example: sent." in r.text, r.text[:3000]
        (to, msg), *_ = inbox.find("PACS backup: test alert")
        assert to == ["reception@clinic.example"] and msg["From"] == "pacs@clinic.example"
        body = msg.get_payload(decode=True).decode()
        assert f"Test alert sent by {d.username}" in body and "alerts reach you" in body
        assert SMTP_PASSWORD not in msg.as_string() and check_id not in msg.as_string()

        key = re.search(r'<tr id="dest-([0-9a-f]+)">\s*<td data-label="Address">reception@', r.text).group(1)
        r = s.post(d.url + "/alerts/summary", data={"csrf_token": csrf(), "every": "daily", "to": key}, timeout=10)
        assert "Summary e-mail: every morning." in r.text
        wait_until(lambda: inbox.find("daily summary"), 30, "the daily summary e-mail")
        (to, msg), *_ = inbox.find("daily summary")
        body = msg.get_payload(decode=True).decode()
        assert to == ["reception@clinic.example"]
        assert "Each part:" in body and "Images backed up:" in body
        for light in s.get(d.url + "/api/status", timeout=10).json()["lights"]:  # each part, in words
            if light["key"] != "alerts":
                assert f"- {light['label']}: " in body, light
        assert "Last restore test:" in body and SMTP_PASSWORD not in body and check_id not in body

        d.stop()  # a restart does not send today's summary again
        d.start()
        wait_until(lambda: d.login() is not None, 30, "dashboard back")
        time.sleep(3 * MONITOR_S)  # three monitor rounds
        assert len(inbox.find("daily summary")) == 1

        # A wrong password is a sentence naming what to check (the same real mail server).
        wrong = SmtpSettings("127.0.0.1", smtp.port, SMTP_USER, "not-it", "pacs@clinic.example", "none")
        result = send_mail(wrong, "reception@clinic.example", "x", "y")
        assert result.sentence == "The mail server refused the login: check DASHBOARD_SMTP_USERNAME and the password."

        assert f"/ping/{check_id}/fail" not in pings  # nothing was red so far
        # The PACS stops: its light turns red, the heartbeat is called at /fail and the alert e-mail goes out.
        orthanc.stop()
        wait_until(lambda: f"/ping/{check_id}/fail" in pings, 60, "heartbeat /fail")
        wait_until(lambda: inbox.find("PACS backup problem: PACS"), 60, "the alert e-mail")
        log = (d.work / "dashboard.log").read_text(errors="replace")
        assert SMTP_PASSWORD not in log and check_id not in log
    finally:
        smtp.stop()
        hb_server.shutdown()
