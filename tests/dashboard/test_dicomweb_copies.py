"""The DICOMweb service of copies with a stand-in for the plugin: formatting (DICOM JSON, frames, multipart),
Accept negotiation, the one-study scope of a share link, who may use it (HTTP basic included), the audit,
the memory of recent instances, and the bucket read directly while the PACS is down."""

from __future__ import annotations

import base64
import io
import json
import secrets

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.encaps import generate_frames

from pacs_backup.dicom import multipart
from pacs_backup.dicom.frames import frames
from pacs_backup.dicom.web_json import instance_json, read_header
from pacs_backup.state.manifest import sha256_hex
from pacs_dashboard import deps
from pacs_dashboard.bucket_copies import BucketCopies
from pacs_dashboard.copy_reader import Copies, PluginCopies
from pacs_dashboard.dicomweb import DicomWeb
from pacs_dashboard.dicomweb_accept import NotAcceptable, check_instances, frame_type, parse_accept
from pacs_dashboard.security import hash_password
from tests.support.dicomgen import make_instance, new_uid

STAFF, MONITOR, TWO_STEP = "tech", "watcher", "careful"
PW = "pw-" + secrets.token_urlsafe(12)
BASE = "/copies/pacs/dicom-web"


def basic(user: str, password: str = PW) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@pytest.fixture
def study(backend):
    """A study of two series (three CT images) in the PACS and the bucket, and another study in the PACS."""
    uid, s1, s2 = new_uid(), new_uid(), new_uid()
    files = [
        make_instance(uid, s1, instance_number=1, patient_name="Smith^Bella", patient_id="VET-7"),
        make_instance(uid, s1, instance_number=2, patient_name="Smith^Bella", patient_id="VET-7"),
        make_instance(uid, s2, instance_number=1, patient_name="Smith^Bella", patient_id="VET-7", modality="OT"),
    ]
    for data in files:
        backend.add_copy("pacs", data)
        backend.add_copy("bucket", data)
    other = new_uid()
    backend.add_copy("pacs", make_instance(other, new_uid(), patient_name="Other^Cat", patient_id="VET-9"))
    return uid, [s1, s2], files, other


@pytest.fixture
def users(app):
    db = app.extensions[deps.DB]
    db.add_user(STAFF, hash_password(PW), role="staff")
    db.add_user(MONITOR, hash_password(PW), role="monitor")
    db.add_user(TWO_STEP, hash_password(PW), role="staff")
    db.set_totp_pending(TWO_STEP, "JBSWY3DPEHPK3PXP")
    db.enable_totp(TWO_STEP, 1)
    return db


# --- formatting (no Flask) ----------------------------------------------------------------------------------
def test_dicomweb_copies_json_model_gives_names_numbers_and_pixel_data_by_address():
    data = make_instance(new_uid(), new_uid(), patient_name="Smith^Bella", rows=8, cols=8)
    meta = instance_json(read_header(data), "http://x/i/1/bulkdata")
    assert meta["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": "Smith^Bella"}]}
    assert meta["00280010"] == {"vr": "US", "Value": [8]}
    assert meta["7FE00010"] == {"vr": "OW", "BulkDataURI": "http://x/i/1/bulkdata/7FE00010"}
    assert meta["00083002"]["Value"] == ["1.2.840.10008.1.2.1"]
    assert all(len(tag) == 8 and len(v["vr"]) == 2 for tag, v in meta.items())


@pytest.mark.parametrize("name", ["JPEG2000.dcm", "SC_rgb_rle_2frame.dcm", "MR_small_RLE.dcm", "CT_small.dcm"])
def test_dicomweb_copies_frames_are_the_stored_bytes(name):
    path = get_testdata_file(name)
    with open(path, "rb") as f:
        data = f.read()
    ds = pydicom.dcmread(path)
    count = int(ds.get("NumberOfFrames", 1) or 1)
    got = frames(data, list(range(1, count + 1)))
    if ds.file_meta.TransferSyntaxUID.is_compressed:
        expected = list(generate_frames(ds.PixelData, number_of_frames=count))
        assert got[0].media_type.startswith("image/")
    else:
        size = len(ds.PixelData) // count
        expected = [ds.PixelData[i * size : (i + 1) * size] for i in range(count)]
        assert got[0].media_type == "application/octet-stream"
    assert [f.data for f in got] == expected


