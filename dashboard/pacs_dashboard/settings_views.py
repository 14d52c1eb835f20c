"""Targets (how fresh each copy must be) and alert destinations; a test-alert button."""

from __future__ import annotations

import math

from flask import Blueprint, Response, current_app, flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as WerkzeugResponse

from pacs_backup.errors import BackupError

from . import alerts
from .alerts import check_alert_url, service_name
from .backend import BackendRefused
from .health import DEFAULT_TARGETS
from .inputs import form_text, sentence
from .monitor import alert_urls
from .security import client_ip

bp = Blueprint("settings", __name__)

LIMITS = {
    "replication_minutes": (1, 1440),
    "offsite_hours": (1, 720),
    "drill_hours": (1, 2160),
    "disk_warn_percent": (50, 99),
}
MAX_ALERT_ADDRESSES = 20
MAX_RCLONE_CHARS = 32 * 1024


def _mask(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest[:4]}…" if rest else url[:8] + "…"


def _cloud_storage() -> dict[str, object]:
    """The cloud-storage remotes the backup has (names and types only), or why they cannot be listed now."""
    try:
        answer = current_app.extensions["backend"].rclone_config()
    except BackupError as exc:
        return {"remotes": [], "targets": [], "problem": sentence(exc)}
    return {"remotes": list(answer.get("remotes") or []), "targets": list(answer.get("targets") or [])}


def _page(targets: dict[str, float], errors: list[str], typed: str = "", replace: bool = False) -> str:
    db, settings = current_app.extensions["db"], current_app.extensions["settings"]
    stored = []
    for u in db.setting("alert_urls", []):
        problem = check_alert_url(str(u), settings.webhook_hosts)
        stored.append(_mask(str(u)) + (" (not used: no longer allowed)" if problem else ""))
    return render_template(
        "settings.html",
        targets=targets,
        typed=typed,
        replace=replace,
        stored=stored,
        env_urls=[_mask(u) for u in settings.apprise_urls],
        errors=errors,
        webhook_hosts=settings.webhook_hosts,
        cloud=_cloud_storage(),
    )


@bp.route("/settings", methods=["GET", "POST"])
def edit() -> str | WerkzeugResponse | tuple[str, int]:
    db, settings = current_app.extensions["db"], current_app.extensions["settings"]
    targets = {**DEFAULT_TARGETS, **db.setting("targets", {})}
    if request.method == "GET":
        return _page(targets, [])
    errors, new = [], dict(targets)
    for key, (low, high) in LIMITS.items():
        label = key.replace("_", " ")
        raw = form_text(key, 20, f"The {label}")
        try:
            value = float(raw)
        except ValueError:
            errors.append(f"{label}: {raw!r} is not a number")
            continue
        if not math.isfinite(value) or not low <= value <= high:
            errors.append(f"{label} must be between {low} and {high}")
        new[key] = value
    typed = form_text("alert_urls", 20000, "The list of alert addresses", strip=False)
    replace = request.form.get("replace_urls") == "yes"
    urls = [u.strip() for u in typed.splitlines() if u.strip()]
    if urls and not replace:
        # Never drop what was typed without a word: say so and keep it in the box.
        errors.append(
            "You typed alert addresses but did not tick 'Replace the stored alert addresses'. Nothing "
            "was saved: tick the box to store them, or empty the box."
        )
    if len(urls) > MAX_ALERT_ADDRESSES:
        errors.append(f"At most {MAX_ALERT_ADDRESSES} alert addresses can be stored.")
    errors += [problem for problem in (check_alert_url(u, settings.webhook_hosts) for u in urls) if problem]
    if errors:
        return _page(new, errors, typed, replace), 400
    changed = {k: v for k, v in new.items() if targets.get(k) != v}
    db.set_setting("targets", new)
    if replace:
        db.set_setting("alert_urls", urls)
        changed["alert_urls"] = f"{len(urls)} address(es): " + ", ".join(service_name(u) for u in urls)
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


@bp.route("/settings/test-alert", methods=["POST"])
def test_alert() -> Response:
    db, settings = current_app.extensions["db"], current_app.extensions["settings"]
    urls = alert_urls(db, settings.apprise_urls, settings.webhook_hosts)
    if not urls:
        flash("The test alert could not be sent: there is no alert address yet. Add one below.")
        db.audit("alert_test", g.user, client_ip(), "no address")
        return redirect(url_for("settings.edit"))  # type: ignore[return-value]
    # Only "sent" or "could not be sent" per service: the reason (refused connection, timeout, which
    # port answered) would let the page be used to explore the clinic's network. The log has it.
    results = [
        (
            service_name(u),
            alerts.send_alert(u, "PACS backup: test alert", f"Test alert sent by {g.user} from the dashboard."),
        )
        for u in urls
    ]
    summary = "; ".join(
        f"{i}. {name}: {'sent' if ok else 'could not be sent'}" for i, (name, ok) in enumerate(results, 1)
    )
    db.audit("alert_test", g.user, client_ip(), summary)
    flash(f"Test alert: {summary}.")
    return redirect(url_for("settings.edit"))  # type: ignore[return-value]
