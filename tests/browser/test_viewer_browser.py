"""The study viewer (dwv) in Chromium: the image is on screen (the canvas is not blank), a window/level drag
changes it, compressed images (RLE, JPEG baseline, JPEG lossless, JPEG 2000) are drawn (JPEG-LS, which dwv cannot
decode, gets a sentence), the page says which copy is shown and runs under its Content-Security-Policy with no
violation.

The first test reads a stand-in DICOMweb service (the shapes of /copies/<source>/dicom-web) through the viewer
template with another DICOMweb root, as a share page does; the second reads the real stack's copies: the PACS,
then the bucket and the offsite snapshot once the study is deleted from the PACS."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Page, expect, sync_playwright
from pydicom.data import get_testdata_file

from pacs_dashboard import create_app
from pacs_dashboard.config import load_dashboard_settings
from pacs_dashboard.viewer_page import VENDOR_DIR
from tests.support.browser import ARGS, CHROMIUM, SHOTS, axe_problems, page_width_problem
from tests.support.dashboard_fakes import PASSWORD, FakeBackend
from tests.support.dicomgen import new_uid
from tests.support.viewer_images import compress, radiograph
from tests.support.viewer_standin import Served, standin_blueprint

# What the page's canvases show: per canvas, how many pixels were sampled, how many distinct grey values, and a
# checksum of them (a window/level change changes it).
PIXELS = """() => [...document.querySelectorAll('#layerGroup0 canvas')].filter(c => c.width && c.height).map(c => {
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  const seen = new Set(); let n = 0, sum = 0;
  for (let i = 0; i < d.length; i += 4 * 13) {
    if (d[i + 3] === 0) continue;
    n++; sum += d[i] * 3 + d[i + 1] * 5 + d[i + 2] * 7; seen.add(d[i]);
  }
  return {w: c.width, h: c.height, n, distinct: seen.size, sum};
})"""
# Violations of the page's CSP, collected from the first script on (the page and its dwv workers).
CSP_WATCH = """window.__csp = []; document.addEventListener('securitypolicyviolation',
  e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"""


def need_viewer_files() -> None:
    """dwv's files come from `dev/setup viewer` (make setup); without them the test fails saying so."""
    if not (VENDOR_DIR / "dwv.min.js").is_file():
        raise AssertionError(f"{VENDOR_DIR} holds no dwv.min.js: run dev/setup viewer")


def image_on_screen(page: Page) -> dict[str, Any] | None:
    """The canvas holding a picture (many grey values), or None while none does."""
    drawn = [c for c in page.evaluate(PIXELS) if c["n"] > 100 and c["distinct"] >= 8]
    return max(drawn, key=lambda c: c["n"]) if drawn else None


def wait_for_image(page: Page, timeout_s: float = 60) -> dict[str, Any]:
    """Wait (on the page's own state and its pixels, no sleeps) until an image is drawn; its pixel summary."""
    page.wait_for_function(
        "() => ['shown', 'failed'].includes(document.getElementById('viewer').dataset.state)", timeout=timeout_s * 1000
    )
    assert page.locator("#viewer").get_attribute("data-state") == "shown", page.locator("#viewer-message").inner_text()
    page.wait_for_function(
        f"() => ({PIXELS})().some(c => c.n > 100 && c.distinct >= 8)", timeout=timeout_s * 1000, polling=100
    )
    found = image_on_screen(page)
    assert found is not None
    return found


def drag_window_level(page: Page) -> None:
    """Window/level tool, then a drag across the image (as a vet does to brighten a radiograph)."""
    page.click("button[data-tool=WindowLevel]")
    expect(page.locator("button[data-tool=WindowLevel]")).to_have_attribute("aria-pressed", "true")
    box = page.locator("#layerGroup0").bounding_box()
    assert box is not None
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(x + step * 12, y + step * 9)
    page.mouse.up()


def assert_window_level_changes_pixels(page: Page) -> None:
    before = image_on_screen(page)
    assert before is not None
    drag_window_level(page)
    page.wait_for_function(
        f"(sum) => ({PIXELS})().some(c => c.n > 100 && c.sum !== sum)",
        arg=before["sum"],
        timeout=10_000,
    )
    after = image_on_screen(page)
    assert after is not None and after["sum"] != before["sum"], (before, after)


def csp_violations(page: Page, console: list[str]) -> list[str]:
    return list(page.evaluate("window.__csp || []")) + [m for m in console if "Content Security Policy" in m]


@pytest.fixture
def standin(tmp_path) -> Iterator[tuple[Served, str, list[str]]]:
    need_viewer_files()
    study, plain = new_uid(), new_uid()
    # Two plain images (the slider steps through them), then one series per compression dwv's workers decode.
    series = [(plain, [(new_uid(), radiograph(study, plain, series_number=1, instance_number=n)) for n in (1, 2)])]
    for number, kind in enumerate(("rle", "jpeg-baseline", "jpeg-lossless"), start=2):
        se, bits = new_uid(), 8 if kind == "jpeg-baseline" else 12
        series.append((se, [(new_uid(), compress(radiograph(study, se, series_number=number, bits=bits), kind))]))
    with open(get_testdata_file("JPEG2000.dcm"), "rb") as f:  # pydicom's JPEG 2000 sample (another study: dwv
        series.append((new_uid(), [(new_uid(), f.read())]))  # draws what it is given)
    se = new_uid()  # JPEG-LS: dwv 0.36 has no decoder for it
    series.append((se, [(new_uid(), compress(radiograph(study, se, series_number=6), "jpeg-ls"))]))
    env = {
        "ORTHANC_URL": "http://127.0.0.1:1",
        "DASHBOARD_DATA_DIR": str(tmp_path),
        "DASHBOARD_USERNAME": "admin",
        "DASHBOARD_PASSWORD": PASSWORD,
        "DASHBOARD_COOKIE_SECURE": "false",
        "DASHBOARD_TZ": "Europe/Berlin",
    }
    app = create_app(load_dashboard_settings(env), start_monitor=False, backend=FakeBackend())
    asked: list[str] = []
    app.register_blueprint(standin_blueprint(study, series, asked))
    served = Served(app)
    yield served, study, asked
    served.stop()


def test_viewer_draws_standin_copies_with_compressed_images_under_its_csp(standin):
    served, study, asked = standin
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        console: list[str] = []
        page.on("console", lambda m: console.append(m.text))
        page.add_init_script(CSP_WATCH)
        page.goto(served.url + "/login")
        page.fill("input[name=username]", "admin")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        expect(page).to_have_url(served.url + "/")  # logged in, on the health page

        started = time.monotonic()
        page.goto(f"{served.url}/standin/view/{study}")
        first = wait_for_image(page)
        print(f"stand-in: first image on screen in {time.monotonic() - started:.2f} s ({first})")
        # Without ?from= the page picks the bucket (no PACS in the list) and says so.
        expect(page.locator("#shown-copy")).to_have_text("You are looking at the copy in the bucket.")
        expect(page.locator("#view-from-list a[aria-current=true]")).to_have_text("Local backup copy")
        expect(page.locator("#view-from-list")).to_contain_text("not available: Plug in the backup drive.")
        expect(page.locator(".viewer-head h1")).to_contain_text("Rex Buddy")
        expect(page.locator("#viewer-facts")).to_contain_text("Owner: Smith, Anna")
        assert asked and all('multipart/related; type="application/dicom"' in a for a in asked), asked
        # The <base> dwv needed to find its workers is gone: the skip link stays on the page.
        assert page.evaluate("document.baseURI") == page.url

        # Two images in the first series: the slider moves to the second.
        expect(page.locator("#frame-number")).to_have_text("1 of 2")
        page.locator("#frame-slider").fill("2")
        expect(page.locator("#frame-number")).to_have_text("2 of 2")
        wait_for_image(page)
        assert_window_level_changes_pixels(page)

        # Length: the ruler of dwv's Draw tool, lengths in mm from Pixel Spacing.
        page.click("button[data-tool=Draw]")
        box = page.locator("#layerGroup0").bounding_box()
        assert box is not None
        page.mouse.move(box["x"] + 100, box["y"] + 100)
        page.mouse.down()
        page.mouse.move(box["x"] + 250, box["y"] + 200, steps=8)
        page.mouse.up()
        label = page.wait_for_function(
            "() => Konva.stages.flatMap(s => s.find('Text').map(t => t.text())).find(t => /mm/.test(t))",
            timeout=10_000,
        ).json_value()
        # 150 x 100 screen pixels; the 400 x 512 image fills the canvas's height; Pixel Spacing 0.2 mm.
        expected = math.hypot(150, 100) / (first["h"] / 512) * 0.2
        print(f"stand-in: ruler label {label!r}, expected {expected:.2f} mm")
        assert abs(float(label.split()[0]) - expected) < 0.5, (label, expected)
        page.click("#viewer-reset")

        # Each compressed series is decoded by dwv's workers and drawn.
        for index, kind in ((1, "RLE"), (2, "JPEG baseline"), (3, "JPEG lossless"), (4, "JPEG 2000")):
            page.click(f"#series-list button[data-index='{index}']")
            expect(page.locator(f"#series-list button[data-index='{index}']")).to_have_attribute("aria-pressed", "true")
            drawn = wait_for_image(page)
            print(f"stand-in: {kind} drawn ({drawn})")
        page.click("#series-list button[data-index='5']")  # JPEG-LS: a sentence, not a blank or broken page
        page.wait_for_function("() => document.getElementById('viewer').dataset.state === 'failed'")
        expect(page.locator("#viewer-message")).to_contain_text("stored in a form the viewer cannot draw")
        expect(page.locator("#viewer-message")).to_contain_text("JPEG-LS")

        # An offsite snapshot picked in the list: the sentence names it with its date.
        with page.expect_navigation():
            page.click("#view-from-list a[data-source='offsite-1a2b3c4d']")
        wait_for_image(page)
        expect(page.locator("#shown-copy")).to_have_text("You are looking at the offsite snapshot of 3 Dec 2026 02:00.")
        assert csp_violations(page, console) == [], console
        assert axe_problems(page) == []

        # On a phone: the page fits the screen's width and the image is drawn.
        page.set_viewport_size({"width": 390, "height": 844})
        page.reload()
        wait_for_image(page)
        assert page_width_problem(page) is None, page_width_problem(page)
        page.screenshot(path=str(SHOTS / "viewer-phone.png"), full_page=True)
        browser.close()


# --- the real stack: Orthanc + plugin, MinIO, restic on rest-server, the dashboard under waitress ----------


def log_in_as(page: Page, dashboard, user: str, password: str) -> None:
    page.goto(dashboard.url + "/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    expect(page.locator("#banner")).to_be_visible()


def open_viewer(page: Page, url: str, what: str) -> float:
    """Open the viewer at ``url``; the seconds until the image is on screen (printed)."""
    started = time.monotonic()
    page.goto(url)
    drawn = wait_for_image(page, 120)
    took = time.monotonic() - started
    print(f"viewer: first image from {what} on screen in {took:.2f} s ({drawn['w']}x{drawn['h']} canvas)")
    return took


def test_viewer_shows_the_pacs_bucket_and_offsite_copies_of_the_real_stack(
    orthanc_factory, dashboard_factory, minio_server, bucket, offsite_env
):
    from pacs_dashboard.db import Database
    from pacs_dashboard.security import hash_password
    from tests.support.pacs import orthanc_study_id
    from tests.support.store_account import reader_store

    need_viewer_files()
    store_env, dash_env = reader_store(minio_server, bucket)
    o = orthanc_factory({**store_env, **offsite_env})
    study, first, second = new_uid(), new_uid(), new_uid()
    files = [
        radiograph(study, first, series_number=1, rows=2048, cols=1664),  # a radiograph of ~6.8 MB
        compress(radiograph(study, second, series_number=2, bits=8), "jpeg-baseline"),
        compress(radiograph(study, second, series_number=2, instance_number=2), "rle"),
    ]
    for data in files:
        o.http().upload(data)
    o.wait_replicated(len(files))
    assert all(r["state"] == "ok" for r in o.run_job("snapshots"))
    d = dashboard_factory(o, dash_env)
    db = Database(d.work / "dashboard.sqlite")
    password = "pw-" + d.password
    db.add_user("xray-tech", hash_password(password), role="staff")
    db.add_user("nagios", hash_password(password), role="monitor")
    SHOTS.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(viewport={"width": 1280, "height": 1000})
        page = context.new_page()
        console: list[str] = []
        page.on("console", lambda m: console.append(m.text))
        page.add_init_script(CSP_WATCH)
        log_in_as(page, d, "xray-tech", password)

        # From the search results and the study's page: "View" opens the PACS's copy (the study is in the PACS).
        page.goto(f"{d.url}/studies?q=Rex")
        expect(page.locator("a.view-link")).to_have_count(1)
        page.goto(f"{d.url}/studies/{study}")
        expect(page.locator(".preview, #previews img").first).to_be_attached()  # the small previews stay
        page.click("#view-study")
        expect(page).to_have_url(f"{d.url}/studies/{study}/view")
        page.goto(d.url + "/")  # measured from a fresh navigation below
        times["pacs"] = open_viewer(page, f"{d.url}/studies/{study}/view", "the PACS")
        expect(page.locator("#shown-copy")).to_have_text("You are looking at the copy in the PACS.")
        expect(page.locator("#view-from-list a[aria-current=true]")).to_have_count(1)
        expect(page.locator(".viewer-head h1")).to_contain_text("Buddy")
        expect(page.locator("#viewer-facts")).to_contain_text("Owner: Smith, Anna")
        assert_window_level_changes_pixels(page)
        page.click("#series-list button[data-index='1']")  # JPEG baseline, then RLE: decoded by dwv's workers
        wait_for_image(page, 120)
        expect(page.locator("#frame-number")).to_have_text("1 of 2")
        page.locator("#frame-slider").fill("2")
        wait_for_image(page, 120)

        # Deleted from the PACS: what is on screen is the copy itself.
        o.http().delete(f"/studies/{orthanc_study_id(o, study)}")
        for source, words in (
            ("bucket", "You are looking at the copy in the bucket."),
            ("offsite", "You are looking at the offsite snapshot of "),
        ):
            times[source] = open_viewer(page, f"{d.url}/studies/{study}/view?from={source}", source)
            expect(page.locator("#shown-copy")).to_contain_text(words)
            assert_window_level_changes_pixels(page)
            if source == "offsite":
                page.screenshot(path=str(SHOTS / "viewer-offsite.png"))
        # Without a choice, the viewer now picks the bucket (the PACS no longer holds the study).
        page.goto(f"{d.url}/studies/{study}/view")
        wait_for_image(page, 120)
        expect(page.locator("#shown-copy")).to_have_text("You are looking at the copy in the bucket.")
        assert csp_violations(page, console) == [], console

        # A monitoring account may not see patients' images.
        monitor = browser.new_context().new_page()
        log_in_as(monitor, d, "nagios", password)
        resp = monitor.goto(f"{d.url}/studies/{study}/view")
        assert resp is not None and resp.status == 403
        expect(monitor.locator("main")).to_contain_text("cannot view studies")
        browser.close()
    print("viewer: first image on screen, seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in times.items()))


def test_viewer_shows_a_backup_drive_and_the_cloud_pacs_copies(
    orthanc_factory, dashboard_factory, minio_server, bucket, offsite_env, restic_password_file, tmp_path
):
    """The two other kinds of copy, once the study is deleted from the PACS: a loop-mounted backup drive and a
    second real Orthanc standing in for the cloud PACS. Each is picked in "View from", named on the page, drawn,
    and a window/level drag changes what is drawn."""
    from pacs_dashboard.db import Database
    from pacs_dashboard.security import hash_password
    from tests.support.cloud_pacs import cloud_status
    from tests.support.common import wait_until
    from tests.support.loopdrive import LoopDrive
    from tests.support.pacs import _wait_run, orthanc_study_id

    need_viewer_files()
    cloud = orthanc_factory({}, plugin=False, name="cloud-pacs")
    mount = tmp_path / "media" / "backup-drive"
    mount.mkdir(parents=True)
    o = orthanc_factory(
        {
            **minio_server.env(bucket),
            **offsite_env,
            "CLOUD_PACS_URL": cloud.url + "/dicom-web",
            "CLOUD_PACS_USERNAME": cloud.settings.username,
            "CLOUD_PACS_PASSWORD": cloud.settings.password,
            "BACKUP_EXTRA_TARGETS": "usb",
            "USB_RESTIC_REPOSITORY": str(mount / "pacs-backup"),
            "USB_RESTIC_PASSWORD_FILE": str(restic_password_file),
        }
    )
    study = new_uid()
    o.http().upload(radiograph(study, new_uid(), rows=768, cols=640))
    o.wait_replicated(1)
    wait_until(lambda: cloud_status(o)["verified"] == 1, 120, "the image verified in the cloud PACS")
    drive = LoopDrive(tmp_path / "usb.img")
    drive.plug(mount)
    try:
        runs = o.http().post_json("/backup/drives", {"target": "usb", "label": "Drive A"})["runs"]
        assert _wait_run(o, runs[0])["state"] == "ok"
        o.http().delete(f"/studies/{orthanc_study_id(o, study)}")
        d = dashboard_factory(o)
        password = "pw-" + d.password
        Database(d.work / "dashboard.sqlite").add_user("xray-tech", hash_password(password), role="staff")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_context(viewport={"width": 1280, "height": 1000}).new_page()
            console: list[str] = []
            page.on("console", lambda m: console.append(m.text))
            page.add_init_script(CSP_WATCH)
            log_in_as(page, d, "xray-tech", password)
            page.goto(f"{d.url}/studies/{study}/view?from=bucket")
            wait_for_image(page, 120)
            for source, words in (
                ("drive-usb", "You are looking at the copy on "),
                ("cloud-pacs", "You are looking at the copy in the cloud PACS."),
            ):
                link = page.locator(f"#view-from-list a[data-source='{source}']")
                expect(link).to_have_count(1)  # offered in "View from" because that copy holds the study
                link.click()
                expect(page).to_have_url(f"{d.url}/studies/{study}/view?from={source}")
                wait_for_image(page, 120)
                expect(page.locator("#shown-copy")).to_contain_text(words)
                assert_window_level_changes_pixels(page)
            assert csp_violations(page, console) == [], console
            browser.close()
    finally:
        drive.unplug()