def test_dicomweb_copies_multipart_round_trip_and_accept_rules():
    body, ctype = multipart.encode([("application/dicom", b"one\r\n--x"), ("application/dicom", b"two")], "a/b")
    assert ctype.startswith('multipart/related; type="a/b"; boundary=')
    assert [p for _, p in multipart.decode(body, ctype)] == [b"one\r\n--x", b"two"]
    jpeg = "1.2.840.10008.1.2.4.50"
    with pytest.raises(NotAcceptable, match="never converted"):
        check_instances(
            parse_accept('multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.1'), [jpeg]
        )
    check_instances(parse_accept('multipart/related; type="application/dicom"; transfer-syntax=*'), [jpeg])
    accept = parse_accept('multipart/related; type="application/octet-stream"')
    with pytest.raises(NotAcceptable):
        frame_type(accept, "image/jpeg", jpeg)
    star = parse_accept('multipart/related; type="application/octet-stream"; transfer-syntax=*')
    assert frame_type(star, "image/jpeg", jpeg) == "application/octet-stream"


# --- the scope of a share link --------------------------------------------------------------------------------
def test_dicomweb_copies_only_study_never_reaches_another_study(app, backend, study):
    uid, _, _, other = study
    with app.app_context():
        copies = deps.copies()
        web = DicomWeb(copies, "pacs", "http://h/s/tok/dicom-web", only_study=uid)
        listed = json.loads(web.answer("studies", [], "application/dicom+json").body)  # type: ignore[arg-type]
        assert [s["0020000D"]["Value"][0] for s in listed] == [uid]
        asked = web.answer("studies", [("StudyInstanceUID", other)], None)
        assert json.loads(asked.body) == []  # type: ignore[arg-type]
        for path in (f"studies/{other}", f"studies/{other}/metadata", f"studies/{other}/series"):
            assert web.answer(path, [], None).status == 404
        assert web.answer(f"studies/{uid}/series", [], None).status == 200
        unscoped = DicomWeb(copies, "pacs", "http://h/copies/pacs/dicom-web")
        assert len(json.loads(unscoped.answer("studies", [], None).body)) == 2  # type: ignore[arg-type]


# --- over HTTP, with who may ------------------------------------------------------------------------------------
def test_dicomweb_copies_staff_by_basic_auth_reads_every_level(app, backend, study, users):
    uid, series, files, _ = study
    client = app.test_client()
    found = client.get(f"{BASE}/studies?PatientID=VET-7", headers=basic(STAFF))
    assert found.status_code == 200 and found.content_type == "application/dicom+json"
    assert [s["0020000D"]["Value"][0] for s in found.get_json()] == [uid]
    assert "Set-Cookie" not in found.headers  # basic authentication makes no session
    listed = client.get(f"{BASE}/studies/{uid}/series", headers=basic(STAFF)).get_json()
    assert sorted(s["0020000E"]["Value"][0] for s in listed) == sorted(series)
    assert {s["0020000E"]["Value"][0]: s["00201209"]["Value"][0] for s in listed}[series[0]] == 2
    images = client.get(f"{BASE}/studies/{uid}/series/{series[0]}/instances", headers=basic(STAFF)).get_json()
    assert len(images) == 2 and all("00081190" in i for i in images)
    meta = client.get(f"{BASE}/studies/{uid}/metadata", headers=basic(STAFF)).get_json()
    assert len(meta) == 3 and meta[0]["7FE00010"]["BulkDataURI"].startswith("http://localhost/copies/pacs/")
    sop = pydicom.dcmread(io.BytesIO(files[0])).SOPInstanceUID
    one = client.get(f"{BASE}/studies/{uid}/series/{series[0]}/instances/{sop}", headers=basic(STAFF))
    assert one.status_code == 200 and one.content_type.startswith('multipart/related; type="application/dicom"')
    assert [p for _, p in multipart.decode(one.data, one.content_type)] == [files[0]]
    whole = client.get(f"{BASE}/studies/{uid}", headers=basic(STAFF))
    assert sorted(p for _, p in multipart.decode(whole.data, whole.content_type)) == sorted(files)
    frame = client.get(f"{BASE}/studies/{uid}/series/{series[0]}/instances/{sop}/frames/1", headers=basic(STAFF))
    parts = multipart.decode(frame.data, frame.content_type)
    assert parts[0][1] == pydicom.dcmread(io.BytesIO(files[0])).PixelData
    assert parts[0][0] == "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.1"
    picture = client.get(
        f"{BASE}/studies/{uid}/series/{series[0]}/instances/{sop}/rendered",
        headers={**basic(STAFF), "Accept": "image/png"},
    )
    assert picture.status_code == 200 and picture.data.startswith(b"\x89PNG")
    refused = client.get(f"{BASE}/studies/{uid}/metadata", headers={**basic(STAFF), "Accept": "text/html"})
    assert refused.status_code == 406 and "DICOM JSON" in refused.get_json()["error"]
    assert client.get("/copies", headers=basic(STAFF)).get_json()[0]["name"] in ("pacs", "bucket")


