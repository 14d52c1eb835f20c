"""How long getting everything back would take, measured on a real restore (Orthanc, plugin, MinIO, restic).

A study of about 2 MB is restored from the bucket through the plugin's restore route, as the dashboard does;
the status then gives the bucket's recovery time from that restore, and the offsite copy (never restored
from) says how to measure it.
"""

from __future__ import annotations

from pacs_backup.clients.orthanc_http import RequestRefused
from tests.support.common import sha256, wait_until
from tests.support.dicomgen import make_study
from tests.support.pacs import _wait_run, orthanc_study_id, pacs_content


def test_rto_of_the_bucket_is_measured_from_a_real_restore(orthanc):
    uid, files = make_study(4, rows=512, cols=512, patient_name="Timer^Tess")  # ~0.5 MB each
    for f in files:
        orthanc.http().upload(f)
    size = sum(len(f) for f in files)

    def in_catalog() -> bool:  # the bucket holds every image (the status is not read before the restore)
        try:
            return len(orthanc.http().get_json(f"/backup/studies/{uid}")["instances"]) == len(files)
        except RequestRefused:
            return False

    wait_until(in_catalog, 120, "the study in the backup catalog")
    orthanc.http().delete(f"/studies/{orthanc_study_id(orthanc, uid)}")

    run_id = orthanc.http().post_json("/backup/restores", {"study_uid": uid, "source": "minio"})["run"]
    run = _wait_run(orthanc, run_id)
    assert run["state"] == "ok" and run["summary"]["verified"] == 4, run
    assert pacs_content(orthanc)[uid] == sorted(sha256(f) for f in files)  # back, byte for byte
    assert run["summary"].get("bytes") == size, run["summary"]  # the restore recorded what it brought back

    times = {t["copy"]: t for t in orthanc.status()["recovery_time"]}
    assert set(times) == {"minio", "offsite"}
    bucket = times["minio"]
    assert bucket["kind"] == "bucket" and bucket["measured"] and bucket["run_id"] == run_id
    assert bucket["measured_bytes"] == size and bucket["measured_instances"] == 4
    assert bucket["seconds_per_gb"] > 0 and bucket["estimate_s"] > 0
    assert bucket["archive_bytes"] == size and bucket["measured_on"] == run["finished_at"]
    assert "for this clinic's 2.1 MB, measured restoring 2.1 MB on " in bucket["sentence"], bucket["sentence"]
    offsite = times["offsite"]
    assert offsite["kind"] == "offsite" and not offsite["measured"] and offsite["estimate_s"] is None
    assert offsite["sentence"].startswith("Not measured yet: restore a study from the offsite copy")
