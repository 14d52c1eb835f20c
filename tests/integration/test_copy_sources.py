"""Every copy as a read-only source (real Orthanc + plugin, MinIO, rest-server/restic, a loop-mounted drive and a
second Orthanc as the cloud PACS): a study deleted from the PACS is read back, byte for byte, from each copy
through the plugin's routes, and nothing is written into the PACS."""

from __future__ import annotations

import io
import json
import urllib.parse

import pydicom

from pacs_backup.clients.orthanc_http import ErrorAnswer, OrthancHttp, RequestRefused
from tests.support.cloud_pacs import cloud_status
from tests.support.common import raw_request, sha256, wait_until
from tests.support.dicomgen import make_study
from tests.support.loopdrive import LoopDrive
from tests.support.pacs import _wait_run


def upload(o, n: int) -> tuple[str, list[str]]:
    uid, files = make_study(n, rows=64, cols=64)
    for f in files:
        o.http().upload(f)
    return uid, sorted(sha256(f) for f in files)


def pacs_holds(o, uid: str) -> bool:
    return bool(json.loads(o.http().request("POST", "/tools/lookup", uid.encode(), "text/plain")))


def delete_study(o, uid: str) -> None:
    (hit,) = json.loads(o.http().request("POST", "/tools/lookup", uid.encode(), "text/plain"))
    o.http().delete(f"/studies/{hit['ID']}")


def names(http: OrthancHttp, uid: str) -> list[str]:
    return [d["name"] for d in http.get_json(f"/backup/copies?study={uid}") if d["available"]]


def read_all(http: OrthancHttp, source: str, uid: str) -> list[str]:
    """Every instance of the study read from ``source`` through the plugin: sorted sha256 of the bytes."""
    instances = http.get_json(f"/backup/copies/{source}/studies/{uid}")
    base = f"/backup/copies/{source}/studies/{uid}/instances"
    return sorted(sha256(http.get(f"{base}/{i['sop_uid']}")) for i in instances)


def refused(http: OrthancHttp, uri: str) -> ErrorAnswer:
    try:
        http.get(uri)
    except ErrorAnswer as exc:
        return exc
    raise AssertionError(f"{uri} was answered")


