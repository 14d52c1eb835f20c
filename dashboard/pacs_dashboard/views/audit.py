"""The audit log (administrators): who logged in, restored, ran restore tests or changed settings, as a page
in words and as a CSV file for a spreadsheet (every export is itself written to the log)."""

from __future__ import annotations

import csv
import io
from datetime import datetime

from flask import Blueprint, Response, g, render_template

from .. import deps
from ..audit import entry
from ..security import client_ip

bp = Blueprint("audit", __name__)

SHOWN = 500  # entries on the page; the export has up to EXPORTED
EXPORTED = 100000

# A spreadsheet opening the export runs a cell that starts with one of these as a formula (it could
# fetch a web address or run a command); user names and details in the log are typed by anyone.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """The cell as text, with a leading single quote when a spreadsheet would read it as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def _when(ts: float) -> str:
    """In the clinic's time zone, with its offset, so the log reads as the clinic lived it."""
    return datetime.fromtimestamp(ts, deps.tz()).strftime("%Y-%m-%d %H:%M:%S %z")


@bp.route("/audit")
def view() -> str:
    zone = deps.tz()
    entries = [entry(tuple(r), zone) for r in deps.db().audit_rows(SHOWN)]
    return render_template("audit.html", entries=entries)


@bp.route("/audit.csv")
def export() -> Response:
    db = deps.db()
    db.audit("audit_exported", g.user, client_ip())
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["time", "user", "address", "action", "detail"])
    for r in db.audit_rows(EXPORTED):
        writer.writerow([csv_cell(cell) for cell in (_when(r[0]), *r[1:])])
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": "attachment; filename=pacs-backup-audit.csv"},
    )
