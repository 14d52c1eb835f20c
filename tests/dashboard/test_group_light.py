"""The "Group copy" light on the clinic's health page, from the plugin's ``status["group"]``: green while the
images reach the group's store, amber while it does not answer for less than the target, red past it, when
refusals last or its restore test failed; the words plain."""

from __future__ import annotations

import time
from zoneinfo import ZoneInfo

from pacs_dashboard.group_light import group_light
from pacs_dashboard.health import lights
from pacs_dashboard.light import AMBER, DEFAULT_TARGETS, GREEN, RED
from tests.support.dashboard_fakes import healthy_status

BERLIN = ZoneInfo("Europe/Berlin")


def group_doc(**over):
    doc = {
        "clinic": "north",
        "endpoint": "s3.group.example:9000",
        "bucket": "group-pacs",
        "reachable": True,
        "unreachable_since": None,
        "depth": 0,
        "verified": 120,
        "failing": 0,
        "oldest_pending_age_s": None,
        "last_error": None,
        "lag_s": {"p50": 0.4, "p99": 1.2},
        "manifest_at": None,
    }
    return {**doc, **over}


def light_of(doc, now):
    return group_light(doc, now, DEFAULT_TARGETS, BERLIN)


def test_group_light_is_on_the_health_page_only_for_a_clinic_in_a_group():
    now = time.time()
    assert "group" not in {light.key for light in lights(healthy_status(), None, now, None, BERLIN)}
    status = {**healthy_status(), "group": group_doc(last_good_drill_age_s=3600.0)}
    light = {light.key: light for light in lights(status, None, now, None, BERLIN)}["group"]
    assert (light.label, light.state, light.value) == ("Group copy", GREEN, "120 images copied and checked")
    assert light.advice == "Nothing to do. Last good restore test 60 minutes ago."


def test_group_light_amber_while_the_store_is_briefly_down_then_red():
    now = time.time()
    brief = light_of(group_doc(reachable=False, unreachable_since=now - 600, depth=7), now)
    assert brief.state == AMBER and brief.value.startswith("group store not answering since ")
    assert brief.advice == (
        "7 images wait here and are copied when the group's store answers again. Nothing to do unless it lasts."
    )
    long = light_of(group_doc(reachable=False, unreachable_since=now - 4 * 3600, depth=70), now)
    assert long.state == RED and "longer than the 3-hour target" in long.advice and "group's admin" in long.advice


def test_group_light_refusals_drills_and_slow_copies():
    now = time.time()
    err = {"message": "The object store refused to upload x: AccessDenied", "at": now}
    failing = light_of(group_doc(failing=2, depth=2, oldest_pending_age_s=60, last_error=err), now)
    assert failing.state == AMBER and failing.value == "2 images being tried again" and "AccessDenied" in failing.advice
    lasting = light_of(group_doc(failing=2, depth=2, oldest_pending_age_s=4 * 3600, last_error=err), now)
    assert lasting.state == RED
    drill = {"state": "failed", "error": "1 image(s) in group store group-pacs (north) did not come back identical."}
    assert light_of(group_doc(last_drill=drill), now).value == "restore test failed"
    slow = light_of(group_doc(depth=40, oldest_pending_age_s=2 * 3600), now)
    assert slow.state == AMBER and slow.value == "40 waiting, oldest 2.0 hours ago"
    late = light_of(group_doc(depth=40, oldest_pending_age_s=5 * 3600), now)
    assert late.state == RED and "3-hour target" in late.advice


def test_group_light_says_what_the_group_catalog_has_not_received():
    now = time.time()
    feed = {
        "url": "https://group.example",
        "depth": 12,
        "last_sent_at": None,
        "last_heartbeat_at": None,
        "last_error": {"message": "The group service is not ready (HTTP 503); trying again.", "at": now},
    }
    light = light_of(group_doc(feed=feed), now)
    assert light.state == GREEN and "The group's catalog has not received 12 images yet" in light.advice
    assert "HTTP 503" in light.advice


def test_group_copy_counts_as_the_copy_away_from_this_box():
    now = time.time()
    status = healthy_status()
    status["offsite"]["offsite"].update(same_box=True, same_box_reason="a loopback rest-server")
    without = {light.key: light for light in lights(status, None, now, None, BERLIN)}
    assert without["offsite"].value == "none: every copy is on this box"
    with_group = {light.key: light for light in lights({**status, "group": group_doc()}, None, now, None, BERLIN)}
    assert with_group.get("offsite") is None or with_group["offsite"].value != "none: every copy is on this box"
