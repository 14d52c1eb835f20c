import time

from pacs_dashboard.health import lights
from pacs_dashboard.light import AMBER, GREEN, RED, overall
from pacs_dashboard.monitor import Monitor
from tests.support.dashboard_fakes import FakeBackend, csrf_of, healthy_status


def by_key(ls):
    return {light.key: light for light in ls}


def test_lights_all_green_when_healthy():
    ls = lights(healthy_status(), None, time.time())
    assert overall(ls) == GREEN and {"pacs", "store", "queue", "offsite-offsite", "drill", "disk"} <= set(by_key(ls))


def test_lights_red_when_store_down_or_queue_late():
    ls = by_key(
        lights(healthy_status(store={"reachable": False}, oldest_pending_age_s=900, outbox_depth=40), None, time.time())
    )
    assert ls["store"].state == RED and ls["queue"].state == RED and "not lost" in ls["queue"].advice


def test_lights_red_without_offsite_and_when_pacs_is_down():
    ls = by_key(lights(healthy_status(offsite={}), None, time.time()))
    assert ls["offsite"].state == RED and ls["drill"].state == AMBER
    down = lights(None, "connection refused", time.time())
    assert overall(down) == RED and down[0].value == "not answering" and "switched on" in down[0].advice
    assert "connection refused" not in down[0].advice  # plain words for staff; the reason goes to the log


def test_lights_disk_nearly_full_is_amber_then_red():
    amber = by_key(lights(healthy_status(disk={"free_bytes": 8e9, "total_bytes": 100e9}), None, time.time()))
    red = by_key(lights(healthy_status(disk={"free_bytes": 1e9, "total_bytes": 100e9}), None, time.time()))
    assert amber["disk"].state == AMBER and red["disk"].state == RED


def test_monitor_alerts_once_per_problem_and_once_when_it_clears(tmp_path):
    from pacs_dashboard.db import Database

    sent = []
    backend = FakeBackend()
    m = Monitor(
        backend,
        Database(tmp_path / "d.sqlite"),
        ("json://localhost",),
        30,
        notify=lambda urls, title, body: sent.append(title) or True,
    )
    m.tick()
    assert sent == []
    backend.status_value = healthy_status(store={"reachable": False})
    for _ in range(5):
        m.tick()
    assert sent == ["PACS backup problem: Local backup copy"]
    backend.status_value = healthy_status()
    m.tick()
    m.tick()
    assert sent[-1] == "PACS backup resolved: Local backup copy" and len(sent) == 2


def test_health_page_reads_well(logged_in):
    html = logged_in.get("/").get_data(as_text=True)
    assert "Your images are safe." in html and "New images waiting to be copied" in html and "The last 30 days" in html


def test_search_and_restore_flow(logged_in, backend):
    html = logged_in.get("/studies?q=DOE").get_data(as_text=True)
    assert "DOE, JANE" in html and "27 Nov 2026" in html
    page = logged_in.get("/studies/1.2.3").get_data(as_text=True)
    resp = logged_in.post("/studies/1.2.3/restore", data={"source": "minio", "csrf_token": csrf_of(page)})
    assert resp.status_code == 200 and "Restore this study?" in resp.get_data(as_text=True)  # asks first
    assert backend.restores == []
    resp = logged_in.post(
        "/studies/1.2.3/restore", data={"source": "minio", "confirmed": "yes", "csrf_token": csrf_of(page)}
    )
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/restores/7")
    assert backend.restores == [("1.2.3", "minio", None)]


def test_settings_reject_bad_values_with_a_message(logged_in):
    page = logged_in.get("/settings").get_data(as_text=True)
    resp = logged_in.post(
        "/settings",
        data={
            "csrf_token": csrf_of(page),
            "replication_minutes": "soon",
            "offsite_hours": "3",
            "drill_hours": "48",
            "disk_warn_percent": "90",
        },
    )
    assert resp.status_code == 400 and "&#39;soon&#39; is not a number of minutes." in resp.get_data(as_text=True)


def test_error_pages_never_show_a_traceback(logged_in, backend):
    def boom(*a):
        raise RuntimeError("secret internals")

    backend.study = boom
    resp = logged_in.get("/studies/1.2.3")
    assert resp.status_code == 500 and b"Traceback" not in resp.data and b"secret internals" not in resp.data
