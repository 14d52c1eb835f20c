"""Issue 23 item 5: alert addresses typed on the Alerts page reach only the hosts the installer allowed.

Every Apprise service is read with Apprise's own parsing to find each host it will contact (the mail
server of a mailto:// address, ntfy's own server, a webhook's host...). A host must be the service's own
public server or be listed in DASHBOARD_WEBHOOK_HOSTS; an address on the box itself or the clinic's own
network needs that address (or its network) listed too, checked when the address is added and again at
every connection. "Send a test alert" answers the same for a refused host, a closed port and a timeout;
the reason goes to the audit log, which only administrators can read.
"""

from __future__ import annotations

import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pacs_dashboard.alerts import check_alert_url
from pacs_dashboard.destinations import key_of
from pacs_dashboard.security import hash_password
from tests.dashboard.test_hardening import logged_in_client, login, make_app
from tests.support.dashboard_fakes import PASSWORD, FakeBackend, csrf_of

LISTED = ("hooks.example.org",)
REFUSED = {
    # services whose host comes from the address: on the list, or refused
    "gotifys://gotify.clinic.lan/token": "DASHBOARD_WEBHOOK_HOSTS",
    "ntfy://ntfy.clinic.lan/topic": "DASHBOARD_WEBHOOK_HOSTS",
    "ntfys://10.0.0.5/topic": "DASHBOARD_WEBHOOK_HOSTS",
    "mailtos://user:pass@mail.example.com": "DASHBOARD_WEBHOOK_HOSTS",
    # an e-mail provider Apprise knows, sent through another server with smtp=
    "mailtos://u:p@gmail.com?smtp=10.0.0.5": "DASHBOARD_WEBHOOK_HOSTS",
    "mailto://u:p@example.com?smtp=127.0.0.1&port=6379": "DASHBOARD_WEBHOOK_HOSTS",
    "json://[::1]:6379/": "DASHBOARD_WEBHOOK_HOSTS",
    # Apprise 2.2 no longer reads Teams addresses
    "msteams://a/b/c": "is not an alert service",
}
ALLOWED = [
    "ntfys://clinic-alerts",  # ntfy.sh
    "slack://T1/B1/C1",
    "discord://1234/abcd",
    "tgram://123456:abcdef/987",
    "mailtos://u:p@gmail.com",  # Apprise knows gmail.com's mail server
    "jsons://hooks.example.org/pacs",
    "gotifys://hooks.example.org/token",
    "mailtos://u:p@clinic.example?smtp=hooks.example.org",
]


def test_security_every_alert_service_is_checked_against_the_host_list():
    for url in ALLOWED:
        assert check_alert_url(url, LISTED) is None, url
    for url, why in REFUSED.items():
        problem = check_alert_url(url, LISTED)
        assert problem and why in problem, (url, problem)


# Options that make the box read one of its own files (a PGP key, a message template) or fetch keys from
# the recipient's domain (a Web Key Directory lookup): refused whatever the service, in any spelling.
READS_OR_FETCHES = [
    "mailtos://u:p@gmail.com?pgppub=/etc/ssl/private/clinic.pem",
    "mailtos://u:p@gmail.com?pgp=encrypt&pgpprv=/var/lib/dashboard/key.asc",
    "mailtos://u:p@gmail.com?wkd=yes",
    "mailtos://u:p@gmail.com?to=vet@example.com&WKD=yes",
    "mailtos://u:p@gmail.com?%70gppub=/etc/passwd",
    "mailtos://u:p@gmail.com?format=text;pgppub=/etc/passwd",
    "slack://T1/B1/C1?template=/etc/passwd",
    "discord://1234/abcd?template=http://10.0.0.5/x.json",
    "tgram://123456:abcdef/987?Template=file:///etc/hostname",
]


def test_security_options_that_read_files_or_fetch_keys_are_refused():
    for url in READS_OR_FETCHES:
        problem = check_alert_url(url, LISTED)
        assert problem and "not allowed in alert addresses" in problem and "files" in problem, (url, problem)


def test_teams_is_not_offered(tmp_path):
    app = make_app(tmp_path, FakeBackend())
    page = logged_in_client(app).get("/alerts").get_data(as_text=True)
    assert "Teams" not in page and "msteams" not in page
    problem = check_alert_url("msteams://a/b/c", LISTED)
    assert problem and "Teams" not in problem


