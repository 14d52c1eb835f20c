"""Login, CSRF and login throttling for every request.

Every endpoint needs a logged-in user except the few listed in PUBLIC_ENDPOINTS. API endpoints also
accept HTTP basic authentication with a dashboard user (for monitoring systems).
"""

from __future__ import annotations

import base64
import hmac
import secrets
import time

from flask import Flask, Response, abort, current_app, g, jsonify, redirect, request, session, url_for
from werkzeug.security import check_password_hash, generate_password_hash

from .db import Database

PUBLIC_ENDPOINTS = {"status.healthz", "auth.login", "auth.setup"}
MAX_FAILURES, WINDOW_S = 5, 15 * 60

# A hash computed once, checked when the user does not exist, so a wrong user costs the same time.
_DUMMY_HASH = generate_password_hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return generate_password_hash(password)


def verify(db: Database, username: str, password: str) -> bool:
    stored = db.user_hash(username)
    ok = check_password_hash(stored or _DUMMY_HASH, password)
    return ok and stored is not None


def client_ip() -> str:
    return request.remote_addr or "?"


def throttled(db: Database, username: str) -> float:
    """Seconds to wait before another login attempt from this address or for this user (0 = allowed)."""
    since = time.time() - WINDOW_S
    db.execute("DELETE FROM login_failures WHERE at < ?", (since,))
    worst = 0.0
    for key in (f"ip:{client_ip()}", f"user:{username.lower()}"):
        rows = db.query("SELECT at FROM login_failures WHERE key=? ORDER BY at", (key,))
        if len(rows) >= MAX_FAILURES:
            worst = max(worst, rows[-MAX_FAILURES][0] + WINDOW_S - time.time())
    return max(0.0, worst)


def record_failure(db: Database, username: str) -> None:
    now = time.time()
    db.execute("INSERT INTO login_failures VALUES (?, ?)", (f"ip:{client_ip()}", now))
    db.execute("INSERT INTO login_failures VALUES (?, ?)", (f"user:{username.lower()}", now))


def clear_failures(db: Database, username: str) -> None:
    db.execute("DELETE FROM login_failures WHERE key IN (?, ?)", (f"ip:{client_ip()}", f"user:{username.lower()}"))


def csrf_token() -> str:
    token = session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return str(token)


def _basic_auth_user(db: Database) -> str | None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    if throttled(db, user) > 0:
        return None
    if verify(db, user, password):
        return user
    record_failure(db, user)
    return None


def _wants_json() -> bool:
    return request.path.startswith("/api/") or request.path == "/metrics"


def install(app: Flask) -> None:
    """Register the checks that run before every request."""

    @app.before_request
    def require_login() -> Response | None:
        db: Database = current_app.extensions["db"]
        g.user = session.get("user")
        if g.user and db.user_hash(g.user) is None:  # user removed: end the session
            session.clear()
            g.user = None
        if request.endpoint in PUBLIC_ENDPOINTS:
            return None
        if g.user is None and _wants_json():
            g.user = _basic_auth_user(db)
            if g.user is not None:
                g.basic_auth = True
        if g.user is None:
            if _wants_json() or request.method != "GET":
                resp = jsonify({"error": "Log in first."})
                resp.status_code = 401
                resp.headers["WWW-Authenticate"] = 'Basic realm="PACS backup"'
                return resp
            return redirect(url_for("auth.login", next=request.path))  # type: ignore[return-value]
        return None

    @app.before_request
    def require_csrf() -> None:
        if request.method in ("GET", "HEAD", "OPTIONS") or getattr(g, "basic_auth", False):
            return
        sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
        expected = session.get("csrf") or ""
        if not expected or not hmac.compare_digest(str(sent), str(expected)):
            abort(400, "This form has expired or did not come from this dashboard. Reload the page and try again.")

    @app.after_request
    def headers(resp: Response) -> Response:
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        resp.headers.setdefault("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; "
                                "style-src 'self' 'unsafe-inline'; script-src 'self' 'unsafe-inline'")
        if request.endpoint not in ("status.healthz",):
            resp.headers.setdefault("Cache-Control", "no-store")
        return resp

    app.jinja_env.globals["csrf_token"] = csrf_token
