"""The restore-test light: green only when the last restore test of every copy checked at least one image
and every image came back identical; a test that checked no image proves nothing and says so. It says each
copy's figures (drill_figures.py, as the chart of restore tests beside it does), never a sum over copies.

A pure function (no Flask, no I/O) of the copies in the plugin's status.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import tzinfo

from pacs_backup.contracts.documents import RunDoc, TargetDoc

from .drill_figures import DrillFigures, figures, last_tests
from .light import AMBER, GREEN, RED, Light, age, copy_name
from .timefmt import clock

RESTORE_TESTS = "the Restore tests page"  # the menu's name for the drills page


def _run_age(run: RunDoc | None, now: float) -> float | None:
    finished = run.get("finished_at") if run else None
    return None if not finished else max(0.0, now - float(finished))


def drill_light(copies: Mapping[str, TargetDoc], now: float, t: dict[str, float], tz: tzinfo) -> Light:
    """Green only when the last restore test of every copy checked at least one image and all were identical."""
    label = "Restore test"
    if not copies:
        return Light(
            "drill",
            label,
            AMBER,
            "never run",
            f"No restore test has run yet; press 'Run a restore test now' on {RESTORE_TESTS}.",
        )
    failed, zero, untested, repaired = [], [], [], []
    ages: list[float] = []
    passed: list[DrillFigures] = []
    for name, info in copies.items():
        who, run = copy_name(name, info), info.get("last_drill")
        if not run:
            untested.append((who, info.get("next_drill_at")))
            continue
        if run.get("state") == "failed":
            failed.append((who, run))
            continue
        if run.get("state") in ("queued", "running"):
            good = info.get("last_good_drill_age_s")
            if good is None:
                untested.append((who, None))
            else:
                ages.append(float(good))
            continue
        drill = figures(run, name, info)
        if drill.differs:
            failed.append((who, run))
            continue
        if drill.checked == 0:
            zero.append((who, drill.note))
            continue
        if drill.repaired:
            repaired.append(who)
        passed.append(drill)
        finished_ago = _run_age(run, now)
        if finished_ago is not None:
            ages.append(finished_ago)
    if failed:
        who, run = failed[0]
        error = run.get("error") or f"{who} did not come back identical."
        return Light(
            "drill",
            label,
            RED,
            f"{len(failed)} failed",
            f"A restore test of {who} found a problem: {error} Call your technician.",
        )
    if zero:
        who, note = zero[0]
        return Light(
            "drill",
            label,
            AMBER,
            "checked no images",
            f"The last restore test of {who} checked no images, so it proves nothing yet"
            + (f" ({str(note).rstrip('.')})" if note else "")
            + ". It checks images once some are "
            f"backed up; to test now, press 'Run a restore test now' on {RESTORE_TESTS}.",
        )
    if untested:
        who, due = untested[0]
        if due is not None and float(due) > now:
            return Light(
                "drill",
                label,
                AMBER,
                f"first test at {clock(due, tz, now)}",
                f"{who[0].upper() + who[1:]} has not been tested yet; the first restore test runs by itself "
                f"at {clock(due, tz, now)}, or press 'Run a restore test now' on {RESTORE_TESTS}.",
            )
        return Light(
            "drill",
            label,
            AMBER,
            "never run",
            f"{who[0].upper() + who[1:]} has never been tested; press 'Run a restore test now' on {RESTORE_TESTS}.",
        )
    oldest = max(ages) if ages else None
    if oldest is None or oldest > t["drill_hours"] * 3600:
        return Light(
            "drill",
            label,
            AMBER,
            f"last {age(oldest)}",
            f"The last restore test is older than the {t['drill_hours']:.0f}-hour target; press "
            f"'Run a restore test now' on {RESTORE_TESTS}.",
        )
    figures_text = last_tests(passed)
    if repaired:
        return Light(
            "drill",
            label,
            AMBER,
            f"passed {age(oldest)}, with repairs",
            f"A damaged image in {repaired[0]} was repaired from the PACS. Nothing to do unless this "
            f"happens again; then call your technician. {figures_text}".rstrip(),
        )
    return Light("drill", label, GREEN, f"passed {age(oldest)}", f"Nothing to do. {figures_text}".rstrip())
