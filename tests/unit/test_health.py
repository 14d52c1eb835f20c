"""The overall health word is green only when every part was checked and is fine."""

from __future__ import annotations

from pacs_backup.jobs.health import overall_state

GOOD = {"store": {"reachable": True}, "failed": 0, "quarantined": 0, "oldest_pending_age_s": None}
OK_RUN = {"state": "ok"}


def state(rep=None, offsite=None, targets=True, refused_at=None, now=1000.0):
    return overall_state(
        rep or GOOD,
        offsite if offsite is not None else {"offsite": {"last_snapshot": OK_RUN}},
        targets,
        refused_at,
        now,
    )


def test_every_part_fine_is_ok():
    assert state() == "ok"


def test_each_problem_turns_it():
    assert state({**GOOD, "store": {"reachable": False}}) == "error"
    assert state({**GOOD, "quarantined": 1}) == "degraded"
    assert state({**GOOD, "oldest_pending_age_s": 301}) == "degraded"
    assert state(offsite={"offsite": {"last_drill": {"state": "failed"}}}) == "degraded"
    assert state(targets=False) == "degraded"
    assert state(refused_at=900.0) == "degraded"
    assert state(refused_at=1000.0 - 25 * 3600) == "ok"
