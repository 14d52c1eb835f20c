"""scripts/init in a copy of the project (issue 29 items 2 and 4): the secrets it writes stay out of git,
the recovery sheet never lands in a git work tree, a shell can load the .env it writes, and what it says
names the ports the install really uses.

A stand-in `docker` answers the `docker compose run ... orthanc recovery-sheet` that init runs, so no
engine or image is needed; the sheet itself is checked through scripts/recovery-sheet below.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.common import ROOT

FAKE_DOCKER = """#!/bin/sh
# Stand-in for `docker compose --env-file ... run --rm --no-deps -T orthanc recovery-sheet ...`.
echo "FAKE RECOVERY SHEET: $*"
"""
SHEET_NAME = "pacs-backup-recovery-sheet.txt"
GUIDE = (ROOT / "docs" / "install-guide.md").read_text()


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


class Project:
    """A copy of the files init works with, in a folder of its own, with a stand-in docker and a home."""

    def __init__(self, base: Path, *, git_tree: bool) -> None:
        self.dir = base / "pacs-backup"
        (self.dir / "scripts").mkdir(parents=True)
        shutil.copy2(ROOT / "scripts" / "init", self.dir / "scripts" / "init")
        for name in ("docker-compose.yml", ".env.example", ".gitignore", ".dockerignore"):
            shutil.copy2(ROOT / name, self.dir / name)
        self.home = base / "home"
        self.home.mkdir()
        bin_dir = base / "bin"
        bin_dir.mkdir()
        (bin_dir / "docker").write_text(FAKE_DOCKER)
        (bin_dir / "docker").chmod(0o755)
        self.env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "HOME": str(self.home), "LC_ALL": "C.UTF-8"}
        if git_tree:
            git(self.dir, "init", "-q")
            git(self.dir, "add", "-A")
            git(self.dir, "commit", "-qm", "release")
        shutil.copy2(self.dir / ".env.example", self.dir / ".env")

    @property
    def env_file(self) -> Path:
        return self.dir / ".env"

    def set(self, **values: str) -> None:
        """Write NAME=value lines as given (already quoted, or not, as an installer typed them)."""
        lines = [ln for ln in self.env_file.read_text().splitlines() if ln.split("=", 1)[0] not in values]
        self.env_file.write_text("\n".join(lines + [f"{k}={v}" for k, v in values.items()]) + "\n")

    def init(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.dir / "scripts" / "init"), "--clinic", "Happy Paws Vet", *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )

    def sourced(self, *names: str) -> subprocess.CompletedProcess[str]:
        """What a technician's shell gets from `set -a; . ./.env; set +a` (one value a line)."""
        show = "".join(f'printf "%s\\n" "${n}";' for n in names)
        return subprocess.run(
            ["bash", "-c", f"set -a; . ./.env; set +a; {show}"],
            cwd=self.dir,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )


@pytest.fixture
def tree(tmp_path: Path) -> Project:
    return Project(tmp_path, git_tree=True)


def test_in_a_git_work_tree_the_sheet_goes_outside_and_git_status_stays_clean(tree):
    done = tree.init()
    assert done.returncode == 0, done.stderr
    assert not (tree.dir / "recovery-sheet.txt").exists()
    assert not list(tree.dir.rglob("*sheet*"))
    sheet = tree.home / SHEET_NAME
    assert sheet.read_text().startswith("FAKE RECOVERY SHEET")
    assert oct(sheet.stat().st_mode & 0o777) == "0o600"
    # It says where the sheet went, and that it must be printed and then deleted.
    said = done.stdout
    assert str(sheet) in said and "print" in said and "delete" in said and f"rm {sheet}" in said
    assert "git work tree" in said
    # .env and the sheet are ignored: nothing to commit, nothing a `git add -A` would pick up.
    assert git(tree.dir, "status", "--porcelain", "--untracked-files=all") == ""
    assert oct(tree.env_file.stat().st_mode & 0o777) == "0o600"


def test_a_sheet_path_inside_a_git_work_tree_is_refused(tree):
    inside = tree.dir / "docs" / "sheet.txt"
    (tree.dir / "docs").mkdir()
    before = tree.env_file.read_text()
    refused = tree.init("--sheet", str(inside))
    assert refused.returncode == 2 and not inside.exists()
    assert "git work tree" in refused.stderr and "--sheet PATH outside" in refused.stderr
    # Refused before anything is written: .env is as it was.
    assert refused.stdout == "" and tree.env_file.read_text() == before
    outside = tree.home / "safe" / "sheet.txt"
    outside.parent.mkdir()
    done = tree.init("--sheet", str(outside))
    assert done.returncode == 0, done.stderr
    assert outside.read_text().startswith("FAKE RECOVERY SHEET") and "generated ORTHANC_PASSWORD" in done.stdout
    assert str(outside) in done.stdout and "delete" in done.stdout
    assert git(tree.dir, "status", "--porcelain", "--untracked-files=all") == ""


def test_the_default_place_in_home_is_refused_when_home_is_a_git_work_tree_too(tree):
    git(tree.home, "init", "-q")  # e.g. a home folder kept in git (dotfiles)
    refused = tree.init()
    assert refused.returncode == 2 and "git work tree" in refused.stderr
    assert not (tree.home / SHEET_NAME).exists()


def test_outside_a_git_work_tree_the_sheet_is_next_to_env_as_before(tmp_path):
    plain = Project(tmp_path, git_tree=False)
    done = plain.init()
    assert done.returncode == 0, done.stderr
    sheet = plain.dir / "recovery-sheet.txt"
    assert sheet.read_text().startswith("FAKE RECOVERY SHEET") and str(sheet) in done.stdout
    assert "delete" in done.stdout and not (plain.home / SHEET_NAME).exists()


