#!/usr/bin/env python3
"""Container entry point of the Orthanc service: writes Orthanc's configuration from the environment
(users and passwords never live in the image), then runs Orthanc. ``--health`` checks it answers.

Variables: ORTHANC_USERNAME, ORTHANC_PASSWORD (or ORTHANC_PASSWORD_FILE), DICOM_AET (default PACS),
DICOM_MODALITIES (the devices allowed to store: ``AET@address[:port],...``; empty = any device).
The plugin reads its own MINIO_* / RESTIC_* / BACKUP_* variables (see .env.example).
"""

from __future__ import annotations

import base64
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Mapping
from pathlib import Path

TEMPLATE = Path(__file__).with_name("orthanc.json")
PLUGIN_DIR = Path("/usr/share/orthanc/plugins")


class ConfigError(ValueError):
    """A setting has a value Orthanc cannot use; the message names the variable and the bad part."""


# DICOM AE titles: up to 16 characters of the default repertoire without backslash. "@" and "," separate
# the list's parts, so they cannot appear in a title given here.
_AET = re.compile(r"[ -~]{1,16}")
DEFAULT_MODALITY_PORT = 104


def parse_modalities(raw: str, name: str = "DICOM_MODALITIES") -> dict[str, dict[str, object]]:
    """Parse ``AET@address[:port],...`` into Orthanc's ``DicomModalities`` (empty text: no list).

    Each listed device may store (and echo, and ask for storage commitment), nothing else: C-FIND,
    C-GET and C-MOVE stay refused as they are for unknown devices. The address must be an IP address
    (IPv6 in brackets when a port follows): Orthanc compares it as text with the sender's address, so a
    host name would refuse the device. Raises ConfigError naming ``name`` and the entry.
    """
    modalities: dict[str, dict[str, object]] = {}
    seen: dict[str, str] = {}
    for entry in (e.strip() for e in raw.split(",")):
        if not entry:
            continue  # a trailing comma or an empty setting
        aet, sep, where = entry.rpartition("@")
        aet = aet.strip()
        if not sep or not aet or not where.strip():
            raise ConfigError(f"{name}: {entry!r} is not AET@address[:port] (e.g. CR1@192.168.1.20:104).")
        if not _AET.fullmatch(aet) or "\\" in aet or "@" in aet:
            raise ConfigError(
                f"{name}: {entry!r}: the AE title {aet!r} must be 1 to 16 printable ASCII "
                f"characters without backslash or '@'."
            )
        host, port = _host_port(name, entry, where.strip())
        # Orthanc compares titles without case; two entries with one title make it skip the address check
        # (seen with 1.10.1: a device with that title was then accepted from any address).
        key = aet.upper()
        if key in seen:
            raise ConfigError(
                f"{name}: the AE title {aet!r} appears twice ({seen[key]!r} and {entry!r}); Orthanc "
                f"then stops checking addresses. Give each device its own AE title."
            )
        seen[key] = entry
        symbolic = re.sub(r"[^a-z0-9]+", "-", aet.lower()).strip("-") or "modality"
        while symbolic in modalities:
            symbolic += "-2"
        modalities[symbolic] = {
            "AET": aet,
            "Host": host,
            "Port": port,
            "AllowEcho": True,
            "AllowStore": True,
            "AllowStorageCommitment": True,
            "AllowFind": False,
            "AllowFindWorklist": False,
            "AllowGet": False,
            "AllowMove": False,
        }
    return modalities


def _host_port(name: str, entry: str, where: str) -> tuple[str, int]:
    port_text = ""
    if where.startswith("["):  # [IPv6]:port
        host, _, rest = where[1:].partition("]")
        if rest and not rest.startswith(":"):
            raise ConfigError(f"{name}: {entry!r}: write an IPv6 address with a port as [address]:port.")
        port_text = rest[1:]
    elif where.count(":") == 1:  # IPv4:port
        host, _, port_text = where.partition(":")
    else:  # IPv4, or IPv6 without a port
        host = where
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(
            f"{name}: {entry!r}: {host!r} is not an IP address. Orthanc compares the sender's "
            f"address with it, so give the device's fixed IP address, not a host name."
        ) from None
    if not port_text and where.endswith(":"):
        raise ConfigError(f"{name}: {entry!r}: the port after ':' is missing.")
    if not port_text:
        return host, DEFAULT_MODALITY_PORT
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"{name}: {entry!r}: {port_text!r} is not a port number (1-65535).")
    return host, int(port_text)


