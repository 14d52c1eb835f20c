"""The dashboard against the real native stack (Orthanc + plugin, MinIO, rest-server)."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo

import requests

from pacs_dashboard.timefmt import clock, parse_iso, when
from tests.support.common import sha256, wait_until
from tests.support.dicomgen import make_study
from tests.support.servers import MinioServer
from tests.support.store_account import mirrored, reader_store

TZ = "Europe/Berlin"  # not UTC, so that a time shown in UTC would be seen
BERLIN = ZoneInfo(TZ)
PNG = b"\x89PNG\r\n\x1a\n"


def login(dashboard) -> requests.Session:
    return dashboard.login()


def light(session, dashboard, key):
    data = session.get(dashboard.url + "/api/status", timeout=10).json()
    return next((x for x in data["lights"] if x["key"] == key), None)


def test_dashboard_shows_a_stopped_object_store_within_30_seconds(
    orthanc_factory, dashboard_factory, tmp_path, bucket, offsite_env
):
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
    assert "RESTORE, ME" in found
    for sid in http.get_json("/studies"):
        http.delete(f"/studies/{sid}")
    page = s.get(f"{d.url}/studies/{study_uid}", timeout=10).text
    assert "not in the PACS right now" in page
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = s.post(
        f"{d.url}/studies/{study_uid}/restore",
        data={"source": "minio", "confirmed": "yes", "csrf_token": token},
        allow_redirects=False,
        timeout=10,
    )
    run_id = int(r.headers["Location"].rsplit("/", 1)[1])
    run = wait_until(
        lambda: (lambda x: x if x["state"] in ("ok", "failed") else None)(
            s.get(f"{d.url}/api/runs/{run_id}", timeout=10).json()
        ),
        120,
        "restore to finish",
    )
    assert run["state"] == "ok" and run["summary"]["verified"] == 8, run
    restored = sorted(sha256(http.get(f"/instances/{i}/file")) for i in http.get_json("/instances"))
    assert restored == sorted(sha256(f) for f in files)
    audit = s.get(d.url + "/audit.csv", timeout=10).text
    assert "restore_requested" in audit and study_uid in audit


# --- issue 10: getting a study back, the dashboard's side -------------------------------------------------
def token_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def lights_of(session, dashboard) -> dict[str, dict]:
    return {x["key"]: x for x in session.get(dashboard.url + "/api/status", timeout=20).json()["lights"]}


def wait_run(session, dashboard, run_id: int, timeout: float = 300) -> tuple[dict, list[str]]:
    """Follow a restore as its page does; returns the last run and every headline the page would have shown."""
    said: list[str] = []

    def finished():
        run = session.get(f"{dashboard.url}/api/runs/{run_id}", timeout=10).json()
        said.append(run["progress"]["headline"])
        return run if run["state"] in ("ok", "failed") else None

    return wait_until(finished, timeout, f"restore run {run_id}", 0.3), said  # type: ignore[return-value]


def test_pacs_down_search_pictures_lights_healthz_and_a_restore_that_waits(
    orthanc_factory, dashboard_factory, minio_server, bucket, offsite_env
):
    """Issue 10 item 5, on the real stack: Orthanc stopped."""
    store_env, dash_env = reader_store(minio_server, bucket)
    o = orthanc_factory({**store_env, **offsite_env})
    uid, files = make_study(
        4,
        rows=64,
        cols=64,
        patient_name="Smith^Bella",
        patient_id="VET-77",
        owner="Smith^John",
        species="Dog",
        breed="Labrador",
        study_date="20261126",
        modality="DX",
    )
    for f in files:
        o.http().upload(f)
    o.wait_replicated(4)
    assert all(r["state"] == "ok" for r in o.run_job("snapshots") + o.run_job("drills"))
    d = dashboard_factory(o, dash_env)
    s = login(d)
    wait_until(lambda: mirrored(d) == 1, 30, "the dashboard's mirror of the catalog")
    wait_until(lambda: lights_of(s, d)["drill"]["state"] == "green", 30, "restore-test light green")
    for sid in o.http().get_json("/studies"):  # deleted by mistake, then the PACS goes down
        o.http().delete(f"/studies/{sid}")
    o.stop()

    wait_until(lambda: lights_of(s, d)["pacs"]["state"] == "red", 30, "PACS light red")
    api = s.get(d.url + "/api/status", timeout=20).json()
    ls = {x["key"]: x for x in api["lights"]}
    assert ls["pacs"]["value"] == f"not answering since {clock(api['pacs_down_since'], BERLIN)}"
    assert "Errno" not in str(api["lights"]) and "Connection refused" not in str(api["lights"])
    assert ls["store"]["state"] == "green" and ls["store"]["note"].startswith("Last known state, at ")
    assert ls["drill"]["state"] == "green" and ls["drill"]["note"]
    health = requests.get(d.url + "/healthz", timeout=10)
    assert health.status_code == 200 and health.json()["parts"]["pacs"] == "red"
    assert "store" in health.json()["last_known"]
    assert requests.get(d.url + "/healthz?strict=1", timeout=10).status_code == 503

    found = s.get(d.url + "/studies", params={"q": "bella smith"}, timeout=20).text
    assert "Smith, Bella" in found and "26 Nov 2026" in found and "Dog, Labrador" in found
    assert "not answering since" in found
    page = s.get(f"{d.url}/studies/{uid}", timeout=20)
    assert page.status_code == 200 and "Smith, Bella" in page.text and "4 images" in page.text
    assert page.text.count("backup-picture.png?n=") == 4
    pic = s.get(f"{d.url}/studies/{uid}/backup-picture.png?n=1", timeout=20)
    assert pic.status_code == 200 and pic.content.startswith(PNG)  # drawn from the bucket copy by the dashboard
    drills = s.get(d.url + "/drills", timeout=20)
    assert drills.status_code == 200 and "not answering since" in drills.text

    confirm = s.get(f"{d.url}/studies/{uid}/restore", params={"source": "minio"}, timeout=20).text
    assert "starts by itself once the PACS answers" in confirm
    r = s.post(
        f"{d.url}/studies/{uid}/restore",
        data={"source": "minio", "confirmed": "yes", "csrf_token": token_of(confirm)},
        allow_redirects=False,
        timeout=20,
    )
    assert r.status_code == 302 and "/restores/waiting/" in r.headers["Location"]
    wid = r.headers["Location"].rsplit("/", 1)[1]
    assert "starts by itself" in s.get(d.url + r.headers["Location"], timeout=20).text

    o.start()  # the PACS is back: the restore starts by itself and brings the study back identical
    job = wait_until(
        lambda: s.get(f"{d.url}/api/restores/waiting/{wid}", timeout=10).json()["job_url"],
        90,
        "the waiting restore to start",
    )
    run, said = wait_run(s, d, int(str(job).rsplit("/", 1)[1]))
    assert run["state"] == "ok" and run["summary"]["verified"] == 4, run
    assert not [h for h in said if "?" in h]
    restored = sorted(sha256(o.http().get(f"/instances/{i}/file")) for i in o.http().get_json("/instances"))
    assert restored == sorted(sha256(f) for f in files)
    wait_until(lambda: lights_of(s, d)["pacs"]["state"] == "green", 30, "PACS light green again")
    assert "restore_queued" in s.get(d.url + "/audit.csv", timeout=10).text


def test_a_loopback_offsite_server_is_on_this_box_amber_and_not_counted_as_offsite(
    orthanc_factory, dashboard_factory, minio_server, bucket, offsite_env
):
    """Issue 29 item 1: without the setting for tests and trials, the rest-server on 127.0.0.1 is a copy on the
    same box: same_box in the status, an amber "not offsite" light, and no copy counted away from the box."""
    env = {k: v for k, v in offsite_env.items() if k != "BACKUP_TREAT_AS_OFFSITE"}
    o = orthanc_factory({**minio_server.env(bucket), **env})
    placed = wait_until(
        lambda: (lambda x: x if "same_box" in x else None)(o.status()["offsite"]["offsite"]), 30, "copies placed"
    )
    assert placed["same_box"] is True and "treated_as_offsite" not in placed, placed
    assert placed["same_box_reason"] == "127.0.0.1 is loopback: this machine itself"
    assert o.status()["offsite_warning"].startswith("Every copy is on this box")
    d = dashboard_factory(o, {"DASHBOARD_TZ": TZ})
    ls = lights_of(login(d), d)
    copy = ls["offsite-offsite"]
    assert copy["state"] == "amber", copy
    assert copy["value"] == "not offsite - protects against mistakes, not against fire or theft"
    due = o.status()["offsite"]["offsite"]["next_snapshot_at"]
    assert copy["advice"].startswith(f"First snapshot at {clock(due, BERLIN)}. This copy is on the same box")
    assert ls["offsite"]["state"] == "amber" and ls["offsite"]["value"] == "none: every copy is on this box"


def test_lights_are_true_from_a_fresh_install(orthanc, dashboard_factory):
    """Issue 10 item 6: first snapshot time in the clinic's zone; a drill that checked nothing is not a pass."""
    d = dashboard_factory(orthanc, {"DASHBOARD_TZ": TZ})
    s = login(d)
    due = orthanc.status()["offsite"]["offsite"]["next_snapshot_at"]
    ls = lights_of(s, d)
    assert ls["offsite-offsite"]["state"] == "green", ls["offsite-offsite"]
    assert ls["offsite-offsite"]["value"] == f"first snapshot at {clock(due, BERLIN)}"
    assert ls["drill"]["state"] == "amber"
    # The bucket's restore test before any image was copied (the offsite copy has no snapshot to test yet).
    assert all(r["state"] == "ok" and r["summary"]["checked"] == 0 for r in orthanc.run_job("drills", "minio"))
    drill = wait_until(
        lambda: (lambda x: x if x["value"] == "checked no images" else None)(lights_of(s, d)["drill"]),
        30,
        "restore-test light saying it checked nothing",
    )
    assert drill["state"] == "amber" and "Restore tests page" in drill["advice"]
    _, files = make_study(3, rows=64, cols=64)
    for f in files:
        orthanc.http().upload(f)
    orthanc.wait_replicated(3)
    assert all(r["state"] == "ok" for r in orthanc.run_job("snapshots") + orthanc.run_job("drills"))
    drill = wait_until(
        lambda: (lambda x: x if x["state"] == "green" else None)(lights_of(s, d)["drill"]),
        30,
        "restore-test light green",
    )
    assert "images identical" in drill["advice"] and drill["value"].startswith("passed")
    page = s.get(d.url + "/drills", timeout=10).text
    assert "No images checked" in page and "not tested" in page and "(UTC)" not in page


