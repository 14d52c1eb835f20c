"""The clinic's backup dashboard (Flask application factory)."""

from __future__ import annotations

import logging
import os
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask, render_template
from werkzeug.exceptions import HTTPException

from .backend import Backend
from .config import DashboardSettings, load_dashboard_settings
from .db import Database
from .monitor import Monitor
from .security import hash_password, install

log = logging.getLogger(__name__)


def create_app(settings: DashboardSettings | None = None, *, start_monitor: bool = True,
               backend: Any = None) -> Flask:
    """Build the dashboard.

    Args:
        settings: defaults to the environment (see .env.example).
        start_monitor: run the background monitor (alerts, chart samples).
        backend: the plugin client (tests may pass a stand-in); defaults to :class:`Backend`.
    """
    settings = settings or load_dashboard_settings()
    app = Flask(__name__, static_folder=None)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=settings.cookie_secure,
        SESSION_COOKIE_NAME="pacs_dashboard",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=8),
        MAX_CONTENT_LENGTH=1024 * 1024,
    )
    db = Database(settings.data_dir / "dashboard.sqlite")
    app.extensions["db"] = db
    app.extensions["settings"] = settings
    app.extensions["backend"] = backend or Backend(settings)
    _first_admin(db, settings)
    install(app)
    app.jinja_env.filters["datetime"] = lambda ts: datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")

    from . import audit, auth, drills, settings_views, status, studies
    for bp in (auth.bp, status.bp, studies.bp, drills.bp, audit.bp, settings_views.bp):
        app.register_blueprint(bp)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> tuple[str, int]:
        return render_template("error.html", code=exc.code, message=exc.description), exc.code or 500

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> tuple[str, int]:
        log.exception("unexpected error")  # the traceback stays in the log, never on the page
        return render_template("error.html", code=500, message="Something went wrong. The technician log has "
                               "the details."), 500

    if start_monitor:
        monitor = Monitor(app.extensions["backend"], db, settings.apprise_urls, settings.monitor_interval_s)
        app.extensions["monitor"] = monitor
        monitor.start()
    return app


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