def render(
    template: dict,
    *,
    storage: Path,
    index: Path,
    http_port: int,
    dicom_port: int,
    aet: str,
    users: dict[str, str],
    entry_script: Path,
    python_plugin: bool = True,
    modalities: str = "",
    remote_access: bool | None = None,
    postgresql: dict | None = None,
) -> dict:
    """Return Orthanc's configuration: the shared template plus this installation's values.

    ``modalities``: DICOM_MODALITIES' text; when it lists devices only they may store (checked by AE
    title and address). ``remote_access``: None keeps the template's RemoteAccessAllowed (on: in a
    container every client comes through Docker's network); False answers only clients on this machine.
    ``postgresql``: Orthanc's index in PostgreSQL (see :func:`postgresql_index`); None keeps SQLite.
    """
    plugins = [str(PLUGIN_DIR / "libOrthancDicomWeb.so")]
    if python_plugin:
        plugins.insert(0, str(PLUGIN_DIR / "libOrthancPython.so"))
    if postgresql:
        plugins.append(str(PLUGIN_DIR / "libOrthancPostgreSQLIndex.so"))
    config = {
        **template,
        "StorageDirectory": str(storage),
        "IndexDirectory": str(index),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": aet,
        "RegisteredUsers": users,
        "Plugins": plugins,
        "PythonScript": str(entry_script),
    }
    known = parse_modalities(modalities)
    if known:
        config.update({"DicomModalities": known, "DicomAlwaysAllowStore": False, "DicomCheckModalityHost": True})
    if remote_access is not None:
        config["RemoteAccessAllowed"] = remote_access
    if postgresql:
        config["PostgreSQL"] = postgresql
    return config


def postgresql_index(env: Mapping[str, str]) -> dict | None:
    """Orthanc's PostgreSQL index settings from ORTHANC_POSTGRESQL_*, or None when no host is set.

    Only the index moves to PostgreSQL: the images stay files in the storage directory, which the
    offsite snapshots hold and the copies are read from, so backups, drills and restores do not change.
    """
    host = (env.get("ORTHANC_POSTGRESQL_HOST") or "").strip()
    if not host:
        return None
    password = (env.get("ORTHANC_POSTGRESQL_PASSWORD") or "").strip()
    if not password:
        raise ConfigError("ORTHANC_POSTGRESQL_PASSWORD is empty: Orthanc's PostgreSQL index needs its password.")
    port_text = (env.get("ORTHANC_POSTGRESQL_PORT") or "5432").strip()
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"ORTHANC_POSTGRESQL_PORT={port_text!r} is not a port number (1-65535).")
    return {
        "EnableIndex": True,
        "EnableStorage": False,
        "Host": host,
        "Port": int(port_text),
        "Database": (env.get("ORTHANC_POSTGRESQL_DATABASE") or "orthanc").strip(),
        "Username": (env.get("ORTHANC_POSTGRESQL_USERNAME") or "orthanc").strip(),
        "Password": password,
        "EnableSsl": parse_flag(env.get("ORTHANC_POSTGRESQL_SSL", "")),
        # One Orthanc per database: it takes the lock, so a second one started by mistake refuses to run.
        "Lock": True,
    }


def parse_flag(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "on")


MODALITIES_WARNING = (
    "warning: DICOM_MODALITIES is empty, so any device that reaches the DICOM port may store "
    "images. List the clinic's devices (AET@address[:port],...): see README, 'Install'."
)


# rest-server accepts bcrypt ($2a$/$2b$/$2y$) and unsalted SHA-1 ({SHA}) entries; only bcrypt is written here.
_REST_USER = re.compile(r"[\w@.-]+")


