"""The allow-list of rclone configurations: which remote types, which options, and what each value may look like.

Only what a clinic's cloud storage needs is allowed (Google Drive, Dropbox, OneDrive, Backblaze B2, S3-compatible
storage, WebDAV, SFTP with a key), plus ``local`` (a folder, no options) and remotes that wrap another remote of
the same file (alias, crypt, union, combine, chunker, compress, hasher). Every other type and option is refused,
and so is any value that does not have its option's shape: a connection string (``:backend,option=value:`` or
``remote,option=value:``, which would bring back refused options), a path to a file or program, or shell
characters where none belong. See :func:`pacs_backup.rclone.config.parse` for how a file is checked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_VALUE_CHARS = 8192  # the longest value (an OAuth token from rclone authorize is 0.5 to 4 KB)
REMOTE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+@-]{0,63}")
# A folder inside a remote: letters (any language), digits, space and . _ - / + @ ( ); never ':' ',' '=' or quotes.
_FOLDER = r"[\w ./+@()-]{0,256}"
_REF = re.compile(rf"(?P<name>{REMOTE_NAME.pattern}):(?P<path>{_FOLDER})")
# A connection string: ':backend:', ':backend,option=value:' or 'remote,option=value:' (anywhere in a value).
_CONNECTION_STRING = re.compile(r"(?:^|[\s=\"'])(?::[A-Za-z0-9_-]*[,:]|[A-Za-z0-9_.+@-]+,.*:)")
_PROGRAM_PATH = re.compile(r"(?:^|[\s=\"'])(?:/|~|\.\.?/)")
_SHELL = frozenset("$`;|&<>\\'\"{}\n")


@dataclass(frozen=True)
class Shape:
    """What the value of an option may look like. ``raw`` shapes (JSON, key text) have their own strict check
    instead of the general one (their quotes and colons belong there)."""

    what: str
    test: Callable[[str], bool]
    raw: bool = False


def _regex(pattern: str, what: str, raw: bool = False) -> Shape:
    compiled = re.compile(pattern)
    return Shape(what, lambda v: compiled.fullmatch(v) is not None, raw)


def _enum(*values: str) -> Shape:
    return Shape("one of " + ", ".join(values), lambda v: v in values)


def _url(v: str) -> bool:
    """An https address without user or password (http only to this computer: a stand-in on loopback)."""
    try:
        u = urlsplit(v)
        port = u.port
    except ValueError:
        return False
    host = u.hostname or ""
    loopback = host in ("127.0.0.1", "localhost", "::1")
    return (
        (u.scheme == "https" or (u.scheme == "http" and loopback))
        and re.fullmatch(r"[A-Za-z0-9.-]{1,253}|::1", host) is not None
        and "@" not in u.netloc
        and (port is None or 0 < port < 65536)
        and re.fullmatch(r"[A-Za-z0-9._~/%-]*", u.path) is not None
        and not u.query
        and not u.fragment
    )


_TOKEN_TEXT = re.compile(r"[\x21-\x7e]{1,4096}")  # printable, no space (tokens are opaque: '$' '!' '*' occur)
_TOKEN_KEYS = {"access_token", "token_type", "refresh_token", "expiry", "expires_in"}


def _oauth_token(v: str) -> bool:
    """The JSON that ``rclone authorize`` prints: access_token (required), token_type, refresh_token, expiry."""
    try:
        token = json.loads(v)
    except ValueError:
        return False
    if not isinstance(token, dict) or not token.keys() <= _TOKEN_KEYS or "access_token" not in token:
        return False
    for key, value in token.items():
        if key == "expires_in":
            if not isinstance(value, int) or isinstance(value, bool):
                return False
        elif not isinstance(value, str) or not _TOKEN_TEXT.fullmatch(value) or any(c in value for c in '"\\`'):
            return False
    return re.fullmatch(r"[0-9T:.+Z-]{0,40}", str(token.get("expiry", ""))) is not None


_PEM = re.compile(
    r"-----BEGIN (?P<kind>OPENSSH |RSA |EC |)PRIVATE KEY-----(?:\\n[A-Za-z0-9+/=]{1,100}){1,200}"
    r"\\n-----END (?P=kind)PRIVATE KEY-----(?:\\n)?"
)


def _refs(v: str) -> list[str]:
    return [v]


def _upstreams(v: str) -> list[str]:
    """union: ``remote:folder`` words, each maybe ending in :ro, :nc or :writeback."""
    return [re.sub(r":(?:ro|nc|writeback)$", "", word) for word in v.split()]


def _combined(v: str) -> list[str]:
    """combine: ``dir=remote:folder`` words."""
    return [word.partition("=")[2] if re.match(r"[\w.-]{1,64}=", word) else "=" for word in v.split()]


def is_ref(v: str) -> bool:
    """A plain ``name:`` or ``name:folder`` of a remote (no connection string, no second ':')."""
    return _REF.fullmatch(v) is not None


def ref_name(v: str) -> str:
    return v.partition(":")[0]


BOOL = _enum("true", "false")
FALSE = _enum("false")
INT = _regex(r"[0-9]{1,9}", "a whole number")
SIZE = _regex(r"[0-9]{1,12}(?:\.[0-9]{1,3})?[bBkKMGTP]?i?", "a size such as 8M or 96Mi")
DURATION = _regex(r"off|(?:[0-9]{1,9}(?:\.[0-9]{1,3})?(?:ms|s|m|h|d|w|M|y))+", "a duration such as 24h")
# Keys and client secrets: their own strict alphabet (no ':' ',' or shell characters), so a leading '/' is fine.
SECRET = _regex(r"[A-Za-z0-9._~+/=-]{1,1024}", "letters, digits and . _ ~ + / = - only", raw=True)
OBSCURED = _regex(r"[A-Za-z0-9_-]{4,1024}", "a password obscured by rclone (letters, digits, _ and -)")
ID = _regex(r"[A-Za-z0-9_.!-]{1,256}", "an id (letters, digits, _ . ! -)")
REGION = _regex(r"[A-Za-z0-9-]{1,64}", "a region such as eu-central-1")
WORD = _regex(r"[A-Za-z0-9_-]{1,64}", "a single word")
USER = _regex(r"[A-Za-z0-9._@+-]{1,128}", "a user name (letters, digits, . _ @ + -)")
HOST = _regex(r"[A-Za-z0-9.-]{1,253}", "a host name or IPv4 address")
PORT = Shape("a port number (1-65535)", lambda v: v.isdigit() and len(v) <= 5 and 0 < int(v) < 65536)
URL = Shape("an https:// address without user or password", _url)
TOKEN = Shape("the JSON token that 'rclone authorize' prints", _oauth_token, raw=True)
PEM = Shape("a private key pasted as one line (its line breaks written \\n)", lambda v: bool(_PEM.fullmatch(v)), True)
REF = Shape("a remote of this file, as name: or name:folder", is_ref)
UPSTREAMS = Shape("remotes of this file, as name:folder separated by spaces", lambda v: all(map(is_ref, _upstreams(v))))
COMBINED = Shape("folder=name:folder pairs of remotes of this file", lambda v: all(map(is_ref, _combined(v))))
HASHES = _regex(r"[a-z0-9]{1,16}(?:,[a-z0-9]{1,16}){0,7}", "hash names separated by commas, e.g. md5,sha1")

_OAUTH: dict[str, Shape] = {"client_id": SECRET, "client_secret": SECRET, "token": TOKEN}


@dataclass(frozen=True)
class Provider:
    """One allowed remote type: its name for people, its options, and (wrapping remotes) its remote options."""

    title: str
    options: Mapping[str, Shape]
    wraps: Mapping[str, Callable[[str], list[str]]]  # option -> the remote references in its value


PROVIDERS: dict[str, Provider] = {
    "drive": Provider(
        "Google Drive",
        {
            **_OAUTH,
            "scope": _enum("drive", "drive.file"),
            "root_folder_id": ID,
            "team_drive": ID,
            "use_trash": BOOL,
            "chunk_size": SIZE,
            "upload_cutoff": SIZE,
        },
        {},
    ),
    "dropbox": Provider("Dropbox", {**_OAUTH, "chunk_size": SIZE}, {}),
    "onedrive": Provider(
        "OneDrive",
        {
            **_OAUTH,
            "drive_id": ID,
            "drive_type": _enum("personal", "business", "documentLibrary"),
            "region": _enum("global", "us", "de", "cn"),
            "root_folder_id": ID,
            "chunk_size": SIZE,
        },
        {},
    ),
    "b2": Provider(
        "Backblaze B2",
        {
            "account": SECRET,
            "key": SECRET,
            "endpoint": URL,
            "hard_delete": BOOL,
            "chunk_size": SIZE,
            "upload_cutoff": SIZE,
        },
        {},
    ),
    "s3": Provider(
        "S3-compatible storage",
        {
            "provider": WORD,
            "env_auth": FALSE,
            "access_key_id": SECRET,
            "secret_access_key": SECRET,
            "region": REGION,
            "endpoint": URL,
            "location_constraint": REGION,
            "acl": WORD,
            "bucket_acl": WORD,
            "storage_class": WORD,
            "server_side_encryption": _enum("AES256", "aws:kms"),
            "force_path_style": BOOL,
            "no_check_bucket": BOOL,
            "v2_auth": BOOL,
            "chunk_size": SIZE,
            "upload_cutoff": SIZE,
        },
        {},
    ),
    "webdav": Provider(
        "WebDAV (Nextcloud, ownCloud, SharePoint...)",
        {
            "url": URL,
            "vendor": _enum("nextcloud", "owncloud", "sharepoint", "sharepoint-ntlm", "other"),
            "user": USER,
            "pass": OBSCURED,
            "bearer_token": SECRET,
        },
        {},
    ),
    "sftp": Provider(
        "SFTP server (key authentication)",
        {
            "host": HOST,
            "user": USER,
            "port": PORT,
            "key_pem": PEM,
            "key_file_pass": OBSCURED,
            "key_use_agent": FALSE,
            "shell_type": _enum("none", "unix", "powershell", "cmd"),
            "disable_hashcheck": BOOL,
            "set_modtime": BOOL,
        },
        {},
    ),
    "local": Provider("a folder of this computer (no options)", {}, {}),
    "alias": Provider("alias", {"remote": REF}, {"remote": _refs}),
    "crypt": Provider(
        "crypt",
        {
            "remote": REF,
            "password": OBSCURED,
            "password2": OBSCURED,
            "filename_encryption": _enum("standard", "obfuscate", "off"),
            "directory_name_encryption": BOOL,
            "filename_encoding": _enum("base32", "base64", "base32768"),
        },
        {"remote": _refs},
    ),
    "union": Provider(
        "union",
        {
            "upstreams": UPSTREAMS,
            "action_policy": WORD,
            "create_policy": WORD,
            "search_policy": WORD,
            "cache_time": INT,
        },
        {"upstreams": _upstreams},
    ),
    "combine": Provider("combine", {"upstreams": COMBINED}, {"upstreams": _combined}),
    "chunker": Provider(
        "chunker",
        {
            "remote": REF,
            "chunk_size": SIZE,
            "hash_type": _enum("none", "md5", "sha1", "md5all", "sha1all", "md5quick", "sha1quick"),
            "fail_hard": BOOL,
        },
        {"remote": _refs},
    ),
    "compress": Provider(
        "compress",
        {"remote": REF, "mode": _enum("gzip"), "level": INT, "ram_cache_limit": SIZE},
        {"remote": _refs},
    ),
    "hasher": Provider(
        "hasher", {"remote": REF, "hashes": HASHES, "max_age": DURATION, "auto_size": SIZE}, {"remote": _refs}
    ),
}
CLOUDS = ("drive", "dropbox", "onedrive", "b2", "s3", "webdav", "sftp")
WRAPPERS = tuple(t for t, p in PROVIDERS.items() if p.wraps)


def value_problem(shape: Shape, value: str) -> str | None:
    """Why ``value`` is refused for an option of ``shape`` (a sentence's end, never the value), or None."""
    if len(value) > MAX_VALUE_CHARS:
        return f"is longer than {MAX_VALUE_CHARS} characters"
    if not shape.raw:
        if _CONNECTION_STRING.search(value):
            return (
                "holds an rclone connection string (':backend,option=value:' or 'remote,option=value:'), "
                "which could bring back options that are refused here; name a remote of this file instead"
            )
        if any(c in _SHELL for c in value):
            return "holds shell characters ($ ` ; | & < > { } quotes or backslash), which do not belong in it"
        if _PROGRAM_PATH.search(value):
            return "names a file or program of this computer, which is not allowed here"
    return None if shape.test(value) else f"must be {shape.what}"


def refs_of(kind: str, option: str, value: str) -> list[str]:
    """The remote references in a wrapping remote's option (empty for any other option)."""
    split = PROVIDERS[kind].wraps.get(option) if kind in PROVIDERS else None
    return split(value) if split else []
