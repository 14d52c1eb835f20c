"""Every setting the code reads is documented in .env.example (an installer reads that file, not the code)."""

from __future__ import annotations

import re

from tests.support.common import ROOT

# Where settings are read: the plugin's and the dashboard's configuration modules.
READERS = [
    *sorted((ROOT / "plugins" / "pacs_backup").glob("*.py")),
    *sorted((ROOT / "dashboard" / "pacs_dashboard").glob("*.py")),
]
NAME = re.compile(r'"((?:MINIO|BACKUP|RESTIC|DASHBOARD|CLOUD_PACS|DICOM)_[A-Z0-9_]+)"')
PREFIXED = re.compile(r'prefix \+ "([A-Z0-9_]+)"')  # <prefix>X: RESTIC_X, USB_RESTIC_X, MINIO_X...
NOT_SETTINGS = {
    "RESTIC_REPOSITORY",
    "RESTIC_PASSWORD_FILE",
    "RESTIC_CACHE_DIR",
    "RESTIC_PASSWORD",
    "RESTIC_REST_USERNAME",
    "RESTIC_REST_PASSWORD",
    "RESTIC_BINARY",
    "DASHBOARD_MINIO_",
}


def test_every_setting_read_by_the_code_is_in_env_example():
    documented = (ROOT / ".env.example").read_text()
    read: set[str] = set()
    suffixes: set[str] = set()
    for path in READERS:
        text = path.read_text()
        read |= set(NAME.findall(text))
        suffixes |= set(PREFIXED.findall(text))
    missing = sorted(n for n in read - NOT_SETTINGS if not n.endswith("_") and not re.search(rf"\b{n}\b", documented))
    missing += sorted(f"<prefix>{x}" for x in suffixes if not re.search(rf"[A-Z]_{x}\b", documented))
    assert not missing, f"read by the code but not in .env.example: {missing}"
