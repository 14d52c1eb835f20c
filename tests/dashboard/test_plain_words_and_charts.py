"""Staff pages in plain words (issue 13): charts people can read without hovering, the audit log in
sentences, numbers refused with a sentence, no raw ids outside "Technical details"."""

from __future__ import annotations

import re
import time
from datetime import datetime
from zoneinfo import ZoneInfo

from pacs_dashboard.audit import action_words, readable
from pacs_dashboard.charts import Bar, bar_chart, line_chart
from pacs_dashboard.inputs import number_in
from pacs_dashboard.light import copy_name

BERLIN = ZoneInfo("Europe/Berlin")
NOV_21 = datetime(2026, 11, 21, 12, tzinfo=BERLIN).timestamp()


def visible_text(svg: str) -> str:
    return " ".join(re.findall(r">([^<>]+)</text>", svg))


def test_size_chart_has_a_title_dates_units_and_the_newest_lowest_and_highest_values_written_on_it():
    points = [(NOV_21 + i * 86400, gb) for i, gb in enumerate([10.0, 4.0, 12.5, 11.0, 11.5])]
    html = line_chart(points, "Size of the backed-up images", "GB", BERLIN)
    assert "<figcaption>Size of the backed-up images</figcaption>" in html
    words = visible_text(html)
    assert "21 Nov" in words and "25 Nov" in words  # a date axis
    assert "GB" in words  # the value axis says its unit
    assert "11.5 GB on 25 Nov" in words  # the newest value, readable without hovering
    assert "highest 12.5 GB" in words and "lowest 4 GB" in words
    assert 'viewBox="0 0 ' in html and 'role="img"' in html and "Now 11.5 GB" in html  # scales; said aloud


def test_a_chart_without_data_says_so_in_words():
    assert "Not enough data yet" in line_chart([(NOV_21, 1.0)], "Size", "GB", BERLIN)
    assert "No restore test in the last 30 days." in bar_chart(
        [], "Restore tests", "images", BERLIN, empty=("No restore test in the last 30 days.")
    )


def test_restore_test_chart_shows_checked_and_identical_per_test_and_marks_failures_red():
    bars = [
        Bar(NOV_21, 12, 12, True, "12 of 12 images identical"),
        Bar(NOV_21 + 86400, 12, 0, False, "failed"),
        Bar(NOV_21 + 2 * 86400, 10, 9, False, "9 of 10 images identical"),
    ]
    html = bar_chart(bars, "Restore tests: images checked in each test", "images", BERLIN, key="Green: identical.")
    assert "Newest, 23 Nov: 9 of 10 images identical" in visible_text(html)
    assert html.count('fill="#dc2626"') == 2 and html.count('fill="#16a34a"') == 2  # failed, and 1 of 10 differs
    assert "21 Nov" in visible_text(html) and "images" in visible_text(html)
    assert "3 shown, 2 failed" in html and "Green: identical." in html


def test_health_page_shows_staff_charts_and_keeps_technician_charts_under_technical_details(logged_in, app):
    db = app.extensions["db"]
    for i in range(3):
        db.add_sample(time.time() - (3 - i) * 86400, {"bytes": 2_000_000_000, "lag_p99": 90})
    html = logged_in.get("/").get_data(as_text=True)
    staff, technical = html.split('<details class="tech" id="tech-charts">')
    assert "Size of the backed-up images" in staff and "Restore tests: images checked" in staff
    assert "2.0 GB on" in staff  # as every size on the dashboard is written
    assert "the slowest 1 in 100 took" in technical and "Offsite copies: how long each took" in technical
    assert "99th percentile" not in html and "Copy delay" not in html


def test_audit_actions_read_as_sentences_and_ids_go_to_technical_details():
    assert action_words("settings_changed") == "Changed the settings"
    assert action_words("restore_requested") == "Asked to restore a study into the PACS"
    assert action_words("something_new_happened") == "Something new happened"  # unknown: its name in words
    assert readable("settings_changed", "{}") == ("Nothing was changed.", "")
    assert readable("settings_changed", "{'drill_hours': 24.0}") == ("restore test at least every (hours): 24", "")
    words, technical = readable("restore_requested", "study 1.2.826.0.1.3680043.8.498.1 from minio snapshot 0a1b2c3d4e")
    assert words == "a study from the local backup copy"
    assert "1.2.826.0.1.3680043.8.498.1" in technical and "0a1b2c3d4e" in technical
    assert readable("drill_requested", "runs [3, 4]") == ("", "runs [3, 4]")


