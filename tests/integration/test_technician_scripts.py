"""The technician scripts as a technician runs them, against a real Orthanc + plugin, MinIO, restic and
rest-server: what they print while a job waits and runs, their exit codes, and their --help."""

from __future__ import annotations

import os
import re

import pytest

from tests.support.pacs import SCRIPTS, fill, orthanc_env, script

SCRIPT_NAMES = sorted(p.name for p in SCRIPTS.iterdir() if p.is_file())


def options_without_help(help_text: str) -> list[str]:
    """Options listed in a --help's "options:" (or "positional arguments:") part that have no help text."""
    missing, entry, described = [], None, True
    for line in help_text.splitlines():
        if re.match(r"^\S", line):  # a section heading ends the previous entry
            if entry and not described:
                missing.append(entry)
            entry, described = None, True
            continue
        m = re.match(r"^  (-\S.*?|[a-z]\S*)(?:  +(\S.*))?$", line)
        if m and not line.startswith("    "):
            if entry and not described:
                missing.append(entry)
            entry, described = m[1], bool(m[2])
        elif entry and line.strip():
            described = True  # argparse puts the help on the next line after a long option
    if entry and not described:
        missing.append(entry)
    return missing


def test_ls_scripts_shows_only_scripts_and_each_helps_with_every_option_and_the_exit_codes():
    helpers = [p.name for p in SCRIPTS.iterdir() if p.name.startswith(("_", ".")) or p.suffix]
    assert helpers == [], f"helpers among the scripts: {helpers}"
    assert [p.name for p in SCRIPTS.iterdir() if p.is_dir()] == ["lib"]
    assert {"restore-study", "snapshot-now", "verify-backups", "disaster-recovery", "init"} <= set(SCRIPT_NAMES)
    for name in SCRIPT_NAMES:
        assert os.access(SCRIPTS / name, os.X_OK), name
        done = script(name, "--help", env={})
        assert done.returncode == 0 and done.stderr == "", f"{name}: {done.stderr}"
        text = done.stdout
        assert text.startswith(f"usage: {name} "), f"{name} --help starts with: {text[:80]!r}"
        assert "\noptions:\n" in text and "\nexit codes:\n  0  " in text and "  2  bad arguments" in text, name
        assert options_without_help(text) == [], f"{name}: options without help: {options_without_help(text)}"
        assert not re.search(r"^(set |exec |cd |\S+=)", text, re.M), f"{name} --help shows a shell line"


def test_an_unknown_study_is_not_found_with_exit_4_from_every_copy(orthanc, minio_server, bucket, offsite_env):
    fill(orthanc, studies=1, per_study=2)
    orthanc.wait_replicated(2)
    assert orthanc.run_job("snapshots")[0]["state"] == "ok"
    env = {**orthanc_env(orthanc), **minio_server.env(bucket), **offsite_env}
    for source in ("minio", "offsite"):
        done = script("restore-study", "9.9.9.9", "--from", source, env=env)
        assert done.returncode == 4, done.stdout + done.stderr
        assert "not found: Study 9.9.9.9 was not found in" in done.stderr, done.stderr
        assert "0 of 0" not in done.stdout and "Traceback" not in done.stderr
    done = script("restore-study", "--from", "minio", "--patient-id", "NOBODY", env=env)
    assert done.returncode == 4 and "not found: No study in bucket" in done.stderr, done.stderr


def test_a_bad_target_exits_2_naming_the_targets(orthanc, minio_server, bucket, offsite_env):
    env = {**orthanc_env(orthanc), **minio_server.env(bucket), **offsite_env}
    done = script("snapshot-now", "--target", "nope", env=env)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == "error: No target named 'nope'; the targets are: offsite."
    done = script("verify-backups", "--target", "nope", env=env)
    assert done.returncode == 2 and "No target named 'nope'; the targets are: offsite, minio." in done.stderr
    done = script("restore-study", "1.2.3", "--from", "offsite", "--target", "nope", env=env)
    assert done.returncode == 2 and "No target named 'nope'; the targets are: offsite." in done.stderr
    assert "{" not in done.stderr and "HTTP" not in done.stderr


@pytest.mark.parametrize("name", ["snapshot-now", "verify-backups"])
def test_a_job_says_queued_started_and_finished_in_plain_words(name, orthanc, minio_server, bucket, offsite_env):
    fill(orthanc, studies=1, per_study=3)
    orthanc.wait_replicated(3)
    if name == "verify-backups":
        assert orthanc.run_job("snapshots")[0]["state"] == "ok"
    done = script(name, env=orthanc_env(orthanc))
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    what = "Snapshot of offsite" if name == "snapshot-now" else "Restore test of offsite"
    queued = next(i for i, line in enumerate(lines) if line.startswith(f"{what} queued (run "))
    assert lines[queued].endswith("; waiting for it to start...")
    started = next(i for i, line in enumerate(lines) if line.startswith(f"{what} started at "))
    finished = next(i for i, line in enumerate(lines) if line.startswith(f"{what} finished OK in "))
    assert queued < started < finished
    assert "forgot" not in done.stdout and "mismatches" not in done.stdout and "[]" not in done.stdout
    if name == "snapshot-now":
        assert re.search(r"^  images +3 images of 1 study$", done.stdout, re.M), done.stdout
    else:
        assert "All 2 restore tests finished OK." in done.stdout
        assert re.search(r"^  checked +3 images read back, 3 identical$", done.stdout, re.M), done.stdout
