"""Targets (how fresh each copy must be) and the cloud storage configuration. Alerts have their own page
(views/alerts.py); this page says whether they are on and links there."""

from __future__ import annotations

import time

from flask import Blueprint, flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as WerkzeugResponse

from pacs_backup.contracts.documents import RetentionDoc
from pacs_backup.contracts.errors import BackupError, BadRequest
from pacs_backup.rclone.forms import FORMS, MAX_FIELD_CHARS, build
from pacs_backup.rclone.providers import PROVIDERS

from .. import deps, destinations
from ..backend_api import BackendRefused, RcloneConfigDoc
from ..fallback import known_status
from ..inputs import form_text, number_in, sentence
from ..light import DEFAULT_TARGETS
from ..security import client_ip
from ..timefmt import clock
from ..upload_window import upload_rules

bp = Blueprint("settings", __name__)

LIMITS = {
    "replication_minutes": (1, 1440),
    "offsite_hours": (1, 720),
    "drill_hours": (1, 2160),
    "disk_warn_percent": (50, 99),
}
MAX_RCLONE_CHARS = 32 * 1024
UPLOAD_EXAMPLE = "08:00,2Mbit 18:00,off"  # 2 Mbit/s during opening hours, unlimited at night


def _cloud_storage() -> dict[str, object]:
    """The cloud-storage remotes the backup has (names and types only), or why they cannot be listed now."""
    try:
        answer: RcloneConfigDoc = deps.backend().rclone_config()
    except BackupError as exc:
        return {"remotes": [], "targets": [], "problem": sentence(exc), "remote_names": []}
    return {
        "remotes": list(answer.get("remotes") or []),
        "targets": list(answer.get("targets") or []),
        "remote_names": list(answer.get("remote_names") or []),
        "refused": answer.get("refused"),  # the file in place would not be used: why
    }


def _upload_limits() -> dict[str, object]:
    """Each offsite copy's upload timetable (.env's, the one set here, the one in force and its next window),
    or why they cannot be read now."""
    try:
        copies = deps.backend().upload_limits()
    except BackupError as exc:
        return {"copies": [], "problem": sentence(exc)}
    now, tz = time.time(), deps.tz()
    shown = []
    for c in copies:
        opens = c.get("next_window")
        window = f"next window at {clock(opens, tz, now)}" if opens is not None else "uploading is allowed now"
        shown.append({**c, "window": window})
    return {"copies": shown, "problem": None}


def _retention() -> RetentionDoc | None:
    status = known_status()
    return status.get("retention") if status else None


def _page(targets: dict[str, float | str], errors: list[str]) -> str:
    """The page; ``targets`` may hold a refused value as typed, so it is shown, not dropped. (A refused
    cloud storage configuration is not shown back: it holds account tokens.)"""
    db, settings = deps.db(), deps.settings()
    return render_template(
        "settings.html",
        targets=targets,
        alerts_in_use=sum(1 for d in destinations.of_settings(db, settings) if d.problem is None),
        errors=errors,
        cloud=_cloud_storage(),
        forms=FORMS,
        titles={kind: PROVIDERS[kind].title for kind in FORMS},
        uploads=upload_rules(deps.keeper().read().status, time.time(), deps.tz()),  # set in .env, shown here
        retention=_retention(),  # set in .env, shown here
        limits=_upload_limits(),  # set in .env, changed here by administrators
        upload_example=UPLOAD_EXAMPLE,
    )


@bp.route("/settings", methods=["GET", "POST"])
def edit() -> str | WerkzeugResponse | tuple[str, int]:
    db = deps.db()
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


@bp.route("/settings/upload-limits", methods=["POST"])
def upload_limit() -> str | WerkzeugResponse | tuple[str, int]:
    """Set when an offsite copy may upload, and how fast (the plugin checks the rule; an empty one: .env's)."""
    db = deps.db()
    targets = {**DEFAULT_TARGETS, **db.setting("targets", {})}
    copy = form_text("copy", 64, "The copy")
    rule = form_text("rule", 400, "The upload timetable")
    try:
        answer = deps.backend().set_upload_limit(copy, rule)
    except BackendRefused as exc:  # the plugin's sentence: which rate or time is not understood
        db.audit("upload_limit_refused", g.user, client_ip(), f"{copy}: {rule!r}: {str(exc)[:300]}")
        return _page(targets, [f"The upload timetable of {copy} was not saved: {exc}"]), 400
    except BackupError as exc:
        return _page(targets, [f"The upload timetable of {copy} was not saved: {sentence(exc)}"]), 503
    db.audit("upload_limit_saved", g.user, client_ip(), f"{copy}: {rule or '.env rule'}")
    flash(f"The upload timetable of {copy} is saved ({answer.get('text')}); it applies from its next upload.")
    return redirect(url_for("settings.edit") + "#uploads")


