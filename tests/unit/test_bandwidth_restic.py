"""restic and rclone honour a target's upload timetable, and the scheduler holds snapshots for the window."""

from __future__ import annotations

import contextlib
import csv
import json
import shlex
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from pacs_backup.clients import restic as restic_module
from pacs_backup.clients.restic import Restic, find_restic
from pacs_backup.jobs.scheduler import OffsiteScheduler
from pacs_backup.settings.bandwidth import parse_schedule
from pacs_backup.state.history import RunLog
from tests.unit.test_scheduler_and_runlog import Clock, scheduler, target

OPENING = parse_schedule("RESTIC_UPLOAD_LIMIT", "08:00,256K 18:00,off")
NIGHT = parse_schedule("RESTIC_UPLOAD_LIMIT", "06:00,0 20:00,off")
SUMMARY = {"message_type": "summary", "snapshot_id": "abc"}


def fake_restic(tmp_path: Path) -> tuple[str, Path]:
    """A program standing in for restic: it writes its arguments (one per line) and a snapshot summary."""
    log = tmp_path / "argv"
    program = tmp_path / "restic"
    program.write_text(
        f"#!/bin/sh\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > {log}\necho '{json.dumps(SUMMARY)}'\n"
    )
    program.chmod(program.stat().st_mode | stat.S_IEXEC)
    return str(program), log


def test_bandwidth_restic_backup_carries_limit_upload_of_the_rate_in_force(tmp_path):
    binary, log = fake_restic(tmp_path)
    now = datetime(2026, 12, 7, 10, 0)
    r = Restic("/srv/restic", password="x", binary=binary, upload=OPENING, now=lambda: now)
    assert r.backup(["/data"])["snapshot_id"] == "abc"
    argv = log.read_text().splitlines()
    assert argv[argv.index("--limit-upload") + 1] == "256"
    now = datetime(2026, 12, 7, 22, 0)  # unlimited at night
    r.backup(["/data"])
    assert "--limit-upload" not in log.read_text().splitlines()
    r.forget({"daily": "7"})  # pruning rewrites packs: it uploads too, at the rate in force
    assert "--limit-upload" not in log.read_text().splitlines()
    now = datetime(2026, 12, 7, 9, 0)
    r.forget({"daily": "7"})
    assert "--limit-upload" in log.read_text().splitlines()
    plain = Restic("/srv/restic", password="x", binary=binary)
    plain.backup(["/data"])
    assert "--limit-upload" not in log.read_text().splitlines()


def test_bandwidth_rclone_target_gets_rclones_timetable_beside_the_sandbox(tmp_path, monkeypatch):
    binary, log = fake_restic(tmp_path)

    @contextmanager
    def guarded(url: str, env: dict[str, str]) -> Iterator[tuple[list[str], dict[str, str]]]:
        yield ["-o", "rclone.program=/usr/bin/python3 -I -S drop.py --"], dict(env)

    monkeypatch.setattr(restic_module, "guarded", guarded)
    r = Restic("rclone:drive:clinic", password="x", binary=binary, upload=OPENING, now=lambda: datetime(2026, 1, 1, 10))
    r.backup(["/data"])
    argv = log.read_text().splitlines()
    assert "--limit-upload" not in argv  # rclone follows the timetable during the run; restic would not
    assert argv[:2] == ["-o", "rclone.program=/usr/bin/python3 -I -S drop.py --"]  # the sandbox's, kept
    args = argv[argv.index("-o", 1) + 1]
    (field,) = next(csv.reader([args]))  # restic reads each -o as a CSV field
    key, _, value = field.partition("=")
    assert key == "rclone.args"
    # restic splits rclone.args like a shell, with quotes: rclone gets the timetable as one argument.
    assert shlex.split(value) == [
        "serve",
        "restic",
        "--stdio",
        "--b2-hard-delete",
        "--bwlimit",
        "08:00,256k:off 18:00,off",
    ]


