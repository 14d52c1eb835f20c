"""A study downloaded as a ZIP from the real stack (Orthanc + plugin, MinIO, the dashboard under waitress): from
the PACS, then from the bucket after the study was deleted from the PACS. Each ZIP is read as its recipient
would: every DICOM file with pydicom (the very bytes that were sent), the DICOMDIR with DCMTK's dcmdump and
dicom3tools' dciodvfy, the README, and the pictures with Pillow at full size."""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pydicom
import requests
from PIL import Image

from pacs_dashboard.db import Database
from pacs_dashboard.security import hash_password
from pacs_dashboard.shares import set_may_share
from tests.support.compressed import dcmtk_compress
from tests.support.dicomgen import make_instance, make_study, new_uid
from tests.support.pacs import orthanc_study_id
from tests.support.store_account import reader_store

STAFF, TRAINEE, MONITOR = "front-desk", "trainee", "nagios"
ROWS, COLS = 160, 120


def login(dashboard, user: str, password: str) -> requests.Session:
    s = requests.Session()
    page = s.get(dashboard.url + "/login", timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = s.post(
        dashboard.url + "/login",
        data={"username": user, "password": password, "csrf_token": token},
        timeout=10,
        allow_redirects=False,
    )
    assert r.status_code == 302, r.text
    return s


def export_form(session: requests.Session, dashboard, uid: str) -> tuple[str, str]:
    """The study page's Download (ZIP) form: its address and CSRF token."""
    html = session.get(f"{dashboard.url}/studies/{uid}", timeout=30).text
    form = re.search(r'<form method="post" action="([^"]+)"[^>]*id="export-study">(.*?)</form>', html, re.S)
    assert form is not None, html[:2000]
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.group(2)).group(1)
    return form.group(1).replace("&amp;", "&"), token


def read_zip(content: bytes, into: Path, sent: list[bytes]) -> str:
    """Check the ZIP as its recipient would; returns the README."""
    zipfile.ZipFile(io.BytesIO(content)).extractall(into)
    files = sorted((into / "DICOM").iterdir())
    got = {str(pydicom.dcmread(p).SOPInstanceUID): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
    want = {
        str(pydicom.dcmread(io.BytesIO(f), stop_before_pixels=True).SOPInstanceUID): hashlib.sha256(f).hexdigest()
        for f in sent
    }
    assert got == want  # every instance, byte for byte as it was sent
    dump = subprocess.run(("dcmdump", "-q", str(into / "DICOMDIR")), capture_output=True, text=True, timeout=60)
    assert dump.returncode == 0, dump.stderr
    assert all(sop in dump.stdout for sop in want)
    assert dump.stdout.count("ReferencedSOPInstanceUIDInFile") == len(want)
    assert shutil.which("dciodvfy"), "dciodvfy (Debian's dicom3tools, installed by dev/setup) is needed"
    check = subprocess.run(("dciodvfy", str(into / "DICOMDIR")), capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and "Error" not in check.stdout + check.stderr, check.stdout + check.stderr
    pictures = sorted((into / "PICTURES").iterdir())
    assert len(pictures) == len(want)
    for p in pictures:
        with Image.open(p) as im:
            im.load()
            assert im.size == (COLS, ROWS)
    return (into / "README.txt").read_text(encoding="utf-8")


def test_export_zip_from_the_pacs_and_from_the_bucket_after_deletion(
    orthanc_factory, dashboard_factory, minio_server, bucket, offsite_env, tmp_path
):
    store_env, dash_env = reader_store(minio_server, bucket)
    o = orthanc_factory({**store_env, **offsite_env})
    common = {"rows": ROWS, "cols": COLS, "patient_name": "Smith^Bella", "patient_id": "VET-77", "accession": "XR-42"}
    uid, files = make_study(4, series=2, **common)
    third = new_uid()  # a third series stored compressed, as some modalities send them
    files += [
        dcmtk_compress("jpeg-ls-lossless", make_instance(uid, third, instance_number=1, **common)),  # type: ignore[arg-type]
        dcmtk_compress("rle", make_instance(uid, third, instance_number=2, **common)),  # type: ignore[arg-type]
    ]
    for f in files:
        o.http().upload(f)
    o.wait_replicated(len(files))
    d = dashboard_factory(o, dash_env)
    db = Database(d.work / "dashboard.sqlite")
    password = "pw-" + d.password
    db.add_user(STAFF, hash_password(password), role="staff")
    set_may_share(db, STAFF, True)  # "May share studies": a ZIP takes the study out as a share link does
    db.add_user(TRAINEE, hash_password(password), role="staff")
    db.add_user(MONITOR, hash_password(password), role="monitor")
    staff = login(d, STAFF, password)

    action, token = export_form(staff, d, uid)
    assert action.endswith("?from=pacs")
    r = staff.post(d.url + action, data={"csrf_token": token}, timeout=300)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/zip", r.text[:500]
    assert r.headers["Content-Disposition"] == 'attachment; filename="study-2026-11-27-XR-42.zip"'
    readme = read_zip(r.content, tmp_path / "from-pacs", files)
    assert "Synthetic study" in readme and "27 Nov 2026" in readme and "XR-42" in readme
    assert "6 images in 3 series" in readme and "Copied from the PACS" in readme
    assert "Smith" not in readme and "Bella" not in readme

    # Deleted from the PACS by mistake: the page now offers the bucket's copy, and the ZIP is the same study.
    o.http().delete(f"/studies/{orthanc_study_id(o, uid)}")
    action, token = export_form(staff, d, uid)
    assert action.endswith("?from=bucket")
    r = staff.post(d.url + action, data={"csrf_token": token}, timeout=300)
    assert r.status_code == 200, r.text[:500]
    readme = read_zip(r.content, tmp_path / "from-bucket", files)
    assert "Copied from the local backup copy" in readme
    other = staff.post(f"{d.url}/studies/{new_uid()}/export?from=bucket", data={"csrf_token": token}, timeout=60)
    assert other.status_code == 404 and "does not hold this study" in other.text

    # Staff without "May share studies", a monitor account (read-only health) and a visitor get no ZIP.
    trainee = login(d, TRAINEE, password)
    page = trainee.get(f"{d.url}/studies/{uid}", timeout=30).text
    assert "export-study" not in page
    trainee_token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    refused = trainee.post(d.url + action, data={"csrf_token": trainee_token}, timeout=60)
    assert refused.status_code == 403 and "May share studies" in refused.text
    monitor = login(d, MONITOR, password)
    monitor_token = re.search(r'name="csrf_token" value="([^"]+)"', monitor.get(d.url + "/account").text).group(1)
    refused = monitor.post(d.url + action, data={"csrf_token": monitor_token}, timeout=60)
    assert refused.status_code == 403 and "cannot download studies" in refused.text
    assert requests.post(d.url + action, timeout=60).status_code == 401

    exported = [r for r in db.audit_rows() if r[3] == "study_exported"]
    assert [(r[1], r[4].split(" (")[0]) for r in reversed(exported)] == [
        (STAFF, f"study {uid} from pacs"),
        (STAFF, f"study {uid} from bucket"),
    ]
    assert not list((d.work / "exports").glob("export-*"))  # nothing left on the dashboard's disk
