"""The group's pages (group mode only): every clinic on one page, search across clinics, a study viewed from
the central copy, "bring this study to my clinic", and which clinics each account may see.

- ``/group``: the overview (group/overview.py) and this month's restore tests per clinic (group/drill_log.py);
- ``/group/studies``: search in the clinics the user may see, with one clinic's search rules (group/search.py);
- ``/group/studies/<clinic>/<uid>/view`` and ``/group/copies/<clinic>/dicom-web/...``: the viewer and the
  DICOMweb service of the central copy (group/copies.py), audited once per user and study within an hour;
- ``/group/deliveries``: requests to bring a study into another clinic's PACS, and how each went;
- ``/group/users/clinics`` (administrators): the clinics a staff or monitor account may see (group/grants.py).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, flash, g, jsonify, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as BaseResponse

from .. import deps
from ..audit import OncePer
from ..dicomweb import DicomWeb
from ..group import deliveries, drill_log, grants
from ..group.copies import LABEL, SOURCE, GroupCopies, reader_store
from ..group.heartbeats import group_status
from ..group.overview import clinic_row, summary
from ..group.search import search
from ..group.service import parts
from ..group.settings import is_clinic_id
from ..inputs import arg_text, form_text, study_uid_or_404
from ..security import client_ip
from ..viewer_page import header_of, render

bp = Blueprint("group_pages", __name__)
AUDIT_AGAIN_S = 3600.0
_opened = OncePer(AUDIT_AGAIN_S)


@bp.app_context_processor
def group_context() -> dict[str, Any]:
    """``group_mode`` and the Clinics choice of the user's edit page (users_edit.html)."""

    def clinic_choices(username: str) -> list[tuple[str, bool]]:
        mine = set(grants.granted(deps.db(), username))
        return [(c["clinic"], c["clinic"] in mine) for c in _states()]

    return {"group_mode": True, "group_clinic_choices": clinic_choices}


def _states() -> list[Any]:
    group = parts()
    return list(group_status(group.catalog, group.settings.quiet_minutes))


def _visible() -> list[str]:
    return grants.visible(deps.db(), g.user, g.role, (s["clinic"] for s in _states()))


def _clinic_or_404(clinic: str) -> str:
    if not is_clinic_id(clinic) or not grants.may_see(deps.db(), g.user, g.role, clinic):
        abort(404, "There is no such clinic among those your account may see.")
    return clinic


@bp.route("/group")
def overview() -> str:
    group, db, tz = parts(), deps.db(), deps.settings().clinic.tz
    mine = set(_visible())
    states = [s for s in _states() if s["clinic"] in mine]
    for s in states:
        drill_log.note(db, s["clinic"], s["status"])
    rows = [clinic_row(s, group.settings.quiet_minutes, tz) for s in states]
    return render_template(
        "group_overview.html",
        rows=rows,
        headline=summary(rows),
        month=drill_log.month(db, [s["clinic"] for s in states], tz),
        quiet_minutes=group.settings.quiet_minutes,
    )


@bp.route("/group/api/overview")
def api_overview() -> Response:
    """The overview as JSON, for monitoring tools (what each clinic's row says)."""
    group, tz = parts(), deps.settings().clinic.tz
    mine = set(_visible())
    rows = [clinic_row(s, group.settings.quiet_minutes, tz) for s in _states() if s["clinic"] in mine]
    return jsonify(
        {
            "headline": summary(rows),
            "clinics": [
                {
                    "clinic": r.clinic,
                    "name": r.name,
                    "state": r.state,
                    "alarm": r.alarm,
                    "heard": r.heard,
                    "lights": [{"label": x.label, "state": x.state, "value": x.value} for x in r.lights],
                }
                for r in rows
            ],
        }
    )


@bp.route("/group/studies")
def studies() -> str | tuple[str, int]:
    q = arg_text("q", 200, "The search text")
    date_from, date_to = arg_text("from", 10, "The first date"), arg_text("to", 10, "The last date")
    modality = arg_text("modality", 16, "The modality")
    chosen = arg_text("clinic", 32, "The clinic")
    mine = _visible()
    if chosen and chosen not in mine:
        chosen = ""
    results: list[Any] = []
    error = ""
    searched = bool(q or date_from or date_to or modality or chosen)
    if mine:
        try:
            results = list(search(parts().catalog, q, date_from, date_to, modality, chosen, 100, sorted(mine)))
        except ValueError as exc:
            error = str(exc)
    page = render_template(
        "group_studies.html",
        q=q,
        date_from=date_from,
        date_to=date_to,
        modality=modality,
        clinic=chosen,
        clinics=mine,
        results=results,
        searched=searched,
        error=error,
        may_bring=len(mine) > 1,
    )
    return (page, 400) if error else page