def htpasswd_line(user: str, password: str) -> str:
    """Return ``user:<bcrypt hash>`` for rest-server's htpasswd file.

    Python's ``bcrypt`` is used when installed, else ``htpasswd`` (Debian's apache2-utils, in the image and
    installed by dev/setup) with the password on its standard input, never on a command line.
    """
    if not user:
        raise ConfigError("RESTIC_REST_USERNAME is empty: the rest-server login needs a user.")
    if not _REST_USER.fullmatch(user):
        raise ConfigError(f"RESTIC_REST_USERNAME={user!r} may hold only letters, digits, '@', '.', '_' and '-'.")
    if not password:
        raise ConfigError("RESTIC_REST_PASSWORD is empty: the rest-server login needs a password.")
    try:
        import bcrypt  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        bcrypt = None
    if bcrypt is not None:
        return f"{user}:{bcrypt.hashpw(password.encode(), bcrypt.gensalt(10)).decode()}"
    if shutil.which("htpasswd") is None:
        raise ConfigError("htpasswd (Debian package apache2-utils) is missing: it makes rest-server's login file.")
    done = subprocess.run(
        ["htpasswd", "-niB", "-C", "10", user], input=password, capture_output=True, text=True, timeout=60, check=False
    )
    line = done.stdout.strip()
    if done.returncode != 0 or not line.startswith(f"{user}:$2"):
        raise ConfigError(f"htpasswd could not hash the rest-server password (exit {done.returncode}).")
    return line


def write_htpasswd(path: Path, user: str, password: str) -> Path:
    """Write rest-server's htpasswd file for one user (mode 0600, replaced in one step)."""
    line = htpasswd_line(user, password)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(line + "\n")
    tmp.replace(path)
    return path


def _password() -> str:
    path = os.environ.get("ORTHANC_PASSWORD_FILE")
    value = Path(path).read_text().strip() if path else os.environ.get("ORTHANC_PASSWORD", "")
    if not value:
        sys.exit("ORTHANC_PASSWORD (or ORTHANC_PASSWORD_FILE) is not set: Orthanc will not start without a password.")
    return value


def main() -> None:
    if len(sys.argv) > 1 and not sys.argv[1].startswith("--"):
        # `docker compose run orthanc <command>`: run that command (scripts, recovery sheet) instead.
        os.execvp(sys.argv[1], sys.argv[1:])  # noqa: S606 - the operator's own command
    if sys.argv[1:2] == ["--rest-server-htpasswd"] and len(sys.argv) == 3:
        # Compose's offsite-auth one-shot: the offsite-demo rest-server's login file, from .env's
        # RESTIC_REST_USERNAME / RESTIC_REST_PASSWORD (the plugin's credentials), at every `up`.
        try:
            write_htpasswd(
                Path(sys.argv[2]),
                os.environ.get("RESTIC_REST_USERNAME", ""),
                os.environ.get("RESTIC_REST_PASSWORD", ""),
            )
        except ConfigError as exc:
            sys.exit(f"{exc} Run scripts/init to generate RESTIC_REST_USERNAME / RESTIC_REST_PASSWORD in .env.")
        print(f"wrote {sys.argv[2]} for rest-server user {os.environ['RESTIC_REST_USERNAME']}")
        return
    user = os.environ.get("ORTHANC_USERNAME") or sys.exit("ORTHANC_USERNAME is not set.")
    if "--health" in sys.argv:
        token = base64.b64encode(f"{user}:{_password()}".encode()).decode()
        req = urllib.request.Request("http://127.0.0.1:8042/system", headers={"Authorization": "Basic " + token})
        with urllib.request.urlopen(req, timeout=5) as r:  # noqa: S310 - fixed loopback URL
            sys.exit(0 if r.status == 200 else 1)
    data = Path("/var/lib/orthanc/db")
    modalities = os.environ.get("DICOM_MODALITIES", "")
    try:
        config = render(
            json.loads(TEMPLATE.read_text()),
            storage=data / "storage",
            index=data / "index",
            http_port=8042,
            dicom_port=4242,
            aet=os.environ.get("DICOM_AET", "PACS"),
            users={user: _password()},
            entry_script=Path("/opt/pacs-backup/plugins/orthanc_entry.py"),
            modalities=modalities,
            postgresql=postgresql_index(os.environ),
        )
    except ConfigError as exc:
        sys.exit(str(exc))
    if "DicomModalities" not in config:
        print(MODALITIES_WARNING, file=sys.stderr, flush=True)
    out = Path("/run/orthanc/orthanc.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(config, f, indent=2)
    os.execvp("Orthanc", ["Orthanc", str(out)])  # noqa: S606 - fixed program, no shell


if __name__ == "__main__":
    main()