def test_copy_sources_a_deleted_study_is_read_from_the_bucket_each_snapshot_and_a_drive(
    orthanc_factory, minio_server, bucket, offsite_env, restic_password_file, tmp_path
):
    mount = tmp_path / "media" / "backup-drive"
    mount.mkdir(parents=True)
    usb = {
        "BACKUP_EXTRA_TARGETS": "usb",
        "USB_RESTIC_REPOSITORY": str(mount / "pacs-backup"),
        "USB_RESTIC_PASSWORD_FILE": str(restic_password_file),
    }
    o = orthanc_factory({**minio_server.env(bucket), **offsite_env, **usb})
    http = o.http()
    uid, sent = upload(o, 4)
    other, _ = upload(o, 2)
    o.wait_replicated(6)
    first = o.run_job("snapshots", "offsite")[0]
    assert first["state"] == "ok", first
    snapshot = first["summary"]["snapshot_id"][:8]
    drive = LoopDrive(tmp_path / "usb.img")
    drive.plug(mount)
    try:
        runs = http.post_json("/backup/drives", {"target": "usb", "label": "Drive A"})["runs"]
        assert _wait_run(o, runs[0])["state"] == "ok"

        assert names(http, uid)[:2] == ["pacs", "bucket"] and read_all(http, "pacs", uid) == sent
        name = http.get_json(f"/backup/copies/pacs/studies?StudyInstanceUID={uid}")[0]["patient_name"]
        typed = urllib.parse.quote(name[:3].lower() + "*")  # as staff type it: the start, any case
        found = http.get_json(f"/backup/copies/pacs/studies?PatientName={typed}")
        assert {s["study_uid"]: (s["instances"], s["series"]) for s in found}[uid] == (4, 1)
        delete_study(o, uid)
        assert not pacs_holds(o, uid)
        holding = names(http, uid)
        assert holding == ["bucket", "offsite", f"offsite-{snapshot}", "drive-usb"], holding
        for source in ("bucket", "offsite", f"offsite-{snapshot}", "drive-usb"):
            assert read_all(http, source, uid) == sent, source
        assert not pacs_holds(o, uid) and pacs_holds(o, other)  # nothing was written into the PACS

        # Found by what staff know, in a snapshot and in the bucket
        patient = http.get_json(f"/backup/copies/offsite/studies?StudyInstanceUID={uid}")[0]["patient_id"]
        for source in ("offsite", "bucket"):
            found = http.get_json(f"/backup/copies/{source}/studies?PatientID={urllib.parse.quote(patient)}")
            assert {s["study_uid"]: s["instances"] for s in found}[uid] == 4, source

        # Read again: served from the view cache (the study's folder and files are the same ones, not fetched again)
        cache = o.settings.work_dir / "pacs-backup-view-cache"
        assert cache.stat().st_mode & 0o777 == 0o700
        folders = [p for p in cache.iterdir() if p.name.endswith(uid)]
        assert len(folders) == 2  # the offsite snapshot's and the drive's, this study only
        files = {f: f.stat().st_ino for folder in folders for f in folder.iterdir()}
        assert len(files) == 8 and all(f.stat().st_mode & 0o777 == 0o600 for f in files)
        assert read_all(http, f"offsite-{snapshot}", uid) == sent and read_all(http, "drive-usb", uid) == sent
        assert {f: f.stat().st_ino for folder in folders for f in folder.iterdir()} == files
        assert not [p for p in cache.iterdir() if other in p.name]  # the other study was never fetched
    finally:
        drive.unplug()

    # The drive unplugged: a sentence, not an error
    gone = refused(http, f"/backup/copies/drive-usb/studies/{uid}")
    assert gone.status == 503 and gone.sentence == "The backup drive 'usb' is not plugged in."

    # A bucket object replaced by other bytes (a new version written with the root account): 409, never shown
    ref = next(i["ref"] for i in http.get_json(f"/backup/copies/bucket/studies/{uid}"))
    original = minio_server.client().stat_object(bucket, ref).metadata["x-amz-meta-sha256"]
    data = b"encrypted by ransomware" * 10
    minio_server.client().put_object(bucket, ref, io.BytesIO(data), len(data), metadata={"sha256": original})
    sop = ref.rsplit("/", 1)[-1].removesuffix(".dcm")
    damaged = refused(http, f"/backup/copies/bucket/studies/{uid}/instances/{sop}")
    assert damaged.status == 409 and "does not match the checksum" in damaged.sentence
    assert sha256(http.get(f"/backup/copies/offsite/studies/{uid}/instances/{sop}")) in sent  # the snapshot is fine

    # Bad input gets one sentence
    assert isinstance(refused(http, "/backup/copies/offsite/studies/not..a..uid"), RequestRefused)
    login = (o.settings.username, o.settings.password)
    status, said = raw_request(o.url + "/backup/copies/nowhere/studies", auth=login)
    assert status == 404 and "no copy called 'nowhere'" in said
    assert refused(http, "/backup/copies/offsite/studies?StudyDate=yesterday").status == 400
    assert not pacs_holds(o, uid)


def test_dicomweb_copies_the_cloud_pacs_is_a_source_checked_against_what_was_sent(
    orthanc_factory, minio_server, bucket, offsite_env
):
    cloud = orthanc_factory({}, plugin=False, name="cloud-pacs")
    o = orthanc_factory(
        {
            **minio_server.env(bucket),
            **offsite_env,
            "CLOUD_PACS_URL": cloud.url + "/dicom-web",
            "CLOUD_PACS_USERNAME": cloud.settings.username,
            "CLOUD_PACS_PASSWORD": cloud.settings.password,
        }
    )
    http = o.http()
    uid, sent = upload(o, 3)
    o.wait_replicated(3)
    wait_until(lambda: cloud_status(o)["verified"] == 3, 60, "3 instances verified in the cloud PACS")
    delete_study(o, uid)

    assert names(http, uid) == ["bucket", "cloud-pacs"]
    assert read_all(http, "cloud-pacs", uid) == sent
    found = http.get_json(f"/backup/copies/cloud-pacs/studies?StudyInstanceUID={uid}")
    assert [s["study_uid"] for s in found] == [uid] and found[0]["instances"] == 3
    assert not pacs_holds(o, uid)

    # The cloud PACS changed an image (another header): shown as damaged, not as the study
    instance = http.get_json(f"/backup/copies/cloud-pacs/studies/{uid}")[0]
    (hit,) = json.loads(cloud.http().request("POST", "/tools/lookup", instance["sop_uid"].encode(), "text/plain"))
    ds = pydicom.dcmread(io.BytesIO(cloud.http().get(f"/instances/{hit['ID']}/file")))
    ds.InstitutionName = "Changed by the cloud"
    changed = io.BytesIO()
    ds.save_as(changed)
    cloud.http().delete(f"/instances/{hit['ID']}")
    cloud.http().upload(changed.getvalue())
    damaged = refused(http, f"/backup/copies/cloud-pacs/studies/{uid}/instances/{instance['sop_uid']}")
    assert damaged.status == 409 and "does not match" in damaged.sentence
    assert not pacs_holds(o, uid)
