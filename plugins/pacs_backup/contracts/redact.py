"""Keeping secrets out of what is shown, logged or copied offsite.

Two kinds: passwords inside addresses (``rest:https://user:pass@host/repo``, ``s3:https://key:secret@...``)
shown in the status, the run history and error texts; and secret-like values anywhere in Orthanc's
configuration (users, peers, DICOMweb servers, plugins' settings), which travels in every snapshot.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

MASK = "***"
# scheme://user:password@  ->  scheme://user:***@   (also inside longer texts such as error messages)
_URL_CREDENTIALS = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)([^\s:/@]*):([^\s@/]*)@")
_SECRET_NAME = re.compile(r"pass|secret|token|key|credential|auth|cookie|private", re.IGNORECASE)
# Names that contain "key" or "auth" but hold no secret (Orthanc's own option names).
_NOT_SECRET = {
    "KeepAlive",
    "KeepAliveTimeout",
    "AuthenticationEnabled",
    "DicomTlsTrustedCertificates",
    "SslCertificate",
    "HttpsCACertificates",
    "DicomTlsCertificate",
    "TranscodeDicomProtocol",
}


def mask_url_credentials(text: str) -> str:
    """``rest:https://user:pass@host/x`` -> ``rest:https://user:***@host/x``, anywhere in ``text``."""
    return _URL_CREDENTIALS.sub(lambda m: f"{m[1]}{m[2]}:{MASK}@", text)


def _redact(value: Any, name: str = "") -> Any:
    secret_name = bool(_SECRET_NAME.search(name)) and name not in _NOT_SECRET
    if isinstance(value, dict):
        if name == "RegisteredUsers":
            return {user: MASK for user in value}
        return {k: _redact(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        # Orthanc writes peers and DICOMweb servers as [url, user, password]: the third item is a password.
        if name and len(value) >= 3 and all(isinstance(v, str) for v in value[:3]) and "://" in value[0]:
            return [mask_url_credentials(value[0]), value[1], MASK, *[_redact(v, name) for v in value[3:]]]
        return [_redact(v, name) for v in value]
    if isinstance(value, str):
        if secret_name and value:
            return MASK
        return mask_url_credentials(value)
    return value


def redacted_config(raw: str) -> str:
    """Orthanc's configuration (JSON) with every secret-like value replaced by ``***``."""
    try:
        config = json.loads(raw)
    except ValueError:
        return "{}"
    return json.dumps(_redact(config), indent=2)


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, readable by its owner only (also when the file existed before)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
