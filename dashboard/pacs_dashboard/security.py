"""Login sessions, CSRF, login throttling and input hygiene for every request.

Every endpoint needs a logged-in user except the few listed in PUBLIC_ENDPOINTS, and a role allowed
to use it (roles.py). API endpoints and the DICOMweb service of copies (``/copies/...``) also accept HTTP
basic authentication with a dashboard user without 2-step login (for monitoring systems, and a technician's
own DICOMweb viewer); no session cookie is made for it.

Sessions live on the server (the ``sessions`` table): the signed cookie holds only a random id, so
logging out, changing a password or reaching the session's age limit ends it for every copy of the
cookie too.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import time
from urllib.parse import unquote_to_bytes

from flask import Flask, Response, abort, g, jsonify, redirect, request, session, url_for
from werkzeug.security import check_password_hash, generate_password_hash

from . import deps, roles
from .credential_cache import recently_verified, remember
from .db import Database

# auth.login_code: the second step of a login with 2-step (it checks its own pending login).
# viewer.vendor: the viewer's own files (npm's dwv and its libraries, no patient data), also for share links.
PUBLIC_ENDPOINTS = {"status.healthz", "auth.login", "auth.login_code", "auth.setup", "static", "viewer.vendor"}
# A share link's recipient has no account (views/shares.py checks the token, its PIN and the throttle).
PUBLIC_ENDPOINTS |= {"shares.recipient", "shares.recipient_dicomweb"}
# ...and gets no session cookie to hold a CSRF token: its PIN form checks the Origin header instead.
ORIGIN_CHECKED_ENDPOINTS = {"shares.recipient"}
# A clinic's appliance pushes to the group service (views/group_api.py) with its clinic token, not a login: these
# two endpoints check the token themselves (no session, no form, so no CSRF token either).
TOKEN_ENDPOINTS = {"group_api.catalog", "group_api.heartbeat"}
# ...and pulls the studies brought to it (views/group_deliveries_api.py), with the same token.
TOKEN_ENDPOINTS |= {f"group_deliveries_api.{name}" for name in ("listing", "instances", "files", "done")}
PUBLIC_ENDPOINTS |= TOKEN_ENDPOINTS

# The DICOMweb service of copies (views/copies.py) takes HTTP basic authentication too, for a technician's own
# viewer; accounts with 2-step login are refused there as well (the password alone must not open them).
BASIC_PATHS = ("/copies",)
TWO_STEP_NO_BASIC_VIEWER = (
    "This account uses 2-step login, which a DICOMweb viewer cannot do with a password alone. "
    "Log in to the dashboard in the browser instead, or give the viewer an account of role staff without 2-step login."
)

TWO_STEP_NO_BASIC = (
    "This account uses 2-step login, which monitoring tools cannot do. "
    "Give the monitoring tool an account of its own with the monitor role and without 2-step login."
)

# Failed logins are counted per (address, user name) and per address, never per user name alone:
# otherwise anyone could lock the clinic's administrator out by typing wrong passwords for "admin".
MAX_FAILURES_PER_USER, MAX_FAILURES_PER_ADDRESS, WINDOW_S = 5, 20, 15 * 60

# Our own pages' scripts send this header; without it a 401 also asks the browser for a password
# (monitoring tools use HTTP basic authentication), which would pop up over an expired health page.
PAGE_REQUEST_HEADER = "X-Requested-With"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)

# A hash computed once, checked when the user does not exist, so a wrong user costs the same time.
_DUMMY_HASH = generate_password_hash(secrets.token_urlsafe(16))


def now() -> float:
    """The clock used for sessions (tests move it)."""
    return time.time()


def hash_password(password: str) -> str:
    return generate_password_hash(password)


def verify(db: Database, username: str, password: str) -> bool:
    stored = db.user_hash(username)
    ok = check_password_hash(stored or _DUMMY_HASH, password)
    return ok and stored is not None


def client_ip() -> str:
    return request.remote_addr or "?"


def _failure_keys(username: str) -> tuple[str, str]:
    ip = client_ip()
    return f"addr:{ip}", f"addr-user:{ip}\n{username.lower()}"


def throttled(db: Database, username: str) -> float:
    """Seconds before this address may try again for this user name (0 = allowed)."""
    at = time.time()
    db.execute("DELETE FROM login_failures WHERE at < ?", (at - WINDOW_S,))
    worst = 0.0
    for key, limit in zip(_failure_keys(username), (MAX_FAILURES_PER_ADDRESS, MAX_FAILURES_PER_USER), strict=True):
        rows = db.query("SELECT at FROM login_failures WHERE key=? ORDER BY at DESC LIMIT ?", (key, limit))
        if len(rows) >= limit:
            worst = max(worst, rows[-1][0] + WINDOW_S - at)
    return max(0.0, worst)


def record_failure(db: Database, username: str) -> None:
    at = time.time()
    for key in _failure_keys(username):
        db.execute("INSERT INTO login_failures VALUES (?, ?)", (key, at))


def clear_failures(db: Database, username: str) -> None:
    """After a good login: forget this address's failures for this user (not its other failures)."""
    db.execute("DELETE FROM login_failures WHERE key=?", (_failure_keys(username)[1],))


