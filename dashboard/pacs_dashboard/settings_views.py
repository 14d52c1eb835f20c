"""Targets (how fresh each copy must be) and alert destinations; a test-alert button."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, flash, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as WerkzeugResponse

from .health import DEFAULT_TARGETS
from .monitor import alert_urls, apprise_notify
from .security import client_ip

bp = Blueprint("settings", __name__)

LIMITS = {"replication_minutes": (1, 1440), "offsite_hours": (1, 720), "drill_hours": (1, 2160),
          "disk_warn_percent": (50, 99)}


def _mask(url: str) -> str:
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest[:4]}…" if rest else url[:8] + "…"


@bp.route("/settings", methods=["GET", "POST"])
def edit() -> str | WerkzeugResponse | tuple[str, int]:
    db, settings = current_app.extensions["db"], current_app.extensions["settings"]
    targets = {**DEFAULT_TARGETS, **db.setting("targets", {})}
    if request.method == "POST":
        errors, new = [], dict(targets)
        for key, (low, high) in LIMITS.items():
            raw = request.form.get(key, "")
            try:
                value = float(raw)
            except ValueError:
                errors.append(f"{key.replace('_', ' ')}: {raw!r} is not a number")
                continue
            if not low <= value <= high:
                errors.append(f"{key.replace('_', ' ')} must be between {low} and {high}")
            new[key] = value
        urls = [u.strip() for u in request.form.get("alert_urls", "").splitlines() if u.strip()]
        bad = [u for u in urls if "://" not in u]
        if bad:
            errors.append("alert addresses look like scheme://..., e.g. mailtos://user:pass@host or ntfy://topic")
        if errors:
            return render_template("settings.html", targets=new, urls=urls, env_urls=[], errors=errors), 400
        changed = {k: v for k, v in new.items() if targets.get(k) != v}
        db.set_setting("targets", new)
        if request.form.get("replace_urls") == "yes":
            db.set_setting("alert_urls", urls)
            changed["alert_urls"] = f"{len(urls)} address(es)"
        db.audit("settings_changed", g.user, client_ip(), str(changed))
        flash("Settings saved.")
        return redirect(url_for("settings.edit"))
    return render_template("settings.html", targets=targets, urls=[],
                           stored=[_mask(u) for u in db.setting("alert_urls", [])],
                           env_urls=[_mask(u) for u in settings.apprise_urls], errors=[])


@bp.route("/settings/test-alert", methods=["POST"])
def test_alert() -> Response:
    db, settings = current_app.extensions["db"], current_app.extensions["settings"]
    urls = alert_urls(db, settings.apprise_urls)
    ok = apprise_notify(urls, "PACS backup: test alert", f"Test alert sent by {g.user} from the dashboard.")
    db.audit("alert_test", g.user, client_ip(), f"sent: {ok}")
    flash("Test alert sent." if ok else "The test alert could not be sent: add an alert address below.")
    return redirect(url_for("settings.edit"))  # type: ignore[return-value]
