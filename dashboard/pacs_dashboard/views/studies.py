"""Find a study in the backups, see what is in it, restore it into the PACS and follow the restore.

While the PACS answers, everything comes from the plugin. While it does not, search uses the dashboard's
mirror of the catalog, a study's page and its pictures the bucket copies (read-only; study_page.py), and a
restore waits in the dashboard until the PACS answers again (waiting_restores.py).
"""

from __future__ import annotations

import time

from flask import Blueprint, Response, abort, g, jsonify, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as WerkzeugResponse

from pacs_backup.contracts.documents import RunDoc
from pacs_backup.contracts.errors import BackupError
from pacs_backup.contracts.inputs import MAX_NAME_CHARS, is_uid
from pacs_backup.contracts.runs import RestoreSummary
from pacs_backup.dicom.preview import BadImage, NoPreview, PreviewsBusy
from pacs_backup.state.catalog import StudySummary

from .. import deps
from ..backend_api import NotInBackend, PacsDown
from ..fallback import down_sentence, known_down, known_status, mirror_age_sentence, study_summary
from ..inputs import (
    abort_for,
    arg_text,
    form_text,
    restore_source,
    run_id_or_404,
    search_args,
    sentence,
    study_uid_or_404,
)
from ..light import MINIO, copy_name
from ..pacs_state import Reading
from ..restore_words import progress_text, source_words
from ..security import client_ip
from ..study_page import study_page

bp = Blueprint("studies", __name__)


def _run_or_abort(run_id: int) -> RunDoc:
    """The plugin's run ``run_id``, or the error page its failure calls for."""
    try:
        return deps.backend().run(run_id_or_404(run_id))
    except BackupError as exc:
        abort_for(exc)


@bp.app_template_test("study_uid")
def is_study_uid(value: object) -> bool:
    return isinstance(value, str) and is_uid(value)


@bp.route("/studies")
def search() -> str:
    q, date_from, date_to, modality = search_args()
    searched = any((q, date_from, date_to, modality))
    results: list[StudySummary] = []
    error = notice = None
    down = known_down()
    if down is None:
        try:
            results = deps.backend().studies(q, date_from, date_to, modality)
        except PacsDown as exc:
            down = deps.keeper().mark_down(str(exc))
        except BackupError as exc:
            error = "The search could not be done. " + sentence(exc)
    if down is not None:
        notice = f"{down_sentence(down)} {mirror_age_sentence()}"
        try:
            results = deps.mirror().search(q, date_from, date_to, modality)
        except ValueError as exc:
            error = str(exc)
    return render_template(
        "studies.html",
        q=q,
        date_from=date_from,
        date_to=date_to,
        modality=modality,
        results=results,
        searched=searched,
        error=error,
        notice=notice,
    )


@bp.route("/studies/<path:uid>")
def detail(uid: str) -> str:
    page = study_page(study_uid_or_404(uid))
    newest = page["holdings"][0] if page["holdings"] else None
    return render_template(
        "study.html",
        **page,
        newest=newest,
        copy_names=_copy_names({h["target"] for h in page["holdings"]}),
        down_text=down_sentence(page["down"]) if page["down"] else None,
    )


def _copy_names(targets: set[str]) -> dict[str, str]:
    """How the health page names each copy ("the backup drive (usb)"), from the newest status known."""
    status = known_status()
    copies = status.get("offsite", {}) if status else {}
    return {t: copy_name(t, copies.get(t)) for t in targets}


@bp.route("/studies/<path:uid>/preview.png")
def preview(uid: str) -> Response:
    """A picture of the study as it is in the PACS now."""
    uid = study_uid_or_404(uid)
    if known_down():
        abort(503, "The PACS is not answering, so its pictures cannot be shown.")
    backend = deps.backend()
    oid = backend.instance_in_pacs(uid)
    if oid is None:
        abort(404, "The study is not in the PACS right now; restore it to see a preview.")
    try:
        return Response(backend.preview(oid), mimetype="image/png")
    except BackupError as exc:
        abort_for(exc)


