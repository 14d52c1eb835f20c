"""Offsite snapshots, drills and the technician scripts: real restic, rest-server, Orthanc and MinIO."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from pacs_backup.clients.restic import Restic, ResticError
from tests.support.common import sha256, wait_until
from tests.support.pacs import fill, orthanc_env, pacs_content, script


def test_snapshot_second_run_adds_only_new_data(orthanc):
    fill(orthanc, studies=2, per_study=15)
    orthanc.wait_replicated(30)
    first = orthanc.run_job("snapshots")[0]
    assert first["state"] == "ok", first
    assert first["summary"]["manifest_entries"] == 30 and first["summary"]["repository_created"]
    fill(orthanc, studies=1, per_study=1)
    orthanc.wait_replicated(31)
    second = orthanc.run_job("snapshots")[0]
    assert second["state"] == "ok", second
    # The new instance plus the rewritten manifest and configuration copy; nothing else is new.
    assert second["summary"]["files_new"] + second["summary"]["files_changed"] <= 4
    assert second["summary"]["data_added"] < first["summary"]["data_added"] * 0.2
    status = orthanc.status()
    assert status["last_snapshot"]["id"] == second["id"]
    assert status["offsite"]["offsite"]["last_good_snapshot_age_s"] is not None


def test_disaster_recovery_from_offsite_alone_and_from_minio(
    orthanc, orthanc_factory, minio_server, bucket, offsite_env
):
    before = fill(orthanc, studies=3, per_study=8)
    orthanc.wait_replicated(24)
    assert orthanc.run_job("snapshots")[0]["state"] == "ok"
    orthanc.stop()  # the clinic's box is gone

    offsite_only = {k: offsite_env[k] for k in ("RESTIC_REPOSITORY", "RESTIC_PASSWORD_FILE")}
    new_box = orthanc_factory({}, plugin=False, name="new-box")
    done = script("disaster-recovery", "--from", "offsite", env={**orthanc_env(new_box), **offsite_only})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "24 of 24" in done.stdout
    assert pacs_content(new_box) == before
    new_box.stop()

    from_bucket = orthanc_factory({}, plugin=False, name="from-bucket")
    done = script("disaster-recovery", "--from", "minio", env={**orthanc_env(from_bucket), **minio_server.env(bucket)})
    assert done.returncode == 0, done.stdout + done.stderr
    assert pacs_content(from_bucket) == before


def test_restore_study_brings_back_only_that_study(orthanc, minio_server, bucket, offsite_env):
    content = fill(orthanc, studies=2, per_study=6, patient_id="PAT-42", accession="ACC-77")
    orthanc.wait_replicated(12)
    assert orthanc.run_job("snapshots")[0]["state"] == "ok"
    lost, _ = sorted(content)
    http = orthanc.http()
    env = {**orthanc_env(orthanc), **offsite_env, **minio_server.env(bucket)}

    for source in ("offsite", "minio"):
        sid = json.loads(http.request("POST", "/tools/lookup", lost.encode(), "text/plain"))[0]["ID"]
        http.delete(f"/studies/{sid}")
        assert lost not in pacs_content(orthanc)
        done = script("restore-study", "--from", source, lost, env=env)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "6 of 6" in done.stdout
        assert pacs_content(orthanc) == content, f"restore from {source} changed more than the one study"

    done = script("restore-study", "--from", "minio", "--patient-id", "NOBODY", env=env)
    assert done.returncode == 4 and "No study" in done.stderr


def test_snapshot_failures_are_recorded_not_reported_as_success(
    orthanc_factory, minio_server, bucket, rest_server, tmp_path
):
    good = tmp_path / "pw"
    good.write_text("correct horse battery staple")
    repo = rest_server.new_repository()
    Restic(repo, password_file=good).init()
    wrong = tmp_path / "wrong"
    wrong.write_text("not the password")
    o = orthanc_factory(
        {
            **minio_server.env(bucket),
            "RESTIC_REPOSITORY": repo,
            "RESTIC_PASSWORD_FILE": str(wrong),
            "BACKUP_FIRST_RUN_DELAY_SECONDS": "86400",
        }
    )
    fill(o, studies=1, per_study=2)
    o.wait_replicated(2)
    run = o.run_job("snapshots")[0]
    assert run["state"] == "failed" and "password" in run["error"].lower()
    assert "not the password" not in run["error"]
    st = o.status()
    assert st["state"] == "degraded" and st["last_snapshot"]["state"] == "failed"
    o.stop()

    o2 = orthanc_factory(
        {
            **minio_server.env(bucket),
            "RESTIC_REPOSITORY": "rest:http://127.0.0.1:9/nowhere",
            "RESTIC_PASSWORD_FILE": str(good),
            "BACKUP_FIRST_RUN_DELAY_SECONDS": "86400",
        },
        name="o2",
    )
    run = o2.run_job("snapshots")[0]
    assert run["state"] == "failed" and run["error"]
    o2.stop()


def test_locked_repository_fails_the_run_then_next_run_catches_up(orthanc_factory, minio_server, bucket, tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("a long enough password")
    repo = str(tmp_path / "usb-drive")
    restic = Restic(repo, password_file=pw)
    restic.init()
    # Another process holds a lock for as long as its stdin stays open.
    holder = subprocess.Popen(
        [restic._binary, "-r", repo, "--password-file", str(pw), "backup", "--stdin"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        holder.stdin.write(b"x" * 1024)
        holder.stdin.flush()
        o = orthanc_factory(
            {
                **minio_server.env(bucket),
                "RESTIC_REPOSITORY": repo,
                "RESTIC_PASSWORD_FILE": str(pw),
                "RESTIC_FORGET": "true",
                "RESTIC_RETRY_LOCK": "2s",
                "RESTIC_DRIVE": "false",
                "BACKUP_FIRST_RUN_DELAY_SECONDS": "86400",
            }
        )
        fill(o, studies=1, per_study=2)
        o.wait_replicated(2)
        wait_until(lambda: list((Path(repo) / "locks").iterdir()), 10, "the other process's lock")
        run = o.run_job("snapshots")[0]
        assert run["state"] == "failed" and "locked" in run["error"], run
    finally:
        holder.stdin.close()
        holder.wait(30)
    run = o.run_job("snapshots")[0]
    assert run["state"] == "ok", run
    assert o.status()["last_snapshot"]["state"] == "ok"


def test_append_only_offsite_refuses_deleting_snapshots(orthanc, offsite_env):
    fill(orthanc, studies=1, per_study=2)
    orthanc.wait_replicated(2)
    assert orthanc.run_job("snapshots")[0]["state"] == "ok"
    restic = Restic(
        offsite_env["RESTIC_REPOSITORY"], password_file=Path(offsite_env["RESTIC_PASSWORD_FILE"]), retry_lock="1s"
    )
    snap = restic.snapshots()[0]
    with pytest.raises(ResticError):
        restic.delete_snapshot(snap.id)
    assert [s.id for s in restic.snapshots()] == [snap.id]


def test_drill_finds_and_repairs_a_corrupted_copy(orthanc_factory, minio_server, bucket, offsite_env):
    import io

    o = orthanc_factory({**minio_server.env(bucket), **offsite_env, "BACKUP_DRILL_SAMPLE": "50"})
    fill(o, studies=1, per_study=5)
    o.wait_replicated(5)
    assert o.run_job("snapshots")[0]["state"] == "ok"
    client = minio_server.client()
    key = next(iter(client.list_objects(bucket, "dicom/", recursive=True))).object_name
    original = client.stat_object(bucket, key)
    # Change the bytes behind the plugin's back, keeping its metadata (as tampering or bit rot would).
    client.put_object(
        bucket,
        key,
        io.BytesIO(b"garbage" * 100),
        700,
        metadata={
            "sha256": original.metadata["x-amz-meta-sha256"],
            "orthanc-id": original.metadata["x-amz-meta-orthanc-id"],
        },
    )
    runs = {r["target"]: r for r in o.run_job("drills")}
    assert runs["minio"]["state"] == "ok" and runs["minio"]["summary"]["repaired"] == 1, runs["minio"]
    assert runs["offsite"]["state"] == "ok" and runs["offsite"]["summary"]["identical"] == 5, runs["offsite"]
    assert "read data subset" in runs["offsite"]["summary"]["check"]
    resp = client.get_object(bucket, key)
    assert sha256(resp.read()) == original.metadata["x-amz-meta-sha256"]
    assert o.status()["last_drill"]["state"] == "ok"


@pytest.mark.parametrize(
    "name",
    ["restore-study", "disaster-recovery", "snapshot-now", "verify-backups", "forget-snapshots", "recovery-sheet"],
)
def test_scripts_help_lists_exit_codes_and_bad_settings_give_one_line(name):
    done = script(name, "--help", env={})
    assert done.returncode == 0 and "exit codes:" in done.stdout and "  4  nothing matched" in done.stdout
    args = (
        ["--from", "minio", "1.2.3"]
        if name == "restore-study"
        else (["--from", "minio"] if name == "disaster-recovery" else [])
    )
    bad = script(name, *args, env={})
    assert bad.returncode == 2, bad.stderr
    assert bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr


def test_scripts_snapshot_now_and_verify_backups(orthanc, offsite_env, minio_server, bucket):
    fill(orthanc, studies=1, per_study=3)
    orthanc.wait_replicated(3)
    env = orthanc_env(orthanc)
    done = script("snapshot-now", env=env)
    assert done.returncode == 0 and "Snapshot of offsite finished OK" in done.stdout, done.stdout + done.stderr
    done = script("verify-backups", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        "Restore test of the bucket finished OK" in done.stdout and "Restore test of offsite finished OK" in done.stdout
    )


def test_recovery_sheet_has_what_a_technician_needs(tmp_path, offsite_env):
    out = tmp_path / "sheet.txt"
    done = script("recovery-sheet", "--clinic", "Vet Clinic", "--output", str(out), env=offsite_env)
    assert done.returncode == 0, done.stderr
    text = out.read_text()
    password = Path(offsite_env["RESTIC_PASSWORD_FILE"]).read_text()
    assert offsite_env["RESTIC_REPOSITORY"] in text and password in text
    assert "scripts/disaster-recovery --from offsite" in text
    assert out.stat().st_mode & 0o077 == 0


def test_a_rebuilt_box_with_an_empty_pacs_does_not_hide_the_clinics_snapshot(
    orthanc, orthanc_factory, minio_server, offsite_env
):
    """A new box's first scheduled snapshot, taken before its PACS was restored, must not become the
    newest snapshot: a whole-clinic restore would then bring back nothing."""
    before = fill(orthanc, studies=2, per_study=5)
    orthanc.wait_replicated(10)
    assert orthanc.run_job("snapshots")[0]["state"] == "ok"
    orthanc.stop()  # the clinic's box is gone; a new one is set up with the same offsite repository

    new_box = orthanc_factory({**minio_server.env("rebuilt"), **offsite_env}, name="new-box")
    run = new_box.run_job("snapshots")[0]
    assert run["state"] == "ok", run
    assert run["summary"]["snapshot_id"] is None and "no images yet" in run["summary"]["skipped"]
    restic = Restic(offsite_env["RESTIC_REPOSITORY"], password_file=Path(offsite_env["RESTIC_PASSWORD_FILE"]))
    assert len(restic.snapshots()) == 1
    done = script("disaster-recovery", "--from", "offsite", env={**orthanc_env(new_box), **offsite_env})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "10 of 10" in done.stdout
    assert pacs_content(new_box) == before
