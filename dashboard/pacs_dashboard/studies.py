"""Find a study in the backups, see what is in it, and restore it into the PACS."""

from __future__ import annotations

from collections import Counter
from typing import Any

from flask import Blueprint, Response, abort, current_app, g, jsonify, redirect, render_template, request, url_for

from pacs_backup.errors import BackupError

from .security import client_ip

bp = Blueprint("studies", __name__)


def _backend() -> Any:
    return current_app.extensions["backend"]


@bp.route("/studies")
def search() -> str:
    q = request.args.get("q", "").strip()[:100]
    date_from, date_to = request.args.get("from", "")[:10], request.args.get("to", "")[:10]
    modality = request.args.get("modality", "").strip().upper()[:16]
    searched = any((q, date_from, date_to, modality)) or "all" in request.args
    results, error = [], None
    if searched:
        try:
            results = _backend().studies(q, date_from, date_to, modality)
        except BackupError as exc:
            error = str(exc)
    return render_template("studies.html", q=q, date_from=date_from, date_to=date_to, modality=modality,
                           results=results, searched=searched, error=error)


@bp.route("/studies/<path:uid>")
def detail(uid: str) -> str:
    try:
        study = _backend().study(uid)
    except BackupError as exc:
        abort(404, str(exc))
    instances = study["instances"]
    series = Counter((i["series_uid"], i["modality"]) for i in instances)
    in_pacs = _backend().instance_in_pacs(uid)
    targets = [t for t in ((_backend().status()[0] or {}).get("offsite") or {}) if t != "minio"]
    snapshots: dict[str, list[dict[str, Any]]] = {}
    for t in targets:
        try:
            snapshots[t] = _backend().snapshots(t)[:50]
        except BackupError:
            snapshots[t] = []
    return render_template("study.html", uid=uid, first=instances[0], series=sorted(series.items()),
                           count=len(instances), in_pacs=in_pacs, snapshots=snapshots)


@bp.route("/studies/<path:uid>/preview.png")
def preview(uid: str) -> Response:
    oid = _backend().instance_in_pacs(uid)
    if oid is None:
        abort(404, "The study is not in the PACS right now; restore it to see a preview.")
    return Response(_backend().preview(oid), mimetype="image/png")


@bp.route("/studies/<path:uid>/restore", methods=["POST"])
def restore(uid: str) -> Response:
    source = request.form.get("source", "minio")
    snapshot = request.form.get("snapshot") or None
    try:
        run_id = _backend().restore(uid, source, snapshot)
    except BackupError as exc:
        abort(400, str(exc))
    current_app.extensions["db"].audit("restore_requested", g.user, client_ip(),
                                       f"study {uid} from {source}" + (f" snapshot {snapshot}" if snapshot else ""))
    return redirect(url_for("studies.job", run_id=run_id))  # type: ignore[return-value]


@bp.route("/restores/<int:run_id>")
def job(run_id: int) -> str:
    return render_template("job.html", run=_backend().run(run_id))


@bp.route("/api/runs/<int:run_id>")
def api_run(run_id: int) -> Response:
    return jsonify(_backend().run(run_id))
