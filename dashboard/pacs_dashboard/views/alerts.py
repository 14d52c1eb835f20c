"""The Alerts page (administrators): who is told when something breaks, the summary e-mail and the heartbeat.

Each destination has its own small form (change, remove, test). Nothing typed is ever dropped: a value is
saved, or the page comes back with it still typed and a sentence saying why not.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from .. import deps, heartbeat, summary
from .. import destinations as dst
from ..alerts import service_name
from ..destinations import Destination
from ..mailer import is_plain_address
from ..security import client_ip

bp = Blueprint("alerts", __name__)

Page = str | Response | tuple[str, int]


def _all() -> list[Destination]:
    return dst.of_settings(deps.db(), deps.settings())


def _check(address: str) -> str | None:
    settings = deps.settings()
    return dst.check(address, settings.webhook_hosts, settings.smtp)


def _words(d: Destination | str) -> str:
    """For the audit log: e-mail addresses in full, Apprise URLs by their service only (they hold passwords)."""
    address = d.address if isinstance(d, Destination) else d
    return f"e-mail {address}" if is_plain_address(address) else f"{dst.masked(address)} ({service_name(address)})"


def _typed(name: str) -> str:
    """A form field as typed, whole: the checks say when it is too long (the request size is bounded)."""
    return request.form.get(name, "").strip()


def page(errors: list[str] | None = None, status: int = 200, **typed: Any) -> Page:
    settings = deps.settings()
    db = deps.db()
    hb_url = heartbeat.current_url(db, settings.heartbeat)
    html = render_template(
        "alerts.html",
        destinations=_all(),
        errors=errors or [],
        typed=typed,
        smtp=settings.smtp,
        webhook_hosts=settings.webhook_hosts,
        summary_every=summary.EVERY,
        summary_choice=typed.get("summary") or summary.choice(db),
        heartbeat_shown=heartbeat.masked(hb_url) if hb_url else "",
        heartbeat_from_config=bool(settings.heartbeat.url),
        heartbeat_minutes=settings.heartbeat.minutes,
        heartbeat_hosts=settings.heartbeat.hosts,
        last_ping=heartbeat.last_ping(db),
        max_stored=dst.MAX_STORED,
    )
    return (html, status) if status != 200 else html


def _back() -> Response:
    return redirect(url_for("alerts.view"))


@bp.route("/alerts")
def view() -> Page:
    return page()


@bp.route("/alerts/add", methods=["POST"])
def add() -> Page:
    address = _typed("address")
    stored = dst.stored(deps.db())
    problem = (
        "Type an e-mail address or an alert address first."
        if not address
        else f"{address if is_plain_address(address) else 'This address'} is already in the list."
        if address in stored or address in deps.settings().apprise_urls
        else f"At most {dst.MAX_STORED} addresses can be stored; remove one first."
        if len(stored) >= dst.MAX_STORED
        else _check(address)
    )
    if problem:
        return page([f"Not added: {problem}"], 400, add=address)
    deps.db().set_setting(dst.STORED, [*stored, address])
    deps.db().audit("alert_address_added", g.user, client_ip(), f"Added {_words(address)}")
    flash(f"Added {address if is_plain_address(address) else dst.masked(address)}: alerts go there from now on.")
    return _back()


def _find(key: str) -> Destination | None:
    return next((d for d in _all() if d.key == key and not d.from_config), None)


GONE = "That address is no longer in the list (someone may have removed it meanwhile); nothing was changed."


@bp.route("/alerts/<key>/edit", methods=["POST"])
def edit(key: str) -> Page:
    found, address = _find(key), _typed("address")
    if found is None:
        return page([GONE], 404)
    stored = dst.stored(deps.db())
    problem = (
        "Type the new address first."
        if not address
        else "That address is already in the list."
        if address != found.address and (address in stored or address in deps.settings().apprise_urls)
        else _check(address)
    )
    if problem:
        return page([f"Not changed: {problem}"], 400, edit_key=key, edit=address)
    deps.db().set_setting(dst.STORED, [address if u == found.address else u for u in stored])
    _rename_in_summary(key, dst.key_of(address))
    deps.db().audit("alert_address_changed", g.user, client_ip(), f"{_words(found)} changed to {_words(address)}")
    flash("Changed: alerts go to the new address from now on.")
    return _back()


def _rename_in_summary(old: str, new: str | None) -> None:
    chosen = summary.choice(deps.db())
    if old in chosen.to:
        to = [new if k == old else k for k in chosen.to if new is not None or k != old]
        deps.db().set_setting(summary.SETTING, {"every": chosen.every, "to": to})


@bp.route("/alerts/<key>/remove", methods=["POST"])
def remove(key: str) -> Page:
    found = _find(key)
    if found is None:
        return page([GONE], 404)
    deps.db().set_setting(dst.STORED, [u for u in dst.stored(deps.db()) if u != found.address])
    _rename_in_summary(key, None)
    deps.db().audit("alert_address_removed", g.user, client_ip(), f"Removed {_words(found)}")
    flash(f"Removed {found.shown}.")
    return _back()


@bp.route("/alerts/remove-all", methods=["POST"])
def remove_all() -> Page:
    """Asks first; removes only with confirmed=yes from the question page."""
    stored = [d for d in _all() if not d.from_config]
    if not stored:
        flash("There are no stored addresses to remove.")
        return _back()
    if request.form.get("confirmed") != "yes":
        return render_template("alerts_remove_all.html", stored=stored)
    deps.db().set_setting(dst.STORED, [])
    chosen = summary.choice(deps.db())
    kept = [k for k in chosen.to if k not in {d.key for d in stored}]
    deps.db().set_setting(summary.SETTING, {"every": chosen.every, "to": kept})
    deps.db().audit("alert_addresses_removed", g.user, client_ip(), "; ".join(_words(d) for d in stored))
    flash(f"Removed all {len(stored)} stored addresses.")
    return _back()


@bp.route("/alerts/test", methods=["POST"])
def test() -> Page:
    """A test alert to one destination (key) or to all usable ones, with a sentence for each."""
    key = request.form.get("key", "")
    chosen = [d for d in _all() if d.problem is None and (not key or d.key == key)]
    if not chosen:
        why = GONE if key else "there is no alert address yet. Add one below."
        deps.db().audit("alert_test", g.user, client_ip(), "no address")
        return page([f"The test alert could not be sent: {why}"], 400)
    body = f"Test alert sent by {g.user} from the backup dashboard. If you read this, alerts reach you."
    results = dst.deliver_all(chosen, "PACS backup: test alert", body, deps.settings().smtp)
    summary_text = "; ".join(f"{i}. {r.shown}: {r.sentence}" for i, r in enumerate(results, 1))
    # The page says sent or not; why not (refused host, closed port, no answer) is for the audit log only.
    deps.db().audit(
        "alert_test",
        g.user,
        client_ip(),
        "; ".join(f"{i}. {r.shown}: {r.detail or r.sentence}" for i, r in enumerate(results, 1)),
    )
    flash(f"Test alert: {summary_text.rstrip('.')}.")
    return _back()


@bp.route("/alerts/summary", methods=["POST"])
def set_summary() -> Page:
    every = request.form.get("every", "off")
    usable = {d.key for d in _all() if d.problem is None}
    to = tuple(k for k in request.form.getlist("to") if k in usable)
    typed = summary.SummaryChoice(every, to)
    if every not in summary.EVERY:
        return page(["Choose how often the summary is sent: off, daily or weekly."], 400, summary=typed)
    if every != "off" and not to:
        return page(["Not saved: tick at least one address the summary goes to."], 400, summary=typed)
    deps.db().set_setting(summary.SETTING, {"every": every, "to": list(to)})
    deps.db().audit("summary_changed", g.user, client_ip(), f"{summary.EVERY[every]}, to {len(to)} address(es)")
    flash(f"Summary e-mail: {summary.EVERY[every].lower()}.")
    return _back()


@bp.route("/alerts/heartbeat", methods=["POST"])
def set_heartbeat() -> Page:
    settings = deps.settings()
    url = _typed("heartbeat_url")
    if settings.heartbeat.url:
        return page(["The heartbeat address is set in the configuration; ask your technician to change it."], 400)
    problem = "Type the heartbeat address first." if not url else heartbeat.check_url(url, settings.heartbeat.hosts)
    if problem:
        return page([f"Not saved: {problem}"], 400, heartbeat=url)
    deps.db().set_setting(heartbeat.STORED, url)
    deps.db().set_setting(heartbeat.LAST, None)  # ping the new address at once
    deps.db().audit("heartbeat_changed", g.user, client_ip(), f"Heartbeat to {heartbeat.masked(url)}")
    flash("Heartbeat address saved: the box pings it within a minute.")
    return _back()


@bp.route("/alerts/heartbeat/remove", methods=["POST"])
def remove_heartbeat() -> Page:
    if deps.settings().heartbeat.url:
        return page(["The heartbeat address is set in the configuration; ask your technician to change it."], 400)
    deps.db().set_setting(heartbeat.STORED, "")
    deps.db().audit("heartbeat_removed", g.user, client_ip(), "Heartbeat address removed")
    flash("Heartbeat address removed: nothing outside this box notices if it stops.")
    return _back()
