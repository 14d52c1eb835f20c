"""Getting a study back, the dashboard's side of issue 10 (items 1, 4-7), with the plugin stood in for.

Each test names the item it proves. The real-stack versions are in tests/integration/test_dashboard_stack.py
and tests/browser/test_dashboard_browser.py.
"""

from __future__ import annotations

import re
import time
from zoneinfo import ZoneInfo

import pytest

from pacs_backup.state.migrate import SchemaTooNew
from pacs_dashboard.health import lights
from pacs_dashboard.light import AMBER, GREEN, RED
from pacs_dashboard.mirror import SCHEMA_VERSION, Mirror
from pacs_dashboard.monitor import Monitor
from pacs_dashboard.restore_words import progress_text
from pacs_dashboard.timefmt import clock, months, size, study_date, when
from tests.support.common import wait_until
from tests.support.dashboard_fakes import BELLA, PNG, drill_run, healthy_status, instances_of

BERLIN = ZoneInfo("Europe/Berlin")


def by_key(ls):
    return {light.key: light for light in ls}


def text(resp) -> str:
    return resp.get_data(as_text=True)


def finished_check(client, api: str) -> dict:
    """The result of a check once it has finished (waits on its state, not for a fixed time)."""

    def done():
        result = client.get(api).get_json()
        return result if result["state"] != "running" else None

    return wait_until(done, 30, "the check to finish", interval=0.05)  # type: ignore[return-value]


def csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def monitor_of(app, backend):
    return Monitor(
        backend,
        app.extensions["db"],
        (),
        30,
        notify=lambda *a: True,
        keeper=app.extensions["keeper"],
        mirror=app.extensions["mirror"],
        tz=BERLIN,
    )


# --- 6. lights that are true ------------------------------------------------------------------------------
def test_restore_test_light_is_green_only_when_every_copy_checked_images_and_all_were_identical():
    now = time.time()
    good = by_key(lights(healthy_status(), None, now))["drill"]
    assert good.state == GREEN and good.value.startswith("passed")
    assert "5 of 5 images identical in the local backup copy; 5 of 5 images identical in the offsite copy" in (
        good.advice
    )  # each copy's figures, not "10 of 10" summed over both
    for copy in ("offsite", "minio"):  # the last drill of either copy checked nothing
        st = healthy_status()
        st["offsite"][copy]["last_drill"] = drill_run(
            now,
            checked=0,
            summary={
                "checked": 0,
                "identical": 0,
                "mismatches": [],
                "note": "Nothing to test yet: no image has been copied.",
            },
        )
        light = by_key(lights(st, None, now))["drill"]
        assert light.state == AMBER and light.value == "checked no images", copy
        assert "proves nothing" in light.advice and "Restore tests page" in light.advice
    st = healthy_status()
    del st["offsite"]["minio"]["last_drill"]  # one copy never tested
    assert by_key(lights(st, None, now))["drill"].state == AMBER
    st = healthy_status()
    st["offsite"]["offsite"]["last_drill"] = drill_run(
        now, state="failed", error="1 image(s) in bucket x did not come back identical (Garcia, Luna ...)."
    )
    bad = by_key(lights(st, None, now))["drill"]
    assert (
        bad.state == RED
        and "Garcia, Luna" in bad.advice
        and "offsite copy" in bad.advice
        and "(offsite)" not in bad.advice
    )


def test_fresh_install_shows_when_the_first_snapshot_runs_not_red():
    now = 1_795_000_000.0  # 2026-11-18 11:06:40 UTC = 12:06 in Berlin
    due = now + 25 * 60
    st = healthy_status()
    st["offsite"]["offsite"] = {
        "last_snapshot": None,
        "last_good_snapshot_age_s": None,
        "last_drill": None,
        "next_snapshot_at": due,
        "next_drill_at": due + 3600,
    }
    ls = by_key(lights(st, None, now, None, BERLIN))
    assert ls["offsite-offsite"].state == GREEN
    assert ls["offsite-offsite"].value == f"first snapshot at {clock(due, BERLIN, now)}" == "first snapshot at 12:31"
    assert ls["drill"].state == AMBER and "first test at" in ls["drill"].value
    late = by_key(lights(st, None, due + 4 * 3600, None, BERLIN))["offsite-offsite"]  # due long ago, none made
    assert late.state == RED and "was due at 12:31" in late.advice
    st["offsite"]["offsite"]["last_snapshot"] = {"state": "failed", "error": "The offsite server refused the password."}
    failed = by_key(lights(st, None, now, None, BERLIN))["offsite-offsite"]
    assert failed.state == RED and "refused the password" in failed.advice


