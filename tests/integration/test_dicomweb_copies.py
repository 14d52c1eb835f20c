"""The DICOMweb service of every copy on the real stack (Orthanc + plugin, MinIO, restic and rest-server, the
dashboard under waitress), asked by an independent client (``dicomweb-client`` from PyPI) with HTTP basic
authentication of a staff account: the PACS, the bucket and the offsite snapshot each answer QIDO-RS and
WADO-RS with the very bytes that were sent; a study deleted from the PACS is still served from the bucket
and the snapshot, and the bucket still serves while the PACS is stopped."""

from __future__ import annotations

import io
import time
import urllib.parse

import pydicom
import requests
from dicomweb_client.api import DICOMwebClient
from dicomweb_client.session_utils import create_session_from_user_pass
from pydicom.data import get_testdata_file
from pydicom.encaps import generate_frames

from pacs_backup.dicom import multipart
from pacs_dashboard.db import Database
from pacs_dashboard.security import hash_password
from tests.support.cloud_pacs import cloud_status
from tests.support.common import figure, wait_until
from tests.support.dicomgen import make_study
from tests.support.loopdrive import LoopDrive
from tests.support.pacs import _wait_run, orthanc_study_id
from tests.support.store_account import reader_store

STAFF, MONITOR = "xray-tech", "nagios"


def client(dashboard, source: str, user: str, password: str) -> DICOMwebClient:
    session = create_session_from_user_pass(user, password)
    return DICOMwebClient(f"{dashboard.url}/copies/{source}/dicom-web", session=session, timeout=120)


def raw_instance(dashboard, source, study, series, sop, auth) -> bytes:
    """The instance's bytes exactly as served (dicomweb-client hands back a parsed dataset)."""
    url = f"{dashboard.url}/copies/{source}/dicom-web/studies/{study}/series/{series}/instances/{sop}"
    accept = 'multipart/related; type="application/dicom"; transfer-syntax=*'
    r = requests.get(url, auth=auth, headers={"Accept": accept}, timeout=120)
    assert r.status_code == 200, r.text
    parts = multipart.decode(r.content, r.headers["Content-Type"])
    assert len(parts) == 1 and parts[0][0] == "application/dicom"
    return parts[0][1]


def check_source(dashboard, source: str, password: str, uid: str, files: list[bytes], rle: bytes | None) -> float:
    """Check every QIDO-RS and WADO-RS answer of ``source``; return how long its series search took (s): the
    first request that reads the study's images from the copy."""
    web = client(dashboard, source, STAFF, password)
    found = web.search_for_studies(search_filters={"PatientID": "VET-77"})
    assert [s["0020000D"]["Value"][0] for s in found] == [uid], (source, found)
    assert found[0]["00100010"]["Value"][0]["Alphabetic"] == "Smith^Bella"
    by_sop = {str(pydicom.dcmread(io.BytesIO(f)).SOPInstanceUID): f for f in files}
    t0 = time.monotonic()
    series = {s["0020000E"]["Value"][0] for s in web.search_for_series(uid)}  # the first read of each image
    first_read_s = time.monotonic() - t0
    sent_series = {str(pydicom.dcmread(io.BytesIO(f)).SeriesInstanceUID) for f in files}
    assert series == sent_series, source
    seen = []
    for se in sorted(series):
        for inst in web.search_for_instances(uid, se):
            seen.append(inst["00080018"]["Value"][0])
    assert sorted(seen) == sorted(by_sop), source
    meta = web.retrieve_study_metadata(uid)
    assert sorted(m["00080018"]["Value"][0] for m in meta) == sorted(by_sop)
    # (dicomweb-client sends its own Host header, without the port: only the path is compared)
    paths = {urllib.parse.urlsplit(m["7FE00010"]["BulkDataURI"]).path.split("/series/")[0] for m in meta}
    assert paths == {f"/copies/{source}/dicom-web/studies/{uid}"}
    auth = (STAFF, password)
    for sop, sent in by_sop.items():
        ds = pydicom.dcmread(io.BytesIO(sent))
        se = str(ds.SeriesInstanceUID)
        assert raw_instance(dashboard, source, uid, se, sop, auth) == sent, (source, sop)
        got = web.retrieve_instance(uid, se, sop)
        assert got.SOPInstanceUID == sop and got.PixelData == ds.PixelData
        assert web.retrieve_instance_frames(uid, se, sop, [1]) == [ds.PixelData]
    if rle is None:
        return first_read_s
    compressed = pydicom.dcmread(io.BytesIO(rle))
    frames = web.retrieve_instance_frames(
        str(compressed.StudyInstanceUID), str(compressed.SeriesInstanceUID), str(compressed.SOPInstanceUID), [1, 2]
    )
    assert frames == list(generate_frames(compressed.PixelData, number_of_frames=2)), source
    return first_read_s


