"""The printed pages: the staff guide (every light in plain words, whom to call) and the monthly restore-test
report (each test of a month in the clinic's time zone, totals, repairs, one honest sentence)."""

from __future__ import annotations

import html
import re
import time
from dataclasses import replace
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from pacs_dashboard.config import load_dashboard_settings
from pacs_dashboard.health import lights
from pacs_dashboard.restore_report import this_month
from pacs_dashboard.staff_guide import guide_entries
from tests.support.dashboard_fakes import drill_run, healthy_status

BERLIN = ZoneInfo("Europe/Berlin")


def at(text: str) -> float:
    """Epoch seconds of a UTC time written ``2026-10-15 10:00``."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def drill(when: str, target: str = "minio", **over):
    """A restore test that finished at ``when`` (UTC)."""
    return drill_run(at(when) + 60, target=target, **over)


def text_of(resp) -> str:
    """The page's words as a reader sees them (tags dropped, spaces folded)."""
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", resp.get_data(as_text=True))))


# --- the staff guide -------------------------------------------------------------------------------


def every_light_label() -> set[str]:
    """The labels health.py gives, over states that light every part (copies named as a clinic would)."""
    now = time.time()
    fc = {"size_bytes": 1, "quota_bytes": 10, "growth_bytes_per_month": 1, "months_until_full": 3.0, "light": "amber"}
    drive = {"connected": False, "sentence": "", "light": "red", "drives": [], "swap_next": "Drive B"}
    status = healthy_status()
    status["store"]["forecast"] = fc
    status["offsite"]["gdrive"] = {"repository": "rclone:gdrive:pacs", "forecast": fc, "last_drill": drill_run(now)}
    status["offsite"]["usb"] = {"repository": "/mnt/usb", "drive": drive, "forecast": fc, "last_drill": drill_run(now)}
    status["cloud_pacs"] = {"reachable": False, "depth": 3, "verified": 1, "failing": 0}
    states = [
        status,
        healthy_status(offsite={}, outbox_depth=4, oldest_pending_age_s=9999),
        {"enabled": False, "last_error": {"message": "MINIO_ENDPOINT is not set.", "at": None}},
        None,
    ]
    return {light.label for state in states for light in lights(state, None, now)}


def test_the_guide_names_every_light_the_health_page_can_show_and_says_what_to_do(logged_in):
    resp = logged_in.get("/guide")
    assert resp.get_data(as_text=True).count("<h1") == 1
    page = text_of(resp)
    labels = every_light_label()
    assert {"PACS", "Backups", "Local backup copy", "Restore test", "PACS disk space", "Cloud PACS copy"} <= labels
    for label in labels:
        stem = re.sub(r" \((offsite|gdrive|usb)\)$", "", label)  # a copy's own name: "(its name)" on paper
        assert stem in page, label
    assert "Offsite copy (its name)" in page and "Backup drive (its name)" in page
    # every kind of light has the guide's own words, not only the health page's advice
    assert all(entry.watches and entry.when_not_green for entry in guide_entries())
    assert "Red: a test found a problem; call your technician." in page
    assert "Find and restore a study" in page and "Restore from the local backup copy" in page


def test_the_guide_says_whom_to_call(app, logged_in, tmp_path):
    contact = "Sam Tech, 0171 555 0101, sam@example.com"
    env = {"ORTHANC_URL": "http://127.0.0.1:1", "DASHBOARD_DATA_DIR": str(tmp_path)}
    messy = "  Sam Tech,\t0171 555 0101,\n sam@example.com "  # spaces as typed are folded into one line
    settings = load_dashboard_settings({**env, "DASHBOARD_TECHNICIAN_CONTACT": messy})
    assert settings.technician_contact == contact
    app.extensions["settings"] = replace(app.extensions["settings"], technician_contact=contact)
    page = text_of(logged_in.get("/guide"))
    assert f"Your technician: {contact}" in page
    assert "not set" not in page


def test_the_guide_says_when_nobody_to_call_is_set(logged_in):
    page = text_of(logged_in.get("/guide"))
    assert "Your technician: not set: ask your technician to set it" in page


