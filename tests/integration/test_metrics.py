"""Issue 28 item 5, done when ``/metrics`` is scraped in a test: the real dashboard in front of a real Orthanc
+ plugin (MinIO, rest-server), scraped as Prometheus would (a monitor account, HTTP basic authentication) and
read with a strict parser of the text format; Orthanc's own ``/tools/metrics-prometheus`` too."""

from __future__ import annotations

import re
import time

import requests

import devstack
from tests.support.common import wait_until
from tests.support.dicomgen import make_study
from tests.support.prometheus_text import parse


def add_monitor(dashboard) -> tuple[str, str]:
    """A monitor account made on the users page by the administrator, as docs/daily-use.md says."""
    admin = dashboard.login()
    page = admin.get(dashboard.url + "/users", timeout=10).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    password = devstack.new_secret()
    form = {"username": "prometheus", "role": "monitor", "password": password, "again": password}
    r = admin.post(
        dashboard.url + "/users/add",
        data={**form, "csrf_token": token},
        allow_redirects=False,
        timeout=10,
    )
    assert r.status_code == 302, r.text
    return "prometheus", password


def scrape(dashboard, auth: tuple[str, str]) -> dict:
    resp = requests.get(dashboard.url + "/metrics", auth=auth, timeout=20)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return parse(resp.text)


def test_metrics_scraped_after_a_copy_a_restore_test_and_a_restore(orthanc, dashboard_factory):
    started = time.time()
    d = dashboard_factory(orthanc)
    assert requests.get(d.url + "/metrics", timeout=10).status_code == 401
    monitor = add_monitor(d)
    uid, files = make_study(1, rows=32, cols=32, patient_name="METRICS^ONE")
    http = orthanc.http()
    for f in files:
        http.upload(f)
    orthanc.wait_replicated(1)
    assert [r["state"] for r in orthanc.run_job("snapshots")] == ["ok"]
    drills = {r["target"]: r for r in orthanc.run_job("drills")}
    assert {t: r["state"] for t, r in drills.items()} == {"minio": "ok", "offsite": "ok"}, drills

    m = scrape(d, monitor)
    now = time.time()
    assert m["pacs_backup_pacs_up"].value() == 1 and m["pacs_backup_enabled"].value() == 1
    # Queue depth and lag of the local backup copy: the one image is copied, within seconds.
    assert m["pacs_backup_queue_depth"].by("copy") == {"minio": 0}
    assert m["pacs_backup_queue_oldest_age_seconds"].value(copy="minio") == 0
    lag = m["pacs_backup_copy_lag_seconds"]
    assert 0 <= lag.value(copy="minio", percentile="50") <= lag.value(copy="minio", percentile="99") < 120
    # Last success per copy: the image copied, the offsite snapshot.
    success = m["pacs_backup_last_success_timestamp_seconds"].by("copy")
    assert set(success) == {"minio", "offsite"} and all(started - 1 <= t <= now for t in success.values()), success
    # The restore test of each copy: the image came back identical.
    assert m["pacs_backup_drill_last_ok"].by("copy") == {"minio": 1, "offsite": 1}
    assert m["pacs_backup_drill_images_checked"].by("copy") == {"minio": 1, "offsite": 1}
    assert m["pacs_backup_drill_images_identical"].by("copy") == {"minio": 1, "offsite": 1}
    assert m["pacs_backup_drill_images_mismatched"].by("copy") == {"minio": 0, "offsite": 0}
    tested = m["pacs_backup_drill_last_timestamp_seconds"].by("copy")
    assert all(started <= t <= now for t in tested.values()), tested
    assert set(m["pacs_backup_drill_last_success_timestamp_seconds"].by("copy")) == {"minio", "offsite"}
    # Bytes per copy: the image in the bucket; what the snapshot added offsite.
    held = m["pacs_backup_copy_bytes"].by("copy")
    assert held["minio"] == len(files[0]) == m["pacs_backup_replicated_bytes"].value(), held
    assert held["offsite"] > 0, held
    assert m["pacs_backup_snapshot_last_ok"].by("copy") == {"offsite": 1}
    assert 0 < m["pacs_backup_snapshot_last_duration_seconds"].value(copy="offsite") < 300
    assert 0 < m["pacs_backup_disk_free_bytes"].value() <= m["pacs_backup_disk_total_bytes"].value()
    assert m["pacs_backup_part_state"].value(part="pacs") == 0
    assert "pacs_backup_restore_last_duration_seconds" not in m  # no restore yet

    # A restore of the study, deleted by mistake: how long it took, from which copy.
    for sid in http.get_json("/studies"):
        http.delete(f"/studies/{sid}")
    run_id = http.post_json("/backup/restores", {"study_uid": uid, "source": "minio"})["run"]
    restore = wait_until(
        lambda: (lambda r: r if r["state"] in ("ok", "failed") else None)(http.get_json(f"/backup/runs/{run_id}")),
        120,
        "the restore to finish",
    )
    assert restore["state"] == "ok", restore
    m = scrape(d, monitor)
    took = m["pacs_backup_restore_last_duration_seconds"].by("copy")
    assert took == {"minio": restore["duration_s"]} and 0 < took["minio"] < 120, took
    assert m["pacs_backup_restore_last_ok"].value(copy="minio") == 1
    assert m["pacs_backup_restore_longest_duration_seconds"].value(copy="minio") == took["minio"]
    assert m["pacs_backup_restore_last_timestamp_seconds"].value(copy="minio") == restore["finished_at"]

    # Orthanc's own metrics (MetricsEnabled): behind Orthanc's login, in the same format.
    url = orthanc.url + "/tools/metrics-prometheus"
    assert requests.get(url, timeout=10).status_code == 401
    own = requests.get(url, auth=(orthanc.settings.username, orthanc.settings.password), timeout=10)
    assert own.status_code == 200, own.text
    om = parse(own.text, described=False)
    assert om["orthanc_count_instances"].value() == 1  # the restored image
    assert om["orthanc_count_studies"].value() == 1