def test_dicomweb_copies_from_pacs_bucket_and_offsite_with_an_independent_client(
    orthanc_factory, dashboard_factory, minio_server, bucket, offsite_env
):
    store_env, dash_env = reader_store(minio_server, bucket)
    o = orthanc_factory({**store_env, **offsite_env})
    uid, files = make_study(3, series=2, rows=64, cols=64, patient_name="Smith^Bella", patient_id="VET-77")
    with open(get_testdata_file("SC_rgb_rle_2frame.dcm"), "rb") as f:
        rle = f.read()  # RLE-compressed, two frames: frames are sent as stored
    for data in [*files, rle]:
        o.http().upload(data)
    o.wait_replicated(4)
    assert all(r["state"] == "ok" for r in o.run_job("snapshots"))
    d = dashboard_factory(o, dash_env)
    db = Database(d.work / "dashboard.sqlite")
    password = "pw-" + d.password
    db.add_user(STAFF, hash_password(password), role="staff")
    db.add_user(MONITOR, hash_password(password), role="monitor")

    names = [c["name"] for c in requests.get(f"{d.url}/copies", auth=(STAFF, password), timeout=60).json()]
    assert {"pacs", "bucket", "offsite"} <= set(names), names
    took = {source: check_source(d, source, password, uid, files, rle) for source in ("pacs", "bucket", "offsite")}
    figure("dicomweb_copies_series_search_first_read_3_images", **{f"{k}_s": round(v, 3) for k, v in took.items()})

    studies = f"{d.url}/copies/pacs/dicom-web/studies"
    assert requests.get(studies, timeout=30).status_code == 401
    assert requests.get(studies, auth=(MONITOR, password), timeout=30).status_code == 403
    assert requests.get(studies, auth=(STAFF, "wrong"), timeout=30).status_code == 401
    opened = [r for r in db.audit_rows() if r[3] == "copy_viewed" and r[1] == STAFF]
    assert {r[4].split(" from the copy ")[1].split(" ")[0] for r in opened if uid in r[4]} == {
        "pacs",
        "bucket",
        "offsite",
    }
    assert len([r for r in opened if uid in r[4]]) == 3  # one line per study and copy, not per frame

    # Deleted from the PACS by mistake: the bucket and the snapshot still show it.
    o.http().delete(f"/studies/{orthanc_study_id(o, uid)}")
    gone = client(d, "pacs", STAFF, password).search_for_studies(search_filters={"StudyInstanceUID": uid})
    assert gone == []
    for source in ("bucket", "offsite"):
        meta = client(d, source, STAFF, password).retrieve_study_metadata(uid)
        assert len(meta) == 3, source

    # The PACS stops: the bucket is read directly with the dashboard's read-only account.
    o.stop()
    wait_until(
        lambda: requests.get(f"{d.url}/healthz", timeout=10).json()["parts"]["pacs"] == "red", 60, "PACS seen down"
    )
    web = client(d, "bucket", STAFF, password)
    assert [s["0020000D"]["Value"][0] for s in web.search_for_studies(search_filters={"StudyInstanceUID": uid})] == [
        uid
    ]
    sent = files[0]
    ds = pydicom.dcmread(io.BytesIO(sent))
    got = raw_instance(d, "bucket", uid, str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID), (STAFF, password))
    assert got == sent
    assert web.retrieve_instance_frames(uid, str(ds.SeriesInstanceUID), str(ds.SOPInstanceUID), [1]) == [ds.PixelData]
    never_asked = f"{d.url}/copies/pacs/dicom-web/studies/1.2.3.4.5/series"
    down = requests.get(never_asked, auth=(STAFF, password), timeout=60)
    assert down.status_code == 503 and "bucket" in down.json()["error"]


def test_dicomweb_copies_from_a_backup_drive_and_the_cloud_pacs(
    orthanc_factory, dashboard_factory, minio_server, bucket, offsite_env, restic_password_file, tmp_path
):
    """A loop-mounted backup drive and a second real Orthanc with the DICOMweb plugin (standing in for the cloud
    PACS) are copies like the others: the same QIDO-RS / WADO-RS answers, the very bytes that were sent."""
    cloud = orthanc_factory({}, plugin=False, name="cloud-pacs")
    mount = tmp_path / "media" / "backup-drive"
    mount.mkdir(parents=True)
    o = orthanc_factory(
        {
            **minio_server.env(bucket),
            **offsite_env,
            "CLOUD_PACS_URL": cloud.url + "/dicom-web",
            "CLOUD_PACS_USERNAME": cloud.settings.username,
            "CLOUD_PACS_PASSWORD": cloud.settings.password,
            "BACKUP_EXTRA_TARGETS": "usb",
            "USB_RESTIC_REPOSITORY": str(mount / "pacs-backup"),
            "USB_RESTIC_PASSWORD_FILE": str(restic_password_file),
        }
    )
    uid, files = make_study(2, series=2, rows=64, cols=64, patient_name="Smith^Bella", patient_id="VET-77")
    with open(get_testdata_file("SC_rgb_rle_2frame.dcm"), "rb") as f:
        rle = f.read()  # compressed: each copy must hand it back as stored, not transcoded
    for data in [*files, rle]:
        o.http().upload(data)
    o.wait_replicated(3)
    wait_until(lambda: cloud_status(o)["verified"] == 3, 120, "3 instances verified in the cloud PACS")
    drive = LoopDrive(tmp_path / "usb.img")
    drive.plug(mount)
    try:
        runs = o.http().post_json("/backup/drives", {"target": "usb", "label": "Drive A"})["runs"]
        assert _wait_run(o, runs[0])["state"] == "ok"
        d = dashboard_factory(o)
        password = "pw-" + d.password
        Database(d.work / "dashboard.sqlite").add_user(STAFF, hash_password(password), role="staff")
        names = [c["name"] for c in requests.get(f"{d.url}/copies", auth=(STAFF, password), timeout=60).json()]
        assert {"cloud-pacs", "drive-usb"} <= set(names), names
        o.http().delete(f"/studies/{orthanc_study_id(o, uid)}")  # what is served is the copy itself
        for source in ("drive-usb", "cloud-pacs"):
            check_source(d, source, password, uid, files, rle)
    finally:
        drive.unplug()