@pytest.mark.parametrize("path", ["/guide", "/reports/restore-tests?month=2026-10"])
def test_printed_pages_link_the_print_stylesheet_and_a_print_button_without_inline_script(logged_in, path):
    body = logged_in.get(path).get_data(as_text=True)
    assert '<link rel="stylesheet" media="print" href="/static/print.css">' in body
    assert "data-print>Print or save as PDF</button>" in body
    assert '<script src="/static/print.js" defer></script>' in body
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", body) and "style=" not in body


def test_the_print_stylesheet_fits_a4_without_the_menu_and_the_script_prints(logged_in):
    css = logged_in.get("/static/print.css").get_data(as_text=True)
    assert "size: A4" in css and re.search(r"header, nav, \.no-print[^{]*\{ display: none !important", css)
    assert "window.print()" in logged_in.get("/static/print.js").get_data(as_text=True)


def test_the_menu_links_the_guide_and_the_restore_tests_page_links_the_reports(logged_in):
    assert '<a href="/guide">Staff guide</a>' in logged_in.get("/").get_data(as_text=True)
    drills = logged_in.get("/drills").get_data(as_text=True)
    this = this_month(BERLIN, time.time()).key
    assert f'href="/reports/restore-tests?month={this}">this month</a>' in drills
    assert 'href="/reports/restore-tests">last month</a>' in drills


def test_printed_pages_need_a_login(app):
    for path in ("/guide", "/reports/restore-tests"):
        resp = app.test_client().get(path)
        assert resp.status_code == 302 and "/login" in resp.headers["Location"]


# --- the monthly restore-test report ---------------------------------------------------------------


def test_the_report_counts_the_months_tests_only(logged_in, backend):
    backend.run_list = [
        drill("2026-11-02 03:00"),  # next month
        drill("2026-10-20 03:00", target="offsite", checked=20),
        drill("2026-10-10 03:00", checked=20, identical=19, summary={"checked": 20, "identical": 19, "repaired": 1}),
        {**drill("2026-10-09 03:00"), "kind": "snapshot"},  # not a restore test
        drill("2026-09-30 12:00"),  # previous month
    ]
    page = text_of(logged_in.get("/reports/restore-tests?month=2026-10"))
    assert "Restore tests, October 2026" in page
    assert "Restore tests run: 2 (passed 2, with a problem 0, no image to check 0)" in page
    assert "Images checked: 40; identical 39, different 0, missing 0, repaired 1" in page
    assert "10 Oct 2026 05:00" in page and "20 Oct 2026 05:00" in page  # Berlin summer time, UTC+2
    assert "Offsite copy" in page and "Offsite copy (offsite)" not in page and "Local backup copy" in page
    assert "Passed after repairing 1 image from the PACS" in page
    assert "10 Oct 2026 05:00, Local backup copy: 1 image repaired from the PACS." in page
    assert (
        "Not every restore test in October 2026 restored every checked image byte for byte: "
        "1 image had to be repaired from the PACS." in page
    )
    assert "2 Nov" not in page and "30 Sep" not in page and "9 Oct" not in page


def test_a_month_where_every_image_came_back_says_so(logged_in, backend):
    backend.run_list = [drill("2026-10-20 03:00", target="offsite"), drill("2026-10-21 03:00")]
    page = text_of(logged_in.get("/reports/restore-tests?month=2026-10"))
    assert "Every restore test in October 2026 restored every checked image byte for byte." in page
    assert "Passed: every image identical" in page and "No image needed a repair in October 2026." in page
    assert "Images set aside (not copied) at the time of printing: 0 images." in page


def test_a_test_that_failed_or_found_damage_is_said_plainly(logged_in, backend):
    mismatches = [{"problem": "missing from the bucket"}, {"problem": "its bytes in the snapshot differ"}]
    backend.run_list = [
        drill("2026-10-05 03:00", summary={"checked": 20, "identical": 18, "mismatches": mismatches}),
        drill("2026-10-06 03:00", state="failed", error="The offsite server did not answer.", summary={}),
        drill("2026-10-07 03:00", summary={"checked": 0, "identical": 0, "note": "Nothing to test yet."}),
    ]
    page = text_of(logged_in.get("/reports/restore-tests?month=2026-10"))
    assert "Problem: 2 images did not come back identical" in page
    assert "Failed: The offsite server did not answer." in page
    assert "Not tested: no image to check (Nothing to test yet)" in page
    assert "Images checked: 20; identical 18, different 1, missing 1, repaired 0" in page
    assert (
        "Not every restore test in October 2026 restored every checked image byte for byte: 2 of 3 tests found "
        "a problem; 1 image came back different; 1 image missing; 1 test checked no image." in page
    )


