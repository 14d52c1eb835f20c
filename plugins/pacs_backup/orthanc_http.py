"""A small Orthanc REST client over HTTP (scripts, dashboard and tests; the plugin uses the SDK)."""

from __future__ import annotations

import base64
import http.client
import json
import urllib.error
import urllib.request
from typing import Any

from .errors import SourceError, SourceGone


class RequestRefused(SourceError):
    """Orthanc (or the plugin) understood the request and refused it: a 4xx answer, with its sentence."""

    def __init__(self, status: int, message: str, sentence: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.sentence = sentence or message  # the refusing side's own words, for a page


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
    """Talk to Orthanc at ``url`` with HTTP basic authentication."""

    def __init__(
        self, url: str, username: str | None = None, password: str | None = None, timeout_s: float = 60.0
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"Orthanc URL {url!r} must start with http:// or https://")
        self.url = url.rstrip("/")
        self._timeout = timeout_s
        self._headers: dict[str, str] = {}
        if username:
            token = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
            self._headers["Authorization"] = "Basic " + token

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
        # The scheme is checked in __init__ (http/https only).
        req = urllib.request.Request(self.url + uri, data=body, method=method, headers=headers)  # noqa: S310
        try:
            with urllib.request.urlopen(req, timeout=self._timeout) as resp:  # noqa: S310
                return bytes(resp.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 404 and method != "POST":
                raise SourceGone(f"Orthanc has no {uri}.") from None
            if exc.code == 401:
                raise SourceError(
                    "Orthanc refused the username or password (ORTHANC_USERNAME / ORTHANC_PASSWORD)."
                ) from None
            detail = _sentence(exc.read()[:2000])
            if 400 <= exc.code < 500:
                raise RequestRefused(
                    exc.code, f"Orthanc refused {method} {uri} (HTTP {exc.code}): {detail}", detail
                ) from None
            raise SourceError(f"Orthanc answered HTTP {exc.code} to {method} {uri}: {detail}") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            raise SourceError(f"Orthanc at {self.url} cannot be reached ({reason}).") from None

    def get(self, uri: str) -> bytes:
        """GET ``uri`` and return the body."""
        return self.request("GET", uri)

    def get_json(self, uri: str) -> Any:
        """GET ``uri`` and decode JSON."""
        return json.loads(self.get(uri))

    def post_json(self, uri: str, payload: Any) -> Any:
        """POST a JSON body and decode the JSON answer."""
        return json.loads(self.request("POST", uri, json.dumps(payload).encode(), "application/json") or b"null")

    def upload(self, dicom: bytes) -> dict[str, Any]:
        """Store one DICOM file (``POST /instances``); return Orthanc's answer (ID, Status...)."""
        answer = json.loads(self.request("POST", "/instances", dicom, "application/dicom"))
        if not isinstance(answer, dict):
            raise SourceError("Orthanc did not accept the file as one DICOM instance.")
        return answer

    def delete(self, uri: str) -> None:
        """DELETE a resource (e.g. ``/studies/<id>``)."""
        self.request("DELETE", uri)
