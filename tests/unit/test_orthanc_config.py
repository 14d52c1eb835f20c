"""Orthanc's rendered configuration: the modality list (DICOM_MODALITIES) and the native stack's
network exposure (STACK_BIND), for both the container's entry point and `make run`."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.common import ROOT

sys.path.insert(0, str(ROOT / "orthanc"))
import entrypoint

import devstack


def render(**kw) -> dict:
    args = {
        "storage": Path("/s"),
        "index": Path("/i"),
        "http_port": 8042,
        "dicom_port": 4242,
        "aet": "PACS",
        "users": {"u": "p"},
        "entry_script": Path("/e.py"),
        **kw,
    }
    return entrypoint.render(json.loads(entrypoint.TEMPLATE.read_text()), **args)


# --- DICOM_MODALITIES ------------------------------------------------------------------------------
def test_modalities_are_parsed_into_orthancs_list():
    got = entrypoint.parse_modalities(" CR1@192.168.1.20:104, US2@192.168.1.21 ,DX 3@[fd00::7]:11112,")
    assert [(m["AET"], m["Host"], m["Port"]) for m in got.values()] == [
        ("CR1", "192.168.1.20", 104),
        ("US2", "192.168.1.21", 104),
        ("DX 3", "fd00::7", 11112),
    ]
    assert list(got) == ["cr1", "us2", "dx-3"]
    # A listed device may store (and echo, and ask for storage commitment); it may not query or retrieve.
    assert all(
        m["AllowStore"] and m["AllowEcho"] and not (m["AllowFind"] or m["AllowGet"] or m["AllowMove"])
        for m in got.values()
    )
    assert entrypoint.parse_modalities("") == {} and entrypoint.parse_modalities(" , ") == {}


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ("CR1", "'CR1' is not AET@address[:port]"),
        ("@192.168.1.20", "is not AET@address[:port]"),
        ("CR1@xray.clinic.local", "'xray.clinic.local' is not an IP address"),
        ("CR1@192.168.1.300", "is not an IP address"),
        ("CR1@192.168.1.20:0", "'0' is not a port number"),
        ("CR1@192.168.1.20:http", "'http' is not a port number"),
        ("CR1@192.168.1.20:", "the port after ':' is missing"),
        ("A_TITLE_LONGER_THAN_16@192.168.1.20", "1 to 16 printable ASCII"),
        ("BACK\\SLASH@192.168.1.20", "without backslash"),
        ("CR1@192.168.1.20,cr1@192.168.1.21", "appears twice"),
        ("CR1@[fd00::7]104", "[address]:port"),
    ],
)
def test_a_bad_modality_entry_names_the_variable_and_the_entry(raw, says):
    with pytest.raises(entrypoint.ConfigError) as exc:
        entrypoint.parse_modalities(raw)
    text = str(exc.value)
    assert text.startswith("DICOM_MODALITIES") and says in text
    bad = raw.split(",")[-1]
    assert repr(bad) in text or "twice" in text


def test_render_with_a_list_refuses_unknown_devices_and_checks_addresses():
    config = render(modalities="CR1@192.168.1.20:104")
    assert config["DicomAlwaysAllowStore"] is False and config["DicomCheckModalityHost"] is True
    assert config["DicomModalities"]["cr1"]["Host"] == "192.168.1.20"


def test_render_without_a_list_keeps_todays_behaviour():
    config = render()
    assert config["DicomAlwaysAllowStore"] is True and "DicomModalities" not in config
    assert config.get("DicomCheckModalityHost") is not True


def test_container_entry_point_refuses_a_bad_list_naming_it(tmp_path):
    env = {
        "PATH": os.environ["PATH"],
        "ORTHANC_USERNAME": "clinic",
        "ORTHANC_PASSWORD": "x" * 20,
        "DICOM_MODALITIES": "CR1@192.168.1.20,US2@scanner.local",
    }
    done = subprocess.run(
        [sys.executable, str(ROOT / "orthanc" / "entrypoint.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 1
    assert "DICOM_MODALITIES: 'US2@scanner.local': 'scanner.local' is not an IP address" in done.stderr
    assert "x" * 20 not in done.stderr + done.stdout


# --- rest-server's login file (Compose's offsite-auth one-shot, `make run`) --------------------------
def test_htpasswd_file_is_bcrypt_owner_only_and_verifies(tmp_path):
    path = tmp_path / "auth" / ".htpasswd"
    env = {"PATH": os.environ["PATH"], "RESTIC_REST_USERNAME": "pacs-offsite", "RESTIC_REST_PASSWORD": "s3cret-Pw"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "orthanc" / "entrypoint.py"), "--rest-server-htpasswd", str(path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "s3cret-Pw" not in done.stdout + done.stderr
    user, digest = path.read_text().strip().split(":", 1)
    assert user == "pacs-offsite" and digest[:4] in ("$2a$", "$2b$", "$2y$")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for password, ok in (("s3cret-Pw", 0), ("wrong", 3)):
        check = subprocess.run(
            ["htpasswd", "-vi", str(path), "pacs-offsite"],
            input=password,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert check.returncode == ok, check.stderr


def test_htpasswd_refuses_missing_credentials_naming_them(tmp_path):
    env = {"PATH": os.environ["PATH"], "RESTIC_REST_USERNAME": "pacs-offsite"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "orthanc" / "entrypoint.py"), "--rest-server-htpasswd", str(tmp_path / "h")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1 and "RESTIC_REST_PASSWORD is empty" in done.stderr and "scripts/init" in done.stderr
    assert not (tmp_path / "h").exists()


# --- `make run`: STACK_BIND and .env -----------------------------------------------------------------
def load_stack(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, dotenv: str = "", **env: str):
    """dev/stack.py imported afresh with this environment and .env (it reads them when imported)."""
    for name in ("STACK_BIND", "DICOM_MODALITIES"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / ".env").write_text(dotenv)
    monkeypatch.setenv("STACK_ENV_FILE", str(tmp_path / ".env"))
    monkeypatch.setenv("STACK_STATE_DIR", str(tmp_path / "state"))
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    spec = importlib.util.spec_from_file_location("stack_under_test", ROOT / "dev" / "stack.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


STACK_ENV = {"ORTHANC_USERNAME": "clinic", "ORTHANC_PASSWORD": "pw", "DICOM_AET": "PACS"}


def test_native_stack_is_local_only_by_default(monkeypatch, tmp_path):
    stack = load_stack(monkeypatch, tmp_path)
    settings = stack.orthanc_settings(STACK_ENV)
    config = devstack.render_orthanc_config(settings)
    assert stack.BIND == "127.0.0.1" and config["RemoteAccessAllowed"] is False
    assert config["AuthenticationEnabled"] is True  # local clients still need the password
    # The written file is what Orthanc reads.
    written = json.loads(devstack.write_orthanc_config(settings).read_text())
    assert written["RemoteAccessAllowed"] is False
    # The test fixtures' Orthancs are local-only too.
    fixture = devstack.OrthancSettings(work_dir=tmp_path / "o", http_port=1, dicom_port=2, username="u", password="p")
    assert devstack.render_orthanc_config(fixture)["RemoteAccessAllowed"] is False


def test_stack_bind_in_dotenv_opens_it_and_the_environment_wins(monkeypatch, tmp_path):
    stack = load_stack(monkeypatch, tmp_path, "# comment\nSTACK_BIND='0.0.0.0'\n")
    assert stack.BIND == "0.0.0.0"  # noqa: S104 - the setting under test
    assert devstack.render_orthanc_config(stack.orthanc_settings(STACK_ENV))["RemoteAccessAllowed"] is True
    stack = load_stack(monkeypatch, tmp_path, "STACK_BIND=0.0.0.0\n", STACK_BIND="127.0.0.1")
    assert devstack.render_orthanc_config(stack.orthanc_settings(STACK_ENV))["RemoteAccessAllowed"] is False


def test_a_bad_stack_bind_names_the_variable(monkeypatch, tmp_path):
    with pytest.raises(SystemExit) as exc:
        load_stack(monkeypatch, tmp_path, STACK_BIND="192.168.1.5")
    assert "STACK_BIND='192.168.1.5'" in str(exc.value)


def test_container_keeps_remote_access_on():
    # In a container every client, the host's own included, comes through Docker's network.
    assert render()["RemoteAccessAllowed"] is True


def test_make_run_passes_dicom_modalities_from_dotenv(monkeypatch, tmp_path):
    stack = load_stack(monkeypatch, tmp_path, "DICOM_MODALITIES=CR1@192.168.1.20:104\n")
    config = devstack.render_orthanc_config(stack.orthanc_settings(STACK_ENV))
    assert config["DicomModalities"]["cr1"]["AET"] == "CR1" and config["DicomAlwaysAllowStore"] is False
    stack = load_stack(monkeypatch, tmp_path, DICOM_MODALITIES="CR1@xray.local")
    with pytest.raises(devstack.StackError, match=re.escape("DICOM_MODALITIES: 'CR1@xray.local'")):
        devstack.render_orthanc_config(stack.orthanc_settings(STACK_ENV))


def test_stack_env_gives_the_scripts_the_offsite_login(monkeypatch, tmp_path):
    stack = load_stack(monkeypatch, tmp_path)
    env = stack.stack_env()
    assert env["RESTIC_REST_USERNAME"].startswith("pacs-") and len(env["RESTIC_REST_PASSWORD"]) >= 24
    assert env["RESTIC_REPOSITORY"].startswith("rest:http://127.0.0.1:")
    path = stack.write_env(env)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert f"RESTIC_REST_PASSWORD={env['RESTIC_REST_PASSWORD']}" in path.read_text()
    secrets_dir = tmp_path / "state" / "secrets"
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in secrets_dir.iterdir())
    # The plugin gets the password as a file, not in Orthanc's environment.
    backup_env = stack.orthanc_backup_env(env)
    assert backup_env["RESTIC_REST_USERNAME"] == env["RESTIC_REST_USERNAME"]
    assert "RESTIC_REST_PASSWORD" not in backup_env
    assert Path(backup_env["RESTIC_REST_PASSWORD_FILE"]).read_text().strip() == env["RESTIC_REST_PASSWORD"]


def test_make_run_passes_the_plugins_settings_from_dotenv(monkeypatch, tmp_path):
    dotenv = (
        "BACKUP_EXTRA_TARGETS=usb\nUSB_RESTIC_REPOSITORY=/mnt/backup-drive/pacs\nUSB_RESTIC_PASSWORD_FILE=/pw\n"
        "CLOUD_PACS_URL=https://cloud.example/dicom-web\nRESTIC_SNAPSHOT_INTERVAL_MINUTES=30\n"
        "MINIO_ROOT_PASSWORD=root-secret\nDASHBOARD_TZ=Europe/Berlin\nOTHER_RESTIC_REPOSITORY=/not/a/target\n"
    )
    stack = load_stack(monkeypatch, tmp_path, dotenv)
    env = {
        "MINIO_ENDPOINT": "127.0.0.1:9000",
        "MINIO_SECURE": "false",
        "MINIO_BUCKET": "b",
        "RESTIC_REPOSITORY": "rest:http://127.0.0.1:8000/clinic",
        "RESTIC_PASSWORD_FILE": "/p",
        "RESTIC_REST_USERNAME": "clinic",
    }
    plugin = stack.orthanc_backup_env(env)
    assert plugin["BACKUP_EXTRA_TARGETS"] == "usb" and plugin["USB_RESTIC_REPOSITORY"] == "/mnt/backup-drive/pacs"
    assert plugin["CLOUD_PACS_URL"] == "https://cloud.example/dicom-web"
    assert plugin["RESTIC_SNAPSHOT_INTERVAL_MINUTES"] == "30"
    assert plugin["RESTIC_REPOSITORY"] == env["RESTIC_REPOSITORY"]
    assert "MINIO_ROOT_PASSWORD" not in plugin and "OTHER_RESTIC_REPOSITORY" not in plugin
    assert stack.dashboard_settings() == {"DASHBOARD_TZ": "Europe/Berlin"}
    own = load_stack(
        monkeypatch, tmp_path, "RESTIC_REPOSITORY=rest:https://offsite.example/clinic\nRESTIC_PASSWORD=repo-pw\n"
    ).orthanc_backup_env(env)
    assert own["RESTIC_REPOSITORY"] == "rest:https://offsite.example/clinic" and own["RESTIC_PASSWORD"] == "repo-pw"
    assert "RESTIC_PASSWORD_FILE" not in own and "RESTIC_REST_USERNAME" not in own


def test_postgresql_index_moves_only_the_index_and_names_missing_settings():
    assert entrypoint.postgresql_index({}) is None
    pg = entrypoint.postgresql_index({"ORTHANC_POSTGRESQL_HOST": "postgres", "ORTHANC_POSTGRESQL_PASSWORD": "s3cret"})
    config = render(postgresql=pg)
    assert config["Plugins"][-1].endswith("libOrthancPostgreSQLIndex.so")
    assert config["PostgreSQL"]["EnableIndex"] is True and config["PostgreSQL"]["EnableStorage"] is False
    assert config["PostgreSQL"]["Host"] == "postgres" and config["PostgreSQL"]["Port"] == 5432
    assert "PostgreSQL" not in render() and not any("PostgreSQL" in p for p in render()["Plugins"])
    with pytest.raises(entrypoint.ConfigError, match="ORTHANC_POSTGRESQL_PASSWORD"):
        entrypoint.postgresql_index({"ORTHANC_POSTGRESQL_HOST": "postgres"})
    with pytest.raises(entrypoint.ConfigError, match="ORTHANC_POSTGRESQL_PORT"):
        entrypoint.postgresql_index(
            {"ORTHANC_POSTGRESQL_HOST": "pg", "ORTHANC_POSTGRESQL_PASSWORD": "x", "ORTHANC_POSTGRESQL_PORT": "5x"}
        )


# --- issue 28 item 5: Orthanc's own metrics --------------------------------------------------------------
def test_orthancs_own_metrics_are_on_for_the_container_and_make_run(tmp_path):
    """/tools/metrics-prometheus (Orthanc 1.5.4 and later, so 1.10.1 and 1.12.7): on in both configurations;
    tests/integration/test_metrics.py scrapes it."""
    assert render()["MetricsEnabled"] is True
    native = devstack.OrthancSettings(tmp_path, 8042, 4242, "u", "p")
    assert devstack.render_orthanc_config(native)["MetricsEnabled"] is True
