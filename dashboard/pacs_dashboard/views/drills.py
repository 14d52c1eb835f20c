"""Restore tests and offsite snapshots: their history, and buttons to run them now (the plugin runs them)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, url_for
from werkzeug.wrappers import Response as WerkzeugResponse

from pacs_backup.contracts.errors import BackupError
from pacs_backup.contracts.runs import parse_summary

from .. import deps
from ..backend_api import PacsDown
from ..fallback import down_sentence, known_down, recent_runs
from ..inputs import abort_for, form_text, sentence
from ..security import client_ip
from ..timefmt import clock

bp = Blueprint("drills", __name__)


@bp.route("/drills")
def history() -> str:
    """The runs from the plugin; while the PACS is down, the list the dashboard kept, said so (not an error)."""
    down, notice = known_down(), None
    try:
        runs, kept_at = recent_runs(200, down=down is not None)
        if down is None and kept_at is not None:  # the plugin did not answer just now
            down = deps.keeper().mark_down("the run list could not be read")
    except PacsDown as exc:
        runs, kept_at, down = [], None, deps.keeper().mark_down(str(exc))
    except BackupError as exc:
        abort(503, sentence(exc))
    if down is not None:
        notice = (
            down_sentence(down)
            + (
                f" This is the list as it was at {clock(kept_at, deps.tz())}."
                if kept_at
                else " The list shows once it answers."
            )
            + " Restore tests and snapshots run again once it answers."
        )
    return render_template(
        "drills.html",
        runs=[(r, parse_summary(r["kind"], r.get("summary"))) for r in runs if r["kind"] in ("drill", "snapshot")],
        notice=notice,
        down=down is not None,
    )


@bp.route("/drills/run", methods=["POST"])
def run_now() -> WerkzeugResponse:
    kind = "snapshots" if form_text("kind", 20, "The kind of job") == "snapshot" else "drills"
    try:
        ids = deps.backend().trigger(kind)
    except BackupError as exc:
        abort_for(exc)
    deps.db().audit(f"{kind[:-1]}_requested", g.user, client_ip(), f"runs {ids}")
    flash(f"Started: {'offsite snapshot' if kind == 'snapshots' else 'restore test'}. Results appear below.")
    return redirect(url_for("drills.history"))
