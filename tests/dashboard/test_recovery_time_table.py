"""The home page's "Time to get everything back" table: one row per copy in plain words, and a status of an
older plugin (no ``recovery_time``) shows the page without it."""

from __future__ import annotations

import html as markup
import re
import time
from zoneinfo import ZoneInfo

from pacs_dashboard.recovery_rows import recovery_rows
from tests.support.dashboard_fakes import healthy_status

BERLIN = ZoneInfo("Europe/Berlin")
MEASURED_ON = 1_796_300_000.0  # 3 Dec 2026, 12:13 UTC


def entry(copy: str, kind: str, sentence: str, measured_on: float | None = None) -> dict:
    measured = measured_on is not None
    return {
        "copy": copy,
        "kind": kind,
        "measured": measured,
        "seconds_per_gb": 29.3 if measured else None,
        "measured_on": measured_on,
        "measured_bytes": 2_100_000_000 if measured else None,
        "measured_instances": 40 if measured else None,
        "run_id": 12 if measured else None,
        "archive_bytes": 410_000_000_000,
        "estimate_s": 12_000.0 if measured else None,
        "sentence": sentence,
    }


MEASURED = "About 3 h 20 min for this clinic's 410 GB, measured restoring 2.1 GB on 3 Dec."
NOT_YET = "Not measured yet: restore a study from the offsite copy on the Find & restore a study page to measure it."


def rows_of(html: str) -> list[list[str]]:
    table = html.split('id="recovery-time"', 1)[1].split("</table>", 1)[0]
    return [
        [markup.unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)
        if "<td" in row
    ]


def test_rto_table_on_the_home_page_one_row_per_copy(backend, logged_in):
    backend.status_value = healthy_status(
        recovery_time=[
            entry("minio", "bucket", MEASURED, MEASURED_ON),
            entry("offsite", "offsite", NOT_YET),
            entry("cloud-pacs", "cloud_pacs", "Not measured yet: restore a study from the cloud PACS."),
        ]
    )
    resp = logged_in.get("/")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "Time to get everything back" in html
    assert rows_of(html) == [
        ["The local backup copy", MEASURED, "3 Dec 2026 13:13"],
        ["The offsite copy", NOT_YET, "Not yet"],
        ["The cloud PACS", "Not measured yet: restore a study from the cloud PACS.", "Not yet"],
    ]
    assert 'data-label="Time to get everything back"' in html  # a card per copy on a phone


def test_rto_an_older_plugin_without_the_key_still_shows_the_home_page(backend, logged_in):
    status = healthy_status()
    status.pop("recovery_time", None)
    backend.status_value = status
    resp = logged_in.get("/")
    assert resp.status_code == 200
    html = resp.get_data(as_text=True)
    assert "Are the images safe?" in html and 'id="recovery-time"' not in html


def test_rto_rows_leave_out_what_they_cannot_read():
    now = time.time()
    odd = [entry("usb", "drive", "About 9 h.", now), {"copy": 5}, "text", {"sentence": "no copy"}]
    status = healthy_status(recovery_time=odd)
    status["offsite"]["usb"] = {"drive": {"connected": True}}
    rows = recovery_rows(status, BERLIN)
    assert rows is not None and [(r.copy, r.sentence, r.is_measured) for r in rows] == [
        ("The backup drive (usb)", "About 9 h.", True)
    ]
    assert recovery_rows(None, BERLIN) is None
    assert recovery_rows(healthy_status(recovery_time="soon"), BERLIN) is None
