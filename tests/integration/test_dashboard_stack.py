"""The dashboard against the real native stack (Orthanc + plugin, MinIO, rest-server)."""

from __future__ import annotations

import re

import requests

from conftest import MinioServer, sha256, wait_until
from tests.support.dicomgen import make_study


def login(dashboard) -> requests.Session:
    s = requests.Session()
    page = s.get(dashboard.url + "/login", timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = s.post(dashboard.url + "/login", data={"username": dashboard.username, "password": dashboard.password,
                                                "csrf_token": token}, timeout=10, allow_redirects=False)
    assert r.status_code == 302, r.text
    return s


def light(session, dashboard, key):
    data = session.get(dashboard.url + "/api/status", timeout=10).json()
    return next((x for x in data["lights"] if x["key"] == key), None)


def test_dashboard_shows_a_stopped_object_store_within_30_seconds(orthanc_factory, dashboard_factory, tmp_path,
                                                                  bucket, offsite_env):
    store = MinioServer(tmp_path)
    store.start()
    try:
        o = orthanc_factory({**store.env(bucket), **offsite_env})
        d = dashboard_factory(o)
        s = login(d)
        wait_until(lambda: light(s, d, "store")["state"] == "green", 30, "store light green")
        store.stop()
        _, files = make_study(3)
        for f in files:  # activity makes the plugin notice at once; the probe notices anyway
            o.http().upload(f)
        wait_until(lambda: light(s, d, "store")["state"] == "red", 30, "store light red")
        assert "not copied" in light(s, d, "store")["advice"]
        store.start()
        wait_until(lambda: light(s, d, "store")["state"] == "green", 60, "store light green again")
    finally:
        store.stop()


def test_dashboard_restore_brings_a_deleted_study_back_identical(orthanc, dashboard_factory):
    study_uid, files = make_study(8, rows=128, cols=128, patient_name="RESTORE^ME")
    http = orthanc.http()
    for f in files:
        http.upload(f)
    orthanc.wait_replicated(8)
    d = dashboard_factory(orthanc)
    s = login(d)
    found = s.get(d.url + "/studies", params={"q": "RESTORE"}, timeout=10).text
    assert "RESTORE^ME" in found
    for sid in http.get_json("/studies"):
        http.delete(f"/studies/{sid}")
    page = s.get(f"{d.url}/studies/{study_uid}", timeout=10).text
    assert "not in the PACS right now" in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = s.post(f"{d.url}/studies/{study_uid}/restore", data={"source": "minio", "csrf_token": token},
               allow_redirects=False, timeout=10)
    run_id = int(r.headers["Location"].rsplit("/", 1)[1])
    run = wait_until(lambda: (lambda x: x if x["state"] in ("ok", "failed") else None)(
        s.get(f"{d.url}/api/runs/{run_id}", timeout=10).json()), 120, "restore to finish")
    assert run["state"] == "ok" and run["summary"]["verified"] == 8, run
    restored = sorted(sha256(http.get(f"/instances/{i}/file")) for i in http.get_json("/instances"))
    assert restored == sorted(sha256(f) for f in files)
    audit = s.get(d.url + "/audit.csv", timeout=10).text
    assert "restore_requested" in audit and study_uid in audit
