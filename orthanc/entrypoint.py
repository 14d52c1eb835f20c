#!/usr/bin/env python3
"""Container entry point of the Orthanc service: writes Orthanc's configuration from the environment
(users and passwords never live in the image), then runs Orthanc. ``--health`` checks it answers.

Variables: ORTHANC_USERNAME, ORTHANC_PASSWORD (or ORTHANC_PASSWORD_FILE), DICOM_AET (default PACS).
The plugin reads its own MINIO_* / RESTIC_* / BACKUP_* variables (see .env.example).
"""

from __future__ import annotations

import base64
import json
import os
import sys
import urllib.request
from pathlib import Path

TEMPLATE = Path(__file__).with_name("orthanc.json")
PLUGIN_DIR = Path("/usr/share/orthanc/plugins")


def render(template: dict, *, storage: Path, index: Path, http_port: int, dicom_port: int, aet: str,
           users: dict[str, str], entry_script: Path, python_plugin: bool = True) -> dict:
    """Return Orthanc's configuration: the shared template plus this installation's values."""
    plugins = [str(PLUGIN_DIR / "libOrthancDicomWeb.so")]
    if python_plugin:
        plugins.insert(0, str(PLUGIN_DIR / "libOrthancPython.so"))
    return {**template, "StorageDirectory": str(storage), "IndexDirectory": str(index), "HttpPort": http_port,
            "DicomPort": dicom_port, "DicomAet": aet, "RegisteredUsers": users, "Plugins": plugins,
            "PythonScript": str(entry_script)}


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
    user = os.environ.get("ORTHANC_USERNAME") or sys.exit("ORTHANC_USERNAME is not set.")
    if "--health" in sys.argv:
        token = base64.b64encode(f"{user}:{_password()}".encode()).decode()
        req = urllib.request.Request("http://127.0.0.1:8042/system", headers={"Authorization": "Basic " + token})
        with urllib.request.urlopen(req, timeout=5) as r:  # noqa: S310 - fixed loopback URL
            sys.exit(0 if r.status == 200 else 1)
    data = Path("/var/lib/orthanc/db")
    config = render(json.loads(TEMPLATE.read_text()), storage=data / "storage", index=data / "index",
                    http_port=8042, dicom_port=4242, aet=os.environ.get("DICOM_AET", "PACS"),
                    users={user: _password()}, entry_script=Path("/opt/pacs-backup/plugins/orthanc_entry.py"))
    out = Path("/run/orthanc/orthanc.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(config, f, indent=2)
    os.execvp("Orthanc", ["Orthanc", str(out)])  # noqa: S606 - fixed program, no shell


if __name__ == "__main__":
    main()