def _study_row(clinic: str, uid: str) -> dict[str, Any]:
    with parts().catalog.connection() as conn:
        row = conn.execute(
            "SELECT display_name, patient_name, patient_id, owner, species, breed, study_date, description, "
            "modalities, accession FROM studies WHERE clinic = %s AND study_uid = %s",
            (clinic, uid),
        ).fetchone()
    if row is None:
        abort(404, f"The central copy of clinic {clinic} does not hold this study.")
    names = (
        "display_name",
        "patient_name",
        "patient_id",
        "owner",
        "species",
        "breed",
        "study_date",
        "description",
        "modalities",
        "accession",
    )
    return dict(zip(names, row, strict=True))


@bp.route("/group/studies/<clinic>/<path:uid>/view")
def view(clinic: str, uid: str) -> Response:
    clinic, uid = _clinic_or_404(clinic), study_uid_or_404(uid)
    s = _study_row(clinic, uid)
    header = header_of(s)
    return render(
        {
            "study_uid": uid,
            "header": header,
            "dicomweb_base": request.script_root + f"/group/copies/{clinic}/dicom-web",
            "source": SOURCE,
            "default_source": SOURCE,
            "sources": [],
            "copies_url": None,
            "study_url": url_for("group_pages.studies", q=uid),
            "share_mode": False,
            "shown_text": f"You are looking at {LABEL} of clinic {clinic}.",
        }
    )


@bp.route("/group/copies/<clinic>/dicom-web/<path:rest>")
def dicomweb(clinic: str, rest: str) -> Response:
    clinic = _clinic_or_404(clinic)
    group = parts()
    if group.settings.store is None:
        return _json_error(503, "The group service has no reader key for the group store (GROUP_READER_ACCESS_KEY).")
    reader = GroupCopies(group.catalog, reader_store(group.settings.store), clinic)
    base = request.host_url.rstrip("/") + request.script_root + f"/group/copies/{clinic}/dicom-web"
    web = DicomWeb(reader, SOURCE, base, label=f"{LABEL} of clinic {clinic}")
    answer = web.answer(rest, request.args.items(multi=True), request.headers.get("Accept"))
    if answer.status == 200 and answer.study_uid:
        _audit_open(clinic, answer.study_uid)
    resp = Response(answer.body, answer.status, answer.headers, content_type=answer.content_type)
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


def _json_error(status: int, sentence: str) -> Response:
    resp = jsonify({"error": sentence})
    resp.status_code = status
    return resp


def _audit_open(clinic: str, study_uid: str) -> None:
    if not _opened.first((str(g.user), clinic, study_uid)):
        return
    deps.db().audit(
        "group_copy_viewed", str(g.user), client_ip(), f"study {study_uid} of clinic {clinic} (central copy)"
    )


@bp.route("/group/deliveries", methods=["GET", "POST"])
def delivery_list() -> str | BaseResponse | tuple[str, int]:
    db = deps.db()
    if request.method == "POST":
        source = _clinic_or_404(form_text("clinic", 32, "The study's clinic"))
        target = form_text("to", 32, "The clinic to bring it to")
        uid = form_text("study", 128, "The study")
        if not is_clinic_id(target) or not grants.may_see(db, g.user, g.role, target):
            abort(403, f"Your account may not bring studies into clinic {target[:32]}: ask the group's administrator.")
        try:
            new_id = deliveries.request(db, parts().catalog, str(g.user), client_ip(), source, uid, target)
        except deliveries.Refused as exc:
            abort(400, str(exc))
        flash(f"Asked: clinic {target} will fetch this study from the central copy (request {new_id}).")
        return redirect(url_for("group_pages.delivery_list"))
    found = deliveries.recent(db, _visible())
    return render_template("group_deliveries.html", found=found, words=deliveries.words)


@bp.route("/group/users/clinics", methods=["POST"])
def set_clinics() -> BaseResponse:
    """An administrator chooses the clinics a staff or monitor account may see (administrators see all)."""
    name = form_text("username", 100, "The username")
    if deps.db().user(name) is None:
        abort(404, "There is no such user.")
    chosen = grants.set_grants(deps.db(), name, request.form.getlist("clinic"), str(g.user), client_ip())
    flash(f"{name} may now see: {', '.join(chosen) or 'no clinic'}.")
    return redirect(url_for("accounts.user", name=name))