def test_gitignore_and_dockerignore_keep_the_secrets_out():
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert {"/.env", "recovery-sheet.txt*"} <= set(ignored)
    context = (ROOT / ".dockerignore").read_text().splitlines()
    assert {".env", "targets.env", "recovery-sheet.txt*"} <= set(context)
    # .env.example stays tracked and in reach of the images' build
    assert ".env.example" not in ignored and ".env*" not in ignored and ".env*" not in context


def guide_example() -> dict[str, str]:
    """The settings section 3 of the install guide tells the installer to write into .env."""
    section = GUIDE[GUIDE.index("## 3. Settings") : GUIDE.index("## 4.")]
    block = section[section.index("```sh") + 5 : section.index("```", section.index("```sh") + 5)]
    return dict(ln.split("=", 1) for ln in block.splitlines() if re.match(r"[A-Z_]+=", ln))


def test_the_env_that_init_writes_loads_in_a_shell_with_the_guides_example(tree):
    example = guide_example()
    assert "DASHBOARD_TECHNICIAN_CONTACT" in example and "DICOM_MODALITIES" in example
    tree.set(**example)
    done = tree.init()
    assert done.returncode == 0, done.stderr
    text = tree.env_file.read_text()
    # every value init wrote is quoted, so a shell reads what Compose reads
    generated = re.findall(r"^generated ([A-Z_]+)$", done.stdout, re.M)
    assert "ORTHANC_PASSWORD" in generated and "TLS_HOSTNAMES" in generated
    for name in generated:
        assert re.search(rf"^{name}='[^']+'$", text, re.M), name
    loaded = tree.sourced("DASHBOARD_TECHNICIAN_CONTACT", "ORTHANC_PASSWORD", "TLS_HOSTNAMES", "DICOM_MODALITIES")
    assert loaded.returncode == 0 and loaded.stderr == "", loaded.stderr
    contact, password, hostnames, modalities = loaded.stdout.splitlines()
    assert contact == "Sam Tech, 0171 555 0101, sam@example.com"
    assert modalities == "CR1@192.168.1.20:104"
    assert f"ORTHANC_PASSWORD='{password}'" in text and len(password) == 32
    assert f"TLS_HOSTNAMES='{hostnames}'" in text
    assert "cannot read" not in done.stdout + done.stderr  # nothing to warn about


def test_a_value_a_shell_cannot_read_is_named_and_nothing_is_rewritten(tree):
    tree.set(DASHBOARD_TECHNICIAN_CONTACT="Sam Tech, 0171 555 0101", ORTHANC_PASSWORD="''")
    done = tree.init()
    assert done.returncode == 0, done.stderr
    said = done.stdout + done.stderr
    assert "DASHBOARD_TECHNICIAN_CONTACT" in said and "DASHBOARD_TECHNICIAN_CONTACT='Sam Tech, 0171 555 0101'" in said
    assert "DASHBOARD_TECHNICIAN_CONTACT=Sam Tech, 0171 555 0101\n" in tree.env_file.read_text()
    # a quoted empty value is empty: init fills it
    assert "generated ORTHANC_PASSWORD" in done.stdout
    assert re.search(r"^ORTHANC_PASSWORD='[A-Za-z0-9]{32}'$", tree.env_file.read_text(), re.M)


def test_a_rerun_keeps_every_value_and_adds_nothing(tree):
    assert tree.init().returncode == 0
    before = tree.env_file.read_text()
    again = tree.init()
    assert again.returncode == 0 and "generated" not in again.stdout
    assert tree.env_file.read_text() == before


@pytest.mark.parametrize("written", ["11112", "'11112'", '"11112"', "11112   # moved: 4242 is taken"])
def test_the_messages_name_the_configured_dicom_port(tree, written):
    tree.set(DICOM_PORT=written, DICOM_MODALITIES="")
    done = tree.init()
    assert done.returncode == 0, done.stderr
    assert "port 11112" in done.stdout and "4242" not in done.stdout + done.stderr


def test_the_default_dicom_port_when_env_leaves_it_out(tree):
    tree.env_file.write_text("\n".join(ln for ln in tree.env_file.read_text().splitlines() if "DICOM_PORT=" not in ln))
    done = tree.init()
    assert done.returncode == 0, done.stderr
    assert "port 4242" in done.stdout


def test_help_names_the_sheet_option_and_where_the_sheet_goes():
    done = subprocess.run([str(ROOT / "scripts" / "init"), "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0
    assert "--sheet PATH" in done.stdout and "git work tree" in done.stdout and SHEET_NAME in done.stdout


def test_the_recovery_sheet_names_the_configured_dashboard_port():
    env = {"PATH": os.environ["PATH"], "RESTIC_REPOSITORY": "rest:https://b.example:8000/c", "RESTIC_PASSWORD": "p"}

    def sheet(**more: str) -> str:
        return subprocess.run(
            [str(ROOT / "scripts" / "recovery-sheet"), "--compose"],
            env={**env, **more},
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    assert "https://<new box>:9443" in sheet(DASHBOARD_PORT="9443") and "8443" not in sheet(DASHBOARD_PORT="9443")
    assert "https://<new box>:8443" in sheet()
    # Compose hands the configured port to the container that writes the sheet (scripts/init, exec).
    orthanc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["orthanc"]
    assert orthanc["environment"]["DASHBOARD_PORT"] == "${DASHBOARD_PORT:-8443}"