def test_audit_page_says_what_happened_in_words(logged_in, app):
    app.extensions["db"].audit("settings_changed", "admin", "127.0.0.1", "{}")
    app.extensions["db"].audit("restore_requested", "admin", "127.0.0.1", "study 1.2.3.4.5 from minio")
    html = logged_in.get("/audit").get_data(as_text=True)
    assert "Changed the settings" in html and "Nothing was changed." in html and "settings_changed {}" not in html
    assert "Asked to restore a study into the PACS" in html
    before_details = html.split("<details")[0]
    assert "1.2.3.4.5" not in before_details and "1.2.3.4.5" in html  # the id only under Technical details
    assert 'data-label="What happened"' in html  # a card on a phone


def test_numbers_are_refused_with_a_sentence():
    assert number_in("five", "minutes", 1, 1440) == "'five' is not a number of minutes."
    assert number_in("0", "minutes", 1, 1440) == "0 minutes is not allowed: give a number of minutes from 1 to 1440."
    assert number_in("120", "percent", 50, 99) == "120% is not allowed: give a percentage from 50 to 99."
    assert number_in("", "hours", 1, 720) == "Nothing was typed where a number of hours belongs."
    assert number_in(" 12.5 ", "hours", 1, 720) == 12.5


def test_a_copy_is_not_named_twice():
    assert copy_name("offsite") == "the offsite copy"
    assert copy_name("nas") == "the offsite copy (nas)"
    assert copy_name("minio") == "the local backup copy"


def test_every_page_has_landmarks_a_skip_link_and_the_clinic_time_zone(logged_in):
    html = logged_in.get("/").get_data(as_text=True)
    assert '<a class="skip-link" href="#main">' in html and '<main id="main"' in html
    assert '<nav aria-label="Main menu">' in html and "<footer>" in html and "Europe/Berlin" in html
    assert html.count("<h1") == 1
    assert 'id="banner" class="banner green" role="status" aria-live="polite"' in html
    assert 'id="lights" class="lights" data-status-url' in html and "aria-live" not in html.split('id="lights"')[1]


# Words staff do not use (issue 13, item 4). Allowed only under "Technical details".
JARGON = re.compile(
    r"\b(orthanc|object store|minio|bucket|copy queue|instances?|sop|percentile|p99|restic|snapshot id)\b"
    r"|copy \(offsite\)",
    re.I,
)


def staff_words(html: str) -> str:
    """What a person reads on the page: no tags, scripts, styles or technician sections."""
    html = re.sub(r"<details[^>]*class=\"[^\"]*tech[^\"]*\".*?</details>", " ", html, flags=re.S)
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def jargon_on(client, paths: list[str]) -> list[str]:
    found = []
    for path in paths:
        resp = client.get(path, follow_redirects=True)
        assert resp.status_code in (200, 503), f"{path} answered {resp.status_code}"
        words = staff_words(resp.get_data(as_text=True))
        found += [f"{path}: ...{words[max(0, m.start() - 60) : m.end() + 30]}" for m in JARGON.finditer(words)]
    return found


def staff_pages() -> list[str]:
    from tests.support.dashboard_fakes import BELLA

    uid = BELLA["study_uid"]
    return [
        "/", "/studies?q=Bella", "/studies?q=nobody", f"/studies/{uid}", f"/studies/{uid}/restore?source=minio",
        f"/studies/{uid}/restore?source=offsite", "/drills", "/drives", "/audit", "/guide", "/reports/restore-tests",
        "/account", "/account/password", "/alerts", "/users", "/login",
    ]  # fmt: skip


def test_staff_pages_use_no_technician_words_outside_technical_details(logged_in, backend):
    assert jargon_on(logged_in, staff_pages()) == []


def test_staff_pages_use_no_technician_words_while_the_pacs_is_down(app, logged_in, backend):
    from pacs_dashboard.monitor import Monitor

    ext = app.extensions  # the copies pages fall back on are filled while the PACS answers
    Monitor(backend, ext["db"], (), 30, notify=lambda *a: True, keeper=ext["keeper"], mirror=ext["mirror"]).tick()
    backend.down = True
    assert jargon_on(logged_in, staff_pages()) == []


def test_the_jargon_check_sees_words_on_a_page():
    assert JARGON.search(staff_words("<p>3 instances in the copy queue</p>"))
    assert not JARGON.search(staff_words('<details class="tech"><p>Orthanc 1.12</p></details><p>3 images</p>'))
