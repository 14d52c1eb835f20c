"""The study viewer (dwv) for staff, reading any copy of a study through the dashboard's DICOMweb service,
and the viewer's own files (npm's, unmodified) with long cache headers.

The page reads the copy the user picks (``?from=pacs``, ``bucket``, ``offsite``...): the sources holding the
study come from ``GET /copies?study=`` in the page itself; without ``from`` it shows the PACS's copy when the
PACS holds the study, else the bucket's, else the newest offsite snapshot.
"""

from __future__ import annotations

import re

from flask import Blueprint, Response, abort, request, send_from_directory, url_for

from pacs_backup.contracts.errors import BackupError

from .. import deps
from ..fallback import known_down, study_summary
from ..inputs import arg_text, study_uid_or_404
from ..viewer_page import MISSING, VENDOR_DIR, header_of, render, vendor_version

bp = Blueprint("viewer", __name__)

SOURCE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,99}")
YEAR_S = 365 * 24 * 3600
# dwv's module, workers and source maps, its libraries, their licences and SOURCES.txt (where the source is).
VENDOR_FILE = re.compile(r"(assets/workers/|licences/)?[A-Za-z0-9][A-Za-z0-9.-]{0,80}\.(js|map|txt)")
TYPES = {"js": "text/javascript; charset=utf-8", "map": "application/json", "txt": "text/plain; charset=utf-8"}


@bp.route("/studies/<path:uid>/view")
def page(uid: str) -> Response:
    uid = study_uid_or_404(uid)
    chosen = arg_text("from", 100, "The copy to view from") or ""
    if chosen and not SOURCE_NAME.fullmatch(chosen):
        abort(400, "There is no such copy to view from. Pick one from the list on the study's page.")
    # Only what the header needs (not the study page's list of snapshots, which asks the offsite servers).
    study = study_summary(uid)
    if study is None:
        abort(404, "This study is not in the backups.")
    if chosen and chosen not in ("pacs", "bucket", "cloud-pacs"):  # a snapshot: its fetch starts with the page
        deps.copies().read_early(chosen, uid)
    return render(
        {
            "study_uid": uid,
            "header": header_of(study),
            "dicomweb_base": request.script_root + "/copies/{source}/dicom-web",
            "source": chosen,
            "default_source": "pacs" if not chosen and _in_pacs(uid) else "bucket",
            "sources": [],
            "copies_url": request.script_root + "/copies",
            "study_url": url_for("studies.detail", uid=uid),
            "share_mode": False,
            "shown_text": "",
        }
    )


def _in_pacs(uid: str) -> bool:
    if known_down():
        return False
    try:
        return deps.backend().pacs_study(uid) is not None
    except BackupError:
        return False


@bp.route("/viewer/vendor/<version>/<path:name>")
def vendor(version: str, name: str) -> Response:
    """dwv and its libraries, their licences and where their source is: cached for a year (the version in the
    address changes with the files). Public: npm's files, no patient data; share links' recipients load them."""
    if version != vendor_version() or not VENDOR_FILE.fullmatch(name):
        abort(404, MISSING if version == "missing" else "There is no such file of the viewer.")
    resp = send_from_directory(VENDOR_DIR, name, max_age=YEAR_S)
    resp.headers["Content-Type"] = TYPES[name.rsplit(".", 1)[1]]
    resp.headers["Cache-Control"] = f"public, max-age={YEAR_S}, immutable"
    return resp
