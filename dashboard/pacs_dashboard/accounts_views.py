"""The Users page (administrators: add, change role, set a password, turn off 2-step, remove) and each
user's own account page (turning their 2-step login on or off).

Every change is written to the audit log with who did it; passwords and 2-step secrets never are.
"""

from __future__ import annotations

import re

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from . import roles, security, totp
from .auth import MAX_PASSWORD, MAX_USERNAME, new_password_problem
from .db import Database, User
from .inputs import arg_text, form_text
from .security import client_ip, hash_password, record_failure, start_session, throttled, verify, wait_sentence

bp = Blueprint("accounts", __name__)

# Names that read the same in the audit log, an address and a monitoring tool's configuration.
_USERNAME = re.compile(r"[A-Za-z0-9._@-]{1,100}")
USERNAME_RULE = "A username may hold letters, digits and . _ @ - only, at most 100 characters."
LAST_ADMIN = "{name} is the only administrator. Make another user an administrator first."

Page = str | Response | tuple[str, int]


def _db() -> Database:
    return current_app.extensions["db"]  # type: ignore[no-any-return]


def _audit(action: str, detail: str) -> None:
    _db().audit(action, g.user, client_ip(), detail)


def _role_form() -> str:
    role = form_text("role", 20, "The role")
    if role not in roles.ROLES:
        abort(400, "Choose one of the roles shown.")
    return role


def _user_or_404(username: str) -> User:
    found = _db().user(username)
    if found is None:
        abort(404, "There is no such user. It may have been removed a moment ago.")
    return found


def _sessions(ended: int) -> str:
    return f"{ended} session(s) logged out"


# --- the Users page (administrators) -------------------------------------------------------------
def _users_page(error: str | None = None, code: int = 200, **form: str) -> tuple[str, int]:
    return render_template("users.html", users=_db().users(), role_words=roles.ROLE_WORDS, error=error, form=form), code


@bp.route("/users")
def users() -> Page:
    return _users_page()


@bp.route("/users/add", methods=["POST"])
def add() -> Page:
    username = form_text("username", MAX_USERNAME, "The username")
    role = _role_form()
    password = form_text("password", MAX_PASSWORD, "The password", strip=False)
    again = form_text("again", MAX_PASSWORD, "The repeated password", strip=False)
    problem = None if _USERNAME.fullmatch(username) else USERNAME_RULE
    problem = problem or new_password_problem(password, again)
    if problem:
        return _users_page(problem, 400, username=username, role=role)
    if not _db().add_user(username, hash_password(password), role):
        return _users_page(f"There is already a user called {username}.", 400, username=username, role=role)
    _audit("user_created", f"added {username} as {role}")
    flash(f"{username} can now log in as {role}. Give them the password in person, not by email.")
    return redirect(url_for("accounts.users"))


def _user_page(found: User, error: str | None = None, code: int = 200) -> tuple[str, int]:
    return render_template("users_edit.html", u=found, role_words=roles.ROLE_WORDS, error=error), code


@bp.route("/users/edit")
def user() -> Page:
    return _user_page(_user_or_404(arg_text("name", MAX_USERNAME, "The username")))


@bp.route("/users/role", methods=["POST"])
def change_role() -> Page:
    found = _user_or_404(form_text("username", MAX_USERNAME, "The username"))
    role = _role_form()
    if role == found.role:
        flash(f"{found.username} is already {role}.")
        return redirect(url_for("accounts.users"))
    ended = _db().set_role(found.username, role)
    if ended is None:
        return _user_page(found, LAST_ADMIN.format(name=found.username), 400)
    _audit("user_role_changed", f"{found.username}: {found.role} -> {role}; {_sessions(ended)}")
    flash(f"{found.username} is now {role}. They were logged out and log in again with the new role.")
    if found.username == g.user:
        return redirect(url_for("auth.login"))  # their own session ended with the change
    return redirect(url_for("accounts.users"))