def test_advice_uses_the_menu_names():
    for st in (healthy_status(offsite={}), healthy_status(failed=3)):
        for light in lights(st, None, time.time()):
            assert "Drills page" not in light.advice and "technician page" not in light.advice
            assert "object store" not in light.advice.lower() and "orthanc" not in light.label.lower()
    assert "Restore tests page" in by_key(lights(healthy_status(offsite={}), None, time.time()))["drill"].advice


def test_a_light_per_usb_drive_the_cloud_pacs_and_the_forecasts():
    now = time.time()
    st = healthy_status(
        cloud_pacs={
            "reachable": False,
            "unreachable_since": now - 600,
            "depth": 12,
            "verified": 40,
            "failing": 0,
            "oldest_pending_age_s": 600,
        }
    )
    st["offsite"]["usb"] = {
        "last_good_snapshot_age_s": 2 * 86400,
        "last_snapshot": {"state": "ok"},
        "drive": {
            "connected": True,
            "sentence": "Drive A is plugged in.",
            "drives": [],
            "swap_next": "Drive B",
            "light": "green",
            "advice": None,
        },
    }
    st["offsite"]["usb2"] = {
        "last_good_snapshot_age_s": 9 * 86400,
        "last_snapshot": {"state": "ok"},
        "drive": {
            "connected": False,
            "sentence": "No drive is plugged in.",
            "drives": [],
            "swap_next": None,
            "light": "amber",
            "advice": "Plug in the backup drive.",
        },
    }
    st["offsite"]["offsite"]["forecast"] = {
        "size_bytes": 1_500_000_000_000,
        "growth_bytes_per_month": 50_000_000_000,
        "in_12_months_bytes": 0,
        "quota_bytes": 2_000_000_000_000,
        "months_until_full": 10.0,
        "light": "green",
        "advice": None,
    }
    st["disk"] = {
        "free_bytes": 40e9,
        "total_bytes": 100e9,
        "forecast": {
            "size_bytes": 60e9,
            "growth_bytes_per_month": 4e9,
            "quota_bytes": 100e9,
            "months_until_full": 10.0,
            "light": "green",
            "advice": None,
        },
    }
    ls = by_key(lights(st, None, now, None, BERLIN))
    assert ls["drive-usb"].state == GREEN and ls["drive-usb"].value == "Drive A is plugged in"
    assert "Drive to swap in next: Drive B." in ls["drive-usb"].advice
    assert ls["drive-usb2"].state == AMBER and "Plug in the backup drive." in ls["drive-usb2"].advice
    assert "offsite-usb" not in ls  # a rotated drive is judged by its own days, not the offsite hours
    assert ls["cloud-pacs"].state == RED and ls["cloud-pacs"].value.startswith("not answering since ")
    space = ls["space-offsite"]
    assert space.value == "1.5 TB of 2.0 TB, +50.0 GB a month" and "full in about 10 months" in space.advice
    assert "grows about 4.0 GB a month; full in about 10 months" in ls["disk"].advice
    healthy_cloud = by_key(
        lights(healthy_status(cloud_pacs={"reachable": True, "depth": 0, "verified": 40, "failing": 0}), None, now)
    )["cloud-pacs"]
    assert healthy_cloud.state == GREEN and healthy_cloud.value == "40 images sent and checked"


def test_times_and_dates_as_people_write_them():
    assert study_date("20261126") == "26 Nov 2026" and study_date("") == "no date" and study_date("2026") == "2026"
    assert when(1_795_000_000.0, BERLIN) == "18 Nov 2026 12:06"
    assert clock(1_795_000_000.0, BERLIN, 1_795_000_000.0 + 86400) == "yesterday 12:06"
    assert months(14.2) == "full in about 14 months" and months(0.5) == "full within a month"
    assert (size(1), size(0), size(999), size(1500)) == ("1 byte", "0 bytes", "999 bytes", "1.5 kB")