def test_dicomweb_copies_refuses_monitor_anonymous_wrong_password_and_two_step(app, study, users):
    uid = study[0]
    client = app.test_client()
    anonymous = client.get(f"{BASE}/studies")
    assert anonymous.status_code == 401 and anonymous.headers["WWW-Authenticate"].startswith("Basic")
    monitor = client.get(f"{BASE}/studies/{uid}/metadata", headers=basic(MONITOR))
    assert monitor.status_code == 403 and "cannot open studies" in monitor.get_json()["error"]
    assert client.get("/copies", headers=basic(MONITOR)).status_code == 403
    assert client.get(f"{BASE}/studies", headers=basic(STAFF, "wrong")).status_code == 401
    careful = client.get(f"{BASE}/studies", headers=basic(TWO_STEP))
    assert careful.status_code == 401 and "2-step" in careful.get_json()["error"]


def test_dicomweb_copies_audits_a_study_once_not_per_frame(app, backend, study, users, logged_in):
    uid, series, files, _ = study
    sop = pydicom.dcmread(io.BytesIO(files[0])).SOPInstanceUID
    url = f"{BASE}/studies/{uid}/series/{series[0]}/instances/{sop}/frames/1"
    for _ in range(5):
        assert app.test_client().get(url, headers=basic(STAFF)).status_code == 200
    assert logged_in.get(f"{BASE}/studies/{uid}/metadata").status_code == 200  # the browser session works too
    opened = [r for r in users.audit_rows() if r[3] == "copy_viewed"]
    assert [(r[1], uid in r[4]) for r in opened] == [("admin", True), (STAFF, True)]
    assert backend.copy_reads.count(("pacs", str(sop))) == 1  # read once, then kept in memory


def test_dicomweb_copies_damaged_unavailable_and_missing_are_sentences(app, backend, study, users):
    uid, series, files, _ = study
    sop = str(pydicom.dcmread(io.BytesIO(files[1])).SOPInstanceUID)
    backend.copy_damaged.add(("bucket", sop))
    client = app.test_client()
    damaged = client.get(
        f"/copies/bucket/dicom-web/studies/{uid}/series/{series[0]}/instances/{sop}", headers=basic(STAFF)
    )
    assert damaged.status_code == 409
    assert damaged.get_json()["error"] == (
        "The copy of this instance in the local backup copy (bucket) does not match its checksum; it is not shown."
    )
    backend.copy_unavailable["pacs"] = "The backup drive is not plugged in."
    down = client.get(f"{BASE}/studies/{uid}/metadata", headers=basic(STAFF))
    assert down.status_code == 503 and down.get_json()["error"] == "The backup drive is not plugged in."
    assert client.get(f"/copies/nope/dicom-web/studies/{uid}/series", headers=basic(STAFF)).status_code == 404
    assert client.get("/copies/pacs/dicom-web/studies/..%2F..%2Fsystem", headers=basic(STAFF)).status_code == 404
    assert client.get("/copies/bucket/dicom-web/studies?limit=x", headers=basic(STAFF)).status_code == 400


# --- the bucket read directly while the PACS is down -----------------------------------------------------------
class _Store:
    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def get_with_sha(self, key: str) -> tuple[bytes, str | None]:
        return self.objects[key], sha256_hex(self.objects[key])


class _Reader:
    """What BucketCopies uses of the dashboard's read-only bucket reader."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.store = _Store(objects)

    def study_keys(self, study_uid: str) -> list[str]:
        return sorted(k for k in self.store.objects if k.startswith(f"dicom/{study_uid}/"))


def test_dicomweb_copies_bucket_stays_readable_while_the_pacs_is_down(app, backend, study):
    uid, _, files, _ = study
    objects = {}
    for data in files:
        ds = pydicom.dcmread(io.BytesIO(data))
        objects[f"dicom/{uid}/{ds.SeriesInstanceUID}/{ds.SOPInstanceUID}.dcm"] = data
    backend.down = True
    with app.app_context():
        copies = Copies(PluginCopies(backend), BucketCopies(_Reader(objects), deps.mirror()), 16)  # type: ignore[arg-type]
        web = DicomWeb(copies, "bucket", "http://h/copies/bucket/dicom-web")
        found = json.loads(web.answer("studies", [("StudyInstanceUID", uid)], None).body)  # type: ignore[arg-type]
        assert found[0]["00100010"]["Value"][0]["Alphabetic"] == "Smith^Bella"
        answer = web.answer(f"studies/{uid}", [], None)
        body = b"".join(answer.body) if not isinstance(answer.body, bytes) else answer.body
        assert sorted(p for _, p in multipart.decode(body, answer.content_type)) == sorted(files)
        assert web.answer(f"studies/{uid}/series", [], None).status == 200
        pacs = DicomWeb(copies, "pacs", "http://h/copies/pacs/dicom-web").answer(f"studies/{uid}/series", [], None)
        assert pacs.status == 503 and "bucket" in json.loads(pacs.body)["error"]  # type: ignore[arg-type]
        assert [d["name"] for d in copies.sources(uid)] == ["bucket", "pacs"]
