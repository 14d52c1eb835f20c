"""A share link in Chromium on the real stack (Orthanc + plugin, MinIO, the dashboard under waitress): staff make
a link with a PIN; a second browser without any login refuses a wrong PIN, then shows the study's image; it still
shows it from the bucket once the PACS is stopped; after revocation and after expiry it says the link is no longer
available (410)."""

from __future__ import annotations

import time

import requests
from playwright.sync_api import expect, sync_playwright

from pacs_dashboard.db import Database
from pacs_dashboard.shares import ShareStore
from tests.browser.test_viewer_browser import wait_for_image
from tests.support.browser import ARGS, CHROMIUM, SHOTS, axe_problems, log_in
from tests.support.common import wait_until
from tests.support.dicomgen import make_study
from tests.support.store_account import mirrored, reader_store


def make_link(page, base: str, uid: str, pin: str = "") -> tuple[str, str]:
    """On the study's page, make a share link (with ``pin`` when given); the link and the PIN shown once."""
    page.goto(f"{base}/studies/{uid}")
    if pin:
        page.fill("#share-study input[name=pin]", pin)
    page.click("#make-share")
    expect(page.locator("h1")).to_have_text("Share link made")
    url = page.locator("#share-url").input_value()
    shown = page.locator("#share-pin").inner_text() if pin else ""
    return url, shown


def test_browser_share_link_with_pin_works_without_login_and_without_the_pacs_then_ends(
    orthanc_factory, dashboard_factory, minio_server, bucket, offsite_env
):
    store_env, dash_env = reader_store(minio_server, bucket)
    o = orthanc_factory({**store_env, **offsite_env})
    uid, files = make_study(
        2, rows=128, cols=128, patient_name="Smith^Bella", owner="Smith^John", species="Dog", modality="DX"
    )
    _rex, other_files = make_study(1, rows=64, cols=64, patient_name="Smith^Rex", owner="Smith^John")
    http = o.http()
    for f in files + other_files:
        http.upload(f)
    o.wait_replicated(3)
    d = dashboard_factory(o, dash_env)
    wait_until(lambda: mirrored(d) == 2, 30, "the dashboard's mirror of the catalog")
    SHOTS.mkdir(parents=True, exist_ok=True)

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        staff = browser.new_page(viewport={"width": 1200, "height": 900})
        log_in(staff, d)
        url, pin = make_link(staff, d.url, uid, pin="2468")
        assert pin == "2468" and uid not in url and "Smith" not in url
        staff.screenshot(path=str(SHOTS / "share-link-made.png"), full_page=True)
        assert axe_problems(staff) == []
        ending, _ = make_link(staff, d.url, uid)  # a second link, to expire

        # The recipient: another browser, never logged in.
        owner = browser.new_context(viewport={"width": 1000, "height": 800})
        page = owner.new_page()
        first = page.goto(url)
        assert first is not None and first.status == 200
        expect(page.locator("#share-pin-form")).to_be_visible()
        assert axe_problems(page) == []
        page.fill("input[name=pin]", "1357")
        page.click("button[type=submit]")
        expect(page.locator("#pin-error")).to_contain_text("That PIN is wrong")
        page.fill("input[name=pin]", pin)
        page.click("button[type=submit]")
        expect(page.locator("h1.study-name")).to_contain_text("Smith, Bella")
        wait_for_image(page)
        body = page.locator("body").inner_text()
        assert "Rex" not in body and "Log out" not in body and page.locator("#view-from").count() == 0
        assert [c["name"] for c in owner.cookies()] == ["pacs_share_pin"]  # no dashboard session
        page.screenshot(path=str(SHOTS / "share-recipient.png"), full_page=True)

        # The PACS stops: the link still shows the study, read from the bucket.
        o.stop()
        healthz = d.url + "/healthz"
        wait_until(lambda: requests.get(healthz, timeout=10).json()["parts"]["pacs"] == "red", 30, "the PACS seen down")
        page.reload()  # now read from the bucket only (the PACS's copy is not even asked)
        expect(page.locator("h1.study-name")).to_contain_text("Smith, Bella")
        wait_for_image(page)

        # Revoked on the "Shared links" page: the recipient's next open says the link is no longer available.
        staff.goto(d.url + "/shares")
        row = staff.locator("#shares tr[data-state=live]").filter(has_text="yes")  # the link with a PIN
        expect(row).to_have_count(1)
        expect(row.locator(".opens")).to_contain_text("127.0.0.1")
        row.locator("button:has-text('Revoke')").click()
        expect(staff.locator("#shares tr[data-state=revoked]")).to_have_count(1)
        ended = page.goto(url)
        assert ended is not None and ended.status == 410
        expect(page.locator("#share-title")).to_have_text("This link is no longer available")
        assert axe_problems(page) == []
        page.screenshot(path=str(SHOTS / "share-revoked.png"), full_page=True)

        # A link whose expiry has passed (moved into the past in the dashboard's database).
        store = ShareStore(Database(d.work / "dashboard.sqlite"))
        link = next(row.link for row in store.listing() if row.state == "live")
        store.set_expiry(link.id, time.time() - 1)
        expired = owner.new_page().goto(ending)
        assert expired is not None and expired.status == 410
        assert "expired" in expired.text()
        browser.close()
