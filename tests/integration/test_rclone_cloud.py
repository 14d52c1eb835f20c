"""Cloud storage (Google Drive, Dropbox, OneDrive, B2...) through restic's rclone backend.

No cloud is reachable here: a real rclone remote served on loopback (`rclone serve webdav`) is driven
exactly as a Drive remote would be - an rclone configuration file and `rclone:<remote>:<path>`.
"""

from __future__ import annotations

import json
import time

import pytest

from tests.support.cloud_drive import webdav_drive
from tests.support.common import figure
from tests.support.pacs import fill, orthanc_env, pacs_content, script


@pytest.fixture
def rclone_remote(tmp_path):
    with webdav_drive(tmp_path) as remote:
        yield remote


def test_rclone_cloud_storage_snapshot_drill_restore_and_forecast(
    orthanc_factory, minio_server, bucket, offsite_env, restic_password_file, rclone_remote
):
    conf, data = rclone_remote
    cloud = {
        "BACKUP_EXTRA_TARGETS": "cloud",
        "CLOUD_RESTIC_REPOSITORY": "rclone:clinicdrive:pacs-backup",
        "CLOUD_RESTIC_PASSWORD_FILE": str(restic_password_file),
        "CLOUD_RESTIC_RCLONE_CONFIG": str(conf),
        "CLOUD_RESTIC_QUOTA_GB": "0.001",
    }
    o = orthanc_factory({**minio_server.env(bucket), **offsite_env, **cloud})
    content = fill(o, studies=2, per_study=4)
    o.wait_replicated(8)
    snap = o.run_job("snapshots", "cloud")[0]
    assert snap["state"] == "ok", snap
    assert (data / "pacs-backup" / "config").is_file()  # the repository is on the remote, encrypted
    assert not any(b"DICM" in p.read_bytes() for p in (data / "pacs-backup").rglob("*") if p.is_file())
    drill = o.run_job("drills", "cloud")[0]
    assert drill["state"] == "ok" and drill["summary"]["checked"] >= 1, drill

    fc = o.status()["offsite"]["cloud"]["forecast"]
    assert fc["size_bytes"] > 0 and fc["growth_bytes_per_month"] >= fc["size_bytes"]
    assert fc["quota_bytes"] == 1_000_000 and fc["light"] == "red", fc  # a 1 MB "plan" is already full

    lost = sorted(content)[0]
    sid = json.loads(o.http().request("POST", "/tools/lookup", lost.encode(), "text/plain"))[0]["ID"]
    o.http().delete(f"/studies/{sid}")
    tech = {**orthanc_env(o), **cloud}
    t0 = time.monotonic()
    done = script("restore-study", "--from", "offsite", "--target", "cloud", lost, env=tech)
    study_s = time.monotonic() - t0
    assert done.returncode == 0 and "4 of 4" in done.stdout, done.stdout + done.stderr
    whole = pacs_content(o)
    o.stop()
    new_box = orthanc_factory({}, plugin=False, name="new-box")
    t0 = time.monotonic()
    done = script("disaster-recovery", "--from", "offsite", "--target", "cloud", env={**orthanc_env(new_box), **cloud})
    whole_s = time.monotonic() - t0
    assert done.returncode == 0 and "8 of 8" in done.stdout, done.stdout + done.stderr
    assert pacs_content(new_box) == whole
    figure(
        "rclone_cloud",
        snapshot_s=snap["duration_s"],
        restore_study_4_s=round(study_s, 2),
        disaster_recovery_8_s=round(whole_s, 2),
    )
