"""A bucket that cannot lock copies, while the settings ask for it: the plugin refuses to copy (issue 28 item 1)
and the dashboard's light for the local copy says so with the plugin's one sentence."""

from __future__ import annotations

import time
from zoneinfo import ZoneInfo

from pacs_dashboard.health import lights
from pacs_dashboard.light import GREEN, RED
from tests.support.dashboard_fakes import healthy_status

SENTENCE = (
    "Backup copies are not being made: bucket pacs-backup has no object lock but BACKUP_LOCK_MODE=GOVERNANCE asks "
    "for locked copies, so set MINIO_BUCKET to a new bucket name (the store set-up step creates it with object "
    "lock) or set BACKUP_LOCK_MODE=OFF to accept copies that anyone holding the keys can delete."
)


def store_light(status):
    return next(light for light in lights(status, None, time.time(), None, ZoneInfo("UTC")) if light.key == "store")


def test_immutability_refusal_turns_the_local_copy_light_red_with_the_sentence():
    status = healthy_status()
    status["store"] = {"reachable": False, "refused": SENTENCE}
    light = store_light(status)
    assert light.state == RED and light.value == "refused: copies could be erased"
    assert light.advice.startswith(SENTENCE) and "ask your technician" in light.advice
    assert "running" not in light.advice  # not mistaken for an outage


def test_immutability_a_bucket_that_locks_keeps_the_light_green():
    assert store_light(healthy_status()).state == GREEN
