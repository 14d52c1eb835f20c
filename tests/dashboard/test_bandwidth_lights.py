"""A copy that shares the clinic's internet is judged by its upload window (issue 28 item 4): a snapshot
allowed only at night is not red at 10:00, and the health page shows the rule and the next window."""

from __future__ import annotations

import html
import time
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from pacs_dashboard.copy_lights import cloud_light, offsite_light
from pacs_dashboard.light import AMBER, DEFAULT_TARGETS, GREEN, RED

BERLIN = ZoneInfo("Europe/Berlin")
NIGHT = "06:00,0 20:00,off"  # snapshots only from 20:00 to 06:00


def at(hour: int, minute: int = 0) -> float:
    return datetime(2026, 12, 7, hour, minute, tzinfo=BERLIN).timestamp()


def target(now: float, made_at: float, **extra: object) -> dict[str, object]:
    return {
        "last_snapshot": {"state": "ok", "finished_at": made_at},
        "last_good_snapshot_age_s": now - made_at,
        "next_snapshot_at": at(20),
        **extra,
    }


def test_bandwidth_a_night_only_snapshot_is_not_red_at_ten_and_says_when_it_uploads_next():
    now = at(10)
    info = target(now, at(5), window=NIGHT, next_window=at(20))
    light = offsite_light("offsite", info, now, DEFAULT_TARGETS, BERLIN)  # the target: 3 hours
    assert light.state == GREEN and light.value == "newest 5.0 hours ago"
    assert "Uploads (sharing the clinic's internet): 06:00 no upload, 20:00 unlimited; next window at 20:00." in (
        light.advice
    )
    # Without the window the same copy is red: the window is what makes the difference.
    plain = offsite_light("offsite", target(now, at(5)), now, DEFAULT_TARGETS, BERLIN)
    assert plain.state == RED and "Uploads" not in plain.advice
    # Inside the window the time counts again: at 23:30 the 05:00 snapshot has had 4.5 hours to be renewed.
    late = at(23, 30)
    for made, state in ((at(5), RED), (at(21), GREEN)):
        info = target(late, made, window=NIGHT, next_window=None)
        light = offsite_light("offsite", info, late, DEFAULT_TARGETS, BERLIN)
        assert light.state == state and "uploading is allowed now" in light.advice


def test_bandwidth_cloud_pacs_waiting_for_its_window_is_not_slow():
    now = at(10)
    cloud = {
        "reachable": True,
        "depth": 40,
        "verified": 6,
        "failing": 0,
        "oldest_pending_age_s": 4 * 3600,
        "window": NIGHT,
        "next_window": at(20),
    }
    light = cloud_light(cloud, now, DEFAULT_TARGETS, BERLIN)  # type: ignore[arg-type]
    assert light.state == GREEN and light.value == "6 images sent and checked, 40 waiting for the upload window"
    assert "next window at 20:00" in light.advice
    slow = cloud_light({**cloud, "window": "off", "next_window": None}, now, DEFAULT_TARGETS, BERLIN)  # type: ignore[arg-type]
    assert slow.state == AMBER


def test_bandwidth_health_page_shows_the_rule_and_the_next_window(logged_in, backend):
    """On the health page, with the real clock: the window closed 4 hours ago and opens in 8."""
    now = time.time()
    here = datetime.fromtimestamp(now, BERLIN).replace(second=0, microsecond=0)
    closed, opens = here - timedelta(hours=4), here + timedelta(hours=8)
    offsite = backend.status_value["offsite"]["offsite"]
    offsite.update(
        window=f"{closed:%H:%M},0 {opens:%H:%M},off",
        next_window=opens.timestamp(),
        last_good_snapshot_age_s=5 * 3600,
        next_snapshot_at=opens.timestamp(),
    )
    page = html.unescape(logged_in.get("/").get_data(as_text=True))
    assert f"next window at {opens:%H:%M}" in page or f"next window at tomorrow {opens:%H:%M}" in page
    assert f"{closed:%H:%M} no upload, {opens:%H:%M} unlimited" in page or (
        f"{opens:%H:%M} unlimited, {closed:%H:%M} no upload" in page
    )
    assert "newest 5.0 hours ago" in page
    assert "older than the 3-hour target" not in page


def test_bandwidth_settings_page_lists_each_copys_rule_read_only(logged_in, backend):
    page = html.unescape(logged_in.get("/settings").get_data(as_text=True))
    assert "No limits: every copy uploads at any time, at full speed." in page
    backend.status_value["offsite"]["offsite"].update(window="08:00,2Mbit 18:00,off", next_window=None)
    backend.status_value["cloud_pacs"] = {
        "url": "https://cloud.example/dicom-web",
        "reachable": True,
        "depth": 0,
        "verified": 1,
        "failing": 0,
        "oldest_pending_age_s": None,
        "window": NIGHT,
        "next_window": time.time() + 3600,
    }
    page = html.unescape(logged_in.get("/settings").get_data(as_text=True))
    assert "The offsite copy: 08:00 2 Mbit/s, 18:00 unlimited; uploading is allowed now" in page
    assert "The cloud PACS copy: 06:00 no upload, 20:00 unlimited; next window at " in page
