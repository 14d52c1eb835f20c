"""Health at a glance: the traffic-light page, its JSON, Prometheus metrics, charts and /healthz."""

from __future__ import annotations

import time

from flask import Blueprint, Response, jsonify, render_template, request
from markupsafe import Markup

from pacs_backup.contracts.documents import RunDoc
from pacs_backup.contracts.runs import DrillSummary

from .. import deps
from ..charts import Bar, bar_chart, line_chart
from ..fallback import evaluate, recent_runs
from ..light import RED, Light, as_json, overall
from ..pacs_state import Reading
from ..timefmt import clock, images

bp = Blueprint("status", __name__)

SUMMARY = {
    "green": "Your images are safe.",
    "amber": "Backups work, but something needs attention.",
    "red": "Action needed: see the red light below.",
}
PACS_DOWN_SUMMARY = (
    "The PACS is not answering. Images already backed up are safe, and you can still find them "
    "and check their pictures here."
)


def summary(ls: list[Light], state: str) -> str:
    if any(light.key == "pacs" and light.state == RED for light in ls):
        return PACS_DOWN_SUMMARY
    return SUMMARY[state]


def _targets() -> dict[str, float]:
    targets: dict[str, float] = deps.db().setting("targets", {})
    return targets


def current() -> tuple[Reading, list[Light], str]:
    reading = deps.keeper().read()
    ls = evaluate(reading, _targets(), deps.tz())
    return reading, ls, overall(ls)


@bp.route("/")
def index() -> str:
    reading, ls, state = current()
    charts, note = _charts(reading)
    return render_template(
        "index.html",
        lights=ls,
        state=state,
        summary=summary(ls, state),
        status=reading.status,
        charts=charts,
        charts_note=note,
    )


@bp.route("/api/status")
def api_status() -> Response:
    reading, ls, state = current()
    return jsonify(
        {
            "state": state,
            "summary": summary(ls, state),
            "lights": as_json(ls),
            "backup": reading.status,
            "pacs_down_since": reading.down_since,
            "last_known_at": None if reading.status is not None else reading.last_good_at,
            "updated": clock(time.time(), deps.tz()),
        }
    )


@bp.route("/healthz")
def healthz() -> tuple[Response, int]:
    """Public liveness check for uptime monitors: names each part's state, nothing about patients.

    The state is the monitor's latest reading (so this answers at once even while the PACS hangs); with
    ``?strict=1`` the answer is 503 while any part is red.
    """
    keeper = deps.keeper()
    reading = keeper.latest()
    if reading is None or time.time() - reading.at > max(3 * float(deps.settings().monitor_interval_s), 60.0):
        reading = keeper.read()
    ls = evaluate(reading, _targets(), deps.tz())
    state = overall(ls)
    strict = request.args.get("strict", "") not in ("", "0", "false", "no")
    body = {
        "ok": not (strict and state == RED),
        "state": state,
        "parts": {light.key: light.state for light in ls},
        "last_known": sorted(light.key for light in ls if light.note),
        "checked_at": round(reading.at, 3),
    }
    return jsonify(body), 503 if strict and state == RED else 200


@bp.route("/metrics")
def metrics() -> Response:
    reading, ls, _ = current()
    status = reading.status
    lines = ["# HELP pacs_backup_part_state 0 green, 1 amber, 2 red", "# TYPE pacs_backup_part_state gauge"]
    code = {"green": 0, "amber": 1, "red": 2}
    lines += [f'pacs_backup_part_state{{part="{light.key}"}} {code[light.state]}' for light in ls]
    lines += [
        "# HELP pacs_backup_part_last_known 1 while a part shows its last known state (the PACS is down)",
        "# TYPE pacs_backup_part_last_known gauge",
    ]
    lines += [f'pacs_backup_part_last_known{{part="{light.key}"}} {int(bool(light.note))}' for light in ls]
    lines += ["# TYPE pacs_backup_pacs_up gauge", f"pacs_backup_pacs_up {int(status is not None)}"]
    if status and status.get("enabled"):
        for name, value in (
            ("outbox_depth", status.get("outbox_depth")),
            ("replicated_total", status.get("replicated")),
            ("replicated_bytes", status.get("replicated_bytes")),
            ("failing", status.get("failed")),
            ("quarantined", status.get("quarantined")),
            ("oldest_pending_age_seconds", status.get("oldest_pending_age_s")),
        ):
            lines += [f"# TYPE pacs_backup_{name} gauge", f"pacs_backup_{name} {0 if value is None else value}"]
        for target, info in (status.get("offsite") or {}).items():
            age = info.get("last_good_snapshot_age_s")
            if age is not None:
                lines.append(f'pacs_backup_last_good_snapshot_age_seconds{{target="{target}"}} {age}')
            drill = info.get("last_drill")
            if drill:
                lines.append(f'pacs_backup_last_drill_ok{{target="{target}"}} {int(drill["state"] == "ok")}')
    return Response("\n".join(lines) + "\n", mimetype="text/plain; version=0.0.4")


def _drill_bar(r: RunDoc) -> Bar:
    """A restore test as a bar: the images it checked, green for those identical to the originals."""
    drill = DrillSummary.from_json(r.get("summary"))
    checked, good = drill.checked, drill.identical + (drill.repaired or 0)
    ok = r["state"] == "ok" and drill.ok and good >= checked
    if r["state"] != "ok":
        text = "failed"
    elif not checked:
        text = "no images checked"
    else:
        text = f"{good} of {images(checked)} identical"
    return Bar(float(r["finished_at"] or 0), float(checked), float(min(good, checked)), ok, text)


def _snapshot_bar(r: RunDoc) -> Bar:
    minutes = float(r.get("duration_s") or 0.0) / 60
    ok = r["state"] == "ok"
    return Bar(
        float(r["finished_at"] or 0), minutes, minutes if ok else 0.0, ok, f"{minutes:.1f} minutes" if ok else "failed"
    )


def _charts(reading: Reading) -> tuple[dict[str, Markup], str | None]:
    """Staff charts (size, restore tests) and a technician's (copy delay, snapshot durations)."""
    db = deps.db()
    zone = deps.tz()
    since = time.time() - 30 * 86400
    samples = db.samples(since)
    size = [(t, (d.get("bytes") or 0) / 1e9) for t, d in samples]
    lag = [(t, (d.get("lag_p99") or 0.0) / 60) for t, d in samples]
    runs, kept_at = recent_runs(down=reading.down)
    done = [r for r in runs if (r.get("finished_at") or 0) >= since and r.get("state") in ("ok", "failed")]
    note = (
        (f"The PACS is not answering: the restore-test charts show what was known at {clock(kept_at, zone)}.")
        if kept_at
        else None
    )
    drills = [_drill_bar(r) for r in done if r["kind"] == "drill"]
    snaps = [_snapshot_bar(r) for r in done if r["kind"] == "snapshot"]
    charts = {
        "size": line_chart(size, "Size of the backed-up images", "GB", zone),
        "drills": bar_chart(
            drills,
            "Restore tests: images checked in each test",
            "images",
            zone,
            key="Green: images identical to the originals. Red: a test that failed or found a difference.",
            empty="No restore test in the last 30 days.",
        ),
        "lag": line_chart(lag, "Copying new images: the slowest 1 in 100 took", "minutes", zone),
        "snapshots": bar_chart(
            snaps, "Offsite copies: how long each took", "minutes", zone, empty="No offsite copy in the last 30 days."
        ),
    }
    return {k: Markup(v) for k, v in charts.items()}, note  # noqa: S704 - built from numbers and escaped words
