"""Issue 28 item 5: ``/metrics`` in Prometheus' text format, read by a monitor account, with every family the
issue lists (queue depth, lag, last success, restore tests, restore durations and bytes, each per copy)."""

from __future__ import annotations

import base64
import re
import time

import pytest

from pacs_dashboard.metrics import FAMILIES
from pacs_dashboard.security import hash_password
from tests.support.common import ROOT
from tests.support.dashboard_fakes import PASSWORD, drill_run, healthy_status
from tests.support.prometheus_text import FormatError, parse


def monitor(app) -> dict[str, str]:
    app.extensions["db"].add_user("prometheus", hash_password(PASSWORD), "monitor")
    return {"Authorization": "Basic " + base64.b64encode(f"prometheus:{PASSWORD}".encode()).decode()}


def restore_run(run_id: int, target: str, took: float, finished: float, state: str = "ok") -> dict:
    return {
        "id": run_id,
        "kind": "restore",
        "target": target,
        "state": state,
        "queued_at": finished - took - 1,
        "started_at": finished - took,
        "finished_at": finished,
        "duration_s": took,
        "summary": {"study_uid": "1.2.3", "verified": 3, "ok": state == "ok"},
        "error": None,
    }


def scrape(app, backend) -> dict:
    resp = app.test_client().get("/metrics", headers=monitor(app))
    assert resp.status_code == 200 and resp.mimetype == "text/plain"
    assert "version=0.0.4" in resp.headers["Content-Type"]
    return parse(resp.get_data(as_text=True))


def test_metrics_name_every_copy_with_its_queue_lag_success_tests_restores_and_bytes(app, backend):
    now = time.time()
    st = healthy_status(
        version="0.1.0",
        time=now,
        outbox_depth=4,
        oldest_pending_age_s=12.5,
        last_replicated_at=now - 3,
        store={"reachable": True, "forecast": {"size_bytes": 123_456, "growth_bytes_per_month": 99}},
    )
    st["offsite"]["offsite"].update(
        {
            "forecast": {"size_bytes": 77_000, "growth_bytes_per_month": 10, "quota_bytes": 2_000_000_000},
            "last_good_drill_age_s": 60,
            "same_box": True,
            "treated_as_offsite": True,
        }
    )
    st["offsite"]["offsite"]["last_snapshot"]["duration_s"] = 42.0
    st["offsite"]["minio"].update({"same_box": True, "last_good_drill_age_s": 60})
    backend.status_value = st
    differing = drill_run(now, checked=5, id=9, target="offsite", finished_at=now - 30)
    differing["summary"] = {"checked": 5, "identical": 4, "mismatches": [{"key": "k", "missing": True}]}
    backend.run_list = [
        restore_run(11, "minio", 8.0, now - 100),
        restore_run(10, "minio", 30.0, now - 3600),
        restore_run(12, "offsite", 95.5, now - 200, "failed"),
        restore_run(3, "minio", 500.0, now - 40 * 86400),  # longer, but more than 30 days ago
        {**restore_run(13, "minio", 0, now), "state": "running", "finished_at": None, "duration_s": None},
        differing,
    ]

    m = scrape(app, backend)

    assert all(f.type and f.help for f in m.values())
    assert m["pacs_backup_pacs_up"].value() == 1
    assert m["pacs_backup_info"].value(version="0.1.0") == 1
    assert m["pacs_backup_queue_depth"].by("copy") == {"minio": 4}
    assert m["pacs_backup_queue_oldest_age_seconds"].by("copy") == {"minio": 12.5}
    assert m["pacs_backup_copy_lag_seconds"].value(copy="minio", percentile="50") == 0.1
    assert m["pacs_backup_copy_lag_seconds"].value(copy="minio", percentile="99") == 0.3
    success = m["pacs_backup_last_success_timestamp_seconds"].by("copy")
    assert success["minio"] == pytest.approx(now - 3) and success["offsite"] == pytest.approx(now - 60)
    # The newest finished test of each copy: the offsite copy's lost an image, the local copy's was fine.
    assert m["pacs_backup_drill_last_ok"].by("copy") == {"minio": 1, "offsite": 0}
    assert m["pacs_backup_drill_images_checked"].by("copy") == {"minio": 5, "offsite": 5}
    assert m["pacs_backup_drill_images_identical"].by("copy") == {"minio": 5, "offsite": 4}
    assert m["pacs_backup_drill_images_mismatched"].by("copy") == {"minio": 0, "offsite": 1}
    assert m["pacs_backup_drill_last_timestamp_seconds"].value(copy="offsite") == pytest.approx(now - 30)
    assert m["pacs_backup_drill_last_success_timestamp_seconds"].value(copy="minio") == pytest.approx(now - 60)
    assert m["pacs_backup_restore_last_duration_seconds"].by("copy") == {"minio": 8.0, "offsite": 95.5}
    assert m["pacs_backup_restore_last_ok"].by("copy") == {"minio": 1, "offsite": 0}
    assert m["pacs_backup_restore_longest_duration_seconds"].by("copy") == {"minio": 30.0, "offsite": 95.5}
    assert m["pacs_backup_restore_last_timestamp_seconds"].value(copy="minio") == pytest.approx(now - 100)
    assert m["pacs_backup_copy_bytes"].by("copy") == {"minio": 10_000, "offsite": 77_000}  # minio: live total
    assert m["pacs_backup_copy_growth_bytes_per_month"].by("copy") == {"minio": 99, "offsite": 10}
    assert m["pacs_backup_copy_quota_bytes"].by("copy") == {"offsite": 2_000_000_000}
    assert m["pacs_backup_copy_same_box"].by("copy") == {"minio": 1, "offsite": 0}  # offsite: treated as offsite
    assert m["pacs_backup_snapshot_last_ok"].by("copy") == {"offsite": 1}
    assert m["pacs_backup_snapshot_last_duration_seconds"].by("copy") == {"offsite": 42.0}
    assert m["pacs_backup_disk_free_bytes"].value() == 50e9
    # The first names stay, for dashboards and alerts made with them.
    assert m["pacs_backup_outbox_depth"].value() == 4 and m["pacs_backup_replicated_total"].value() == 10
    assert m["pacs_backup_last_good_snapshot_age_seconds"].by("target") == {"offsite": 60}
    assert m["pacs_backup_last_drill_ok"].by("target") == {"offsite": 1, "minio": 1}
    assert set(m["pacs_backup_part_state"].by("part")) >= {"pacs", "store", "drill"}