def test_bandwidth_real_restic_hands_rclone_the_timetable_as_one_argument(tmp_path):
    """The real restic starts rclone.program with rclone.args split at spaces outside the quotes."""
    program = Path(find_restic())
    if not program.exists():
        pytest.fail("restic is not installed here: run make setup")
    log = tmp_path / "rclone-argv"
    fake_rclone = tmp_path / "rclone"
    fake_rclone.write_text(f'#!/bin/sh\nfor a in "$@"; do printf \'%s\\n\' "$a"; done > {log}\nexit 1\n')
    fake_rclone.chmod(0o755)
    r = Restic("rclone:drive:clinic", password="x", binary=str(program), upload=OPENING)
    argv = [str(program), "-o", f"rclone.program={fake_rclone}", *r.rclone_options(), "snapshots", "--no-lock"]
    subprocess.run(argv, env={"RESTIC_REPOSITORY": "rclone:drive:clinic", "RESTIC_PASSWORD": "x"}, timeout=60)
    assert log.read_text().splitlines() == [
        "serve",
        "restic",
        "--stdio",
        "--b2-hard-delete",
        "--bwlimit",
        "08:00,256k:off 18:00,off",
        "drive:clinic",
    ]


def test_bandwidth_scheduler_holds_a_night_only_snapshot_until_its_window(tmp_path):
    runs = RunLog(tmp_path / "plugin.sqlite")
    clock = Clock(datetime(2026, 12, 7, 10, 0).timestamp())
    s: OffsiteScheduler = scheduler(runs, clock, "offsite", store=False)
    s.targets["offsite"] = replace(target("offsite"), upload=NIGHT)
    clock.now += 120
    s._queue_due()
    assert runs.waiting("offsite", "snapshot") is None  # due, but 10:02 is outside 20:00-06:00
    doc = s.status()["offsite"]
    assert doc["window"] == "06:00,0 20:00,off"
    assert doc["next_window"] == datetime(2026, 12, 7, 20, 0).timestamp()
    assert doc["next_snapshot_at"] == datetime(2026, 12, 7, 20, 0).timestamp()
    clock.now = datetime(2026, 12, 7, 20, 1).timestamp()
    s._queue_due()
    assert runs.waiting("offsite", "snapshot") is not None
    assert s.status()["offsite"]["next_window"] is None
    # A person may still ask outside the window: the run goes at once (at the slowest allowed rate).
    clock.now = datetime(2026, 12, 8, 10, 0).timestamp()
    assert s.request("snapshot", "offsite")
    assert "window" not in scheduler(runs, clock, "usb", store=False).status()["usb"]


def test_reading_the_list_config_and_one_file_takes_no_lock_but_writing_and_restoring_do(tmp_path):
    """Writing and removing a lock file costs about 0.18 s of each 0.7 s restic run: the snapshot list, the config
    and a manifest are read without one; a backup, a forget and a restore (which a prune must not pull packs from
    under) still lock."""
    binary, log = fake_restic(tmp_path)
    log.parent.joinpath("out").mkdir()
    r = Restic("/srv/restic", password="x", binary=binary)
    reads = {
        "snapshots": lambda: r.snapshots(tag="pacs-backup"),
        "cat": r.cat_config,
        "dump": lambda: r.dump("abc", "/data/pacs-backup/manifest.jsonl"),
    }
    for name, call in reads.items():
        log.write_text("")
        with contextlib.suppress(ValueError, TypeError):  # the stand-in prints a summary: only the arguments count
            call()
        argv = log.read_text().splitlines()
        assert argv[0] == name and "--no-lock" in argv, argv
    writes = {
        "backup": lambda: r.backup(["/data"]),
        "forget": lambda: r.forget({"daily": "7"}),
        "restore": lambda: r.restore("abc", tmp_path / "out", includes=["/data/x"]),
    }
    for name, call in writes.items():
        call()
        argv = log.read_text().splitlines()
        assert argv[0] == name and "--no-lock" not in argv, argv
