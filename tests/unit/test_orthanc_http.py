"""The Orthanc REST client: one kept-alive connection per thread, and errors a person can act on.

A small HTTP server on loopback stands in for Orthanc (it counts the connections it accepts)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from devstack import free_port
from pacs_backup.clients.orthanc_http import OrthancHttp, RequestRefused
from pacs_backup.contracts.errors import SourceError, SourceGone


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Orthanc answers
    wbufsize = 1 << 16  # headers and body in one write (flushed after each answer), as Orthanc sends them

    def do_GET(self) -> None:
        if self.path == "/missing":
            self._answer(404, b'{"Message": "Unknown resource"}')
        elif self.path == "/secret" and self.headers.get("Authorization") is None:
            self._answer(401, b"")
        elif self.path == "/bye":
            self._answer(200, b"{}", close=True)
        elif self.path == "/moved":
            self.send_response(301)
            self.send_header("Location", "https://pacs.clinic.example/")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._answer(200, json.dumps({"path": self.path}).encode())

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if body == b"not dicom":
            self._answer(400, b'{"Message": "Bad file format"}')
        else:
            self._answer(200, json.dumps({"ID": "abc", "Status": "Success", "size": len(body)}).encode())

    def _answer(self, status: int, body: bytes, close: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class CountingServer(ThreadingHTTPServer):
    daemon_threads = True
    connections = 0

    def verify_request(self, request, client_address) -> bool:  # type: ignore[no-untyped-def]
        self.connections += 1
        return True


@pytest.fixture
def server() -> Iterator[CountingServer]:
    srv = CountingServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()


def client_of(srv: CountingServer, **kw: str) -> OrthancHttp:
    return OrthancHttp(f"http://127.0.0.1:{srv.server_address[1]}", kw.get("user"), kw.get("password"))


def test_requests_of_one_thread_share_one_connection(server):
    client = client_of(server)
    for i in range(20):
        assert client.get_json(f"/instances/{i}") == {"path": f"/instances/{i}"}
        assert client.upload(b"DICM" * 100)["size"] == 400
    assert server.connections == 1


def test_each_thread_keeps_its_own_connection(server):
    client = client_of(server)
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda i: client.get_json(f"/n/{i}"), range(200)))
    assert answers == [{"path": f"/n/{i}"} for i in range(200)]
    assert server.connections <= 4


def test_a_connection_the_server_closed_is_replaced_without_an_error(server):
    client = client_of(server)
    client.get_json("/bye")  # the server closes this one after answering
    assert client.get_json("/after") == {"path": "/after"}
    assert client.upload(b"DICM")["Status"] == "Success"
    assert server.connections == 2


def test_answers_that_are_not_ok_become_errors_with_a_sentence(server):
    client = client_of(server)
    with pytest.raises(SourceGone):
        client.get("/missing")
    with pytest.raises(SourceError, match="ORTHANC_USERNAME / ORTHANC_PASSWORD"):
        client.get("/secret")
    with pytest.raises(RequestRefused) as refused:
        client.upload(b"not dicom")
    assert refused.value.status == 400 and refused.value.sentence == "Bad file format"
    assert client.get_json("/still-usable") == {"path": "/still-usable"}
    assert client_of(server, user="u", password="p").get_json("/secret") == {"path": "/secret"}


def test_an_orthanc_that_does_not_answer_is_said_in_words():
    client = OrthancHttp(f"http://127.0.0.1:{free_port()}", "u", "p", timeout_s=2)
    with pytest.raises(SourceError, match=r"cannot be reached \(Connection refused\)"):
        client.get("/system")


def test_a_connection_left_idle_is_not_reused_before_orthanc_closes_it(server, monkeypatch):
    import pacs_backup.clients.orthanc_http as orthanc_http

    client = client_of(server)
    client.get_json("/one")
    client.get_json("/two")
    assert server.connections == 1
    monkeypatch.setattr(orthanc_http, "IDLE_S", 0.05)  # Orthanc closes idle connections after 1 s
    time.sleep(0.1)
    assert client.upload(b"DICM")["Status"] == "Success"  # on a new connection, not the idle one
    assert server.connections == 2


def test_a_redirect_is_not_followed_and_says_what_to_set(server):
    with pytest.raises(SourceError, match=r"redirect to https://pacs\.clinic\.example/: set ORTHANC_URL"):
        client_of(server, user="u", password="p").get("/moved")


def test_urls_without_a_port_and_with_a_bad_one():
    assert (OrthancHttp("http://[::1]")._host, OrthancHttp("http://[::1]")._port) == ("::1", 80)
    assert OrthancHttp("https://pacs.example")._port == 443
    with pytest.raises(ValueError, match="no valid port number"):
        OrthancHttp("http://pacs:abc")
