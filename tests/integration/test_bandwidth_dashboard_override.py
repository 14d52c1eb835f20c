"""An upload timetable set through the plugin's API (what the dashboard's settings page sends) is in force
from the next run without a restart: the status shows it with its next window, restic's snapshot gets its
``--limit-upload``; an empty rule brings back the one in .env. The file is owner-only."""

from __future__ import annotations

import json
import stat
from datetime import datetime

from pacs_backup.clients.restic_program import find_restic
from pacs_backup.settings.bandwidth import parse_schedule
from tests.support.common import raw_request


def put_limit(o, payload: dict) -> tuple[int, dict]:
    code, body = raw_request(
        o.url + "/backup/upload-limits",
        "PUT",
        json.dumps(payload).encode(),
        (o.settings.username, o.settings.password),
        {"Content-Type": "application/json"},
    )
    return code, json.loads(body)


def backup_limits(log_file) -> list[str]:
    """restic's --limit-upload of each `restic backup` run, in order."""
    found = []
    for line in log_file.read_text().splitlines():
        args = line.split()
        if args and args[0] == "backup":
            found.append(args[args.index("--limit-upload") + 1] if "--limit-upload" in args else "none")
    return found


def test_bandwidth_timetable_set_in_the_dashboard_applies_from_the_next_snapshot(
    orthanc_factory, minio_server, bucket, offsite_env, tmp_path
):
    log_file = tmp_path / "restic-args.log"
    wrapper = tmp_path / "restic"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> {log_file}\nexec {find_restic()} "$@"\n')
    wrapper.chmod(0o755)
    env = {**minio_server.env(bucket), **offsite_env, "RESTIC_UPLOAD_LIMIT": "256K", "RESTIC_BINARY": str(wrapper)}
    o = orthanc_factory(env)
    listed = o.http().get_json("/backup/upload-limits")["copies"]
    assert listed == [
        {
            "copy": "offsite",
            "env_rule": "00:00,256K",
            "override": None,
            "rule": "00:00,256K",
            "text": "256 KiB/s",
            "next_window": None,
        }
    ]

    code, refused = put_limit(o, {"copy": "offsite", "rule": "08:00,fast"})
    assert code == 400 and "'fast' that is not understood; use off" in refused["error"]

    # Uploads closed now for two hours, then 512 KiB/s (whatever the time of the day the test runs).
    hour = datetime.now().hour
    rule = f"{hour:02d}:00,0 {(hour + 2) % 24:02d}:00,512K"
    opens = parse_schedule("rule", rule).next_window(datetime.now())
    assert opens is not None
    code, answer = put_limit(o, {"copy": "offsite", "rule": rule})
    assert code == 200, answer
    assert answer["override"] == answer["rule"] == parse_schedule("rule", rule).rule
    assert answer["next_window"] == opens.timestamp()
    overrides = o.settings.work_dir / "storage" / "pacs-backup-upload-limits.json"
    assert json.loads(overrides.read_text()) == {"offsite": parse_schedule("rule", rule).rule}
    assert stat.S_IMODE(overrides.stat().st_mode) == 0o600

    doc = o.status()["offsite"]["offsite"]
    assert doc["window"] == parse_schedule("rule", rule).rule and doc["next_window"] == opens.timestamp()
    # A snapshot asked for outside the window goes at once, at the slowest rate the timetable allows.
    assert o.run_job("snapshots", "offsite")[0]["state"] == "ok"
    assert backup_limits(log_file) == ["512"]

    code, answer = put_limit(o, {"copy": "offsite", "rule": ""})
    assert code == 200 and answer["override"] is None and answer["rule"] == "00:00,256K"
    assert json.loads(overrides.read_text()) == {}
    doc = o.status()["offsite"]["offsite"]
    assert doc["window"] == "00:00,256K" and doc["next_window"] is None
    assert o.run_job("snapshots", "offsite")[0]["state"] == "ok"
    assert backup_limits(log_file) == ["512", "256"]
