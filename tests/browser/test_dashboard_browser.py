"""A receptionist's path in a real browser (Debian's Chromium driven by Playwright, headless)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from playwright.sync_api import Page, expect, sync_playwright

from pacs_dashboard.timefmt import clock
from tests.support.browser import ARGS, CHROMIUM, SHOTS
from tests.support.common import sha256, wait_until
from tests.support.dicomgen import make_study
from tests.support.store_account import mirrored, reader_store

# Someone is told when something breaks, so all can be green (no alert address is an amber light). A local
# address that refuses at once: nothing leaves this machine.
ALERTS_ON = {"APPRISE_URLS": "json://127.0.0.1:9/"}


def test_browser_login_see_green_find_and_restore_a_deleted_study(orthanc, dashboard_factory):
    _, files = make_study(
        6, rows=256, cols=256, patient_name="BELLA^DOG", patient_id="VET-1042", accession="XR-2231", modality="CR"
    )
    http = orthanc.http()
    for f in files:
        http.upload(f)
    orthanc.wait_replicated(6)
    assert all(r["state"] == "ok" for r in orthanc.run_job("snapshots"))
    assert all(r["state"] == "ok" for r in orthanc.run_job("drills"))
    d = dashboard_factory(orthanc, ALERTS_ON)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(d.url + "/")
        expect(page).to_have_url(d.url + "/login?next=/")
        page.fill("input[name=username]", d.username)
        page.fill("input[name=password]", d.password)
        page.click("button[type=submit]")
        expect(page.locator("#banner")).to_have_text("Your images are safe.")
        expect(page.locator(".light.red")).to_have_count(0)
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "health.png"), full_page=True)

        for sid in http.get_json("/studies"):  # someone deletes the study in the PACS by mistake
            http.delete(f"/studies/{sid}")

        page.click("text=Find & restore a study")
        page.fill("input[name=q]", "BELLA")
        page.click("button:has-text('Search')")
        page.click("text=Open")
        expect(page.locator("body")).to_contain_text("not in the PACS right now")
        page.click("#restore-local")
        expect(page.locator("h1").first).to_have_text("Restore this study?")  # asked first, with the name
        expect(page.locator("body")).to_contain_text("BELLA, DOG")
        page.click("#confirm-restore")
        expect(page.locator("#state")).to_have_attribute("data-state", "ok", timeout=60_000)
        expect(page.locator("#state")).to_contain_text("6 of 6 images restored and verified")
        assert page.eval_on_selector("#bar", "b => b.value === b.max")
        page.screenshot(path=str(SHOTS / "restore.png"), full_page=True)
        browser.close()

    restored = sorted(sha256(http.get(f"/instances/{i}/file")) for i in http.get_json("/instances"))
    assert restored == sorted(sha256(f) for f in files)


PHONE = {"width": 390, "height": 844}


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def fits_a_phone(page: Page) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"))


def pictures_drawn(page: Page) -> int:
    page.wait_for_load_state("networkidle")
    return int(
        page.evaluate(
            "[...document.querySelectorAll('#previews img')].filter(i => i.complete && i.naturalWidth > 0).length"
        )
    )


def test_browser_getting_a_study_back_in_every_everyday_case(
    orthanc_factory, dashboard_factory, minio_server, bucket, offsite_env
):
    """Issue 10 as staff meet it: 3 (deleted a minute after it arrived), 7 (asked first, already in the PACS,
    pictures, progress with the name), 1 (deleted before the last snapshot: which snapshots hold it) and 5
    (the PACS down: red light since when, last known states, search, pictures, a restore that waits)."""
    store_env, dash_env = reader_store(minio_server, bucket)
    o = orthanc_factory({**store_env, **offsite_env})
    http = o.http()
    bella, bella_files = make_study(
        4,
        rows=128,
        cols=128,
        patient_name="Smith^Bella",
        patient_id="VET-1042",
        owner="Smith^John",
        species="Dog",
        breed="Labrador",
        study_date="20261126",
        accession="XR-2231",
        modality="DX",
    )
    for f in bella_files:
        http.upload(f)
    o.wait_replicated(4)
    first = o.run_job("snapshots")[0]
    assert first["state"] == "ok" and all(r["state"] == "ok" for r in o.run_job("drills"))
    d = dashboard_factory(o, {**dash_env, **ALERTS_ON})

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.goto(d.url + "/")
        page.fill("input[name=username]", d.username)
        page.fill("input[name=password]", d.password)
        page.click("button[type=submit]")
        expect(page.locator("#banner")).to_have_text("Your images are safe.")

        # 3. A study copied and deleted from the PACS a minute later, no snapshot since: found and restored.
        max_uid, max_files = make_study(
            3,
            rows=96,
            cols=96,
            patient_name="O'Brien^Max",
            patient_id="VET-2001",
            owner="O'Brien^Ann",
            species="Cat",
            study_date="20261127",
            modality="CR",
        )
        for f in max_files:
            http.upload(f)
        o.wait_replicated(7)
        for sid in http.get_json("/studies"):
            if http.get_json(f"/studies/{sid}")["MainDicomTags"]["StudyInstanceUID"] == max_uid:
                http.delete(f"/studies/{sid}")
        page.click("text=Find & restore a study")
        page.fill("input[name=q]", "max o'brien")
        page.click("button:has-text('Search')")
        row = page.locator("tr.result")
        expect(row).to_have_count(1)
        expect(row).to_contain_text("O'Brien, Max")
        expect(row).to_contain_text("27 Nov 2026")
        expect(row).to_contain_text("Owner: O'Brien, Ann")
        shot(page, "search-by-name")
        row.locator("text=Open").click()
        expect(page.locator("#not-in-pacs")).to_contain_text("not in the PACS right now")
        assert pictures_drawn(page) == 3  # the images, drawn from the backup copy, to check it is the right one
        shot(page, "study-not-in-pacs")
        page.click("#restore-local")
        expect(page.locator("#restore-source")).to_contain_text("From the local backup copy")
        shot(page, "restore-confirm-with-pictures")
        page.click("#confirm-restore")
        expect(page.locator("h1.study-name")).to_contain_text("O'Brien, Max")
        expect(page.locator("#state")).to_have_attribute("data-state", "ok", timeout=60_000)
        expect(page.locator("#state")).to_have_text(
            "Done: 3 of 3 images restored and verified identical to the backup."
        )
        shot(page, "restore-done")

        # 7. A study that is in the PACS: the dashboard says so and checks it against the backup instead.
        page.goto(f"{d.url}/studies/{bella}")
        expect(page.locator("#in-pacs")).to_contain_text("in the PACS now (4 of 4 images)")
        page.click("#check-pacs")
        expect(page.locator("#check-state")).to_have_text(
            "All 4 images in the PACS are identical to the backup.", timeout=30_000
        )
        shot(page, "study-in-pacs-checked")

        # 1. Deleted, then a snapshot runs: the study page lists the snapshot that still holds it, in local time,
        # and the offsite restore uses it.
        for sid in http.get_json("/studies"):
            http.delete(f"/studies/{sid}")
        second = o.run_job("snapshots")[0]
        assert second["state"] == "ok"
        page.goto(f"{d.url}/studies/{bella}")
        expect(page.locator("#snapshots tr")).to_have_count(2)
        selected = page.locator("#snapshot-choice option:checked")
        expect(selected).to_have_attribute("value", first["summary"]["snapshot_id"])
        expect(selected).to_contain_text("(newest)")
        shot(page, "study-snapshots-holding-it")
        page.click("#restore-offsite")
        expect(page.locator("#restore-source")).to_contain_text("as it was at")
        page.click("#confirm-restore")
        expect(page.locator("h1.study-name")).to_contain_text("Smith, Bella")
        expect(page.locator("h1.study-name")).to_contain_text("26 Nov 2026")
        expect(page.locator("#state")).to_have_attribute("data-state", "ok", timeout=180_000)
        expect(page.locator("#state")).to_contain_text("4 of 4 images restored and verified")
        expect(page.locator("#result")).to_contain_text("the offsite copy as it was at")

        # 5. Deleted again, then the PACS goes down.
        wait_until(lambda: mirrored(d) == 2, 30, "the dashboard's mirror of the catalog")
        for sid in http.get_json("/studies"):
            http.delete(f"/studies/{sid}")
        o.stop()
        page.goto(d.url + "/")
        pacs = page.locator('.light[data-key="pacs"]')
        expect(pacs).to_have_class("light red", timeout=20_000)
        down_since = page.evaluate("fetch('/api/status').then(r => r.json()).then(j => j.pacs_down_since)")
        since = clock(down_since, ZoneInfo("Europe/Berlin"))
        expect(pacs.locator(".value")).to_have_text(f"not answering since {since}")
        expect(page.locator("#banner")).to_contain_text("The PACS is not answering")
        expect(page.locator('.light[data-key="store"] .note')).to_contain_text("Last known state, at")
        shot(page, "health-pacs-down")
        page.set_viewport_size(PHONE)
        assert fits_a_phone(page)
        shot(page, "health-pacs-down-phone")

        page.goto(d.url + "/studies?q=bella")
        expect(page.locator("#offline-notice")).to_contain_text("not answering since")
        expect(page.locator("tr.result")).to_contain_text("Smith, Bella")
        assert fits_a_phone(page)
        shot(page, "search-pacs-down-phone")
        page.locator("tr.result >> text=Open").click()
        expect(page.locator("#offline-notice")).to_contain_text("not answering since")
        assert pictures_drawn(page) == 4  # read from the bucket by the dashboard itself
        assert fits_a_phone(page)
        shot(page, "study-pacs-down-phone")
        page.set_viewport_size({"width": 1200, "height": 900})
        page.click("#restore-local")
        expect(page.locator("#restore-waits")).to_contain_text("starts by itself once the PACS answers")
        page.click("#confirm-restore")
        expect(page.locator("#waiting")).to_contain_text("starts by itself once the PACS answers")
        shot(page, "restore-waiting-for-pacs")
        o.start()  # the PACS answers again: the page follows the restore without a click
        expect(page.locator("#state")).to_have_attribute("data-state", "ok", timeout=120_000)
        expect(page.locator("#state")).to_contain_text("4 of 4 images restored and verified")
        expect(page.locator("h1.study-name")).to_contain_text("Smith, Bella")
        shot(page, "restore-done-after-pacs-returns")
        browser.close()

    restored = sorted(sha256(http.get(f"/instances/{i}/file")) for i in http.get_json("/instances"))
    assert restored == sorted(sha256(f) for f in bella_files)
