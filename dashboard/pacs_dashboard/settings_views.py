"""Targets (how fresh each copy must be) and the cloud storage configuration. Alerts have their own page
(alerts_views.py); this page says whether they are on and links there."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as WerkzeugResponse

from pacs_backup.errors import BackupError

from . import destinations
from .backend import BackendRefused
from .health import DEFAULT_TARGETS
from .inputs import form_text, number_in, sentence
from .security import client_ip

bp = Blueprint("settings", __name__)

LIMITS = {
    "replication_minutes": (1, 1440),
    "offsite_hours": (1, 720),
    "drill_hours": (1, 2160),
    "disk_warn_percent": (50, 99),
}
MAX_RCLONE_CHARS = 32 * 1024


def _cloud_storage() -> dict[str, object]:
    """The cloud-storage remotes the backup has (names and types only), or why they cannot be listed now."""
    try:
        answer = current_app.extensions["backend"].rclone_config()
    except BackupError as exc:
        return {"remotes": [], "targets": [], "problem": sentence(exc)}
    return {"remotes": list(answer.get("remotes") or []), "targets": list(answer.get("targets") or [])}


def _page(targets: dict[str, float | str], errors: list[str]) -> str:
    """The page; ``targets`` may hold a refused value as typed, so it is shown, not dropped. (A refused
    cloud storage configuration is not shown back: it holds account tokens.)"""
    db, settings = current_app.extensions["db"], current_app.extensions["settings"]
    return render_template(
        "settings.html",
        targets=targets,
        alerts_in_use=sum(1 for d in destinations.of_settings(db, settings) if d.problem is None),
        errors=errors,
        cloud=_cloud_storage(),
    )


@bp.route("/settings", methods=["GET", "POST"])
def edit() -> str | WerkzeugResponse | tuple[str, int]:
    db = current_app.extensions["db"]
    targets = {**DEFAULT_TARGETS, **db.setting("targets", {})}
    if request.method == "GET":
        return _page(targets, [])
    errors, new, shown = [], dict(targets), dict[str, float | str](targets)
    for key, (low, high) in LIMITS.items():
        label = key.replace("_", " ")
        raw = form_text(key, 20, f"The {label}")
        shown[key] = raw  # a refused value comes back as typed
        value = number_in(raw, key.rsplit("_", 1)[1], low, high)  # the field's unit ends its name
        if isinstance(value, str):
            errors.append(value)
            continue
        new[key] = value
    if errors:
        return _page(shown, errors), 400
    changed = {k: v for k, v in new.items() if targets.get(k) != v}
    db.set_setting("targets", new)
    db.audit("settings_changed", g.user, client_ip(), str(changed))
    flash("Settings saved.")
    return redirect(url_for("settings.edit"))


@bp.route("/settings/cloud-storage", methods=["POST"])
def cloud_storage() -> str | WerkzeugResponse | tuple[str, int]:
    """Hand a pasted rclone configuration to the plugin (it checks and writes it); never shown back."""
    db = current_app.extensions["db"]
    targets = {**DEFAULT_TARGETS, **db.setting("targets", {})}
    text = form_text("rclone_config", MAX_RCLONE_CHARS, "The cloud storage configuration", strip=False)
    if not text.strip():
        return _page(targets, ["Paste the cloud storage (rclone) configuration into the box first."]), 400
    try:
        answer = current_app.extensions["backend"].put_rclone_config(text)
    except BackendRefused as exc:  # the plugin's sentence: which line, which option is not allowed
        db.audit("rclone_config_refused", g.user, client_ip(), str(exc)[:300])
        return _page(targets, [f"The cloud storage configuration was not saved: {exc}"]), 400
    except BackupError as exc:
        return _page(targets, [f"The cloud storage configuration was not saved: {sentence(exc)}"]), 503
    remotes = ", ".join(f"{r.get('name')} ({r.get('type')})" for r in answer.get("remotes") or [])
    db.audit("rclone_config_saved", g.user, client_ip(), f"remotes: {remotes}")
    flash(str(answer.get("message") or f"The cloud storage configuration is saved: {remotes}."))
    return redirect(url_for("settings.edit"))
