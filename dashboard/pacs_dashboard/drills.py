"""Restore drills and snapshots: history, and buttons to run them now."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app, flash, g, redirect, render_template, request, url_for

from pacs_backup.errors import BackupError

from .security import client_ip

bp = Blueprint("drills", __name__)


@bp.route("/drills")
def history() -> str:
    backend = current_app.extensions["backend"]
    try:
        runs = backend.runs(limit=200)
    except BackupError as exc:
        abort(503, str(exc))
    return render_template("drills.html", runs=[r for r in runs if r["kind"] in ("drill", "snapshot")])


@bp.route("/drills/run", methods=["POST"])
def run_now() -> Response:
    kind = "snapshots" if request.form.get("kind") == "snapshot" else "drills"
    try:
        ids = current_app.extensions["backend"].trigger(kind)
    except BackupError as exc:
        abort(400, str(exc))
    current_app.extensions["db"].audit(f"{kind[:-1]}_requested", g.user, client_ip(), f"runs {ids}")
    flash(f"Started: {'offsite snapshot' if kind == 'snapshots' else 'restore test'}. Results appear below.")
    return redirect(url_for("drills.history"))  # type: ignore[return-value]