def first_in_minute(db: Database, what: str) -> bool:
    """True once a minute per ``what``: keeps a flood of refused attempts from flooding the audit log."""
    key, at = f"noted:{what}", time.time()
    if db.query("SELECT 1 FROM login_failures WHERE key=? AND at > ?", (key, at - 60)):
        return False
    db.execute("INSERT INTO login_failures VALUES (?, ?)", (key, at))
    return True


def wait_sentence(seconds: float) -> str:
    return f"Too many failed attempts from this computer. Try again in {max(1, round(seconds / 60))} minutes."


def may(endpoint: str) -> bool:
    """Whether the logged-in user may open ``endpoint`` (templates show only the links they may follow)."""
    return getattr(g, "user", None) is not None and roles.allowed(getattr(g, "role", None), endpoint)


def start_session(db: Database, username: str) -> None:
    """Log ``username`` in on this browser: a new session id and a new CSRF token."""
    settings = deps.settings()
    at = now()
    db.prune_sessions(at, settings.session_hours * 3600, settings.idle_minutes * 60)
    old = session.get("sid")
    if isinstance(old, str):
        db.end_session(old)
    session.clear()  # a new cookie at login (no session fixation)
    sid, csrf = db.create_session(username, client_ip(), at)
    session.permanent = True
    session["sid"] = sid
    g.user, g.session_csrf = username, csrf
    found = db.user(username)
    g.role = found.role if found else None


def end_session(db: Database) -> None:
    sid = session.get("sid")
    if isinstance(sid, str):
        db.end_session(sid)
    session.clear()
    g.user, g.session_csrf = None, None


