"""A copy on the same box as the PACS is not offsite (issue 29 item 1): its light is amber and says so, the
3-2-1 count does not take it as the copy outside the building, and a setting for tests and trials is shown
as what it is."""

from __future__ import annotations

import time
from zoneinfo import ZoneInfo

from pacs_dashboard.copy_lights import NOT_OFFSITE, cloud_light, offsite_light
from pacs_dashboard.health import lights
from pacs_dashboard.light import AMBER, DEFAULT_TARGETS, GREEN, RED, overall
from pacs_dashboard.summary import text
from tests.support.dashboard_fakes import healthy_status

BERLIN = ZoneInfo("Europe/Berlin")
ON_BOX = {"same_box": True, "same_box_reason": "rest-server is a service of this appliance's own Compose stack"}
CLOUD = {"reachable": True, "depth": 0, "verified": 6, "failing": 0, "oldest_pending_age_s": None}


def by_key(ls):
    return {light.key: light for light in ls}


def demo_status(**over):
    """The offsite-demo profile: the only offsite copy is the rest-server container on the same box."""
    st = healthy_status(**over)
    st["offsite"]["offsite"].update(ON_BOX, repository="rest:http://rest-server:8000/clinic")
    return st


def test_a_fresh_copy_on_this_box_is_amber_not_offsite_and_says_why():
    now = time.time()
    light = by_key(lights(demo_status(), None, now, None, BERLIN))["offsite-offsite"]
    assert light.state == AMBER and light.label == "Offsite copy"
    assert light.value == NOT_OFFSITE == "not offsite - protects against mistakes, not against fire or theft"
    assert light.advice.startswith("Newest 60 seconds ago. This copy is on the same box as the PACS (rest-server ")
    assert "fire, flood or theft of the box loses it too" in light.advice and "another building" in light.advice


def test_a_broken_copy_on_this_box_stays_red_and_a_failed_snapshot_keeps_its_advice():
    now = time.time()
    info = {**ON_BOX, "last_good_snapshot_age_s": 5 * 3600, "last_snapshot": {"state": "ok"}}
    red = offsite_light("offsite", info, now, DEFAULT_TARGETS, BERLIN)
    assert red.state == RED and red.value == "newest 5.0 hours ago" and "same box as the PACS" in red.advice
    failed = {**ON_BOX, "last_good_snapshot_age_s": 60, "last_snapshot": {"state": "failed", "error": "Locked."}}
    amber = offsite_light("offsite", failed, now, DEFAULT_TARGETS, BERLIN)
    assert amber.state == AMBER and amber.value == NOT_OFFSITE
    assert amber.advice.startswith("Newest 60 seconds ago. The last snapshot failed and will be tried again: Locked.")
    first = {**ON_BOX, "next_snapshot_at": now + 600}
    waiting = offsite_light("offsite", first, now, DEFAULT_TARGETS, BERLIN).advice
    assert waiting.startswith("First snapshot at ") and "Nothing to do" not in waiting  # it is amber


def test_an_older_plugin_or_a_copy_elsewhere_is_judged_as_before():
    now = time.time()
    for extra in ({}, {"same_box": False, "same_box_reason": "backup.example is another machine"}):
        st = healthy_status()
        st["offsite"]["offsite"].update(extra)
        ls = by_key(lights(st, None, now, None, BERLIN))
        assert ls["offsite-offsite"].state == GREEN and ls["offsite-offsite"].advice == "Nothing to do."
        assert "offsite" not in ls and overall(list(ls.values())) == GREEN


def test_the_3_2_1_count_does_not_take_a_copy_on_this_box_as_the_one_outside():
    now = time.time()
    ls = by_key(lights(demo_status(), None, now, None, BERLIN))
    summary = ls["offsite"]
    assert summary.state == AMBER and summary.label == "Copy away from this box"
    assert summary.value == "none: every copy is on this box"
    assert "Every copy (the offsite copy) is on this box" in summary.advice
    assert list(ls).index("offsite") < list(ls).index("offsite-offsite")
    # A backup drive taken home, or a cloud PACS elsewhere, is a copy away from the box.
    with_drive = demo_status()
    with_drive["offsite"]["usb"] = {"repository": "/mnt/usb", "same_box": False, "drive": {"light": "green"}}
    assert "offsite" not in by_key(lights(with_drive, None, now, None, BERLIN))
    assert "offsite" not in by_key(lights(demo_status(cloud_pacs=CLOUD), None, now, None, BERLIN))
    # A cloud PACS on this box (a second Orthanc) is counted on the box too.
    cloud_here = demo_status(cloud_pacs={**CLOUD, "same_box": True, "same_box_reason": "orthanc is a service"})
    both = by_key(lights(cloud_here, None, now, None, BERLIN))
    assert "the offsite copy, the cloud PACS copy" in both["offsite"].advice
    assert both["cloud-pacs"].state == AMBER and both["cloud-pacs"].value == NOT_OFFSITE
    assert both["cloud-pacs"].advice.startswith("6 images sent and checked. This copy is on the same box")
    # No copy at all is still red.
    assert by_key(lights(healthy_status(offsite={}), None, now, None, BERLIN))["offsite"].state == RED


def test_a_copy_treated_as_offsite_by_setting_is_judged_as_offsite_and_says_so():
    now = time.time()
    st = demo_status()
    st["offsite"]["offsite"]["treated_as_offsite"] = True
    ls = by_key(lights(st, None, now, None, BERLIN))
    assert "offsite" not in ls and ls["offsite-offsite"].state == GREEN
    assert ls["offsite-offsite"].value == "newest 60 seconds ago"
    treated = "treated as offsite by setting (BACKUP_TREAT_AS_OFFSITE, for tests and trials)"
    assert treated in ls["offsite-offsite"].advice
    cloud = cloud_light({**CLOUD, **ON_BOX, "treated_as_offsite": True}, now, DEFAULT_TARGETS, BERLIN)
    assert cloud.state == GREEN and "treated as offsite by setting" in cloud.advice


def test_the_health_page_the_summary_e_mail_and_healthz_say_it(logged_in, backend):
    backend.status_value = demo_status()
    page = logged_in.get("/").get_data(as_text=True)
    assert 'class="light amber" data-key="offsite-offsite"' in page and NOT_OFFSITE in page
    assert "none: every copy is on this box" in page and "Backups work, but something needs attention." in page
    parts = logged_in.get("/healthz").get_json()["parts"]
    assert parts["offsite-offsite"] == AMBER and parts["offsite"] == AMBER
    ls = lights(backend.status_value, None, time.time(), None, BERLIN)
    _, body = text(ls, backend.status_value, "daily", time.time(), BERLIN)
    assert f"- Offsite copy: {NOT_OFFSITE} (needs attention)." in body
    assert "- Copy away from this box: none: every copy is on this box (needs attention)." in body
    guide = logged_in.get("/guide").get_data(as_text=True)
    assert "Copy away from this box" in guide and "not offsite" in guide
