"""Every copy as a read-only DICOMweb service: ``GET /copies`` lists the sources (``?study=`` those holding a
study), ``GET /copies/<source>/dicom-web/...`` answers QIDO-RS and WADO-RS from that copy (dicomweb.py).

For staff and administrators, logged in in the browser or by HTTP basic authentication (a technician's own
DICOMweb viewer; security.py: same password check and throttle as the login form, no session cookie, never
for an account with 2-step login). Answers are JSON or DICOM, errors a JSON sentence. Opening a study is
audited once per user, copy and study within an hour, not once per frame.
"""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from pacs_backup.contracts.errors import BackupError
from pacs_backup.contracts.inputs import UID_RULE, is_uid

from .. import deps
from ..audit import OncePer
from ..backend import SOURCE_NAME
from ..backend_api import BackendRefused, NotInBackend
from ..copy_reader import source_label
from ..dicomweb import DicomWeb
from ..security import client_ip

bp = Blueprint("copies", __name__)

AUDIT_AGAIN_S = 3600.0  # a study opened again from the same copy by the same user is audited again after this
_opened = OncePer(AUDIT_AGAIN_S)


def _error(status: int, sentence: str) -> Response:
    resp = jsonify({"error": sentence})
    resp.status_code = status
    return resp


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException) -> Response:
    """Refusals (403 for a role that may not open studies, 404...) as a JSON sentence, as DICOMweb clients read."""
    return _error(exc.code or 500, exc.description or "That did not work.")


@bp.route("/copies")
def sources() -> Response:
    study = request.args.get("study") or None
    if study is not None and not is_uid(study):
        return _error(400, f"study is not a study instance UID: {UID_RULE}.")
    try:
        found = deps.copies().sources(study)
    except BackendRefused as exc:
        return _error(400, str(exc))
    except NotInBackend as exc:
        return _error(404, str(exc))
    except BackupError as exc:
        return _error(503, str(exc))
    return jsonify(found)


@bp.route("/copies/<source>/dicom-web/<path:rest>")
def dicomweb(source: str, rest: str) -> Response:
    if not SOURCE_NAME.fullmatch(source):
        return _error(404, "There is no such backup copy. GET /copies lists them.")
    copies = deps.copies()
    base = request.host_url.rstrip("/") + request.script_root + f"/copies/{source}/dicom-web"
    web = DicomWeb(copies, source, base, label=source_label(source), headers=copies.headers)
    answer = web.answer(rest, request.args.items(multi=True), request.headers.get("Accept"))
    if answer.status == 200 and answer.study_uid:
        _audit_open(source, answer.study_uid)
    resp = Response(answer.body, answer.status, answer.headers, content_type=answer.content_type)
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


def _audit_open(source: str, study_uid: str) -> None:
    """One audit line per user, copy and study within AUDIT_AGAIN_S (not one per frame)."""
    user, address = str(g.user), client_ip()
    if not _opened.first((user, address, source, study_uid)):
        return
    how = "HTTP basic login" if getattr(g, "basic_auth", False) else "browser"
    deps.db().audit("copy_viewed", user, address, f"study {study_uid} from the copy {source} (DICOMweb, {how})")
