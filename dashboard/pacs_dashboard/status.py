"""Health at a glance: the traffic-light page, its JSON, Prometheus metrics, charts and /healthz."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, render_template
from markupsafe import Markup

from pacs_backup.errors import BackupError

from .charts import bar_chart, line_chart
from .health import as_json, lights, overall

bp = Blueprint("status", __name__)

SUMMARY = {"green": "Your images are safe.", "amber": "Backups work, but something needs attention.",
           "red": "Action needed: a backup copy is not up to date."}


def current() -> tuple[dict[str, Any] | None, list[Any], str]:
    backend, db = current_app.extensions["backend"], current_app.extensions["db"]
    status, error = backend.status()
    ls = lights(status, error, time.time(), db.setting("targets", {}))
    return status, ls, overall(ls)


@bp.route("/")
def index() -> str:
    status, ls, state = current()
    return render_template("index.html", lights=ls, state=state, summary=SUMMARY[state], status=status,
                           charts=_charts())


@bp.route("/api/status")
def api_status() -> Response:
    status, ls, state = current()
    return jsonify({"state": state, "summary": SUMMARY[state], "lights": as_json(ls), "backup": status})


@bp.route("/healthz")
def healthz() -> Response:
    """Liveness only: says nothing about patients or backups."""
    return jsonify({"ok": True})


@bp.route("/metrics")
def metrics() -> Response:
    status, ls, _ = current()
    lines = ["# HELP pacs_backup_part_state 0 green, 1 amber, 2 red", "# TYPE pacs_backup_part_state gauge"]
    code = {"green": 0, "amber": 1, "red": 2}
    lines += [f'pacs_backup_part_state{{part="{light.key}"}} {code[light.state]}' for light in ls]
    if status and status.get("enabled"):
        for name, key in (("outbox_depth", "outbox_depth"), ("replicated_total", "replicated"),
                          ("replicated_bytes", "replicated_bytes"), ("failing", "failed"),
                          ("quarantined", "quarantined"), ("oldest_pending_age_seconds", "oldest_pending_age_s")):
            value = status.get(key)
            lines += [f"# TYPE pacs_backup_{name} gauge", f"pacs_backup_{name} {0 if value is None else value}"]
        for target, info in (status.get("offsite") or {}).items():
            age = info.get("last_good_snapshot_age_s")
            if age is not None:
                lines.append(f'pacs_backup_last_good_snapshot_age_seconds{{target="{target}"}} {age}')
            drill = info.get("last_drill")
            if drill:
                lines.append(f'pacs_backup_last_drill_ok{{target="{target}"}} {int(drill["state"] == "ok")}')
    return Response("\n".join(lines) + "\n", mimetype="text/plain; version=0.0.4")


def _charts() -> dict[str, Markup]:
    db, backend = current_app.extensions["db"], current_app.extensions["backend"]
    since = time.time() - 30 * 86400
    samples = db.samples(since)
    size = [(t, (d.get("bytes") or 0) / 1e9) for t, d in samples]
    lag = [(t, d.get("lag_p99") or 0.0) for t, d in samples]
    try:
        runs = [r for r in backend.runs(limit=500) if (r.get("finished_at") or 0) >= since]
    except BackupError:  # charts are optional; the lights already show the plugin's state
        runs = []

    def label(r: dict[str, Any]) -> str:
        return datetime.fromtimestamp(r["finished_at"], UTC).strftime("%Y-%m-%d %H:%M") + f" {r['target']}"
    snaps = [(label(r), r.get("duration_s") or 0.0, r["state"] == "ok") for r in reversed(runs)
             if r["kind"] == "snapshot"]
    drills = [(label(r), r.get("duration_s") or 0.0, r["state"] == "ok") for r in reversed(runs)
              if r["kind"] == "drill"]
    return {"size": Markup(line_chart(size, "Backed-up size", "GB")),  # noqa: S704 - built from numbers
            "lag": Markup(line_chart(lag, "Copy delay (99th percentile)", "s")),  # noqa: S704
            "snapshots": Markup(bar_chart(snaps, "Offsite snapshot durations", "s")),  # noqa: S704
            "drills": Markup(bar_chart(drills, "Restore tests (red = failed)", "s"))}  # noqa: S704