@bp.route("/users/password", methods=["POST"])
def set_password() -> Page:
    found = _user_or_404(form_text("username", MAX_USERNAME, "The username"))
    new = form_text("new", MAX_PASSWORD, "The new password", strip=False)
    again = form_text("again", MAX_PASSWORD, "The repeated new password", strip=False)
    problem = new_password_problem(new, again)
    if problem:
        return _user_page(found, problem, 400)
    ended = _db().set_password(found.username, hash_password(new))  # ends that user's sessions
    if found.username == g.user:
        start_session(_db(), found.username)  # this browser carries on
    _audit("user_password_set", f"new password for {found.username}; {_sessions(ended)}")
    flash(f"New password set for {found.username}; every browser logged in as them was logged out.")
    return redirect(url_for("accounts.users"))


@bp.route("/users/two-step-off", methods=["POST"])
def two_step_off() -> Page:
    found = _user_or_404(form_text("username", MAX_USERNAME, "The username"))
    _db().disable_totp(found.username)
    _audit("user_two_step_off", f"2-step login turned off for {found.username} (by an administrator)")
    flash(f"2-step login is off for {found.username}. They log in with the password alone until they turn it on again.")
    return redirect(url_for("accounts.users"))


@bp.route("/users/remove", methods=["GET", "POST"])
def remove() -> Page:
    if request.method == "GET":
        found = _user_or_404(arg_text("name", MAX_USERNAME, "The username"))
    else:
        found = _user_or_404(form_text("username", MAX_USERNAME, "The username"))
    if found.username == g.user:
        return _user_page(found, "You cannot remove your own account. Ask another administrator.", 400)
    if request.method == "GET":
        configured = current_app.extensions["settings"].admin_username == found.username
        return render_template("users_remove.html", u=found, configured=configured)
    ended = _db().remove_user(found.username)
    if ended is None:
        return _user_page(found, LAST_ADMIN.format(name=found.username), 400)
    _audit("user_removed", f"removed {found.username} ({found.role}); {_sessions(ended)}")
    flash(f"{found.username} was removed and can no longer log in.")
    return redirect(url_for("accounts.users"))


# --- one's own account: 2-step login ---------------------------------------------------------------
@bp.route("/account")
def account() -> Page:
    me = _user_or_404(str(g.user))
    return render_template("account.html", me=me, role_words=roles.ROLE_WORDS)


@bp.route("/account/two-step/start", methods=["POST"])
def two_step_start() -> Page:
    _db().set_totp_pending(str(g.user), totp.new_secret())
    return redirect(url_for("accounts.two_step"))


def _two_step_page(secret: str, error: str | None = None, code: int = 200) -> tuple[str, int]:
    uri = totp.otpauth_uri(secret, str(g.user))
    grouped = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    return render_template("account_two_step.html", secret=grouped, uri=uri, error=error), code


@bp.route("/account/two-step", methods=["GET", "POST"])
def two_step() -> Page:
    """Shows the new secret once; one valid code from the app turns 2-step login on."""
    db, user = _db(), str(g.user)
    secret = db.totp_pending(user)
    if secret is None:
        flash("Start again: press “Turn on 2-step login”.")
        return redirect(url_for("accounts.account"))
    if request.method == "GET":
        return _two_step_page(secret)
    step = totp.matching_step(secret, form_text("code", 20, "The code"), security.now())
    if step is None:
        return _two_step_page(
            secret, "That code does not match. Check the phone's clock is right and type the code it shows now.", 400
        )
    db.enable_totp(user, step)
    _audit("two_step_on", f"{user} turned on 2-step login")
    flash("2-step login is on. From now on you type a code from your app after your password.")
    return redirect(url_for("accounts.account"))


@bp.route("/account/two-step/off", methods=["POST"])
def two_step_self_off() -> Page:
    """Needs the password, so a browser left logged in cannot quietly remove the second step."""
    db, user = _db(), str(g.user)
    password = form_text("password", MAX_PASSWORD, "The password", strip=False)
    me = _user_or_404(user)
    wait = throttled(db, user)
    if wait > 0:
        return render_template("account.html", me=me, role_words=roles.ROLE_WORDS, error=wait_sentence(wait)), 429
    if not verify(db, user, password):
        record_failure(db, user)
        db.audit("two_step_off_failed", user, client_ip(), "wrong password")
        error = "The password is wrong; 2-step login stays on."
        return render_template("account.html", me=me, role_words=roles.ROLE_WORDS, error=error), 403
    db.disable_totp(user)
    _audit("two_step_off", f"{user} turned off 2-step login")
    flash("2-step login is off: you log in with your password alone.")
    return redirect(url_for("accounts.account"))
