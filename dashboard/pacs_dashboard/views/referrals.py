"""Sending a study to a referring clinic from its page, and how far each request got.

``POST /studies/<uid>/send`` (a form with the CSRF token) asks the plugin to queue the study for one of the
clinics of ``REFERRAL_PEERS``; the plugin sends it and checks it arrived (replication/referrals.py). Sending
takes a study out of the clinic as a share link does, so it needs the same permission (shares.may_share).
Every request is in the audit log.
"""

from __future__ import annotations

from typing import TypedDict

from flask import Blueprint, abort, flash, g, redirect, request, url_for
from werkzeug.wrappers import Response

from pacs_backup.contracts.errors import BackupError

from .. import deps
from ..backend_api import ReferralPeerDoc, ReferralRequestDoc
from ..fallback import known_down
from ..inputs import abort_for, study_uid_or_404
from ..security import client_ip
from ..shares import may_share
from ..timefmt import clock

bp = Blueprint("referrals", __name__)

NOT_ALLOWED = (
    'Your account may not send studies out of the clinic: that needs the permission "May share studies", which '
    "an administrator gives on the Users page."
)


class ReferralView(TypedDict):
    """What the study page shows: the clinics to choose from and this study's requests, in words."""

    peers: list[ReferralPeerDoc]
    requests: list[dict[str, str]]
    error: str | None


def _state_words(r: ReferralRequestDoc) -> str:
    if r["state"] == "verified":
        return f"Delivered: the clinic holds all {r['instances']} images."
    done = f"{r['verified']} of {r['instances']} images delivered"
    if r["state"] == "failing" or r["last_error"]:
        return f"Waiting: {done}. {r['last_error'] or ''} It is sent again by itself."
    return f"Sending: {done}."


@bp.app_template_global("referrals_of")
def referrals_of(uid: str) -> ReferralView | None:
    """The clinics and this study's requests; None when no clinic is set up or the user may not send."""
    if not may_share(deps.db(), g.user, g.role) or known_down():
        return None
    try:
        doc = deps.backend().referrals(uid)
    except BackupError as exc:
        return ReferralView(peers=[], requests=[], error=f"Referring clinics cannot be shown now: {exc}")
    if not doc["peers"]:
        return None
    tz = deps.tz()
    requests = [
        {
            "clinic": r["label"],
            "by": r["requested_by"],
            "when": clock(r["requested_at"], tz),
            "state": _state_words(r),
        }
        for r in doc["requests"]
    ]
    return ReferralView(peers=doc["peers"], requests=requests, error=None)


@bp.route("/studies/<path:uid>/send", methods=["POST"])
def send(uid: str) -> Response:
    uid = study_uid_or_404(uid)
    if not may_share(deps.db(), g.user, g.role):
        abort(403, NOT_ALLOWED)
    peer = (request.form.get("peer") or "").strip()[:64]
    try:
        queued = deps.backend().send_referral(peer, uid, g.user)
    except BackupError as exc:
        abort_for(exc)
    deps.db().audit("study_sent", g.user, client_ip(), f"study {uid} to {peer} ({queued} images)")
    flash(f"The study is on its way ({queued} images); this page shows when the clinic has received all of them.")
    return redirect(url_for("studies.detail", uid=uid) + "#send-study")
