"""The audit log: who logged in, restored, ran drills or changed settings; viewable and exportable."""

from __future__ import annotations

import csv
import io
from datetime import datetime

from flask import Blueprint, Response, current_app, g, render_template

from .security import client_ip

bp = Blueprint("audit", __name__)


# A spreadsheet opening the export runs a cell that starts with one of these as a formula (it could
# fetch a web address or run a command); user names and details in the log are typed by anyone.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """The cell as text, with a leading single quote when a spreadsheet would read it as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _when(ts: float) -> str:
    """In the clinic's time zone, with its offset, so the log reads as the clinic lived it."""
    return datetime.fromtimestamp(ts, current_app.extensions["settings"].clinic.tz).strftime("%Y-%m-%d %H:%M:%S %z")


@bp.route("/audit")
def view() -> str:
    rows = [(_when(r[0]), *r[1:]) for r in current_app.extensions["db"].audit_rows(500)]
    return render_template("audit.html", rows=rows)


@bp.route("/audit.csv")
def export() -> Response:
    db = current_app.extensions["db"]
    db.audit("audit_exported", g.user, client_ip())
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["time", "user", "address", "action", "detail"])
    for r in db.audit_rows(100000):
        writer.writerow([csv_cell(cell) for cell in (_when(r[0]), *r[1:])])
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=pacs-backup-audit.csv"},
    )
