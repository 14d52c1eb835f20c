"""Share links: staff make one from a study's page, list and revoke them on "Shared links"; the recipient
opens ``/s/<token>`` without an account and sees that one study, read-only, from the PACS or (PACS down) from
the bucket.

The recipient's routes are public (security.PUBLIC_ENDPOINTS) and never set the dashboard's session cookie;
a PIN, when the link has one, unlocks it with a signed cookie of its own, scoped to the link's path. Unknown
tokens get one uniform 404, ended links a 410, and an address with too many failed tokens or wrong PINs a
429 (shares.blocked).
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.wrappers import Response

from pacs_backup.contracts.errors import BackupError

from .. import deps, shares, viewer_page
from ..copy_reader import Copies
from ..dicomweb import DicomWeb
from ..dicomweb_media import WebAnswer
from ..fallback import known_down, study_summary
from ..inputs import form_text, number_in, study_uid_or_404
from ..security import client_ip, wait_sentence
from ..shares import ShareHeader, ShareLink, ShareSettings, ShareStore

bp = Blueprint("shares", __name__)

Page = str | Response | tuple[str, int]

PIN_COOKIE = "pacs_share_pin"
PIN_COOKIE_S = 2 * 3600  # a PIN typed once opens the link in that browser for two hours (never past its expiry)
NOT_ALLOWED = (
    "Your account may not share studies. Ask the clinic's administrator to allow it on the Users page "
    "(“May share studies”)."
)
WRONG_PINS_BY = "the appliance (too many wrong PINs)"  # who revoked a link whose PIN was guessed at
UNKNOWN = "There is no such link. Check that the whole address was copied, or ask the clinic for a new link."
ENDED: dict[shares.State, str] = {
    "expired": "This link has expired and no longer shows the study. Ask the clinic for a new link.",
    "revoked": "The clinic has withdrawn this link: it no longer shows the study. Ask the clinic for a new link.",
}


def _store() -> ShareStore:
    return ShareStore(deps.db())


@bp.app_template_global("may_share_studies")
def may_share_studies() -> bool:
    """Whether the logged-in user may make share links (templates show the Share form and the menu entry)."""
    if "may_share" not in g:
        g.may_share = shares.may_share(deps.db(), getattr(g, "user", None), getattr(g, "role", None))
    return bool(g.may_share)


@bp.app_template_global("share_limits")
def share_limits() -> ShareSettings:
    return deps.settings().shares


def _require_sharer() -> None:
    if not may_share_studies():
        abort(403, NOT_ALLOWED)


# --- staff: make, list, revoke ----------------------------------------------------------------------------
def _header(uid: str) -> ShareHeader:
    found = study_summary(uid)
    if found is None:
        abort(404, "This study is not in the backups (or cannot be looked up right now), so it cannot be shared.")
    return viewer_page.header_of(found)


@bp.route("/studies/<path:uid>/share", methods=["POST"])
def make(uid: str) -> Page:
    """Make a link to this study: its expiry in days and an optional PIN (typed, or made up here)."""
    _require_sharer()
    uid = study_uid_or_404(uid)
    limits = deps.settings().shares
    days = number_in(
        form_text("days", 20, "The number of days") or f"{limits.default_days:g}", "days", 0.01, limits.max_days
    )
    if isinstance(days, str):
        abort(400, days)
    pin = form_text("pin", 40, "The PIN")
    if request.form.get("make_pin") == "yes" and not pin:
        pin = shares.new_pin()
    problem = shares.pin_problem(pin) if pin else None
    if problem:
        abort(400, problem)
    header = _header(uid)
    token, link = _store().create(uid, header, str(g.user), days, pin or None)
    deps.db().audit(
        "share_created",
        g.user,
        client_ip(),
        f"share link {link.id} to study {uid} ({header['patient_name']}, {header['study_date']}) for {days:g} day(s)"
        + (", with a PIN" if pin else ", without a PIN"),
    )
    base = limits.base_url
    url = (
        base + url_for("shares.recipient", token=token)
        if base
        else url_for("shares.recipient", token=token, _external=True)
    )
    return render_template("share_made.html", link=link, url=url, pin=pin, uid=uid, days=days)


@bp.route("/shares")
def listing() -> Page:
    _require_sharer()
    return render_template("shares.html", rows=_store().listing())


@bp.route("/shares/<int:link_id>/revoke", methods=["POST"])
def revoke(link_id: int) -> Page:
    _require_sharer()
    store = _store()
    link = store.get(link_id)
    if link is None:
        abort(404, "There is no such share link.")
    if store.revoke(link_id, str(g.user)):
        deps.db().audit("share_revoked", g.user, client_ip(), f"share link {link_id} to study {link.study_uid}")
        flash(f"The link to {link.header['patient_name'] or 'the study'} no longer works, from now on.")
    else:
        flash("That link was revoked already.")
    return redirect(url_for("shares.listing"))


# --- the recipient (no account) ---------------------------------------------------------------------------
def _plain(code: int, title: str, message: str) -> Response:
    """A page of its own (no menu, no form, no session cookie) for unknown, ended and throttled links."""
    page = render_template("share_ended.html", code=code, title=title, message=message)
    resp = Response(page, code, mimetype="text/html")
    return _public(resp)


def _public(resp: Response) -> Response:
    # The token never leaves in a Referer header to another site (no-referrer would make the PIN form's
    # Origin "null", which the form's own check refuses).
    resp.headers["Referrer-Policy"] = "same-origin"
    resp.headers["X-Robots-Tag"] = "noindex, nofollow"
    return resp


def _link_or_refusal(token: str) -> ShareLink | Response:
    """The live link of ``token``, or the page that refuses it (429 throttled, 404 unknown, 410 ended)."""
    g.user, g.role, g.session_csrf = None, None, None  # the recipient's pages never act as a logged-in user
    db, ip = deps.db(), client_ip()
    wait = shares.blocked(db, ip)
    if wait > 0:
        resp = _plain(429, "Try again later", wait_sentence(wait))
        resp.headers["Retry-After"] = str(int(wait) + 1)
        return resp
    link = _store().find(token)
    if link is None:
        shares.record_failure(db, ip)
        return _plain(404, "No such link", UNKNOWN)
    state = link.state(time.time())
    if state != "live":
        return _plain(410, "This link is no longer available", ENDED[state])
    return link


def _signer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key or "", salt="share-pin")


def _unlocked(link: ShareLink) -> bool:
    if not link.has_pin:
        return True
    try:
        return bool(_signer().loads(request.cookies.get(PIN_COOKIE, ""), max_age=PIN_COOKIE_S) == link.id)
    except BadSignature:
        return False


def _same_origin() -> bool:
    """A POST from our own page (its Origin, else its Referer, is this site or DASHBOARD_SHARE_URL's), or from
    no browser at all."""
    sent = request.headers.get("Origin") or request.headers.get("Referer")
    if not sent:
        return True
    there = urlsplit(sent)
    ours = [urlsplit(request.host_url)] + [urlsplit(b) for b in (deps.settings().shares.base_url,) if b]
    return any((there.scheme, there.netloc) == (here.scheme, here.netloc) for here in ours)


def _pin_page(link: ShareLink, error: str | None = None, code: int = 200) -> Response:
    return _public(Response(render_template("share_pin.html", error=error), code, mimetype="text/html"))


def _check_pin(token: str, link: ShareLink) -> Response:
    db, ip = deps.db(), client_ip()
    if not _same_origin():
        return _plain(400, "Could not do that", "Open the link again and type the PIN on its page.")
    wait = shares.blocked(db, ip, link.id)
    if wait > 0:
        resp = _plain(429, "Try again later", wait_sentence(wait))
        resp.headers["Retry-After"] = str(int(wait) + 1)
        return resp
    pin = request.form.get("pin", "")[:40].strip()
    if not shares.check_pin(link, pin):
        shares.record_failure(db, ip, link.id)
        db.audit("share_pin_failed", None, ip, f"wrong PIN for share link {link.id}")
        if shares.too_many_wrong_pins(db, link.id) and _store().revoke(link.id, WRONG_PINS_BY):
            db.audit("share_revoked", None, ip, f"share link {link.id}: {shares.MAX_WRONG_PINS_ALL} wrong PINs")
            return _plain(410, "This link is no longer available", ENDED["revoked"])
        return _pin_page(link, "That PIN is wrong. Check it with the clinic and type it again.", 401)
    resp = redirect(url_for("shares.recipient", token=token), 303)
    max_age = int(max(1, min(PIN_COOKIE_S, link.expires_at - time.time())))
    resp.set_cookie(
        PIN_COOKIE,
        _signer().dumps(link.id),
        max_age=max_age,
        path=url_for("shares.recipient", token=token),
        secure=deps.settings().cookie_secure,
        httponly=True,
        samesite="Strict",
    )
    return _public(resp)


@bp.route("/s/<token>", methods=["GET", "POST"])
def recipient(token: str) -> Response:
    """The study for whoever holds the link: the PIN form first when it has one, then the viewer."""
    found = _link_or_refusal(token)
    if isinstance(found, Response):
        return found
    link = found
    if request.method == "POST":
        return _check_pin(token, link)
    if not _unlocked(link):
        return _pin_page(link)
    deps.db().audit("share_opened", None, client_ip(), f"share link {link.id} to study {link.study_uid}")
    _store().record_open(link.id, client_ip(), request.headers.get("User-Agent", ""))
    return _public(_viewer(link, _base(token)))


def _base(token: str) -> str:
    return url_for("shares.recipient", token=token) + "/dicom-web"


def _viewer(link: ShareLink, base: str) -> Response:
    """The viewer, scoped to the link's study: no choice of copy, no way into the dashboard."""
    return viewer_page.render(
        {
            "study_uid": link.study_uid,
            "header": link.header,
            "dicomweb_base": base,
            "source": "",
            "default_source": "pacs",
            "sources": [],
            "copies_url": None,
            "study_url": None,
            "share_mode": True,
            "shown_text": "A study shared with you by the clinic. Only this study can be seen here.",
        }
    )


@bp.route("/s/<token>/dicom-web/<path:rest>")
def recipient_dicomweb(token: str, rest: str) -> Response:
    """Read-only DICOMweb of the link's study only, from the PACS or (PACS down) from the bucket."""
    found = _link_or_refusal(token)
    if isinstance(found, Response):
        return found
    if not _unlocked(found):
        return _plain(403, "Type the PIN first", "Open the link and type the PIN the clinic gave you.")
    return _public(dicomweb_answer(found.study_uid, _base(token), rest))


def dicomweb_answer(study_uid: str, base: str, rest: str) -> Response:
    """The DICOMweb answer for ``rest``, limited to ``study_uid``: the PACS's copy while it answers; the
    bucket's while it does not, or when the PACS no longer holds the study."""
    reader = deps.copies()
    down = known_down() is not None
    answer = _ask(reader, "bucket" if down else "pacs", study_uid, base, rest)
    if answer.status in (404, 503) and not down:
        answer = _ask(reader, "bucket", study_uid, base, rest)
    if answer.status in (404, 503) and not down:  # neither holds it: the newest snapshot that does
        for source in _snapshot_sources(reader, study_uid):
            answer = _ask(reader, source, study_uid, base, rest)
            if answer.status not in (404, 503):
                break
    return Response(answer.body, answer.status, answer.headers, content_type=answer.content_type)


def _snapshot_sources(reader: Copies, study_uid: str) -> list[str]:
    """The snapshots (offsite, cloud storage, drives) that hold the study, newest first; none if unknown."""
    try:
        found = reader.sources(study_uid)
    except BackupError:
        return []
    return [s["name"] for s in found if s["available"] and s["kind"] in ("offsite", "drive")][:3]


def _ask(reader: Copies, source: str, study_uid: str, base: str, rest: str) -> WebAnswer:
    web = DicomWeb(reader, source, base, label="the clinic's copy", only_study=study_uid, headers=reader.headers)
    return web.answer(rest, request.args.items(multi=True), request.headers.get("Accept"))