def test_security_the_box_itself_and_the_clinic_network_need_their_address_listed():
    # "localhost" is on the list, but it is this box: its address must be listed as well.
    problem = check_alert_url("json://localhost:6379/", ("localhost",))
    assert problem and "127.0.0.1" in problem and "DASHBOARD_WEBHOOK_HOSTS" in problem
    assert check_alert_url("json://localhost:6379/", ("localhost", "127.0.0.1", "::1")) is None
    assert check_alert_url("json://127.0.0.1:6379/", ("127.0.0.0/8",)) is None
    assert check_alert_url("gotify://192.168.1.20/token", ("192.168.1.0/24",)) is None
    assert check_alert_url("gotify://192.168.2.20/token", ("192.168.1.0/24",))


class Listener:
    """An HTTP server on a loopback address noting every request; ``redirect`` answers each with a 307."""

    def __init__(self, host: str, redirect: str | None = None) -> None:
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self._answer()

            def do_GET(self):
                self._answer()

            def _answer(self):
                outer.requests.append(f"{self.command} {self.path}")
                self.send_response(307 if redirect else 200)
                if redirect:
                    self.send_header("Location", redirect)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def closed_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def send_test(client, key):
    page = client.get("/alerts").get_data(as_text=True)
    resp = client.post("/alerts/test", data={"csrf_token": csrf_of(page), "key": key}, follow_redirects=True)
    found = re.search(r"Test alert: 1\. (.*?)</", resp.get_data(as_text=True), re.S)
    assert found, resp.get_data(as_text=True)
    return resp.status_code, found.group(1)


def keys_of(client):
    html = client.get("/alerts").get_data(as_text=True)
    return dict(re.findall(r'<tr id="dest-([0-9a-f]+)">\s*<td data-label="Address">([^<]+)<', html))


@pytest.fixture
def listener():
    server = Listener("127.0.0.1")
    yield server
    server.close()


def test_security_send_test_answers_the_same_for_a_refused_host_a_closed_port_and_a_timeout(tmp_path, listener):
    app = make_app(tmp_path, FakeBackend(), DASHBOARD_WEBHOOK_HOSTS="localhost 127.0.0.2")
    client = logged_in_client(app)
    db = app.extensions["db"]
    refused = f"json://localhost:{listener.port}/hook"  # localhost is listed, its address 127.0.0.1 is not
    page = client.get("/alerts").get_data(as_text=True)
    added = client.post("/alerts/add", data={"csrf_token": csrf_of(page), "address": refused})
    assert added.status_code == 400 and "127.0.0.1" in added.get_data(as_text=True)
    silent = socket.socket()  # takes connections, never answers
    silent.bind(("127.0.0.2", 0))
    silent.listen(5)
    try:
        closed = f"json://127.0.0.2:{closed_port('127.0.0.2')}/hook"
        timeout = f"json://127.0.0.2:{silent.getsockname()[1]}/hook?rto=1&cto=1"
        # As if the name had pointed elsewhere when the address was added (or was stored before the rule).
        db.set_setting("alert_urls", [refused, closed, timeout])
        shown = keys_of(client)
        answers = {}
        for url in (refused, closed, timeout):
            status, text = send_test(client, key_of(url))
            answers[url] = (status, text.replace(shown[key_of(url)], "ADDRESS"))
    finally:
        silent.close()
    assert listener.requests == []  # the refused host was never contacted
    assert len(set(answers.values())) == 1, answers
    status, text = answers[refused]
    assert status == 200 and text == "ADDRESS: could not be sent (the audit log says why)."

    reasons = [d for a, d in [(r[3], r[4]) for r in db.audit_rows()] if a == "alert_test"]
    assert len(reasons) == 3
    timeout_reason, closed_reason, refused_reason = reasons  # newest first
    assert "127.0.0.1" in refused_reason and "not allowed" in refused_reason
    assert "refused the connection" in closed_reason
    assert "did not answer" in timeout_reason
    # The reasons are for administrators: other accounts cannot open the audit log.
    assert db.add_user("reception", hash_password(PASSWORD), "staff")
    staff = app.test_client()
    assert login(staff, user="reception").status_code == 302
    assert staff.get("/audit").status_code == 403 and staff.get("/audit.csv").status_code == 403


def test_security_a_listed_host_cannot_redirect_the_alert_elsewhere(tmp_path, listener):
    bouncer = Listener("127.0.0.2", redirect=f"http://127.0.0.1:{listener.port}/internal")
    try:
        app = make_app(tmp_path, FakeBackend(), DASHBOARD_WEBHOOK_HOSTS="127.0.0.2")
        client = logged_in_client(app)
        page = client.get("/alerts").get_data(as_text=True)
        url = f"json://127.0.0.2:{bouncer.port}/hook"
        assert client.post("/alerts/add", data={"csrf_token": csrf_of(page), "address": url}).status_code == 302
        (key,) = keys_of(client)
        _status, text = send_test(client, key)
        assert bouncer.requests and listener.requests == []
        assert "could not be sent" in text
    finally:
        bouncer.close()
