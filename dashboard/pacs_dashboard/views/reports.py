"""Printed pages: the one-page staff guide, and the monthly restore-test report (the proof for an auditor).

Both are for every logged-in person; each prints on paper without the menu (static/print.css).
"""

from __future__ import annotations

import time

from flask import Blueprint, abort, render_template, request

from pacs_backup.contracts.documents import RunDoc
from pacs_backup.contracts.errors import BackupError

from .. import deps
from ..fallback import kept_runs, known_status
from ..restore_report import build_report, parse_month, this_month
from ..staff_guide import guide_entries
from ..timefmt import clock, images

bp = Blueprint("reports", __name__)

# The plugin lists at most this many runs in one answer (GET /backup/runs?limit=).
RUN_LIMIT = 1000


@bp.app_template_global("current_month")
def current_month() -> str:
    """This month in the clinic's time zone (``2026-11``), for links to its report."""
    return this_month(deps.tz(), time.time()).key


@bp.route("/guide")
def staff_guide() -> str:
    contact = deps.settings().technician_contact
    return render_template("guide.html", entries=guide_entries(), contact=contact, printed=time.time())


def _drills() -> tuple[list[RunDoc], list[str]]:
    """The plugin's restore tests, or (PACS down) the list the dashboard kept, with a sentence saying so."""
    try:
        return deps.backend().runs(kind="drill", limit=RUN_LIMIT), []
    except BackupError:
        kept = kept_runs()
    if kept is None:
        return [], ["The PACS is not answering, and the dashboard has no list of its restore tests yet."]
    runs, at = kept
    return runs, [f"The PACS is not answering: this report shows the restore tests known at {clock(at, deps.tz())}."]


@bp.route("/reports/restore-tests")
def restore_test_report() -> str:
    zone, now = deps.tz(), time.time()
    try:
        month = parse_month(request.args.get("month"), zone, now)
    except ValueError as exc:
        abort(400, str(exc))
    runs, notes = _drills()
    status = known_status()
    report = build_report(month, runs, status, zone)
    start, end = month.bounds(zone)
    if start <= now < end:
        notes.append(f"{month.title} is not over yet: this report covers it up to now.")
    elif start > now:
        notes.append(f"{month.title} has not begun yet.")
    drills = [r for r in runs if r["kind"] == "drill"]
    if len(runs) >= RUN_LIMIT and drills and min(float(r.get("queued_at") or 0) for r in drills) > start:
        notes.append(
            f"The PACS lists only its last {RUN_LIMIT} restore tests: the earliest of {month.title} are no "
            "longer listed."
        )
    if status is None:
        set_aside = "Images set aside (not copied): not known while the PACS is not answering."
    else:
        n = int(status.get("quarantined") or 0)
        set_aside = (
            f"Images set aside (not copied) at the time of printing: {images(n)}. The PACS does not record "
            "when an image was set aside, so this is today's number, not the month's."
            + (" Your technician can list them and why." if n else "")
        )
    return render_template(
        "restore_test_report.html",
        report=report,
        notes=notes,
        set_aside=set_aside,
        previous=month.shifted(-1).key,
        following=month.shifted(1).key if month.shifted(1).key <= this_month(zone, now).key else None,
        printed=now,
    )
