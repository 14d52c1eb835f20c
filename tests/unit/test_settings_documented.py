"""Every setting the code reads is documented in .env.example (an installer reads that file, not the code)."""

from __future__ import annotations

import re

from tests.support.common import ROOT

# Every module of the plugin (its entry module too) and of the dashboard.
READERS = [
    ROOT / "plugins" / "orthanc_entry.py",
    *sorted((ROOT / "plugins" / "pacs_backup").rglob("*.py")),
    *sorted((ROOT / "dashboard" / "pacs_dashboard").rglob("*.py")),
]
# A name given to an environment lookup: os.environ.get / [..], os.getenv, env.get / [..] on the Mapping
# the configuration modules take, and their helpers (raw, secret, number, optional_number).
LOOKUP = re.compile(
    r"(?:environ\.get|environ\[|getenv|env\.get|env\[|_raw\(env,|secret\(env,|_float\(env,|number\(env,|_optional_number\(env,)"
    r'\s*\(?\s*"([A-Z][A-Z0-9_]*)"'
)
# Names the configuration helpers are handed directly (e.g. _number("BACKUP_WORKERS", _raw(env, ...))).
NAME = re.compile(r'"((?:MINIO|BACKUP|RESTIC|DASHBOARD|CLOUD_PACS|DICOM|ORTHANC)_[A-Z0-9_]+)"')
PREFIXED = re.compile(r'prefix \+ "([A-Z0-9_]+)"')  # <prefix>X: RESTIC_X, USB_RESTIC_X, MINIO_X...
NOT_SETTINGS = {
    # restic's own variables, which Restic sets for the restic program from the target's settings
    "RESTIC_REPOSITORY",
    "RESTIC_PASSWORD_FILE",
    "RESTIC_PASSWORD",
    "RESTIC_REST_USERNAME",
    "RESTIC_REST_PASSWORD",
    # where the restic program and its cache are: for development and tests, not for an installation
    "RESTIC_BINARY",
    "RESTIC_CACHE_DIR",
    # the operating system's, handed on to restic
    "HOME",
    "PATH",
    # a WSGI request's environ, not the process environment
    "PATH_INFO",
}


def settings_read() -> tuple[set[str], set[str]]:
    """The names the code reads (whole names, and the suffixes read after a target's prefix)."""
    read: set[str] = set()
    suffixes: set[str] = set()
    for path in READERS:
        text = path.read_text()
        read |= set(LOOKUP.findall(text)) | set(NAME.findall(text))
        suffixes |= set(PREFIXED.findall(text))
    return {n for n in read - NOT_SETTINGS if not n.endswith("_")}, suffixes


def test_the_scan_finds_the_settings_read_in_each_way():
    read, suffixes = settings_read()
    # os.environ.get, env.get in the dashboard, _raw/secret in the plugin's config, a target's suffix
    assert {"DASHBOARD_HOST", "DASHBOARD_MONITOR_SECONDS", "ORTHANC_URL", "APPRISE_URLS", "MINIO_BUCKET"} <= read
    assert {"CLOUD_PACS_PASSWORD", "BACKUP_WORKERS", "MINIO_ROOT_USER", "DASHBOARD_TZ"} <= read
    assert {"REPOSITORY", "KEEP"} <= suffixes


def test_every_setting_read_by_the_code_is_in_env_example():
    documented = (ROOT / ".env.example").read_text()
    read, suffixes = settings_read()
    missing = sorted(n for n in read if not re.search(rf"\b{n}\b", documented))
    missing += sorted(f"<prefix>{x}" for x in suffixes if not re.search(rf"[A-Z]_{x}\b", documented))
    assert not missing, f"read by the code but not in .env.example: {missing}"
