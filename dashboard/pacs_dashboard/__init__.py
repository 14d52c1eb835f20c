"""The clinic's backup dashboard (Flask application factory).

:func:`create_app` makes everything one dashboard keeps (deps.py: its settings, its client of the backup
engine, its two SQLite files, the status keeper, the bucket reader, the checks, the monitor thread), then
registers the pages (views/, a blueprint per area) and the checks every request passes (security.py).
"""

from __future__ import annotations

import logging
import os
import secrets
from datetime import timedelta

from flask import Flask, Response, jsonify, render_template, request
from werkzeug.exceptions import HTTPException, NotFound, RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix

from . import deps, timefmt, views
from .backend import Backend
from .backend_api import BackendApi
from .bucket import BucketReader
from .checks import Checks
from .config import DashboardSettings, load_dashboard_settings
from .db import Database
from .mirror import Mirror
from .monitor import Monitor
from .pacs_state import StatusKeeper
from .security import hash_password, install

log = logging.getLogger(__name__)


def create_app(
    settings: DashboardSettings | None = None, *, start_monitor: bool = True, backend: BackendApi | None = None
) -> Flask:
    """Build the dashboard.

    Args:
        settings: defaults to the environment (see .env.example).
        start_monitor: run the background monitor (alerts, chart samples).
        backend: the plugin client (tests may pass a stand-in); defaults to :class:`Backend`.
    """
    settings = settings or load_dashboard_settings()
    # Scripts and styles are files served from here, so the CSP can forbid inline ones.
    app = Flask(__name__, static_folder="static")
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=settings.cookie_secure,
        SESSION_COOKIE_NAME="pacs_dashboard",
        # The cookie expires with the server-side session's absolute limit (see security.py).
        PERMANENT_SESSION_LIFETIME=timedelta(hours=settings.session_hours),
        MAX_CONTENT_LENGTH=1024 * 1024,
    )
    if settings.trusted_proxies:
        # Behind the HTTPS front: the client's address (per-address throttling, audit) and https scheme
        # come from the proxy's headers; Caddy replaces any X-Forwarded-For a client sends.
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n)  # type: ignore[method-assign]
    parts = _parts(settings, backend or Backend(settings))
    deps.install(app, parts)
    _first_admin(parts.db, settings)
    install(app)
    timefmt.install(app, settings.clinic.tz)  # times in the clinic's time zone
    if settings.group is not None:  # group mode: the group catalog (PostgreSQL) and its reconcile (docs/groups.md)
        from .group.service import install as install_group

        install_group(app, settings.group, start_threads=start_monitor)
    views.register(app)

    def error_page(code: int, message: str) -> tuple[str | Response, int]:
        if request.path.startswith("/api/") or request.path == "/metrics":
            return jsonify({"error": message}), code
        return render_template("error.html", code=code, message=message), code

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[str | Response, int]:
        message = exc.description or "That did not work."
        if isinstance(exc, NotFound) and message == NotFound.description:
            message = "There is no such page. Check the address, or go back to the health page."
        elif isinstance(exc, RequestEntityTooLarge):
            message = "What was sent is too large. Check what you typed and try again."
        return error_page(exc.code or 500, message)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> tuple[str | Response, int]:
        log.exception("unexpected error")  # the traceback stays in the log, never on the page
        return error_page(500, "Something went wrong. The technician log has the details.")

    if start_monitor and settings.mode == "clinic":  # a group service has no PACS of its own to watch
        monitor = Monitor(
            parts.backend,
            parts.db,
            settings.apprise_urls,
            settings.monitor_interval_s,
            webhook_hosts=settings.webhook_hosts,
            keeper=parts.keeper,
            mirror=parts.mirror,
            tz=settings.clinic.tz,
            smtp=settings.smtp,
            heartbeat=settings.heartbeat,
        )
        deps.install_monitor(app, monitor)
        monitor.start()
    return app


def _parts(settings: DashboardSettings, backend: BackendApi) -> deps.Parts:
    """The dashboard's own state, in its data folder: dashboard.sqlite (users, sessions, audit, alert state,
    settings, chart samples) and mirror.sqlite (what it needs while the PACS is down), and the read-only
    bucket reader when an account for it is configured."""
    db = Database(settings.data_dir / "dashboard.sqlite")
    mirror = Mirror(settings.data_dir / "mirror.sqlite")
    return deps.Parts(
        settings=settings,
        backend=backend,
        db=db,
        mirror=mirror,
        keeper=StatusKeeper(backend, mirror),
        bucket=BucketReader(settings.clinic.store) if settings.clinic.store else None,
        checks=Checks(),
    )


def _first_admin(db: Database, settings: DashboardSettings) -> None:
    """The first administrator comes from DASHBOARD_USERNAME/DASHBOARD_PASSWORD, or a one-time setup."""
    if settings.admin_username and settings.admin_password:
        if db.user_hash(settings.admin_username) is None:
            db.add_user(settings.admin_username, hash_password(settings.admin_password))
            db.audit("user_created", settings.admin_username, None, "first administrator from configuration")
        return
    if db.user_count() == 0:
        token_file = settings.data_dir / "setup-token"
        if not token_file.exists():
            fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(24))
        log.warning("No dashboard user yet: open /setup and enter the token from %s", token_file)