# --- 5. when the PACS is down, the dashboard still tells the truth -------------------------------------------
def test_pacs_down_health_page_red_light_with_since_and_last_known_states(app, logged_in, backend):
    assert "Your images are safe." in text(logged_in.get("/"))
    backend.down = True
    page = text(logged_in.get("/"))
    down = app.extensions["keeper"].latest()
    since = clock(down.down_since, BERLIN)
    assert f"not answering since {since}" in page and "switched on" in page
    assert "The PACS is not answering. Images already backed up are safe" in page
    assert "Errno" not in page and "Connection refused" not in page
    assert page.count("Last known state, at") >= 4 and 'class="light green stale"' in page
    api = logged_in.get("/api/status").get_json()
    assert api["pacs_down_since"] == down.down_since and api["state"] == "red"
    assert {x["key"]: x["note"] != "" for x in api["lights"]}["store"] is True
    assert text(logged_in.get("/drills")).count("not answering since") == 1  # a notice, not an error page


def test_healthz_names_each_part_and_strict_answers_503_while_red(app, backend):
    client = app.test_client()
    ok = client.get("/healthz?strict=1")
    assert ok.status_code == 200 and ok.get_json()["parts"]["pacs"] == "green"
    backend.down = True
    app.extensions["keeper"].read()  # the monitor's round
    live = client.get("/healthz")
    assert live.status_code == 200 and live.get_json()["ok"] is True  # liveness: the dashboard itself is fine
    assert live.get_json()["parts"]["pacs"] == "red" and "store" in live.get_json()["last_known"]
    strict = client.get("/healthz?strict=1")
    assert strict.status_code == 503 and strict.get_json()["state"] == "red"


def test_search_works_from_the_mirror_while_the_pacs_is_down(app, logged_in, backend):
    monitor_of(app, backend).tick()  # while the PACS answers, the monitor keeps the mirror
    assert app.extensions["mirror"].count() == 2
    backend.down = True
    backend.asked.clear()
    for q in ("bella smith", "Smith^Bella", "SMITH, bella", "labrador", "VET-7"):
        page = text(logged_in.get("/studies", query_string={"q": q}))
        assert "Smith, Bella" in page and "26 Nov 2026" in page, q
        assert "not answering since" in page and "own list of the backups" in page
    assert "DOE, JANE" not in text(logged_in.get("/studies?q=bella"))
    assert backend.asked.count("studies") == 1  # found down once, then not waited on again


