"""Health at a glance: the traffic-light page, its JSON, Prometheus metrics, charts and /healthz."""

from __future__ import annotations

import time

from flask import Blueprint, Response, jsonify, redirect, render_template, request, url_for
from markupsafe import Markup
from werkzeug.wrappers import Response as BaseResponse

from pacs_backup.contracts.documents import RunDoc
from pacs_backup.contracts.errors import BackupError

from .. import deps
from ..charts import Bar, bar_chart, line_chart, size_chart
from ..drill_figures import DrillFigures, figures, last_tests, newest_of_each_copy
from ..fallback import evaluate, recent_runs
from ..light import GREEN, RED, Light, as_json, overall
from ..metrics import render as render_metrics
from ..pacs_state import Reading
from ..recovery_rows import recovery_rows
from ..timefmt import clock

bp = Blueprint("status", __name__)
METRICS_RUNS = 200  # the newest runs /metrics reads (its restores, and each copy's newest snapshot and test)

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
def index() -> str | BaseResponse:
    if deps.settings().mode == "group":  # the group service has no PACS of its own: its start page is the clinics
        return redirect(url_for("group_pages.overview"))
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
        recovery=recovery_rows(reading.status or reading.last_good, deps.tz()),
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
    if deps.settings().mode == "group":
        return _group_healthz()
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


def _group_healthz() -> tuple[Response, int]:
    """The group service's liveness: its catalog answers, and each clinic is heard from (red when quiet). It has
    no PACS of its own to name."""
    from ..group.heartbeats import group_status  # group mode only
    from ..group.service import parts

    group = parts()
    strict = request.args.get("strict", "") not in ("", "0", "false", "no")
    try:
        clinics = group_status(group.catalog, group.settings.quiet_minutes)
    except BackupError:
        body = {"ok": not strict, "state": RED, "parts": {"catalog": RED}, "checked_at": round(time.time(), 3)}
        return jsonify(body), 503 if strict else 200
    found = {f"clinic-{c['clinic']}": RED if c["quiet"] else GREEN for c in clinics if c["active"]}
    state = RED if RED in found.values() else GREEN
    body = {"ok": not (strict and state == RED), "state": state, "parts": {"catalog": GREEN, **found}}
    body["checked_at"] = round(time.time(), 3)
    return jsonify(body), 503 if strict and state == RED else 200


@bp.route("/metrics")
def metrics() -> Response:
    """Prometheus' text format (metrics.py says what each family means); a monitor account reads it with HTTP
    basic authentication (security.py)."""
    reading, ls, _ = current()
    runs: list[RunDoc] = []
    if reading.status is not None and reading.status.get("enabled"):
        runs, _kept = recent_runs(limit=METRICS_RUNS)
    body = render_metrics(reading.status, ls, runs, time.time())
    return Response(body, mimetype="text/plain; version=0.0.4")


def _drill_bar(test: DrillFigures) -> Bar:
    """A restore test of one copy as a bar: the images it checked, green for those identical to the originals;
    its words and the copy's name are the restore-test light's (drill_figures.py)."""
    checked = float(test.checked)
    return Bar(test.at, checked, float(min(test.identical, test.checked)), test.ok, test.words, test.copy)


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
    size = [(t, float(d.get("bytes") or 0)) for t, d in samples]
    lag = [(t, (d.get("lag_p99") or 0.0) / 60) for t, d in samples]
    runs, kept_at = recent_runs(down=reading.down)
    done = [r for r in runs if (r.get("finished_at") or 0) >= since and r.get("state") in ("ok", "failed")]
    note = (
        (f"The PACS is not answering: the restore-test charts show what was known at {clock(kept_at, zone)}.")
        if kept_at
        else None
    )
    known = reading.status or reading.last_good  # what kind of copy each is, for its name
    copies = (known.get("offsite") if known else None) or {}
    tests = [figures(r, info=copies.get(r["target"])) for r in done if r["kind"] == "drill"]
    drills = [_drill_bar(t) for t in tests]
    snaps = [_snapshot_bar(r) for r in done if r["kind"] == "snapshot"]
    charts = {
        "size": size_chart(size, "Size of the backed-up images", zone),
        "drills": bar_chart(
            drills,
            "Restore tests: images checked in each test",
            "images",
            zone,
            key="Green: images identical to the originals. Red: a test that failed or found a difference.",
            empty="No restore test in the last 30 days.",
            words=last_tests(newest_of_each_copy(tests)),
        ),
        "lag": line_chart(lag, "Copying new images: the slowest 1 in 100 took", "minutes", zone),
        "snapshots": bar_chart(
            snaps, "Offsite copies: how long each took", "minutes", zone, empty="No offsite copy in the last 30 days."
        ),
    }
    return {k: Markup(v) for k, v in charts.items()}, note  # noqa: S704 - built from numbers and escaped words
