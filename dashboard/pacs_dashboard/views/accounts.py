"""The Users page (administrators: add, change role, set a password, turn off 2-step, remove) and each
user's own account page (turning their 2-step login on, moving it to a new phone or turning it off).

Every change is written to the audit log with who did it; passwords and 2-step secrets never are. Changes to
2-step login need the password (and the current code) and log out the account's other browsers (two_step.py).
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from .. import deps, roles, security, shares, totp
from .. import two_step as changes
from ..db import User
from ..inputs import MAX_PASSWORD, MAX_USERNAME, arg_text, form_text, new_password_problem, username_problem
from ..security import client_ip, hash_password, start_session
from ..two_step import Change, Refusal

bp = Blueprint("accounts", __name__)

LAST_ADMIN = "{name} is the only administrator. Make another user an administrator first."

Page = str | Response | tuple[str, int]


def _audit(action: str, detail: str) -> None:
    deps.db().audit(action, g.user, client_ip(), detail)


def _role_form() -> roles.Role:
    role = roles.role_of(form_text("role", 20, "The role"))
    if role is None:
        abort(400, "Choose one of the roles shown.")
    return role


def _user_or_404(username: str) -> User:
    found = deps.db().user(username)
    if found is None:
        abort(404, "There is no such user. It may have been removed a moment ago.")
    return found


def _sessions(ended: int) -> str:
    return f"{ended} session(s) logged out"


# --- the Users page (administrators) -------------------------------------------------------------
def _users_page(error: str | None = None, code: int = 200, **form: str) -> tuple[str, int]:
    return render_template(
        "users.html", users=deps.db().users(), role_words=roles.ROLE_WORDS, error=error, form=form
    ), code


@bp.route("/users")
def users() -> Page:
    return _users_page()


@bp.route("/users/add", methods=["POST"])
def add() -> Page:
    username = form_text("username", MAX_USERNAME, "The username")
    role = _role_form()
    password = form_text("password", MAX_PASSWORD, "The password", strip=False)
    again = form_text("again", MAX_PASSWORD, "The repeated password", strip=False)
    problem = username_problem(username) or new_password_problem(password, again)
    if problem:
        return _users_page(problem, 400, username=username, role=role)
    if not deps.db().add_user(username, hash_password(password), role):
        return _users_page(f"There is already a user called {username}.", 400, username=username, role=role)
    _audit("user_created", f"added {username} as {role}")
    flash(f"{username} can now log in as {role}. Give them the password in person, not by email.")
    return redirect(url_for("accounts.users"))


def _user_page(found: User, error: str | None = None, code: int = 200) -> tuple[str, int]:
    me_two_step = deps.db().totp_secret(str(g.user)) is not None  # then the 2-step form also asks for their code
    may_share = shares.account_may_share(deps.db(), found.username)
    page = render_template(
        "users_edit.html",
        u=found,
        role_words=roles.ROLE_WORDS,
        error=error,
        me_two_step=me_two_step,
        may_share=may_share,
    )
    return page, code


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
    ended = deps.db().set_role(found.username, role)
    if ended is None:
        return _user_page(found, LAST_ADMIN.format(name=found.username), 400)
    _audit("user_role_changed", f"{found.username}: {found.role} -> {role}; {_sessions(ended)}")
    flash(f"{found.username} is now {role}. They were logged out and log in again with the new role.")
    if found.username == g.user:
        return redirect(url_for("auth.login"))  # their own session ended with the change
    return redirect(url_for("accounts.users"))


@bp.route("/users/sharing", methods=["POST"])
def set_sharing() -> Page:
    """Whether a staff account may make share links of studies (administrators always may)."""
    found = _user_or_404(form_text("username", MAX_USERNAME, "The username"))
    allowed = request.form.get("may_share") == "yes"
    shares.set_may_share(deps.db(), found.username, allowed)
    _audit("user_sharing_changed", f"{found.username} {'may' if allowed else 'may not'} share studies")
    flash(f"{found.username} {'may now' if allowed else 'can no longer'} make share links of studies.")
    return redirect(url_for("accounts.user", name=found.username))


@bp.route("/users/password", methods=["POST"])
def set_password() -> Page:
    found = _user_or_404(form_text("username", MAX_USERNAME, "The username"))
    new = form_text("new", MAX_PASSWORD, "The new password", strip=False)
    again = form_text("again", MAX_PASSWORD, "The repeated new password", strip=False)
    problem = new_password_problem(new, again)
    if problem:
        return _user_page(found, problem, 400)
    ended = deps.db().set_password(found.username, hash_password(new))  # ends that user's sessions
    if found.username == g.user:
        start_session(deps.db(), found.username)  # this browser carries on
    _audit("user_password_set", f"new password for {found.username}; {_sessions(ended)}")
    flash(f"New password set for {found.username}; every browser logged in as them was logged out.")
    return redirect(url_for("accounts.users"))


def _proof(what: str) -> Refusal | None:
    """The logged-in user's password (and current code) from the form, checked; see changes.prove."""
    password = form_text("password", MAX_PASSWORD, "The password", strip=False)
    code = form_text("code", 20, "The code")
    return changes.prove(deps.db(), str(g.user), password, code, what)


