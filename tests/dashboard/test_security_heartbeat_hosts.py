"""Issue 23 item 5, for the heartbeat address typed on the Alerts page: the same rules as alert addresses.

Its host must be listed in DASHBOARD_HEARTBEAT_HOSTS, and an address on the box itself or the clinic's
own network (loopback, private, link-local) needs that address or its network listed too: checked when
the address is saved, and again at every call (the name may point elsewhere by then). A redirect is not
followed. Saving an address calls it at once, so the page then acts as a test: it says the same for a
refused host, a closed port and a service that does not answer; why goes to the audit log (administrators
only). The technician's DASHBOARD_HEARTBEAT_URL is trusted as set.
"""

from __future__ import annotations

import re
import socket
import time

import pytest

from pacs_dashboard import alert_hosts, heartbeat
from pacs_dashboard.heartbeat import check_url
from tests.dashboard.test_hardening import logged_in_client, make_app
from tests.dashboard.test_security_alert_hosts import Listener, closed_port
from tests.support.dashboard_fakes import FakeBackend, csrf_of


@pytest.fixture
def listener():
    server = Listener("127.0.0.1")
    yield server
    server.close()


def fake_names(monkeypatch, names: dict[str, str]) -> None:
    """Name lookups for the check as if the clinic's DNS had these names."""
    real = alert_hosts.resolve

    def resolve(host):
        found = names.get(host)
        return [alert_hosts.ipaddress.ip_address(found)] if found else real(host)

    monkeypatch.setattr(alert_hosts, "resolve", resolve)


def test_security_heartbeat_to_the_box_or_the_clinic_network_needs_its_address_listed(monkeypatch):
    fake_names(monkeypatch, {"hc.clinic.lan": "192.168.1.20", "metadata.cloud.example": "169.254.169.254"})
    # A listed name that is this box (localhost is 127.0.0.1): its address must be listed as well.
    problem = check_url("http://localhost:8042/tools/reset", ("localhost",))
    assert problem and "127.0.0.1" in problem and "DASHBOARD_HEARTBEAT_HOSTS" in problem
    assert check_url("http://localhost:8042/ping", ("localhost", "127.0.0.1", "::1")) is None
    # A name on the clinic's network, and a cloud's metadata address (link-local).
    problem = check_url("https://hc.clinic.lan/ping/x", ("hc.clinic.lan",))
    assert problem and "192.168.1.20" in problem
    assert check_url("https://hc.clinic.lan/ping/x", ("hc.clinic.lan", "192.168.1.0/24")) is None
    problem = check_url("http://metadata.cloud.example/latest", ("metadata.cloud.example",))
    assert problem and "169.254.169.254" in problem
    # Addresses written as such: listed (the explicit allow), in a listed network, or refused.
    assert check_url("http://127.0.0.1:6379/ping", ("127.0.0.1",)) is None
    assert check_url("http://10.0.0.5/ping", ("10.0.0.0/24",)) is None
    assert check_url("http://10.0.1.5/ping", ("10.0.0.0/24",))
    assert check_url("http://[::1]:6379/ping", ("hc-ping.com",))
    # Names are compared as alert hosts are: case, a final dot.
    assert check_url("https://HC-PING.com./abc", ("hc-ping.com",)) is None


def test_security_the_alerts_page_refuses_a_heartbeat_to_this_box_and_keeps_what_was_typed(tmp_path):
    app = make_app(tmp_path, FakeBackend(), DASHBOARD_HEARTBEAT_HOSTS="localhost")
    client = logged_in_client(app)
    url = "http://localhost:8042/tools/reset"
    token = csrf_of(client.get("/alerts").get_data(as_text=True))
    resp = client.post("/alerts/heartbeat", data={"csrf_token": token, "heartbeat_url": url})
    html = resp.get_data(as_text=True)
    assert resp.status_code == 400 and "127.0.0.1" in html and f'value="{url}"' in html
    assert app.extensions["db"].setting("heartbeat_url", "") == ""


def call(app, url: str) -> str:
    """Store ``url`` as if typed on the page, let the box call it, and return what the page says."""
    db = app.extensions["db"]
    db.set_setting(heartbeat.STORED, url)
    db.set_setting(heartbeat.LAST, None)
    heartbeat.beat(db, app.extensions["settings"].heartbeat, False, time.time())
    client = logged_in_client(app)
    state = re.search(r'<p id="heartbeat-state">(.*?)</p>', client.get("/alerts").get_data(as_text=True), re.S)
    assert state, "no heartbeat state on the page"
    return state.group(1)


def test_security_a_stored_heartbeat_is_checked_again_when_called(tmp_path, listener):
    # Saved while "localhost" pointed elsewhere (or before the rule): the call is refused, nothing reached.
    app = make_app(tmp_path, FakeBackend(), DASHBOARD_HEARTBEAT_HOSTS="localhost")
    state = call(app, f"http://localhost:{listener.port}/ping")
    assert listener.requests == []
    assert "did not work" in state
    (detail,) = [r[4] for r in app.extensions["db"].audit_rows() if r[3] == "heartbeat_failed"]
    assert "127.0.0.1" in detail and "not allowed" in detail


def test_security_a_heartbeat_redirect_is_not_followed(tmp_path, listener):
    bouncer = Listener("127.0.0.2", redirect=f"http://127.0.0.1:{listener.port}/internal")
    try:
        app = make_app(tmp_path, FakeBackend(), DASHBOARD_HEARTBEAT_HOSTS="127.0.0.2")
        state = call(app, f"http://127.0.0.2:{bouncer.port}/ping")
    finally:
        bouncer.close()
    assert bouncer.requests and listener.requests == []
    assert "did not work" in state


def test_security_heartbeat_says_the_same_for_a_refused_host_a_closed_port_and_no_answer(
    tmp_path, listener, monkeypatch
):
    monkeypatch.setattr(heartbeat, "TIMEOUT_S", 1.0)
    app = make_app(tmp_path, FakeBackend(), DASHBOARD_HEARTBEAT_HOSTS="localhost 127.0.0.2")
    silent = socket.socket()  # takes connections, never answers
    silent.bind(("127.0.0.2", 0))
    silent.listen(5)
    try:
        urls = [
            f"http://localhost:{listener.port}/ping",  # localhost is listed, its address 127.0.0.1 is not
            f"http://127.0.0.2:{closed_port('127.0.0.2')}/ping",
            f"http://127.0.0.2:{silent.getsockname()[1]}/ping",
        ]
        said = [re.search(r"(worked|did not work[^<]*)", call(app, url)) for url in urls]
    finally:
        silent.close()
    assert listener.requests == []
    sentences = {found.group(1).strip() if found else "" for found in said}
    assert sentences == {"did not work (the audit log says why)."}, sentences
    # Why, for administrators: newest first.
    no_answer, closed, refused = [r[4] for r in app.extensions["db"].audit_rows() if r[3] == "heartbeat_failed"]
    assert "127.0.0.1" in refused and "not allowed" in refused
    assert "refused the connection" in closed
    assert "did not answer" in no_answer
    for detail in (no_answer, closed, refused):
        assert "/ping" not in detail  # the address's path is its secret


def test_the_technicians_heartbeat_address_is_trusted_as_set(tmp_path, listener):
    app = make_app(tmp_path, FakeBackend(), DASHBOARD_HEARTBEAT_URL=f"http://127.0.0.1:{listener.port}/ping/abc")
    db = app.extensions["db"]
    result = heartbeat.beat(db, app.extensions["settings"].heartbeat, False, time.time())
    assert result is not None and result.ok and listener.requests == ["GET /ping/abc"]
