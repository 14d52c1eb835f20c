"""Login, logout and the one-time setup of the first administrator."""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from .db import Database
from .security import clear_failures, client_ip, hash_password, record_failure, throttled, verify

bp = Blueprint("auth", __name__)


def _db() -> Database:
    return current_app.extensions["db"]  # type: ignore[no-any-return]


def _safe_next(target: str | None) -> str:
    if target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc:
        return target
    return url_for("status.index")


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response | tuple[str, int]:
    db = _db()
    if request.method == "GET":
        return render_template("login.html", next=request.args.get("next", ""))
    username = request.form.get("username", "").strip()[:100]
    password = request.form.get("password", "")
    wait = throttled(db, username)
    if wait > 0:
        db.audit("login_throttled", username, client_ip())
        return render_template("login.html", error=f"Too many failed attempts. Try again in {wait / 60:.0f} "
                               "minutes.", next=""), 429
    if not verify(db, username, password):
        record_failure(db, username)
        db.audit("login_failed", username, client_ip())
        return render_template("login.html", error="Wrong username or password.", next=""), 401
    clear_failures(db, username)
    session.clear()  # a new session id at login
    session.permanent = True
    session["user"] = username
    db.audit("login", username, client_ip())
    return redirect(_safe_next(request.form.get("next")))


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    _db().audit("logout", session.get("user"), client_ip())
    session.clear()
    return redirect(url_for("auth.login"))


@bp.route("/setup", methods=["GET", "POST"])
def setup() -> str | Response | tuple[str, int]:
    db = _db()
    token_file = current_app.extensions["settings"].data_dir / "setup-token"
    if db.user_count() > 0 or not token_file.exists():
        return render_template("error.html", code=404, message="Setup is already done. Log in instead."), 404
    if request.method == "GET":
        return render_template("setup.html")
    token = token_file.read_text().strip()
    if throttled(db, "setup") > 0:
        return render_template("setup.html", error="Too many attempts; wait 15 minutes."), 429
    if not hmac.compare_digest(request.form.get("token", ""), token):
        record_failure(db, "setup")
        return render_template("setup.html", error="The setup token is wrong (see the dashboard's log)."), 403
    username, password = request.form.get("username", "").strip(), request.form.get("password", "")
    if not username or len(password) < 12:
        return render_template("setup.html", error="Choose a username and a password of 12 characters or more."), 400
    db.add_user(username, hash_password(password))
    token_file.unlink()
    db.audit("user_created", username, client_ip(), "first administrator from one-time setup")
    return redirect(url_for("auth.login"))
