"""A DICOMweb client for a cloud PACS: STOW-RS to send, QIDO-RS to verify, WADO-RS to get a study back.

Plain HTTP(S) with basic authentication; errors are named (:class:`CloudUnavailable` when the remote
cannot be reached - retried without counting against an image - and :class:`CloudRefused` when it
answered no).
"""

from __future__ import annotations

import base64
import http.client
import json
import secrets
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from pacs_backup.contracts.errors import CloudNotFound, CloudRefused, CloudUnavailable
from pacs_backup.contracts.redact import mask_url_credentials

from .throttle import Throttle, paced

if TYPE_CHECKING:
    from pacs_backup.replication.cloud_pacs import Outgoing, SentStudy
    from pacs_backup.restore.uploads import OrthancTarget, Progress, RestoreReport

__all__ = ["CloudNotFound", "CloudRefused", "CloudUnavailable", "DicomWeb", "split_multipart"]


class DicomWeb:
    """One DICOMweb server (its root, e.g. ``https://cloud.example/dicom-web``)."""

    def __init__(
        self,
        root: str,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 120.0,
        throttle: Throttle | None = None,
    ) -> None:
        if not root.startswith(("http://", "https://")):
            raise ValueError(f"{root!r} must start with http:// or https://")
        self.root = root.rstrip("/")
        self.shown = mask_url_credentials(self.root)
        self._timeout = timeout_s
        self.throttle = throttle  # paces what STOW-RS sends (CLOUD_PACS_UPLOAD_LIMIT)
        self._headers: dict[str, str] = {}
        if username:
            token = base64.b64encode(f"{username}:{password or ''}".encode()).decode()
            self._headers["Authorization"] = "Basic " + token

    def _request(
        self,
        method: str,
        path: str,
        body: bytes | Iterable[bytes] | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[bytes, str]:
        req = urllib.request.Request(  # noqa: S310 - http(s) only, checked or loopback
            self.root + path,
            data=body,
            method=method,
            headers={**self._headers, **(headers or {})},
        )
        try:
            with urllib.request.urlopen(req, timeout=self._timeout) as resp:  # noqa: S310
                return bytes(resp.read()), str(resp.headers.get("Content-Type", ""))
        except urllib.error.HTTPError as exc:
            if exc.code in (502, 503, 504):
                raise CloudUnavailable(f"The cloud PACS at {self.shown} is not available (HTTP {exc.code}).") from None
            if exc.code in (401, 403):
                raise CloudRefused(
                    f"The cloud PACS at {self.shown} refused the user name or password "
                    "(CLOUD_PACS_USERNAME / CLOUD_PACS_PASSWORD)."
                ) from None
            kind = CloudNotFound if exc.code == 404 else CloudRefused
            raise kind(f"The cloud PACS at {self.shown} answered HTTP {exc.code} to {method} {path[:80]}.") from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            raise CloudUnavailable(f"The cloud PACS at {self.shown} cannot be reached ({reason}).") from None

    def store(self, files: Sequence[bytes]) -> None:
        """STOW-RS: send DICOM files in one request. Raises CloudRefused when the remote stored none."""
        boundary = "pacs-backup-" + secrets.token_hex(12)
        parts = [
            b"--" + boundary.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n" + f + b"\r\n" for f in files
        ]
        body = b"".join(parts) + b"--" + boundary.encode() + b"--\r\n"
        self._request(
            "POST",
            "/studies",
            body if self.throttle is None else paced(body, self.throttle),  # chunks at the rate in force
            {
                "Content-Length": str(len(body)),
                "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
                "Accept": "application/dicom+json",
            },
        )

    def send(self, items: Sequence[Outgoing]) -> None:
        """The cloud PACS interface: STOW-RS of the exact bytes that were backed up."""
        self.store([i.data for i in items])

    def restore(
        self, study_uid: str, orthanc: OrthancTarget, sent: SentStudy, progress: Progress | None = None
    ) -> RestoreReport:
        """The cloud PACS interface: WADO-RS, each file checked against the sha256 of what was sent."""
        from pacs_backup.restore.from_copies import restore_from_cloud  # restore.py imports this module

        return restore_from_cloud(self, orthanc, study_uid, sent.shas, progress)

    def instances_of(self, study_uid: str) -> set[str]:
        """QIDO-RS: the SOPInstanceUIDs the remote holds for a study (empty when it has none)."""
        try:
            data, _ = self._request(
                "GET",
                f"/studies/{urllib.parse.quote(study_uid)}/instances?includefield=00080018",
                headers={"Accept": "application/dicom+json"},
            )
        except CloudNotFound:  # a study it does not have
            return set()
        if not data.strip():
            return set()
        try:
            found = json.loads(data)
        except ValueError:
            raise CloudRefused(f"The cloud PACS at {self.shown} answered a search with something unreadable.") from None
        return {
            str(v)
            for item in found
            if isinstance(item, dict)
            for v in (item.get("00080018", {}).get("Value") or [])[:1]
        }

    def retrieve(self, study_uid: str) -> list[bytes]:
        """WADO-RS: every instance of a study, as the files the remote keeps."""
        data, ctype = self._request(
            "GET",
            f"/studies/{urllib.parse.quote(study_uid)}",
            headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'},
        )
        return split_multipart(data, ctype)


def split_multipart(data: bytes, content_type: str) -> list[bytes]:
    """The bodies of a ``multipart/related`` answer."""
    boundary = ""
    for param in content_type.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.lower() == "boundary":
            boundary = value.strip('"')
    if not boundary:
        raise CloudRefused("The cloud PACS answered without a multipart boundary.")
    out = []
    for part in data.split(b"--" + boundary.encode())[1:]:
        if part.startswith(b"--"):
            break
        _head, sep, body = part.partition(b"\r\n\r\n")
        if sep:
            out.append(body[:-2] if body.endswith(b"\r\n") else body)
    return out