def test_restore_as_a_person_expects_with_the_snapshots_that_hold_the_study(orthanc, dashboard_factory):
    """Issue 10 items 1 and 7: confirm, already in the PACS (check instead), which snapshots hold the study
    (each once, local times, the newest holding one chosen), pictures, progress naming the patient."""
    uid, files = make_study(
        5, rows=64, cols=64, patient_name="Garcia^Luna", patient_id="PID-LUNA", study_date="20261125"
    )
    for f in files:
        orthanc.http().upload(f)
    orthanc.wait_replicated(5)
    first = orthanc.run_job("snapshots")[0]
    assert first["state"] == "ok", first
    d = dashboard_factory(orthanc, {"DASHBOARD_TZ": TZ})
    s = login(d)

    confirm = s.get(f"{d.url}/studies/{uid}/restore", params={"source": "minio"}, timeout=20).text
    assert "Restore this study?" in confirm and "Garcia, Luna" in confirm and "25 Nov 2026" in confirm
    assert "already in the PACS (5 of 5 images)" in confirm
    r = s.post(
        f"{d.url}/studies/{uid}/check", data={"csrf_token": token_of(confirm)}, allow_redirects=False, timeout=20
    )
    api = d.url + r.headers["Location"].replace("/checks/", "/api/checks/")
    check = wait_until(
        lambda: (lambda c: c if c["state"] != "running" else None)(s.get(api, timeout=10).json()),
        60,
        "the check of the PACS copy",
    )
    assert check["headline"] == "All 5 images in the PACS are identical to the backup.", check

    for sid in orthanc.http().get_json("/studies"):
        orthanc.http().delete(f"/studies/{sid}")
    second = orthanc.run_job("snapshots")[0]
    assert second["state"] == "ok", second
    page = s.get(f"{d.url}/studies/{uid}", timeout=20).text
    assert "not in the PACS right now" in page and page.count("backup-picture.png?n=") == 4
    taken = when(parse_iso(first["summary"].get("time")) or first["finished_at"], BERLIN)
    table = page[page.index('id="snapshots"') : page.index("</table>", page.index('id="snapshots"'))]
    assert table.count("<tr>") == 2, table  # the header and the one snapshot that holds the study
    first_id, second_id = first["summary"]["snapshot_id"], second["summary"]["snapshot_id"]
    assert second_id not in page and f'value="{first_id}" selected' in page
    assert "UTC" not in page
    pic = s.get(f"{d.url}/studies/{uid}/backup-picture.png?n=1", timeout=20)
    assert pic.status_code == 200 and pic.content.startswith(PNG)

    confirm = s.get(f"{d.url}/studies/{uid}/restore", params={"source": "offsite"}, timeout=60).text
    assert "as it was at " in confirm and "Yes, restore it" in confirm
    r = s.post(
        f"{d.url}/studies/{uid}/restore",
        data={
            "source": "offsite",
            "confirmed": "yes",
            "snapshot": first["summary"]["snapshot_id"],
            "csrf_token": token_of(confirm),
        },
        allow_redirects=False,
        timeout=20,
    )
    run_id = int(r.headers["Location"].rsplit("/", 1)[1])
    progress = s.get(f"{d.url}/restores/{run_id}", timeout=20).text
    assert "Garcia, Luna" in progress and "25 Nov 2026" in progress and "of ?" not in progress
    run, said = wait_run(s, d, run_id)
    assert run["state"] == "ok" and run["summary"]["verified"] == 5, run
    assert not [h for h in said if "?" in h] and said[-1] == (
        "Done: 5 of 5 images restored and verified identical to the backup."
    )
    assert taken.split()[0] in run["progress"]["detail"] and "as it was at" in run["progress"]["detail"]
    restored = sorted(sha256(orthanc.http().get(f"/instances/{i}/file")) for i in orthanc.http().get_json("/instances"))
    assert restored == sorted(sha256(f) for f in files)
