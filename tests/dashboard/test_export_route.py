"""The study page's Download (ZIP) button and its route (views/exports.py), with a stand-in plugin."""

from __future__ import annotations

import hashlib
import io
import re
import zipfile

from pacs_dashboard.security import hash_password
from pacs_dashboard.shares import set_may_share
from tests.support.dashboard_fakes import PASSWORD, STUDY, csrf_of
from tests.support.dicomgen import make_instance, new_uid


def login(app, username):
    client = app.test_client()
    token = csrf_of(client.get("/login").get_data(as_text=True))
    resp = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
    assert resp.status_code == 302
    return client


def with_role(app, username, role, may_share=False):
    db = app.extensions["db"]
    assert db.add_user(username, hash_password(PASSWORD), role)
    set_may_share(db, username, may_share)
    return login(app, username)


def study_in(backend, source: str, n: int = 3) -> list[bytes]:
    series = new_uid()
    files = [
        make_instance(STUDY["study_uid"], series, instance_number=i + 1, patient_name="DOE^JANE", accession="A1")
        for i in range(n)
    ]
    for f in files:
        backend.add_copy(source, f)
    return files


def export_form(client) -> tuple[str, str]:
    """The study page's export form: its address and CSRF token."""
    html = client.get(f"/studies/{STUDY['study_uid']}").get_data(as_text=True)
    form = re.search(r'<form method="post" action="([^"]+)"[^>]*id="export-study">(.*?)</form>', html, re.S)
    assert form is not None and "Download (ZIP)" in form.group(2)
    return form.group(1).replace("&amp;", "&"), csrf_of(form.group(2))


def test_export_button_downloads_the_zip_and_is_audited(app, backend):
    files = study_in(backend, "bucket")
    staff = with_role(app, "reception", "staff", may_share=True)
    action, token = export_form(staff)
    assert action == f"/studies/{STUDY['study_uid']}/export?from=bucket"  # not in the PACS: the bucket's copy
    resp = staff.post(action, data={"csrf_token": token})
    assert resp.status_code == 200 and resp.mimetype == "application/zip"
    disposition = resp.headers["Content-Disposition"]
    assert disposition == 'attachment; filename="study-2026-11-27-A1.zip"' and "DOE" not in disposition
    assert resp.headers["Cache-Control"] == "no-store"
    zf = zipfile.ZipFile(io.BytesIO(resp.get_data()))
    got = sorted(hashlib.sha256(zf.read(n)).hexdigest() for n in zf.namelist() if n.startswith("DICOM/"))
    assert got == sorted(hashlib.sha256(f).hexdigest() for f in files)
    assert {"README.txt", "DICOMDIR", "PICTURES/1-1.png"} <= set(zf.namelist())
    rows = [r for r in app.extensions["db"].audit_rows() if r[3] == "study_exported"]
    assert len(rows) == 1 and rows[0][1] == "reception"
    assert f"study {STUDY['study_uid']} from bucket" in rows[0][4]
    assert not list((app.extensions["settings"].data_dir / "exports").glob("export-*"))


def test_export_refusals_say_why(app, backend):
    study_in(backend, "bucket")
    admin = with_role(app, "boss", "admin")
    action, token = export_form(admin)
    uid = STUDY["study_uid"]
    # Another copy that does not hold the study, a name that is no copy's, no CSRF token, a GET.
    assert admin.post(f"/studies/{uid}/export?from=pacs", data={"csrf_token": token}).status_code == 404
    bad = admin.post(f"/studies/{uid}/export?from=../etc", data={"csrf_token": token})
    assert bad.status_code == 400 and "no such copy" in bad.get_data(as_text=True)
    assert admin.post(action, data={}).status_code in (400, 403)
    assert admin.get(action).status_code in (404, 405)  # a GET makes nothing (the study page's path catches it)
    # A damaged file stops the export with a sentence, in the audit log too.
    sop = next(iter(backend.copy_files["bucket"]))[0]["sop_uid"]
    backend.copy_damaged.add(("bucket", sop))
    damaged = admin.post(action, data={"csrf_token": token})
    assert damaged.status_code == 422 and "does not match the checksum" in damaged.get_data(as_text=True)
    assert any(r[3] == "study_export_failed" for r in app.extensions["db"].audit_rows())


def test_export_is_refused_to_staff_without_the_right_a_monitor_and_no_one_logged_in(app, backend):
    study_in(backend, "bucket")
    uid = STUDY["study_uid"]
    plain = with_role(app, "trainee", "staff")  # staff, without "May share studies"
    page = plain.get(f"/studies/{uid}").get_data(as_text=True)
    assert "export-study" not in page  # no button
    refused = plain.post(f"/studies/{uid}/export?from=bucket", data={"csrf_token": csrf_of(page)})
    assert refused.status_code == 403 and "May share studies" in refused.get_data(as_text=True)
    monitor = with_role(app, "nagios", "monitor")
    token = csrf_of(monitor.get("/account").get_data(as_text=True))
    refused = monitor.post(f"/studies/{uid}/export?from=bucket", data={"csrf_token": token})
    assert refused.status_code == 403 and "cannot download studies" in refused.get_data(as_text=True)
    anonymous = app.test_client().post(f"/studies/{uid}/export?from=bucket", data={})
    assert anonymous.status_code == 401
    assert not [r for r in app.extensions["db"].audit_rows() if r[3] == "study_exported"]
    assert backend.copy_reads == []  # nothing was read for them
