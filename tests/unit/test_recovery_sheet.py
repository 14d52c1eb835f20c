"""The recovery sheet gives a technician what rebuilds the PACS on a new box: the offsite repository, its
password and the offsite server's own login (without them nothing can be read back), and the steps of the
kind of install the clinic has - Docker Compose or a native Debian install."""

from __future__ import annotations

import os
import re
import subprocess

import yaml

from tests.support.common import ROOT

ENV = {
    "PATH": os.environ["PATH"],
    "RESTIC_REPOSITORY": "rest:https://backup.example:8000/clinic",
    "RESTIC_PASSWORD": "repository-password",
    "RESTIC_REST_USERNAME": "clinic",
    "RESTIC_REST_PASSWORD": "server-password",
}


def sheet(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / "scripts" / "recovery-sheet"), *args],
        env={**ENV, **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_sheet_has_the_offsite_servers_login():
    native = sheet()
    assert native.returncode == 0, native.stderr
    assert "RESTIC_REST_USERNAME='clinic'" in native.stdout
    assert "RESTIC_REST_PASSWORD='server-password'" in native.stdout
    kept = sheet("--without-password")
    assert kept.returncode == 0, kept.stderr
    assert "server-password" not in kept.stdout and "repository-password" not in kept.stdout


def test_a_native_install_gets_the_debian_steps():
    text = sheet().stdout
    assert "scripts/disaster-recovery --from offsite" in text and "export RESTIC_PASSWORD_FILE" in text
    assert "docker compose" not in text


def test_a_compose_install_gets_the_docker_steps_on_a_new_box_in_order():
    done = sheet("--compose", "--clinic", "Happy Paws Vet")
    assert done.returncode == 0, done.stderr
    text = done.stdout
    steps = [
        "docker compose version",
        "cp .env.example .env",
        "RESTIC_REPOSITORY=rest:https://backup.example:8000/clinic",
        "RESTIC_PASSWORD=<the password of item 2>",
        "RESTIC_REST_USERNAME=<from item 2>",
        "RESTIC_REST_PASSWORD=<from item 2>",
        "BACKUP_FIRST_RUN_DELAY_SECONDS=86400",
        'scripts/init --clinic "Happy Paws Vet"',
        "docker compose up -d --wait",
        "docker compose exec orthanc disaster-recovery --from offsite",
        "echo $?",
        "docker compose exec orthanc verify-backups",
        "https://<new box>:8443",
    ]
    positions = [text.find(step) for step in steps]
    assert -1 not in positions, [s for s, p in zip(steps, positions, strict=True) if p < 0]
    assert positions == sorted(positions)
    # what to keep safe besides this sheet
    for kept in (".env ", "targets.env", "docker-compose.override.yml", "certs/tls.key"):
        assert kept in text
    assert "export " not in text and "/root/restic-password" not in text


def test_the_compose_steps_name_where_each_secret_is_never_the_secret():
    text = sheet("--compose").stdout
    steps = text[text.index("4. On the new box") :]
    assert "repository-password" not in steps and "server-password" not in steps and "'clinic'" not in steps
    # the secrets themselves appear once, in items 1 and 2, where the owner can keep them off the sheet
    assert text.count("repository-password") == 1 and text.count("RESTIC_REST_PASSWORD=server-password") == 1
    kept = sheet("--compose", "--without-password").stdout
    assert "repository-password" not in kept and "server-password" not in kept
    assert "(kept separately" in kept


def test_the_install_kind_comes_from_the_compose_containers_environment_unless_told():
    assert "docker compose exec orthanc" in sheet(PACS_BACKUP_INSTALL="compose").stdout
    assert "export RESTIC_PASSWORD_FILE" in sheet("--native", PACS_BACKUP_INSTALL="compose").stdout
    assert "docker compose exec orthanc" in sheet("--compose", PACS_BACKUP_INSTALL="native").stdout


def test_compose_sets_the_install_kind_where_scripts_init_writes_the_sheet():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert compose["services"]["orthanc"]["environment"]["PACS_BACKUP_INSTALL"] == "compose"
    assert "run --rm --no-deps -T orthanc" in (ROOT / "scripts" / "init").read_text()


def test_every_command_the_compose_sheet_runs_in_the_container_exists_in_the_image():
    text = sheet("--compose").stdout
    commands = set(re.findall(r"docker compose exec orthanc ([a-z-]+)", text))
    assert commands >= {"disaster-recovery", "verify-backups", "snapshot-now", "restore-study"}
    # orthanc/Dockerfile copies scripts/ to /opt/pacs-backup/scripts, which is on the image's PATH
    dockerfile = (ROOT / "orthanc" / "Dockerfile").read_text()
    assert "COPY scripts/ /opt/pacs-backup/scripts/" in dockerfile and "PATH=/opt/pacs-backup/scripts:" in dockerfile
    for name in commands:
        assert os.access(ROOT / "scripts" / name, os.X_OK), name


def test_an_unknown_install_kind_or_both_options_is_one_sentence_and_exit_2():
    bad = sheet(PACS_BACKUP_INSTALL="docker")
    assert bad.returncode == 2
    assert bad.stderr.strip() == "error: PACS_BACKUP_INSTALL='docker' is not a kind of install; use compose or native."
    both = sheet("--compose", "--native")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr and "Traceback" not in both.stderr


def test_help_names_both_kinds():
    done = sheet("--help")
    assert done.returncode == 0 and "--compose" in done.stdout and "--native" in done.stdout


def test_a_repository_on_the_same_box_is_said_in_bold_under_item_1():
    """Issue 29: the offsite-demo's rest-server (a container on the same NAS) is lost with the box."""
    for kind in ("--compose", "--native"):
        done = sheet(kind, RESTIC_REPOSITORY="rest:http://rest-server:8000/clinic")
        assert done.returncode == 0, done.stderr
        text = done.stdout
        item1, item2 = text.index("1. Offsite repository"), text.index("2. Repository password")
        warning = text[item1:item2]
        assert "** NOT OFFSITE: THIS REPOSITORY IS ON THE SAME BOX AS THE PACS." in warning
        assert "rest-server is a service of this appliance's own Compose stack" in " ".join(
            line.strip(" *") for line in warning.splitlines()
        )
        assert max(len(line) for line in warning.splitlines()) <= 74  # as wide as the sheet's own lines
    loopback = sheet(RESTIC_REPOSITORY="rest:http://127.0.0.1:8000/clinic").stdout
    assert "NOT OFFSITE" in loopback and "loopback" in loopback
    # A folder on a disk the box always has; a setting for tests and trials never hides it on paper.
    on_disk = sheet(RESTIC_REPOSITORY="/srv/restic", RESTIC_DRIVE="false", BACKUP_TREAT_AS_OFFSITE="offsite").stdout
    assert "NOT OFFSITE" in on_disk and "/srv/restic is a folder on a disk of this box" in on_disk
    assert "NOT OFFSITE" not in sheet(RESTIC_REPOSITORY="/srv/restic").stdout  # a backup drive: taken home
    assert "NOT OFFSITE" not in sheet().stdout  # backup.example: another machine
