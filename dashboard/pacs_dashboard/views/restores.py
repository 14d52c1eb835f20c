"""Restoring as a person expects, besides the study's pages (views/studies.py): the page of a restore that
waits for the PACS to answer again, and checking a study that is already in the PACS against its backup
instead of restoring it again (the check itself is checks.py)."""

from __future__ import annotations

from typing import TypedDict

from flask import Blueprint, Response, abort, g, jsonify, redirect, render_template, url_for
from werkzeug.wrappers import Response as WerkzeugResponse

from .. import deps
from ..backend_api import NotInBackend, PacsDown
from ..checks import CheckJob, check_words
from ..fallback import known_down, study_summary
from ..inputs import study_uid_or_404
from ..mirror import WaitingRestore
from ..restore_words import source_words
from ..security import client_ip
from ..timefmt import clock

bp = Blueprint("restores", __name__)


class WaitingWords(TypedDict):
    """What the page of a waiting restore says (and its script reads, to follow it once it starts)."""

    id: int
    run_id: int | None
    error: str | None
    text: str
    asked: str
    job_url: str | None


# --- restores asked while the PACS is down ----------------------------------------------------------------
def _waiting_or_404(wid: int) -> WaitingRestore:
    w = deps.mirror().waiting_restore(wid) if 0 < wid < 10**12 else None
    if w is None:
        abort(404, "There is no such restore.")
    return w


def _waiting_words(w: WaitingRestore) -> WaitingWords:
    zone = deps.tz()
    if w["run_id"]:
        text = "The PACS answers again: the restore has started."
    elif w["error"]:
        text = f"The restore could not start: {w['error']}"
    else:
        down = known_down()
        since = f" since {clock(down.down_since, zone)}" if down and down.down_since else ""
        text = (
            f"The PACS is not answering{since}. This restore waits here and starts by itself once the PACS "
            "answers; you can leave this page."
        )
    return WaitingWords(
        id=w["id"],
        run_id=w["run_id"],
        error=w["error"],
        text=text,
        asked=f"Asked at {clock(w['asked_at'], zone)} by {w['username'] or 'someone'}.",
        job_url=url_for("studies.job", run_id=w["run_id"]) if w["run_id"] else None,
    )


@bp.route("/restores/waiting/<int:wid>")
def waiting(wid: int) -> str | WerkzeugResponse:
    w = _waiting_or_404(wid)
    if w["run_id"]:
        return redirect(url_for("studies.job", run_id=w["run_id"]))
    return render_template(
        "waiting.html",
        w=w,
        words=_waiting_words(w),
        study=study_summary(w["study_uid"]),
        source=source_words(w["source"], None, deps.tz()),
    )


@bp.route("/api/restores/waiting/<int:wid>")
def api_waiting(wid: int) -> Response:
    return jsonify(_waiting_words(_waiting_or_404(wid)))


# --- checking a study that is already in the PACS against its backup ----------------------------------------
@bp.route("/studies/<path:uid>/check", methods=["POST"])
def check(uid: str) -> WerkzeugResponse:
    uid = study_uid_or_404(uid, "There is no such study.")
    backend = deps.backend()
    try:
        entries = backend.study(uid).get("instances") or []
    except NotInBackend:
        abort(404, "This study is not in the backups.")
    except PacsDown:
        abort(503, "The PACS is not answering, so its copy of the study cannot be checked now.")
    if not entries:
        abort(404, "This study is not in the backups.")
    cid = deps.checks().start(backend, uid, entries, g.user)
    deps.db().audit("pacs_check_requested", g.user, client_ip(), f"study {uid}")
    return redirect(url_for("restores.check_page", cid=cid))


def _check_or_404(cid: int) -> CheckJob:
    job = deps.checks().get(cid)
    if job is None:
        abort(
            404,
            "There is no such check (checks are forgotten when the dashboard restarts): start it again "
            "from the study's page.",
        )
    return job


@bp.route("/checks/<int:cid>")
def check_page(cid: int) -> str:
    job = _check_or_404(cid)
    return render_template("check.html", job=check_words(job), study=study_summary(job["study_uid"]))


@bp.route("/api/checks/<int:cid>")
def api_check(cid: int) -> Response:
    return jsonify(check_words(_check_or_404(cid)))