def test_the_cloud_pacs_has_its_queue_and_lag(app, backend):
    cloud = {"depth": 7, "verified": 3, "failing": 2, "oldest_pending_age_s": 30.0, "lag_s": {"p50": 1.5, "p99": 9.0}}
    backend.status_value = healthy_status(cloud_pacs=cloud)
    m = scrape(app, backend)
    assert m["pacs_backup_queue_depth"].by("copy") == {"minio": 0, "cloud-pacs": 7}
    assert m["pacs_backup_queue_failing"].by("copy") == {"minio": 0, "cloud-pacs": 2}
    assert m["pacs_backup_copy_lag_seconds"].value(copy="cloud-pacs", percentile="99") == 9.0


def test_label_values_are_escaped(app, backend):
    odd = 'usb "blue"\\drive\nB'
    st = healthy_status()
    st["offsite"][odd] = {"last_good_snapshot_age_s": 5.0, "last_drill": drill_run(time.time(), target=odd)}
    backend.status_value = st
    m = scrape(app, backend)
    assert m["pacs_backup_last_good_snapshot_age_seconds"].value(target=odd) == 5.0
    assert m["pacs_backup_drill_last_ok"].value(copy=odd) == 1


def test_while_the_pacs_is_down_only_the_lights_and_pacs_up_are_said(app, backend, logged_in):
    logged_in.get("/")
    backend.down = True
    m = scrape(app, backend)
    assert m["pacs_backup_pacs_up"].value() == 0
    assert m["pacs_backup_part_state"].value(part="pacs") == 2
    assert "pacs_backup_queue_depth" not in m


def test_metrics_need_a_login(app):
    assert app.test_client().get("/metrics").status_code == 401
    wrong = {"Authorization": "Basic " + base64.b64encode(b"prometheus:wrong").decode()}
    monitor(app)
    assert app.test_client().get("/metrics", headers=wrong).status_code == 401


@pytest.mark.parametrize(
    ("body", "fault"),
    [
        ("# TYPE a gauge\na 1\n", "no HELP"),
        ("# HELP a x\na 1\n", "no TYPE"),
        ("# HELP a x\n# TYPE a gauge\na 1", "line feed"),
        ('# HELP a x\n# TYPE a gauge\na{l="\\t"} 1\n', "bad escape"),
        ('# HELP a x\n# TYPE a gauge\na{l="x"} 1\na{l="x"} 2\n', "twice"),
        ("# HELP a x\n# TYPE a gauge\na 1\n# HELP b x\n# TYPE b gauge\nb 1\na 2\n", "not together"),
        ("# HELP a x\n# TYPE a gauge\na one\n", "bad value"),
        ("# HELP a x\n# TYPE a gauge\n# TYPE a gauge\na 1\n", "second TYPE"),
        ("# HELP a x\n# TYPE a meter\na 1\n", "bad TYPE"),
        ('# HELP a x\n# TYPE a gauge\na{l="x",l="y"} 1\n', "twice"),
    ],
)
def test_the_reader_is_strict(body, fault):
    with pytest.raises(FormatError, match=fault):
        parse(body)


def test_the_documentation_names_every_family_and_its_rules_only_families_there_are():
    """docs/daily-use.md, "Monitoring with Prometheus": each family in its table, and the example alert rules
    name only families the dashboard gives."""
    doc = (ROOT / "docs" / "daily-use.md").read_text()
    section = doc.split("## Monitoring with Prometheus", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"pacs_backup_[a-z_]+[a-z]", section))
    assert named - set(FAMILIES) == set(), "documented but not given"
    assert set(FAMILIES) - named == set(), "given but not documented"
    rules = section.split("groups:", 1)[1].split("```", 1)[0]
    assert set(re.findall(r"pacs_backup_[a-z_]+[a-z]", rules)) <= set(FAMILIES)
    assert "MetricsEnabled" in section and "/tools/metrics-prometheus" in section


def test_a_restore_test_that_is_running_keeps_the_result_of_the_last_finished_one(app, backend):
    now = time.time()
    st = healthy_status()
    st["offsite"]["minio"]["last_drill"] = drill_run(now, state="running", finished_at=None, summary={})
    backend.status_value = st
    backend.run_list = [drill_run(now, target="minio", finished_at=now - 3600)]
    m = scrape(app, backend)
    assert m["pacs_backup_drill_last_ok"].value(copy="minio") == 1
    assert m["pacs_backup_last_drill_ok"].value(target="minio") == 1  # was 0 while a test ran
    assert m["pacs_backup_drill_last_timestamp_seconds"].value(copy="minio") == pytest.approx(now - 3600)
