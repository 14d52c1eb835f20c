"""Getting a study back in the everyday cases (real Orthanc, MinIO, restic, rest-server).

Deleted today, deleted before the last snapshot, restored and drilled again, searched the way staff
type: each case is what a clinic or a technician did and saw fail before.
"""

from __future__ import annotations

import io
import urllib.parse

import pytest

from pacs_backup.clients.orthanc_http import RequestRefused
from tests.support.common import sha256
from tests.support.dicomgen import make_study
from tests.support.pacs import _wait_run, fill, orthanc_env, orthanc_study_id, pacs_content, script


def search(o, **params: str) -> list[dict]:
    return o.http().get_json("/backup/studies?" + urllib.parse.urlencode(params))


def upload_study(o, n: int, **kw) -> tuple[str, list[str]]:
    uid, files = make_study(n, rows=64, cols=64, **kw)
    for f in files:
        o.http().upload(f)
    return uid, sorted(sha256(f) for f in files)


def test_study_deleted_before_the_last_snapshot_comes_back_from_offsite(orthanc, offsite_env, minio_server, bucket):
    content = fill(orthanc, studies=2, per_study=6)
    orthanc.wait_replicated(12)
    first = orthanc.run_job("snapshots")[0]
    assert first["state"] == "ok", first
    lost = sorted(content)[0]
    orthanc.http().delete(f"/studies/{orthanc_study_id(orthanc, lost)}")
    second = orthanc.run_job("snapshots")[0]
    assert second["state"] == "ok", second
    # A manifest lists only what its snapshot holds.
    assert second["summary"]["manifest_entries"] == 6 and second["summary"]["studies"] == 1

    holding = orthanc.http().get_json(f"/backup/studies/{lost}/snapshots")
    assert [h["id"] for h in holding] == [first["summary"]["snapshot_id"]] and holding[0]["instances"] == 6
    env = {**orthanc_env(orthanc), **offsite_env}
    listed = script("restore-study", "--from", "offsite", "--list-snapshots", lost, env=env)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert first["summary"]["snapshot_id"][:8] in listed.stdout
    assert second["summary"]["snapshot_id"][:8] not in listed.stdout

    done = script("restore-study", "--from", "offsite", lost, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "6 of 6" in done.stdout and first["summary"]["snapshot_id"][:8] in done.stdout
    assert pacs_content(orthanc) == content

    # The same from the dashboard's path: a restore run inside the plugin, no snapshot chosen.
    orthanc.http().delete(f"/studies/{orthanc_study_id(orthanc, lost)}")
    run_id = orthanc.http().post_json("/backup/restores", {"study_uid": lost, "source": "offsite"})["run"]
    run = _wait_run(orthanc, run_id)
    assert run["state"] == "ok" and run["summary"]["verified"] == 6, run
    assert pacs_content(orthanc) == content


def test_drills_after_delete_and_restore_do_not_cry_wolf(orthanc_factory, minio_server, bucket, offsite_env):
    o = orthanc_factory({**minio_server.env(bucket), **offsite_env, "BACKUP_DRILL_SAMPLE": "50"})
    content = fill(o, studies=2, per_study=5)
    o.wait_replicated(10)
    assert o.run_job("snapshots")[0]["state"] == "ok"
    study = sorted(content)[0]
    o.http().delete(f"/studies/{orthanc_study_id(o, study)}")
    run_id = o.http().post_json("/backup/restores", {"study_uid": study, "source": "minio"})["run"]
    assert _wait_run(o, run_id)["state"] == "ok"
    for _ in range(2):  # before and after a new snapshot of the restored files
        runs = {r["target"]: r for r in o.run_job("drills")}
        for target in ("minio", "offsite"):
            assert runs[target]["state"] == "ok", runs[target]
            assert runs[target]["summary"]["checked"] >= 5 and not runs[target]["summary"]["mismatches"]
        assert o.run_job("snapshots")[0]["state"] == "ok"
    assert o.status()["state"] == "ok"


def test_a_real_mismatch_names_the_study_the_patient_and_what_to_do(orthanc_factory, minio_server, bucket, offsite_env):
    o = orthanc_factory({**minio_server.env(bucket), **offsite_env, "BACKUP_DRILL_SAMPLE": "50"})
    uid, _ = upload_study(o, 2, patient_name="Garcia^Luna", patient_id="PID-LUNA")
    o.wait_replicated(2)
    o.http().delete(f"/studies/{orthanc_study_id(o, uid)}")  # nothing left to repair from
    client = minio_server.client()
    key = next(iter(client.list_objects(bucket, "dicom/", recursive=True))).object_name
    meta = client.stat_object(bucket, key).metadata
    client.put_object(
        bucket,
        key,
        io.BytesIO(b"bit rot" * 50),
        350,
        metadata={"sha256": meta["x-amz-meta-sha256"], "orthanc-id": meta["x-amz-meta-orthanc-id"]},
    )
    run = o.run_job("drills", "minio")[0]
    assert run["state"] == "failed", run
    assert "Garcia, Luna" in run["error"] and uid in run["error"] and "offsite" in run["error"], run["error"]
    mismatch = run["summary"]["mismatches"][0]
    assert mismatch["study_uid"] == uid and mismatch["copy"] == f"bucket {bucket}"


def test_study_deleted_minutes_after_it_arrived_is_found_and_restored(orthanc, minio_server, bucket, offsite_env):
    uid, shas = upload_study(orthanc, 4, patient_name="O'Brien^Bella", patient_id="PID-OB-7", accession="A-7")
    other, _ = upload_study(orthanc, 2, patient_name="Smith^Max", patient_id="PID-SM-1")
    orthanc.wait_replicated(6)
    orthanc.http().delete(f"/studies/{orthanc_study_id(orthanc, uid)}")  # no snapshot has run

    assert [s["study_uid"] for s in search(orthanc, q="bella o'brien")] == [uid]
    study = orthanc.http().get_json(f"/backup/studies/{uid}")
    assert len(study["instances"]) == 4
    env = {**orthanc_env(orthanc), **minio_server.env(bucket), **offsite_env}
    done = script("restore-study", "--from", "minio", "--patient-id", "PID-OB-7", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 of 4" in done.stdout
    assert pacs_content(orthanc)[uid] == shas and other in pacs_content(orthanc)


def test_search_finds_what_staff_type(orthanc):
    smith, _ = upload_study(orthanc, 1, patient_name="Smith^Bella", patient_id="P-100", study_date="20261126")
    rex, _ = upload_study(
        orthanc,
        1,
        patient_name="MÜLLER^Rex",
        patient_id="P-200",
        owner="Jones^Mary",
        species="Canine",
        breed="Labrador Retriever",
        modality="DX",
        study_date="20261101",
        accession="ACC-2001",
    )
    cat, _ = upload_study(orthanc, 1, patient_name="猫^たま", patient_id="P-300", study_date="20251231")
    orthanc.wait_replicated(3)

    def found(**params: str) -> list[str]:
        return [s["study_uid"] for s in search(orthanc, **params)]

    for q in ("Smith Bella", "Bella Smith", "Smith^Bella", "smith, BELLA", "bella"):
        assert found(q=q) == [smith], q
    for q in ("Müller", "muller", "Mueller", "rex", "mary jones", "Jones", "canine", "labrador", "ACC-2001", "P-200"):
        assert found(q=q) == [rex], q
    assert found(q="猫") == [cat]
    assert found(q="%") == found() == [smith, rex, cat]  # nothing typed: the most recent studies
    assert found(**{"from": "2026-11-30", "to": "2026-11-01"}) == [smith, rex]
    assert found(modality="DX") == [rex]
    first = search(orthanc, q="bella")[0]
    assert first["display_name"] == "Smith, Bella" and first["study_date"] == "20261126"
    with pytest.raises(RequestRefused) as refused:  # a date that is not a date is refused with a sentence
        orthanc.http().get_json("/backup/studies?" + urllib.parse.urlencode({"from": "five"}))
    assert refused.value.status == 400 and "is not a date" in str(refused.value)


def test_preview_of_a_study_that_is_not_in_the_pacs(orthanc):
    uid, _ = upload_study(orthanc, 2, patient_name="Preview^Pet")
    orthanc.wait_replicated(2)
    orthanc.http().delete(f"/studies/{orthanc_study_id(orthanc, uid)}")
    png = orthanc.http().get(f"/backup/studies/{uid}/preview?size=128")
    assert png.startswith(b"\x89PNG") and len(png) > 500
    second = orthanc.http().get(f"/backup/studies/{uid}/preview?instance=2")
    assert second.startswith(b"\x89PNG") and second != png
