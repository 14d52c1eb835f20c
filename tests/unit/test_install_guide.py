"""The install guide names only settings, ports and commands that exist: an installer types them as written.

The commands it hands over to (docs/restore.md, what to do when a light turns red) are checked with it."""

from __future__ import annotations

import os
import re

import yaml

from tests.support.common import ROOT

GUIDE = (ROOT / "docs" / "install-guide.md").read_text()
RESTORE = (ROOT / "docs" / "restore.md").read_text()


def test_every_setting_the_guide_names_is_a_real_one():
    documented = (ROOT / ".env.example").read_text() + (ROOT / "docker-compose.yml").read_text()
    named = set(re.findall(r"\b((?:DASHBOARD|DICOM|RESTIC|ORTHANC|MINIO|TLS|BACKUP)_[A-Z_]+)\b", GUIDE))
    assert {"DICOM_MODALITIES", "DICOM_AET", "DASHBOARD_TZ", "TLS_HOSTNAMES", "DASHBOARD_TECHNICIAN_CONTACT"} <= named
    assert not sorted(n for n in named if not re.search(rf"\b{n}\b", documented))


def test_the_ports_and_the_ae_title_are_the_installs_defaults():
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    published = " ".join(services["proxy"]["ports"] + services["orthanc"]["ports"] + services["store"]["ports"])
    for variable, port in (
        ("DICOM_PORT", 4242),
        ("DASHBOARD_PORT", 8443),
        ("ORTHANC_HTTPS_PORT", 8042),
        ("DASHBOARD_HTTP_PORT", 8080),
        ("MINIO_PORT", 9000),
    ):
        assert f"${{{variable}:-{port}}}" in published, variable
        # "4242/tcp (`DICOM_PORT`)" in the firewall table, "(`MINIO_PORT`, 9000)" in its text
        assert f"{port}/tcp (`{variable}`)" in GUIDE or f"`{variable}`, {port}" in GUIDE, variable
    assert services["orthanc"]["environment"]["DICOM_AET"] == "${DICOM_AET:-PACS}"
    assert '| AE title of the destination ("called AE") | `PACS` (`DICOM_AET`) |' in GUIDE


def test_every_script_the_guide_runs_exists():
    both = GUIDE + RESTORE
    scripts = set(re.findall(r"docker compose exec (?:-T )?orthanc ([a-z-]+)", both)) | set(
        re.findall(r"scripts/([a-z-]+)", both)
    )
    assert {"init", "recovery-sheet", "verify-backups", "snapshot-now", "quarantine", "restore-study"} <= scripts
    assert all(os.access(ROOT / "scripts" / name, os.X_OK) for name in scripts)


def test_the_readme_links_the_guide():
    assert "(docs/install-guide.md)" in (ROOT / "README.md").read_text()
