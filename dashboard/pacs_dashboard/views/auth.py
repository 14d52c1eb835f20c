"""Login (with its 2-step code when the user has one), logout, changing one's password and the one-time
setup of the first administrator."""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from flask import Blueprint, flash, g, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from .. import deps, security, totp
from ..db import Database
from ..inputs import MAX_PASSWORD, MAX_USERNAME, MIN_PASSWORD, form_text, new_password_problem
from ..security import (
    clear_failures,
    client_ip,
    end_session,
    first_in_minute,
    hash_password,
    record_failure,
    start_session,
    throttled,
    verify,
    wait_sentence,
)

bp = Blueprint("auth", __name__)

# How long a login whose password was right waits for its 2-step code.
PENDING_LOGIN_S = 5 * 60
WRONG_CODE = "That code is wrong or was used already. Type the code your app shows now."
NOT_DIGITS = "Type the 6-digit code with the digits 0 to 9, as your app shows it."


def _safe_next(target: str | None) -> str:
    if (
        target
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
        and not urlsplit(target).netloc
    ):
        return target
    return url_for("status.index")


@bp.route("/login", methods=["GET", "POST"])
def login() -> str | Response | tuple[str, int]:
    db = deps.db()
    if request.method == "GET":
        nxt = request.args.get("next", "")
        return render_template("login.html", next=nxt if len(nxt) <= 2000 else "")
    username = form_text("username", MAX_USERNAME, "The username")
    password = form_text("password", MAX_PASSWORD, "The password", strip=False)
    nxt = form_text("next", 2000, "The page to open after login")
    wait = throttled(db, username)
    if wait > 0:
        if first_in_minute(db, f"login:{client_ip()}"):
            db.audit("login_throttled", username, client_ip())
        return render_template("login.html", error=wait_sentence(wait), next=""), 429
    if not verify(db, username, password):
        record_failure(db, username)
        db.audit("login_failed", username, client_ip())
        return render_template("login.html", error="Wrong username or password.", next=""), 401
    if db.totp_secret(username):
        # Not a session yet, and earlier failures are not forgiven: otherwise whoever knows the
        # password could try codes without end by logging in again after every few wrong ones.
        end_session(db)
        session["pending_login"] = db.create_pending_login(username, nxt[:2000], security.now())
        return redirect(url_for("auth.login_code"))
    clear_failures(db, username)
    _logged_in(db, username, "")
    return redirect(_safe_next(nxt))


def _logged_in(db: Database, username: str, detail: str) -> None:
    start_session(db, username)
    db.note_login(username, security.now())
    db.audit("login", username, client_ip(), detail)


@bp.route("/login/code", methods=["GET", "POST"])
def login_code() -> str | Response | tuple[str, int]:
    """The second step of a login with 2-step: the code from the user's authenticator app."""
    db = deps.db()
    pid = session.get("pending_login")
    pending = db.pending_login(pid, security.now(), PENDING_LOGIN_S) if isinstance(pid, str) else None
    if pending is None or not isinstance(pid, str):
        session.pop("pending_login", None)
        flash("Log in again: the code must be typed within 5 minutes of the password.")
        return redirect(url_for("auth.login"))
    if request.method == "GET":
        return render_template("login_code.html")
    code = form_text("code", 20, "The code")
    user = pending.username
    wait = throttled(db, user)
    if wait > 0:
        if first_in_minute(db, f"login:{client_ip()}"):
            db.audit("login_throttled", user, client_ip(), "2-step code")
        db.end_pending_login(pid)
        session.pop("pending_login", None)
        return render_template("login.html", error=wait_sentence(wait), next=""), 429
    if not totp.is_code(code):  # fullwidth or Arabic-Indic digits, letters...: a failed attempt all the same
        record_failure(db, user)
        db.audit("login_failed", user, client_ip(), "2-step code not in the digits 0 to 9")
        return render_template("login_code.html", error=NOT_DIGITS), 400
    secret = db.totp_secret(user)
    step = totp.matching_step(secret, code, security.now(), db.totp_last_step(user)) if secret else None
    if step is None or not db.use_totp_step(user, step):
        record_failure(db, user)
        db.audit("login_failed", user, client_ip(), "wrong 2-step code")
        return render_template("login_code.html", error=WRONG_CODE), 401
    db.end_pending_login(pid)
    clear_failures(db, user)
    _logged_in(db, user, "with 2-step code")
    return redirect(_safe_next(pending.next))


@bp.route("/logout", methods=["POST"])
def logout() -> Response:
    db = deps.db()
    db.audit("logout", g.user, client_ip())
    end_session(db)  # on the server: a copy of the cookie is worthless from now on
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
def change_password() -> str | Response | tuple[str, int]:
    db = deps.db()
    if request.method == "GET":
        return render_template("password.html")
    current = form_text("current", MAX_PASSWORD, "The current password", strip=False)
    new = form_text("new", MAX_PASSWORD, "The new password", strip=False)
    again = form_text("again", MAX_PASSWORD, "The repeated new password", strip=False)
    user = str(g.user)
    wait = throttled(db, user)
    if wait > 0:
        return render_template("password.html", error=wait_sentence(wait)), 429
    if not verify(db, user, current):
        record_failure(db, user)
        db.audit("password_change_failed", user, client_ip(), "wrong current password")
        return render_template("password.html", error="The current password is wrong."), 403
    problem = new_password_problem(new, again)
    if problem:
        return render_template("password.html", error=problem), 400
    ended = db.set_password(user, hash_password(new))  # ends every session of this user, this one too
    start_session(db, user)  # ...and this browser carries on with a fresh one
    db.audit("password_changed", user, client_ip(), f"{max(0, ended - 1)} other session(s) logged out")
    flash("Password changed. Every other browser logged in as you has been logged out.")
    return redirect(url_for("status.index"))


@bp.route("/setup", methods=["GET", "POST"])
def setup() -> str | Response | tuple[str, int]:
    db = deps.db()
    token_file = deps.settings().data_dir / "setup-token"
    if db.user_count() > 0 or not token_file.exists():
        return render_template("error.html", code=404, message="Setup is already done. Log in instead."), 404
    if request.method == "GET":
        return render_template("setup.html")
    sent = form_text("token", 200, "The setup token")
    username = form_text("username", MAX_USERNAME, "The username")
    password = form_text("password", MAX_PASSWORD, "The password", strip=False)
    token = token_file.read_text().strip()
    if throttled(db, "setup") > 0:
        return render_template("setup.html", error="Too many attempts; wait 15 minutes."), 429
    if not hmac.compare_digest(sent.encode(), token.encode()):
        record_failure(db, "setup")
        db.audit("setup_failed", None, client_ip(), "wrong setup token")
        return render_template("setup.html", error="The setup token is wrong (see the dashboard's log)."), 403
    if not username or len(password) < MIN_PASSWORD:
        return render_template(
            "setup.html", error=f"Choose a username and a password of {MIN_PASSWORD} characters or more."
        ), 400
    db.add_user(username, hash_password(password))
    token_file.unlink()
    db.audit("user_created", username, client_ip(), "first administrator from one-time setup")
    return redirect(url_for("auth.login"))
