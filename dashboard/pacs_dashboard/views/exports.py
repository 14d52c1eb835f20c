"""Download a study from any copy as a ZIP (DICOM files with a DICOMDIR, pictures, a README): export.py.

``POST /studies/<uid>/export?from=<source>`` (a form with the CSRF token, from the study's page) answers the
ZIP itself. A ZIP takes a study out of the clinic as a share link does, so it needs the same permission:
administrators, and staff whose account has "May share studies" (shares.may_share). Every export is in the
audit log: who, which study, from which copy.
"""

from __future__ import annotations

import os
import re

from flask import Blueprint, Response, abort, g

from pacs_backup.contracts.errors import BackupError, ConfigError, NotFound
from pacs_backup.settings.limits import load_limits
from pacs_backup.sources.base import CopyDamaged, SourceUnavailable

from .. import deps
from ..export import ExportRefused, build, max_export_bytes
from ..export_words import source_words
from ..inputs import abort_for, arg_text, study_uid_or_404
from ..security import client_ip
from ..shares import may_share

bp = Blueprint("exports", __name__)

SOURCE_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,99}")
NOT_ALLOWED = (
    'Your account may not download studies: that needs the permission "May share studies", which an '
    "administrator gives on the Users page."
)


@bp.route("/studies/<path:uid>/export", methods=["POST"])
def export(uid: str) -> Response:
    uid = study_uid_or_404(uid)
    if not may_share(deps.db(), g.user, g.role):
        abort(403, NOT_ALLOWED)
    source = arg_text("from", 100, "The copy to export from") or "pacs"
    if not SOURCE_NAME.fullmatch(source):
        abort(400, "There is no such copy to export from. Pick one from the list on the study's page.")
    try:
        limits, max_bytes = load_limits(os.environ), max_export_bytes(os.environ)
    except ConfigError as exc:
        abort(503, str(exc))
    detail = f"study {uid} from {source}"
    try:
        made = build(deps.copies(), source, uid, deps.settings().data_dir / "exports", limits, max_bytes)
    except ExportRefused as exc:
        abort(exc.status, str(exc))
    except CopyDamaged:
        deps.db().audit("study_export_failed", g.user, client_ip(), detail + ": a file does not match its checksum")
        abort(
            422,
            f"One of this study's images in {source_words(source)} does not match the checksum recorded when it "
            "was copied, so no ZIP was made: that copy may be damaged. Download the study from another copy, "
            "and tell the technician.",
        )
    except NotFound:
        abort(404, f"{source_words(source).capitalize()} does not hold this study. Pick another copy.")
    except SourceUnavailable as exc:
        abort(503, str(exc))
    except BackupError as exc:
        abort_for(exc)
    deps.db().audit(
        "study_exported", g.user, client_ip(), f"{detail} ({made.facts.instances} images, {len(made.entries)} files)"
    )
    resp = Response(made.chunks(), mimetype="application/zip")
    resp.call_on_close(made.cleanup)  # also when the download is cut before it starts
    resp.headers["Content-Disposition"] = f'attachment; filename="{made.filename}"'
    resp.headers["Cache-Control"] = "no-store"
    return resp
