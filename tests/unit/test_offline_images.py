"""The offline image build as the README documents it (issue 29 item 3), checked without building: one
command for the appliance's images, one for the optional ones, neither running the developer setup, and
the compose plugin installed as a file that survives moving the clone. The stack tests run the build
itself and check that every run lists the tags (tests/support/compose.py)."""

from __future__ import annotations

import re
import subprocess

from tests.support.common import ROOT

SETUP = ROOT / "dev" / "docker-setup"


def recipe(target: str) -> tuple[str, list[str]]:
    """A Makefile target's prerequisites and recipe lines."""
    text = (ROOT / "Makefile").read_text()
    match = re.search(rf"^{re.escape(target)}:([^#\n]*)(?:##[^\n]*)?\n((?:\t[^\n]*\n)*)", text, re.M)
    assert match, target
    return match.group(1).strip(), [ln.strip().lstrip("@") for ln in match.group(2).splitlines()]


def test_make_images_builds_the_appliance_and_images_optional_the_rest_without_the_developer_setup():
    assert recipe("images") == ("", ["dev/docker-setup"])
    assert recipe("images-optional") == ("", ["dev/docker-setup --optional"])
    help_text = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "make images " in help_text and "make images-optional" in help_text


def test_docker_setup_needs_nothing_first_and_builds_only_what_the_images_hold():
    text = SETUP.read_text()
    # the Go programs it needs, built through dev/setup's go step, and the viewer's files the dashboard image holds
    # (dev/setup's viewer step into build/viewer); no apt list, venv, npm tools of the developer
    assert re.findall(r'"\$ROOT/dev/setup" ([a-z]+ \S+)', text) == ['go "$name"', 'viewer "$ROOT/build/viewer"']
    assert ".venv" not in text and "npm" not in text and "chromium" not in text.lower()
    assert "side_loaded restic pacs-backup/restic:0.19.1 minio pacs-backup/minio:source" in text
    assert "side_loaded rest-server pacs-backup/rest-server:0.14.0" in text


def test_the_compose_plugin_is_installed_as_a_file_not_a_link_into_the_clone():
    text = SETUP.read_text()
    assert "ln -s" not in text
    assert "/usr/local/lib/docker/cli-plugins" in text and "install -m 0755" in text


def test_help_names_both_sets_of_tags():
    done = subprocess.run([str(SETUP), "--help"], capture_output=True, text=True, check=False)
    assert done.returncode == 0
    for tag in ("pacs-backup/orthanc:0.1.0", "pacs-backup/minio:source", "pacs-backup/rest-server:0.14.0"):
        assert tag in done.stdout
    assert "--optional" in done.stdout and "--all" in done.stdout
    bad = subprocess.run([str(SETUP), "--bogus"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2 and "usage" in bad.stderr


def test_env_example_loads_in_a_shell():
    done = subprocess.run(
        ["bash", "-c", "set -a; . ./.env.example; set +a"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