def _after(change: Change) -> int:
    settings = deps.settings()
    return changes.after(deps.db(), change, settings.smtp, settings.clinic.tz)


@bp.route("/users/two-step-off", methods=["POST"])
def two_step_off() -> Page:
    """For a lost phone. The administrator types their own password (and code): a browser left logged in
    as an administrator must not be enough to remove someone's second step."""
    found = _user_or_404(form_text("username", MAX_USERNAME, "The username"))
    refused = _proof(f"turn off 2-step login for {found.username}")
    if refused:
        return _user_page(found, refused.sentence, refused.status)
    deps.db().disable_totp(found.username)
    detail = f"2-step login turned off for {found.username} (by an administrator)"
    happened = "turned off"
    _after(Change(str(g.user), found.username, "user_two_step_off", detail, happened))
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
        configured = deps.settings().admin_username == found.username
        return render_template("users_remove.html", u=found, configured=configured)
    ended = deps.db().remove_user(found.username)
    if ended is None:
        return _user_page(found, LAST_ADMIN.format(name=found.username), 400)
    _audit("user_removed", f"removed {found.username} ({found.role}); {_sessions(ended)}")
    flash(f"{found.username} was removed and can no longer log in.")
    return redirect(url_for("accounts.users"))


# --- one's own account: 2-step login ---------------------------------------------------------------
def _account_page(error: str | None = None, code: int = 200) -> tuple[str, int]:
    me = _user_or_404(str(g.user))
    return render_template("account.html", me=me, role_words=roles.ROLE_WORDS, error=error), code


@bp.route("/account")
def account() -> Page:
    return _account_page()


@bp.route("/account/two-step/start", methods=["POST"])
def two_step_start() -> Page:
    """Turning 2-step login on, or moving it to a new phone: the password, and the current code when it is on."""
    db, user = deps.db(), str(g.user)
    moving = db.totp_secret(user) is not None
    refused = _proof("move 2-step login to a new phone" if moving else "turn on 2-step login")
    if refused:
        return _account_page(refused.sentence, refused.status)
    db.set_totp_pending(user, totp.new_secret())
    changes.started()
    return redirect(url_for("accounts.two_step"))


def _two_step_page(secret: str, error: str | None = None, code: int = 200) -> tuple[str, int]:
    uri = totp.otpauth_uri(secret, str(g.user))
    grouped = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    moving = deps.db().totp_secret(str(g.user)) is not None
    return render_template("account_two_step.html", secret=grouped, uri=uri, error=error, moving=moving), code


@bp.route("/account/two-step", methods=["GET", "POST"])
def two_step() -> Page:
    """Shows the new key (only soon after the password was typed); one valid code from it turns it on."""
    db, user = deps.db(), str(g.user)
    secret = db.totp_pending(user)
    if secret is None or not changes.started_recently():
        db.set_totp_pending(user, None)
        flash("Start again: type your password and press the button under “2-step login”.")
        return redirect(url_for("accounts.account"))
    if request.method == "GET":
        return _two_step_page(secret)
    code = form_text("code", 20, "The code")
    if not totp.is_code(code):
        changes.code_refused(db, user)
        return _two_step_page(secret, changes.NOT_DIGITS, 400)
    step = totp.matching_step(secret, code, security.now())
    if step is None:
        return _two_step_page(
            secret, "That code does not match. Check the phone's clock is right and type the code it shows now.", 400
        )
    moving = db.totp_secret(user) is not None
    db.enable_totp(user, step)
    changes.finished()
    if moving:
        change = Change(
            user, user, "two_step_replaced", f"{user} moved 2-step login to a new phone", "moved to a new phone"
        )
    else:
        change = Change(user, user, "two_step_on", f"{user} turned on 2-step login", "turned on")
    ended = _after(change)
    others = f" {ended} other browser(s) logged in as you were logged out." if ended else ""
    if moving:
        flash(f"2-step login now uses the new phone; codes from the old one no longer work.{others}")
    else:
        flash(f"2-step login is on. From now on you type a code from your app after your password.{others}")
    return redirect(url_for("accounts.account"))


@bp.route("/account/two-step/off", methods=["POST"])
def two_step_self_off() -> Page:
    """Needs the password and the current code, so a browser left logged in cannot remove the second step."""
    db, user = deps.db(), str(g.user)
    refused = _proof("turn off 2-step login")
    if refused:
        return _account_page(refused.sentence, refused.status)
    db.disable_totp(user)
    ended = _after(Change(user, user, "two_step_off", f"{user} turned off 2-step login", "turned off"))
    others = f" {ended} other browser(s) logged in as you were logged out." if ended else ""
    flash(f"2-step login is off: you log in with your password alone.{others}")
    return redirect(url_for("accounts.account"))