@bp.route("/settings/cloud-storage", methods=["POST"])
def cloud_storage() -> str | WerkzeugResponse | tuple[str, int]:
    """Hand a pasted rclone configuration to the plugin (it checks and writes it); never shown back."""
    db = deps.db()
    targets = {**DEFAULT_TARGETS, **db.setting("targets", {})}
    text = form_text("rclone_config", MAX_RCLONE_CHARS, "The cloud storage configuration", strip=False)
    if not text.strip():
        return _page(targets, ["Paste the cloud storage (rclone) configuration into the box first."]), 400
    return _send(text, targets)


def _send(text: str, targets: dict[str, float | str]) -> WerkzeugResponse | tuple[str, int]:
    """Hand a configuration (pasted, or made by a provider's form) to the plugin, which checks and writes it."""
    db = deps.db()
    try:
        answer = deps.backend().put_rclone_config(text)
    except BackendRefused as exc:  # the plugin's sentence: which line, which option is not allowed
        db.audit("rclone_config_refused", g.user, client_ip(), str(exc)[:300])
        return _page(targets, [f"The cloud storage configuration was not saved: {exc}"]), 400
    except BackupError as exc:
        return _page(targets, [f"The cloud storage configuration was not saved: {sentence(exc)}"]), 503
    remotes = ", ".join(f"{r.get('name')} ({r.get('type')})" for r in answer.get("remotes") or [])
    db.audit("rclone_config_saved", g.user, client_ip(), f"remotes: {remotes}")
    flash(str(answer.get("message") or f"The cloud storage configuration is saved: {remotes}."))
    return redirect(url_for("settings.edit") + "#cloud-storage")


@bp.route("/settings/cloud-storage/form", methods=["POST"])
def cloud_storage_form() -> str | WerkzeugResponse | tuple[str, int]:
    """Make the configuration of one remote from a provider's form (the token rclone authorize printed, the
    folder...), then hand it to the plugin like a pasted one. The fields are never shown back."""
    db = deps.db()
    targets = {**DEFAULT_TARGETS, **db.setting("targets", {})}
    provider = form_text("provider", 16, "The cloud storage")
    fields = {
        f.option: form_text(f.option, MAX_FIELD_CHARS, f"The {f.label.lower()}", strip=f.kind not in ("token", "key"))
        for f in FORMS.get(provider, ())
    }
    try:
        text = build(provider, form_text("remote_name", 64, "The name of the remote"), fields)
    except BadRequest as exc:
        db.audit("rclone_config_refused", g.user, client_ip(), str(exc)[:300])
        return _page(targets, [f"The cloud storage configuration was not saved: {exc}"]), 400
    return _send(text, targets)


@bp.route("/settings/cloud-storage/test", methods=["POST"])
def cloud_storage_test() -> str | WerkzeugResponse | tuple[str, int]:
    """Test the connection of each cloud-storage target (restic and rclone start as for a snapshot)."""
    db = deps.db()
    targets = {**DEFAULT_TARGETS, **db.setting("targets", {})}
    try:
        answer = deps.backend().test_rclone_connection()
    except BackendRefused as exc:
        return _page(targets, [f"The connection could not be tested: {exc}"]), 400
    except BackupError as exc:
        return _page(targets, [f"The connection could not be tested: {sentence(exc)}"]), 503
    failed = [t for t in answer.get("tests") or [] if not t.get("ok")]
    if failed:
        return _page(targets, [f"Test of {t.get('target')}: {t.get('message')}" for t in failed]), 200
    flash(str(answer.get("message") or "The connection works."))
    return redirect(url_for("settings.edit") + "#cloud-storage")