@bp.route("/studies/<path:uid>/backup-picture.png")
def backup_picture(uid: str) -> Response:
    """A picture of one image of the study drawn from its backup copy (``?n=`` its position, 1-based):
    through the plugin while the PACS answers, from the bucket itself while it does not."""
    uid = study_uid_or_404(uid)
    raw = arg_text("n", 6, "The image number") or "1"
    if not raw.isdigit() or not 1 <= int(raw) <= 100000:
        abort(400, "The image number is a whole number from 1.")
    n = int(raw)
    if not known_down():
        try:
            return Response(deps.backend().backup_preview(uid, n), mimetype="image/png")
        except (BadImage, PreviewsBusy) as exc:
            return _picture_refused(exc)
        except NotInBackend as exc:
            abort(404, str(exc))
        except PacsDown as exc:
            deps.keeper().mark_down(str(exc))
        except BackupError as exc:
            abort_for(exc)
    reader = deps.bucket()
    if reader is None:
        abort(404, "Pictures of the backup copies need the dashboard's read-only access to them.")
    try:
        return Response(reader.preview(uid, n), mimetype="image/png")
    except IndexError:
        abort(404, "The backup copy of this study has no such image.")
    except (BadImage, PreviewsBusy) as exc:
        return _picture_refused(exc)
    except NoPreview as exc:
        abort(404, str(exc))
    except BackupError:
        abort(503, "The backup copies cannot be read right now.")


def _picture_refused(exc: BadImage | PreviewsBusy) -> Response:
    """A damaged or too large image is a 422; every preview slot taken, a 503 with Retry-After. A sentence."""
    resp = Response(str(exc), status=422 if isinstance(exc, BadImage) else 503, mimetype="text/plain")
    if isinstance(exc, PreviewsBusy):
        resp.headers["Retry-After"] = str(exc.retry_after)
    return resp


@bp.route("/studies/<path:uid>/restore", methods=["GET", "POST"])
def restore(uid: str) -> str | WerkzeugResponse:
    """GET (or a POST without ``confirmed=yes``): the confirmation page. POST confirmed: start the restore,
    or, while the PACS is down, keep it here until the PACS answers."""
    uid = study_uid_or_404(uid)
    if request.method == "POST":
        form_text("source", MAX_NAME_CHARS, "The backup copy")
        form_text("snapshot", MAX_NAME_CHARS, "The snapshot")
    source, snapshot = restore_source(request.form if request.method == "POST" else request.args)
    if request.method == "POST" and request.form.get("confirmed") == "yes":
        return _start_restore(uid, source, snapshot)
    page = study_page(uid)
    chosen = next(
        (h for h in page["holdings"] if h["target"] == source and (snapshot is None or h["id"] == snapshot)), None
    )
    if source != MINIO and snapshot is None and chosen is not None:
        snapshot = str(chosen["id"])  # the newest snapshot that holds the study, said on the page
    words = source_words(source, chosen.get("time") if chosen else None, deps.tz())
    return render_template(
        "confirm.html",
        **page,
        source=source,
        snapshot=snapshot,
        source_text=words,
        chosen=chosen,
        down_text=down_sentence(page["down"]) if page["down"] else None,
    )


def _start_restore(uid: str, source: str, snapshot: str | None) -> WerkzeugResponse:
    db = deps.db()
    detail = f"study {uid} from {source}" + (f" snapshot {snapshot}" if snapshot else "")
    down: Reading | None = known_down()
    if down is None:
        try:
            run_id = deps.backend().restore(uid, source, snapshot)
        except PacsDown as exc:
            down = deps.keeper().mark_down(str(exc))
        except BackupError as exc:
            abort_for(exc)
        else:
            db.audit("restore_requested", g.user, client_ip(), detail)
            return redirect(url_for("studies.job", run_id=run_id))
    wid = deps.mirror().queue_restore(uid, source, snapshot, g.user, client_ip(), time.time())
    db.audit("restore_queued", g.user, client_ip(), detail + " (waits until the PACS answers)")
    return redirect(url_for("restores.waiting", wid=wid))


@bp.route("/restores/<int:run_id>")
def job(run_id: int) -> str:
    run = _run_or_abort(run_id)
    uid = RestoreSummary.from_json(run.get("summary")).study_uid
    study = study_summary(uid) if is_uid(uid) else None
    return render_template("job.html", run=run, study=study, progress=progress_text(run, deps.tz()))


@bp.route("/api/runs/<int:run_id>")
def api_run(run_id: int) -> Response:
    run = _run_or_abort(run_id)
    return jsonify({**run, "progress": progress_text(run, deps.tz())})
