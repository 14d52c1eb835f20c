"""An rclone configuration made from a form, one per cloud provider (the dashboard's settings page).

The clinic pastes the token that ``rclone authorize "drive"`` prints on a computer with a web browser, picks
the folder, and the form's fields become one ``[remote]`` of an rclone configuration. The text then goes through
the same check as a pasted file (:func:`pacs_backup.rclone.config.parse`, in the plugin), so a form can never
make what a file may not. A refusal names the field, never its value.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from Crypto.Cipher import AES

from pacs_backup.contracts.errors import BadRequest

from .config import parse
from .providers import PROVIDERS, REMOTE_NAME

MAX_FIELD_CHARS = 8192
# rclone's fixed key for "obscured" passwords (rclone obscure): hides a password from a glance, nothing more.
_OBSCURE_KEY = bytes.fromhex("9c935b48730a554d6bfd7c63c886a92bd390198eb8128afbf4de162b8b95f638")


@dataclass(frozen=True)
class Field:
    """One field of a provider's form: the rclone option it fills, its label and how it is typed."""

    option: str
    label: str
    required: bool = False
    kind: str = "text"  # text, secret (never shown back), token (JSON), key (PEM), password (obscured), choice
    choices: tuple[str, ...] = ()
    hint: str = ""


_TOKEN = Field(
    "token", "Access token", True, "token", hint='What rclone authorize printed, e.g. {"access_token":"...",...}'
)
_CLIENT = (
    Field("client_id", "Client id (only with your own Google/Microsoft/Dropbox app)"),
    Field("client_secret", "Client secret (only with your own app)", kind="secret"),
)
FORMS: dict[str, tuple[Field, ...]] = {
    "drive": (
        _TOKEN,
        Field("root_folder_id", "Folder id", hint="The last part of the folder's address in Google Drive (optional)"),
        *_CLIENT,
    ),
    "dropbox": (_TOKEN, *_CLIENT),
    "onedrive": (
        _TOKEN,
        Field("drive_id", "Drive id", True, hint="Shown by 'rclone config' on the computer with the browser"),
        Field("drive_type", "Kind of OneDrive", True, "choice", ("personal", "business", "documentLibrary")),
        *_CLIENT,
    ),
    "b2": (
        Field("account", "Key id (application key id)", True),
        Field("key", "Application key", True, "secret"),
    ),
    "s3": (
        Field("provider", "Provider", True, "choice", ("AWS", "Wasabi", "Scaleway", "Minio", "Other")),
        Field("access_key_id", "Access key", True),
        Field("secret_access_key", "Secret key", True, "secret"),
        Field("region", "Region", hint="e.g. eu-central-1 (optional)"),
        Field("endpoint", "Address of the storage (https://...)", hint="Leave empty for Amazon S3"),
    ),
    "webdav": (
        Field("url", "Address (https://...)", True),
        Field("vendor", "Kind of server", True, "choice", ("nextcloud", "owncloud", "sharepoint", "other")),
        Field("user", "User name", True),
        Field("pass", "Password", True, "password"),
    ),
    "sftp": (
        Field("host", "Server name or address", True),
        Field("port", "Port", hint="22 unless told otherwise"),
        Field("user", "User name", True),
        Field("key_pem", "Private key (the whole text, BEGIN to END)", True, "key"),
    ),
}
_FIXED = {"drive": {"scope": "drive"}}  # Google Drive: the whole drive (drive.file hides older backups)


def obscure(password: str) -> str:
    """The password as ``rclone obscure`` writes it (AES-CTR with rclone's fixed key, base64url)."""
    iv = os.urandom(16)
    data = AES.new(_OBSCURE_KEY, AES.MODE_CTR, initial_value=iv, nonce=b"").encrypt(password.encode("utf-8"))
    return base64.urlsafe_b64encode(iv + data).rstrip(b"=").decode("ascii")


def _token(raw: str, label: str) -> str:
    """The token JSON on one line; the arrows rclone authorize prints around it may be pasted too."""
    if "--->" in raw:
        raw = raw.split("--->", 1)[1].split("<---", 1)[0]
    try:
        token = json.loads(raw.strip())
    except ValueError:
        raise BadRequest(f"The {label} is not the JSON that rclone authorize printed (it starts with {{).") from None
    return json.dumps(token, separators=(",", ":"))


def _key(raw: str) -> str:
    """A private key pasted as text: one line, its line breaks written \\n (as rclone's key_pem wants)."""
    return "\\n".join(line.strip() for line in raw.strip().splitlines() if line.strip())


def _low(label: str) -> str:
    return label[:1].lower() + label[1:]


def _value(field: Field, raw: str) -> str:
    if len(raw) > MAX_FIELD_CHARS:
        raise BadRequest(f"The {_low(field.label)} is too long (at most {MAX_FIELD_CHARS} characters).")
    if field.kind == "token":
        return _token(raw, _low(field.label))
    if field.kind == "key":
        return _key(raw)
    value = raw.strip()
    if re.search(r"[\x00-\x1f\x7f\x85\u2028\u2029]", value):
        raise BadRequest(f"The {_low(field.label)} holds line breaks or control characters; type it on one line.")
    if field.kind == "choice" and value not in field.choices:
        raise BadRequest(f"Choose the {_low(field.label)} from the list ({', '.join(field.choices)}).")
    return obscure(value) if field.kind == "password" and value else value


def build(provider: str, name: str, fields: Mapping[str, str]) -> str:
    """The rclone configuration of one remote ``name`` of ``provider`` from a form's ``fields`` (by option).

    Raises:
        BadRequest: an unknown provider or remote name, a missing or refused field (named, never its value).
    """
    if provider not in FORMS:
        raise BadRequest(f"Choose the cloud storage from the list ({', '.join(FORMS)}).")
    if not REMOTE_NAME.fullmatch(name):
        raise BadRequest("The name of the remote is letters, digits, '_', '-' or '.', e.g. clinicdrive.")
    lines = [f"# made on the dashboard's settings page: {PROVIDERS[provider].title}", f"[{name}]", f"type = {provider}"]
    lines += [f"{k} = {v}" for k, v in _FIXED.get(provider, {}).items()]
    labels: dict[int, str] = {}
    for field in FORMS[provider]:
        raw = fields.get(field.option, "")
        if not raw.strip():
            if field.required:
                raise BadRequest(f"Fill in the {_low(field.label)}.")
            continue
        lines.append(f"{field.option} = {_value(field, raw)}")
        labels[len(lines)] = _low(field.label)
    text = "\n".join(lines) + "\n"
    try:
        parse(text)
    except BadRequest as exc:
        number = re.match(r"Line ([0-9]+)", str(exc))
        label = labels.get(int(number[1])) if number else None
        reason = re.sub(r"^Line [0-9]+: \[[^\]]*\] \([a-z0-9]+\)(: the value of '[a-z_0-9]+')?", "", str(exc)).strip()
        raise BadRequest(f"The {label} is not accepted: it {reason}" if label else str(exc)) from None
    return text
