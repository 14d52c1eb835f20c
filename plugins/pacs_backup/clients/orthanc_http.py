"""A small Orthanc REST client over HTTP (scripts, dashboard and tests; the plugin uses the SDK)."""

from __future__ import annotations

import base64
import http.client
import json
import select
import socket
import ssl
import threading
import time
import urllib.parse
from typing import Any

from pacs_backup.contracts.errors import SourceError, SourceGone


class ErrorAnswer(SourceError):
    """Orthanc (or the plugin) answered with an error status; ``status`` and its ``sentence`` are kept as data."""

    def __init__(self, status: int, message: str, sentence: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.sentence = sentence or message  # the answering side's own words, for a page


class RequestRefused(ErrorAnswer):
    """Orthanc (or the plugin) understood the request and refused it: a 4xx answer, with its sentence."""


# Orthanc closes a connection left idle for its KeepAliveTimeout (1 s by default). One idle for half of
# that is not reused, so a request never meets that close on its way.
IDLE_S = 0.5


def _closed_by_server(sock: socket.socket) -> bool:
    """An idle keep-alive connection the server has closed reads as ready (end of file) at once."""
    try:
        ready, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(ready)


def _sentence(body: bytes) -> str:
    """The plugin's ``{"error": sentence}``, Orthanc's ``Message``, or the raw text."""
    text = body.decode("utf-8", "replace")
    try:
        answer = json.loads(text)
    except ValueError:
        return text[:300]
    if isinstance(answer, dict):
        return str(answer.get("error") or answer.get("Message") or text)[:300]
    return text[:300]


class OrthancHttp:
    """Talk to Orthanc at ``url`` with HTTP basic authentication.

    Each thread keeps one connection open (HTTP keep-alive): a restore makes two requests per image,
    and opening a connection for each cost a quarter of the restore's time (docs/performance.md).
    """

    def __init__(
        self, url: str, username: str | None = None, password: str | None = None, timeout_s: float = 60.0
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"Orthanc URL {url!r} must start with http:// or https://")
        self.url = url.rstrip("/")
        parts = urllib.parse.urlsplit(self.url)
        self._https = parts.scheme == "https"
        try:
            port = parts.port or (443 if self._https else 80)  # given, so "[::1]" is not read as host:port
        except ValueError:
            raise ValueError(f"Orthanc URL {url!r} has no valid port number") from None
        self._host, self._port, self._path = parts.hostname or "", port, parts.path
        self._timeout = timeout_s
        self._headers: dict[str, str] = {}
        if username:
            token = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
            self._headers["Authorization"] = "Basic " + token
        self._local = threading.local()

    def _connection(self) -> tuple[http.client.HTTPConnection, bool]:
        """This thread's connection and whether it served a request before (it may have been closed)."""
        conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
        idle = time.monotonic() - getattr(self._local, "used", 0.0)
        if conn is not None and conn.sock is not None and (idle > IDLE_S or _closed_by_server(conn.sock)):
            conn.close()
        if conn is not None and conn.sock is not None:
            return conn, True
        if self._https:
            conn = http.client.HTTPSConnection(
                self._host, self._port, timeout=self._timeout, context=ssl.create_default_context()
            )
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout)
        self._local.conn = conn
        return conn, False

    def _exchange(
        self, method: str, uri: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes, str | None]:
        """One request on this thread's connection: (status, body, Location header)."""
        conn, reused = self._connection()
        try:
            conn.request(method, self._path + uri, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ssl.SSLEOFError) as exc:
            conn.close()
            # Closed by Orthanc while idle, just as it was used: a request that may safely be sent twice
            # is sent again on a new connection (storing the same file twice is "AlreadyStored").
            if reused and (method == "GET" or (method == "POST" and uri == "/instances")):
                return self._exchange(method, uri, body, headers)
            raise SourceError(f"Orthanc at {self.url} closed the connection ({type(exc).__name__}).") from None
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            raise SourceError(f"Orthanc at {self.url} cannot be reached ({reason}).") from None
        except BaseException:  # an answer left unread would be taken for the next request's
            conn.close()
            raise
        self._local.used = time.monotonic()
        if resp.will_close:
            conn.close()
        return resp.status, data, resp.getheader("Location")

    def request(
        self, method: str, uri: str, body: bytes | None = None, content_type: str = "application/octet-stream"
    ) -> bytes:
        """Send one request; return the body.

        Raises:
            SourceGone: HTTP 404. SourceError: any other failure, with a readable message.
        """
        headers = dict(self._headers)
        if body is not None:
            headers["Content-Type"] = content_type
        status, data, location = self._exchange(method, uri, body, headers)
        if 200 <= status < 300:
            return data
        if 300 <= status < 400:  # not followed: the password would go to another address
            raise SourceError(
                f"Orthanc at {self.url} answered {method} {uri} with a redirect to {location}: "
                "set ORTHANC_URL to the address Orthanc is really at."
            )
        if status == 404 and method != "POST":
            raise SourceGone(f"Orthanc has no {uri}.")
        if status == 401:
            raise SourceError("Orthanc refused the username or password (ORTHANC_USERNAME / ORTHANC_PASSWORD).")
        detail = _sentence(data[:2000])
        if 400 <= status < 500:
            raise RequestRefused(status, f"Orthanc refused {method} {uri} (HTTP {status}): {detail}", detail)
        raise ErrorAnswer(status, f"Orthanc answered HTTP {status} to {method} {uri}: {detail}", detail)

    def get(self, uri: str) -> bytes:
        """GET ``uri`` and return the body."""
        return self.request("GET", uri)

    def get_json(self, uri: str) -> Any:
        """GET ``uri`` and decode JSON."""
        return json.loads(self.get(uri))

    def send_json(self, method: str, uri: str, payload: Any) -> Any:
        """Send a JSON body (POST, PUT) and decode the JSON answer."""
        return json.loads(self.request(method, uri, json.dumps(payload).encode(), "application/json") or b"null")

    def post_json(self, uri: str, payload: Any) -> Any:
        """POST a JSON body and decode the JSON answer."""
        return self.send_json("POST", uri, payload)

    def upload(self, dicom: bytes) -> dict[str, Any]:
        """Store one DICOM file (``POST /instances``); return Orthanc's answer (ID, Status...)."""
        answer = json.loads(self.request("POST", "/instances", dicom, "application/dicom"))
        if not isinstance(answer, dict):
            raise SourceError("Orthanc did not accept the file as one DICOM instance.")
        return answer

    def delete(self, uri: str) -> None:
        """DELETE a resource (e.g. ``/studies/<id>``)."""
        self.request("DELETE", uri)