def test_times_and_months_are_the_clinics(logged_in, backend):
    backend.run_list = [drill("2026-10-31 23:30")]  # 1 Nov 00:30 in Berlin (winter time, UTC+1)
    november = text_of(logged_in.get("/reports/restore-tests?month=2026-11"))
    assert "1 Nov 2026 00:30" in november and "Restore tests run: 1" in november
    assert "Europe/Berlin" in november
    october = text_of(logged_in.get("/reports/restore-tests?month=2026-10"))
    assert "No restore test ran in October 2026." in october and "Restore tests run: 0" in october


def test_an_empty_month_says_so(logged_in):
    resp = logged_in.get("/reports/restore-tests?month=2026-08")
    assert "No restore test ran in August 2026." in text_of(resp)
    assert 'id="no-tests"' in resp.get_data(as_text=True) and 'id="drills"' not in resp.get_data(as_text=True)


def test_without_a_month_the_report_is_of_the_last_complete_month(logged_in):
    last = this_month(BERLIN, time.time()).shifted(-1)
    page = text_of(logged_in.get("/reports/restore-tests"))
    assert f"Restore tests, {last.title}" in page and "is not over yet" not in page
    current = this_month(BERLIN, time.time())
    assert f"{current.title} is not over yet" in text_of(logged_in.get(f"/reports/restore-tests?month={current.key}"))


@pytest.mark.parametrize("month", ["2026-13", "2026-1", "November", "2026-00", "9999-12", "'><b>x</b>"])
def test_a_bad_month_is_one_sentence_and_a_400(logged_in, month):
    resp = logged_in.get("/reports/restore-tests", query_string={"month": month})
    assert resp.status_code == 400
    form = this_month(BERLIN, time.time()).key
    assert f"'{month}' is not a month; use the form {form}" in text_of(resp)
    assert "<b>x</b>" not in resp.get_data(as_text=True) and "Traceback" not in resp.get_data(as_text=True)


def test_while_the_pacs_is_down_the_report_uses_the_tests_the_dashboard_kept(app, logged_in, backend):
    app.extensions["mirror"].put("runs", {"at": at("2026-11-20 09:00"), "runs": [drill("2026-10-20 03:00")]})
    backend.down = True
    page = text_of(logged_in.get("/reports/restore-tests?month=2026-10"))
    assert "The PACS is not answering: this report shows the restore tests known at" in page
    assert "Restore tests run: 1" in page
    assert "Images set aside (not copied): not known while the PACS is not answering." in page


def test_the_restore_tests_page_reads_each_runs_summary_by_its_kind(logged_in, backend):
    """Drills and snapshots in the list, each in words from its typed summary (issue 26, item 3)."""
    snapshot = {**drill("2026-10-09 03:00"), "id": 6, "kind": "snapshot", "target": "offsite"}
    backend.run_list = [
        drill("2026-10-10 03:00", summary={"checked": 20, "identical": 19, "repaired": 1, "mismatches": []}),
        drill("2026-10-11 03:00", checked=0, summary={"checked": 0, "identical": 0, "note": "Nothing to test yet."}),
        drill("2026-10-12 03:00", state="running", finished_at=None, summary={}),
        {**snapshot, "summary": {"snapshot_id": "70fcbc69", "files_new": 7, "manifest_entries": 9, "studies": 1}},
        {**snapshot, "id": 7, "summary": {"snapshot_id": None, "skipped": "The PACS holds no images yet."}},
        {**drill("2026-10-13 03:00"), "kind": "restore"},  # not on this page
    ]
    page = text_of(logged_in.get("/drills"))
    assert "19 of 20 images identical, 1 repaired" in page
    assert "not tested" in page and "No images checked: Nothing to test yet." in page
    assert "running" in page and "0 of 0" not in page
    assert page.count("7 new files") == 1 and "None new files" not in page
