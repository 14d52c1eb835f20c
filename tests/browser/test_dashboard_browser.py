"""A receptionist's path in a real browser (Debian's Chromium driven by Playwright, headless)."""

from __future__ import annotations

import os
import shutil

from playwright.sync_api import expect, sync_playwright

from conftest import ROOT, sha256
from tests.support.dicomgen import make_study

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# UPDATE_SCREENSHOTS=1 refreshes the README's pictures; ordinary runs keep theirs in test-artifacts/.
SHOTS = ROOT / "docs" / "screenshots" if os.environ.get("UPDATE_SCREENSHOTS") else ROOT / "test-artifacts"


def test_browser_login_see_green_find_and_restore_a_deleted_study(orthanc, dashboard_factory):
    _, files = make_study(6, rows=256, cols=256, patient_name="BELLA^DOG", patient_id="VET-1042",
                                  accession="XR-2231", modality="CR")
    http = orthanc.http()
    for f in files:
        http.upload(f)
    orthanc.wait_replicated(6)
    assert all(r["state"] == "ok" for r in orthanc.run_job("snapshots"))
    assert all(r["state"] == "ok" for r in orthanc.run_job("drills"))
    d = dashboard_factory(orthanc)

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
        expect(page.locator("#state")).to_have_attribute("data-state", "ok", timeout=60_000)
        expect(page.locator("#state")).to_contain_text("6 of 6 images restored and verified")
        assert page.eval_on_selector("#bar", "b => b.value === b.max")
        page.screenshot(path=str(SHOTS / "restore.png"), full_page=True)
        browser.close()

    restored = sorted(sha256(http.get(f"/instances/{i}/file")) for i in http.get_json("/instances"))
    assert restored == sorted(sha256(f) for f in files)