def csrf_token() -> str:
    """The token for this page's forms: the session's when logged in, else one kept in the cookie."""
    if getattr(g, "session_csrf", None):
        return str(g.session_csrf)
    token = session.get("csrf")
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def _basic_auth(db: Database) -> str | Response | None:
    """The user of a valid ``Authorization: Basic`` header, a 429 answer when throttled, or None."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user = user[:100]
    wait = throttled(db, user)
    if wait > 0:
        if first_in_minute(db, f"basic:{client_ip()}"):
            db.audit("login_throttled", user, client_ip(), f"{_basic_words()} to {request.path}")
        resp = jsonify({"error": wait_sentence(wait)})
        resp.status_code = 429
        resp.headers["Retry-After"] = str(int(wait) + 1)
        return resp
    if recently_verified(db, user, password) or verify(db, user, password):
        remember(db, user, password)
        clear_failures(db, user)
        if db.totp_secret(user):  # the password alone must not open an account that needs a code
            if first_in_minute(db, f"basic-2step:{client_ip()}"):
                db.audit(
                    "login_refused",
                    user,
                    client_ip(),
                    f"{_basic_words()} to {request.path}: the account uses 2-step login",
                )
            resp = jsonify({"error": TWO_STEP_NO_BASIC_VIEWER if _basic_path() else TWO_STEP_NO_BASIC})
            resp.status_code = 401
            return resp
        return user
    record_failure(db, user)
    db.audit("login_failed", user, client_ip(), f"{_basic_words()} to {request.path}")
    return None


def _basic_words() -> str:
    return "DICOMweb login (HTTP basic)" if _basic_path() else "monitoring login (HTTP basic)"


def _basic_path() -> bool:
    """A path below BASIC_PATHS (answered in JSON, and open to HTTP basic authentication like the API)."""
    return any(request.path == p or request.path.startswith(p + "/") for p in BASIC_PATHS)


def _wants_json() -> bool:
    return request.path.startswith(("/api/", "/group/api/")) or request.path == "/metrics" or _basic_path()


def _has_control(text: str, allow_lines: bool) -> bool:
    return any((ord(c) < 32 and not (allow_lines and c in "\t\r\n")) or c == "\x7f" for c in text)


def _bad_urlencoded(raw: bytes, allow_lines: bool) -> bool:
    """True when ``a=b&c=d`` bytes hold invalid UTF-8 or control characters (NUL and the like)."""
    for pair in raw.split(b"&"):
        for part in pair.split(b"=", 1):
            try:
                text = unquote_to_bytes(part.replace(b"+", b" ")).decode("utf-8")
            except UnicodeDecodeError:
                return True
            if _has_control(text, allow_lines):
                return True
    return False


def _check_input() -> None:
    """Refuse, with a sentence, addresses and forms that no page of ours produces."""
    try:  # WSGI hands the path over as latin-1 characters of the raw bytes
        path = request.environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        abort(400, "The address contains characters that are not allowed. Check the address and try again.")
    if _has_control(path, allow_lines=False) or _bad_urlencoded(request.query_string, allow_lines=False):
        abort(400, "The address contains characters that are not allowed. Check the address and try again.")
    if request.mimetype == "application/x-www-form-urlencoded" and _bad_urlencoded(
        request.get_data(cache=True), allow_lines=True
    ):  # cached: request.form still parses it
        abort(400, "The form contains characters that are not allowed. Check what you typed and try again.")


def install(app: Flask) -> None:
    """Register the checks that run before every request."""

    @app.before_request
    def check_input() -> None:
        g.user, g.session_csrf, g.role = None, None, None
        _check_input()

    @app.before_request
    def require_login() -> Response | None:
        db, settings = deps.db(), deps.settings()
        sid = session.get("sid")
        if isinstance(sid, str):
            found = db.session(sid, now(), settings.session_hours * 3600, settings.idle_minutes * 60)
            if found is None:  # ended (logout, password change), too old, idle too long, or user removed
                session.clear()
            else:
                g.user, g.session_csrf, g.role = found.username, found.csrf, found.role
        if request.endpoint in PUBLIC_ENDPOINTS:
            return None
        if g.user is None and _wants_json():
            answer = _basic_auth(db)
            if isinstance(answer, Response):
                return answer
            if answer is not None:
                found_user = db.user(answer)
                g.user, g.basic_auth, g.role = answer, True, found_user.role if found_user else None
        if g.user is None:
            if _wants_json() or request.method != "GET":
                resp = jsonify({"error": "Log in first."})
                resp.status_code = 401
                if request.headers.get(PAGE_REQUEST_HEADER) != "pacs-dashboard":
                    resp.headers["WWW-Authenticate"] = 'Basic realm="PACS backup"'
                return resp
            return redirect(url_for("auth.login", next=request.path))  # type: ignore[return-value]
        return None

    @app.before_request
    def require_role() -> None:
        """The one place roles are enforced: after login, before anything (even CSRF) is looked at."""
        endpoint = request.endpoint
        if endpoint is None or endpoint in PUBLIC_ENDPOINTS:
            return  # no such page (404), or a page for everyone
        if not roles.allowed(g.role, endpoint):
            abort(403, roles.refusal(g.role, endpoint))

    @app.before_request
    def require_csrf() -> None:
        if request.method in ("GET", "HEAD", "OPTIONS") or getattr(g, "basic_auth", False):
            return
        if request.endpoint in ORIGIN_CHECKED_ENDPOINTS or request.endpoint in TOKEN_ENDPOINTS:
            return
        sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
        expected = g.session_csrf if g.user else session.get("csrf")
        if (
            not isinstance(expected, str)
            or not expected
            or not hmac.compare_digest(str(sent).encode(), expected.encode())
        ):
            abort(400, "This form has expired or did not come from this dashboard. Reload the page and try again.")

    @app.after_request
    def headers(resp: Response) -> Response:
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        resp.headers.setdefault("Content-Security-Policy", CSP)
        if request.endpoint == "static":
            resp.headers["Cache-Control"] = "no-cache"  # revalidated, so an upgrade's new script is used
        elif request.endpoint != "status.healthz":
            resp.headers.setdefault("Cache-Control", "no-store")
        return resp

    app.jinja_env.globals["csrf_token"] = csrf_token
    app.jinja_env.globals["may"] = may