def test_mirror_syncs_in_pages_and_is_versioned(tmp_path):
    rows = [dict(BELLA, study_uid=f"1.2.{n}", last_copied_at=1000.0 + n // 3) for n in range(2500)]

    def fetch(since, limit, after=""):  # the plugin's keyset paging on (change time, study UID)
        key = lambda r: (r["last_copied_at"], r["study_uid"])  # noqa: E731
        return sorted((r for r in rows if key(r) > (since, after)), key=key)[:limit]

    m = Mirror(tmp_path / "mirror.sqlite")
    m.sync(fetch, 1.0)
    assert m.count() == 2500 and m.get("cursor") == max(r["last_copied_at"] for r in rows)
    rows.append(dict(BELLA, study_uid="9.9", patient_name="Müller^Rex", display_name="", last_copied_at=5000.0))
    assert m.sync(fetch, 2.0) == 1 and m.search("mueller")[0]["display_name"] == "Müller, Rex"
    assert m.search("", "2026-11-27", "2026-11-25", "DX")  # a date range in either order, a modality
    with pytest.raises(ValueError, match="not a date"):
        m.search("", "yesterday")
    assert m._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 2
    m._db.execute("PRAGMA user_version = 9")
    with pytest.raises(SchemaTooNew) as refused:  # a file from a newer dashboard: refused, and not damaged
        Mirror(tmp_path / "mirror.sqlite")
    assert str(refused.value) == (
        f"The dashboard's mirror file {tmp_path / 'mirror.sqlite'} was written by a newer release (version 9; "
        f"this release knows versions up to {SCHEMA_VERSION}): install that release or newer, or put back the "
        "file as it was before the upgrade."
    )
    assert m.count() == 2501 and not (tmp_path / "mirror.sqlite.newer").exists()


def test_a_mirror_migration_that_fails_half_way_leaves_the_version_before_and_the_rows(tmp_path, monkeypatch):
    from pacs_dashboard import mirror as mirror_module

    path = tmp_path / "mirror.sqlite"
    monkeypatch.setattr(mirror_module, "MIGRATIONS", mirror_module.MIGRATIONS[:1])
    m = Mirror(path)
    m.upsert([dict(BELLA, last_copied_at=1.0)])
    m._db.close()

    def half(db):  # its first statement runs, then the power goes
        db.execute("DELETE FROM studies")
        raise OSError("the power went")

    monkeypatch.setattr(mirror_module, "MIGRATIONS", (*mirror_module.MIGRATIONS, half))
    with pytest.raises(OSError, match="the power went"):
        Mirror(path)
    monkeypatch.undo()
    again = Mirror(path)  # version 1 with its study: the real step 2 runs now
    assert again.count() == 1 and again._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_a_version_1_mirror_gets_the_new_search_texts(tmp_path):
    uid = "1.2.826.0.1.3680043.8.498.82574642003649441479174181574344452028"
    m = Mirror(tmp_path / "mirror.sqlite")
    m.upsert([dict(BELLA, study_uid=uid, patient_id="P-300", last_copied_at=1.0)])
    # as version 1 wrote it: the UID's digits were words, so "P-200" found this study
    m._db.execute(
        "UPDATE studies SET search_text = ' smith bella p 300 1 2 826 82574642003649441479174181574344452028 '"
    )
    m._db.execute("PRAGMA user_version = 1")
    m._db.close()
    again = Mirror(tmp_path / "mirror.sqlite")
    assert again.search("P-200") == [] and [r["study_uid"] for r in again.search("P-300")] == [uid]


class FakeBucket:
    def __init__(self):
        self.asked = []

    def series_counts(self, uid):
        self.asked.append(uid)
        return [("1.2.840.99.7.1", 2), ("1.2.840.99.7.2", 1)]

    def preview(self, uid, n, size=256):
        if n > 3:
            raise IndexError(n)
        return PNG


def test_study_page_and_pictures_from_the_backup_copies_while_the_pacs_is_down(app, logged_in, backend):
    monitor_of(app, backend).tick()
    app.extensions["bucket"] = FakeBucket()
    backend.down = True
    page = text(logged_in.get(f"/studies/{BELLA['study_uid']}"))
    assert "Smith, Bella" in page and "26 Nov 2026" in page and "Owner: Smith, John" in page
    assert "not answering since" in page and "3 images" in page
    assert page.count("backup-picture.png?n=") == 3
    pic = logged_in.get(f"/studies/{BELLA['study_uid']}/backup-picture.png?n=2")
    assert pic.status_code == 200 and pic.data == PNG and pic.mimetype == "image/png"
    assert logged_in.get(f"/studies/{BELLA['study_uid']}/backup-picture.png?n=9").status_code == 404
    app.extensions["bucket"] = None
    page = text(logged_in.get(f"/studies/{BELLA['study_uid']}"))
    assert "ask your technician to set it up" in page  # no bucket access configured: said, not broken


def test_a_restore_asked_while_the_pacs_is_down_waits_and_starts_when_it_answers(app, logged_in, backend):
    monitor = monitor_of(app, backend)
    monitor.tick()
    backend.down = True
    uid = BELLA["study_uid"]
    confirm = text(logged_in.get(f"/studies/{uid}/restore?source=minio"))
    assert "Restore once the PACS answers" in confirm and "starts by itself once the PACS answers" in confirm
    resp = logged_in.post(
        f"/studies/{uid}/restore", data={"source": "minio", "confirmed": "yes", "csrf_token": csrf(confirm)}
    )
    assert resp.status_code == 302 and "/restores/waiting/1" in resp.headers["Location"]
    waiting = text(logged_in.get("/restores/waiting/1"))
    assert "Smith, Bella" in waiting and "starts by itself once the PACS answers" in waiting
    assert backend.restores == []
    monitor.tick()  # still down: nothing handed over
    assert backend.restores == []
    backend.down = False
    monitor.tick()
    assert backend.restores == [(uid, "minio", None)]
    assert logged_in.get("/api/restores/waiting/1").get_json()["job_url"] == "/restores/7"
    assert logged_in.get("/restores/waiting/1").headers["Location"].endswith("/restores/7")
    audit = text(logged_in.get("/audit.csv"))
    assert "restore_queued" in audit and "while the PACS was down" in audit
    requested = next(line for line in audit.splitlines() if "while the PACS was down" in line)
    assert "UTC" not in requested  # the clinic's own time, as every page shows it


# --- 7. restore as a person expects -----------------------------------------------------------------------
def test_restore_asks_first_and_says_when_the_study_is_already_in_the_pacs(app, logged_in, backend):
    uid = BELLA["study_uid"]
    backend.in_pacs[uid] = {"id": "aaaaaaaa-bbbbbbbb-cccccccc-dddddddd-eeeeeeee", "images": 3}
    page = text(logged_in.get(f"/studies/{uid}"))
    assert "This study is in the PACS now (3 of 3 images)" in page and "Check the PACS copy against" in page
    confirm = text(logged_in.get(f"/studies/{uid}/restore?source=minio"))
    assert "already in the PACS (3 of 3 images)" in confirm and "Restore anyway" in confirm
    files = {e["orthanc_id"]: b"x" for e in instances_of(BELLA)}
    backend.pacs_files = files  # sha256 of b"x" differs from the fake catalog's: they differ
    import hashlib

    digest = hashlib.sha256(b"x").hexdigest()
    backend.catalog[1] = dict(BELLA)
    original = backend.study

    def study(u):
        doc = original(u)
        for e in doc["instances"]:
            e["sha256"] = digest
        return doc

    backend.study = study
    resp = logged_in.post(f"/studies/{uid}/check", data={"csrf_token": csrf(confirm)})
    assert resp.status_code == 302
    api = resp.headers["Location"].replace("/checks/", "/api/checks/")
    result = finished_check(logged_in, api)
    assert result["headline"] == "All 3 images in the PACS are identical to the backup." and not result["restore"]
    del backend.pacs_files[next(iter(files))]
    resp = logged_in.post(f"/studies/{uid}/check", data={"csrf_token": csrf(confirm)})
    result = finished_check(logged_in, resp.headers["Location"].replace("/checks/", "/api/checks/"))
    assert "1 of 3 images are missing from the PACS" in result["detail"] and result["restore"]


def test_snapshot_list_has_each_snapshot_once_in_local_time_and_the_newest_is_chosen(logged_in, backend):
    uid = BELLA["study_uid"]
    older = {
        "target": "offsite",
        "id": "a" * 64,
        "short_id": "aaaaaaaa",
        "time": "2026-11-26T13:05:09.123456789Z",
        "instances": 3,
    }
    newer = {
        "target": "offsite",
        "id": "b" * 64,
        "short_id": "bbbbbbbb",
        "time": "2026-11-27T13:05:09+00:00",
        "instances": 3,
    }
    backend.holdings[uid] = [older, newer, dict(newer), dict(older)]
    page = text(logged_in.get(f"/studies/{uid}"))
    table = page[page.index('id="snapshots"') : page.index("</table>", page.index('id="snapshots"'))]
    assert table.count("<tr>") == 3  # a header and two snapshots, each once
    assert "27 Nov 2026 14:05" in page and "26 Nov 2026 14:05" in page and "UTC" not in page  # Berlin time
    assert f'<option value="{"b" * 64}" selected>27 Nov 2026 14:05 (newest)</option>' in page
    confirm = text(logged_in.get(f"/studies/{uid}/restore?source=offsite"))  # no snapshot picked: the newest
    assert "as it was at 27 Nov 2026 14:05" in confirm and f'name="snapshot" value="{"b" * 64}"' in confirm


def test_progress_and_result_pages_name_the_patient_and_never_say_0_of_unknown(app, logged_in, backend):
    backend.run_value = {
        "id": 7,
        "state": "running",
        "target": "minio",
        "kind": "restore",
        "queued_at": 1.0,
        "summary": {"study_uid": BELLA["study_uid"]},
    }
    monitor_of(app, backend).tick()
    page = text(logged_in.get("/restores/7"))
    assert "Smith, Bella" in page and "26 Nov 2026" in page and "Getting the images ready" in page
    assert "?" not in page[page.index('id="state"') : page.index("</p>", page.index('id="state"'))]
    assert "of ?" not in text(logged_in.get("/api/runs/7"))
    for summary, state, expected in (
        ({}, "queued", "Waiting to start"),
        ({"done": 2, "total": 3}, "running", "Restoring: 2 of 3 images"),
        (
            {"done": 3, "total": 3, "verified": 3},
            "ok",
            "Done: 3 of 3 images restored and verified identical to the backup.",
        ),
    ):
        words = progress_text({"state": state, "target": "minio", "summary": summary}, BERLIN)
        assert words["headline"] == expected and "?" not in words["headline"]
    failed = progress_text(
        {
            "state": "failed",
            "target": "offsite",
            "summary": {"total": 6, "verified": 4},
            "error": "2 of 6 instances did not verify.",
        },
        BERLIN,
    )
    assert failed["detail"].startswith("4 of 6 images were restored and verified. 2 of 6 images did not verify.")
    ok = progress_text(
        {
            "state": "ok",
            "target": "offsite",
            "summary": {
                "total": 6,
                "done": 6,
                "verified": 6,
                "snapshots": [{"id": "b" * 64, "time": "2026-11-27T13:05:09Z"}],
            },
        },
        BERLIN,
    )
    assert ok["detail"] == "Restored from the offsite copy as it was at 27 Nov 2026 14:05."


def test_pictures_from_the_backup_copy_when_the_study_is_not_in_the_pacs(logged_in, backend):
    page = text(logged_in.get(f"/studies/{BELLA['study_uid']}"))
    assert "not in the PACS right now" in page and page.count("backup-picture.png?n=") == 3
    assert 'src="/static/study.js"' in page
    pic = logged_in.get(f"/studies/{BELLA['study_uid']}/backup-picture.png?n=1")
    assert pic.status_code == 200 and pic.data == PNG and "backup_preview" in backend.asked


# --- 4 (display). names and dates as people write them ------------------------------------------------------
def test_search_results_show_names_dates_owner_species_and_breed(logged_in):
    page = text(logged_in.get("/studies?q=bella"))
    assert "Smith, Bella" in page and "Smith^Bella" not in page and "26 Nov 2026" in page
    assert "Owner: Smith, John" in page and "Dog, Labrador" in page and "20261126" not in page
    newest = text(logged_in.get("/studies"))  # nothing typed: the newest studies
    assert "Newest studies in the backups" in newest and "Smith, Bella" in newest and "DOE, JANE" in newest


def test_clinic_settings_time_zone_and_read_only_bucket_account():
    from pacs_backup.contracts.errors import ConfigError
    from pacs_dashboard.clinic import load_clinic_settings

    assert load_clinic_settings({"DASHBOARD_TZ": "Europe/Berlin", "TZ": "America/New_York"}).tz.key == "Europe/Berlin"
    assert load_clinic_settings({"TZ": ":America/New_York"}).tz.key == "America/New_York"
    with pytest.raises(ConfigError, match="DASHBOARD_TZ"):
        load_clinic_settings({"DASHBOARD_TZ": "Mars/Olympus"})
    assert load_clinic_settings({}).store is None  # optional: no pictures while the PACS is down, said on the page
    reader = load_clinic_settings(
        {
            "MINIO_ENDPOINT": "minio:9000",
            "MINIO_BUCKET": "pacs-backup",
            "MINIO_ACCESS_KEY": "plugin-writes",
            "MINIO_SECRET_KEY": "s1",
            "MINIO_READER_ACCESS_KEY": "reader",
            "MINIO_READER_SECRET_KEY": "s2",
        }
    ).store
    assert reader.access_key == "reader" and reader.endpoint == "minio:9000" and reader.bucket == "pacs-backup"
    own = load_clinic_settings(
        {
            "MINIO_ENDPOINT": "minio:9000",
            "DASHBOARD_MINIO_ENDPOINT": "replica:9000",
            "DASHBOARD_MINIO_ACCESS_KEY": "dash",
            "DASHBOARD_MINIO_SECRET_KEY": "s3",
        }
    ).store
    assert own.access_key == "dash" and own.endpoint == "replica:9000" and "s3" not in repr(own)
    with pytest.raises(ConfigError, match="DASHBOARD_MINIO_SECRET_KEY"):
        load_clinic_settings({"MINIO_ENDPOINT": "minio:9000", "DASHBOARD_MINIO_ACCESS_KEY": "dash"})


def test_metrics_say_which_parts_show_their_last_known_state(logged_in, backend):
    logged_in.get("/")
    backend.down = True
    body = logged_in.get("/metrics").get_data(as_text=True)
    assert 'pacs_backup_part_state{part="pacs"} 2' in body and "pacs_backup_pacs_up 0" in body
    assert 'pacs_backup_part_last_known{part="store"} 1' in body


def test_restore_buttons_name_each_copy_as_the_health_page_does(app, logged_in, backend):
    uid = BELLA["study_uid"]
    backend.status_value["offsite"]["usb"] = {"repository": "/mnt/usb/repo", "drive": {"state": "mounted"}}
    snap = {"id": "c" * 64, "short_id": "cccccccc", "time": "2026-11-27T13:05:09+00:00", "instances": 3}
    backend.holdings[uid] = [dict(snap, target="offsite"), dict(snap, target="usb", id="d" * 64)]
    logged_in.get("/")  # the dashboard reads the status as any page does
    page = text(logged_in.get(f"/studies/{uid}"))
    assert "Restore from the offsite copy&hellip;" in page and "Restore from the backup drive (usb)&hellip;" in page
    assert "offsite (usb)" not in page
