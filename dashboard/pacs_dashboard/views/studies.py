"""Find a study in the backups, see what is in it, and restore it into the PACS.

While the PACS answers, everything comes from the plugin. While it does not, search uses the dashboard's
mirror of the catalog, a study's page and its pictures the bucket copies (read-only), and a restore waits
in the dashboard until the PACS answers again.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from typing import Any

from flask import Blueprint, Response, abort, current_app, g, jsonify, redirect, render_template, request, url_for
from werkzeug.wrappers import Response as WerkzeugResponse

from pacs_backup.contracts.documents import RunDoc
from pacs_backup.contracts.errors import BackupError
from pacs_backup.dicom.preview import BadImage, NoPreview, PreviewsBusy

from .backend import MAX_RUN_ID, UID_RULE, BackendError, NotInBackend, PacsDown, valid_name, valid_snapshot, valid_uid
from .fallback import (
    bucket,
    down_sentence,
    keeper,
    known_down,
    known_status,
    mirror,
    mirror_age_sentence,
    study_summary,
    summary_from_instances,
    tz,
)
from .health import MINIO, copy_name
from .inputs import abort_for, arg_text, form_text, sentence
from .pacs_state import Reading
from .restore_views import progress_text, source_words
from .security import client_ip
from .timefmt import parse_iso, when

bp = Blueprint("studies", __name__)

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_MODALITY = re.compile(r"[A-Z0-9]{0,16}")
PREVIEWS = 4  # pictures shown per study (the first image of each series first)


def _backend() -> Any:
    return current_app.extensions["backend"]


def _checked_uid(uid: str) -> str:
    # Checked before any call: the dashboard talks to Orthanc with its own credentials, so a path
    # such as /studies/..%2F..%2Fsystem must never become part of a request to it.
    if not valid_uid(uid):
        abort(404, f"There is no such study: {UID_RULE}.")
    return uid


def _checked_run(run_id: int) -> int:
    if not 0 < run_id <= MAX_RUN_ID:
        abort(404, "There is no such restore.")
    return run_id


def _run_or_abort(run_id: int) -> RunDoc:
    """The plugin's run ``run_id``, or the error page its failure calls for."""
    try:
        run: RunDoc = _backend().run(_checked_run(run_id))
    except BackupError as exc:
        abort_for(exc)
    return run


@bp.app_template_test("study_uid")
def is_study_uid(value: object) -> bool:
    return isinstance(value, str) and valid_uid(value)


@bp.route("/studies")
def search() -> str:
    q = arg_text("q", 200, "The search text")
    date_from, date_to = arg_text("from", 10, "The first date"), arg_text("to", 10, "The last date")
    modality = arg_text("modality", 16, "The modality").upper()
    for day in (date_from, date_to):
        if day and not _DATE.fullmatch(day):
            abort(400, f"{day!r} is not a date: write dates as 2026-11-27.")
    if not _MODALITY.fullmatch(modality):
        abort(400, "A modality is a short code of letters and digits, such as CR, DX or US.")
    searched = any((q, date_from, date_to, modality))
    results: list[dict[str, Any]] = []
    error = notice = None
    down = known_down()
    if down is None:
        try:
            results = _backend().studies(q, date_from, date_to, modality)
        except PacsDown as exc:
            down = keeper().mark_down(str(exc))
        except BackupError as exc:
            error = "The search could not be done. " + sentence(exc)
    if down is not None:
        notice = f"{down_sentence(down)} {mirror_age_sentence()}"
        try:
            results = mirror().search(q, date_from, date_to, modality)
        except ValueError as exc:
            error = str(exc)
    return render_template(
        "studies.html",
        q=q,
        date_from=date_from,
        date_to=date_to,
        modality=modality,
        results=results,
        searched=searched,
        error=error,
        notice=notice,
    )


def _preview_positions(keys: list[tuple[str, str]]) -> list[int]:
    """1-based positions of the images to show: the first of each series, then the next ones, up to PREVIEWS.
    ``keys`` are (series, image) in the order the copies are listed."""
    firsts, seen = [], set()
    for n, (series, _) in enumerate(keys, start=1):
        if series not in seen:
            seen.add(series)
            firsts.append(n)
    rest = [n for n in range(1, len(keys) + 1) if n not in firsts]
    return (firsts + rest)[:PREVIEWS]


def _holdings(uid: str) -> tuple[list[dict[str, Any]], str | None]:
    """The offsite snapshots that hold the study, newest first, each once, with its time as people read it."""
    try:
        listed = _backend().study_snapshots(uid)
    except BackendError as exc:
        return [], f"The list of offsite snapshots could not be read: {exc}"
    zone, seen, out = tz(), set(), []
    for h in sorted(listed, key=lambda h: parse_iso(h.get("time")) or 0, reverse=True):
        key = (h.get("target"), h.get("id"))
        if key in seen or not h.get("id") or not valid_snapshot(str(h["id"])) or not valid_name(str(h.get("target"))):
            continue
        seen.add(key)
        out.append({**h, "when": when(parse_iso(h.get("time")), zone) or str(h.get("time") or "")})
    labels = Counter((h["target"], h["when"]) for h in out)
    for h in out:  # two snapshots in the same minute: tell them apart by their short id
        if labels[(h["target"], h["when"])] > 1:
            h["when"] += f" ({h.get('short_id') or str(h['id'])[:8]})"
    return out, None


def _study_page_data(uid: str) -> dict[str, Any]:
    """Everything a study's page (and the restore confirmation) shows, from the plugin or, while the PACS is
    down, from the mirror and the bucket."""
    down = known_down()
    data: dict[str, Any] = {
        "uid": uid,
        "down": None,
        "in_pacs": None,
        "holdings": [],
        "holdings_error": None,
        "series": [],
        "previews": [],
        "preview_note": None,
    }
    if down is None:
        try:
            instances = _backend().study(uid).get("instances") or []
            if not instances:
                abort(404, "This study is not in the backups.")
            data["study"] = {**summary_from_instances(uid, instances), **(mirror().study(uid) or {})}
            data["study"]["instances"] = len(instances)
            data["series"] = sorted(
                Counter((i.get("series_uid") or "", i.get("modality") or "") for i in instances).items(), key=str
            )
            data["in_pacs"] = _backend().pacs_study(uid)
            data["holdings"], data["holdings_error"] = _holdings(uid)
            order = [(str(i.get("series_uid") or ""), str(i.get("sop_uid") or "")) for i in instances]
            data["previews"] = _preview_positions(order)
        except NotInBackend:
            abort(404, "This study is not in the backups.")
        except PacsDown as exc:
            down = keeper().mark_down(str(exc))
        except BackupError as exc:
            abort_for(exc)
    if down is not None:
        data["down"] = down
        row = mirror().study(uid)
        if row is None:
            abort(
                404,
                f"{down_sentence(down)} This study is not in the dashboard's own list of the backups, "
                "so it can only be looked up once the PACS answers again.",
            )
        data["study"] = row
        reader = bucket()
        if reader is None:
            data["preview_note"] = (
                "Pictures of the backup copies need the dashboard's read-only access to them; "
                "ask your technician to set it up."
            )
        else:
            try:
                counts = reader.series_counts(uid)
                keys = [(s, "") for s, n in counts for _ in range(n)]
                data["series"] = [((s, row.get("modalities") or ""), n) for s, n in counts]
                data["previews"] = _preview_positions(keys)
            except BackupError:
                data["preview_note"] = "The backup copies cannot be read right now, so no picture can be shown."
    return data


@bp.route("/studies/<path:uid>")
def detail(uid: str) -> str:
    data = _study_page_data(_checked_uid(uid))
    newest = data["holdings"][0] if data["holdings"] else None
    return render_template(
        "study.html",
        **data,
        newest=newest,
        copy_names=_copy_names({h["target"] for h in data["holdings"]}),
        down_text=down_sentence(data["down"]) if data["down"] else None,
    )


def _copy_names(targets: set[str]) -> dict[str, str]:
    """How the health page names each copy ("the backup drive (usb)"), from the newest status known."""
    status = known_status()
    copies = status.get("offsite", {}) if status else {}
    return {t: copy_name(t, copies.get(t)) for t in targets}


@bp.route("/studies/<path:uid>/preview.png")
def preview(uid: str) -> Response:
    """A picture of the study as it is in the PACS now."""
    uid = _checked_uid(uid)
    if known_down():
        abort(503, "The PACS is not answering, so its pictures cannot be shown.")
    oid = _backend().instance_in_pacs(uid)
    if oid is None:
        abort(404, "The study is not in the PACS right now; restore it to see a preview.")
    try:
        return Response(_backend().preview(oid), mimetype="image/png")
    except BackupError as exc:
        abort_for(exc)


@bp.route("/studies/<path:uid>/backup-picture.png")
def backup_picture(uid: str) -> Response:
    """A picture of one image of the study drawn from its backup copy (``?n=`` its position, 1-based):
    through the plugin while the PACS answers, from the bucket itself while it does not."""
    uid = _checked_uid(uid)
    raw = arg_text("n", 6, "The image number") or "1"
    if not raw.isdigit() or not 1 <= int(raw) <= 100000:
        abort(400, "The image number is a whole number from 1.")
    n = int(raw)
    if not known_down():
        try:
            return Response(_backend().backup_preview(uid, n), mimetype="image/png")
        except (BadImage, PreviewsBusy) as exc:
            return _picture_refused(exc)
        except NotInBackend as exc:
            abort(404, str(exc))
        except PacsDown as exc:
            keeper().mark_down(str(exc))
        except BackupError as exc:
            abort_for(exc)
    reader = bucket()
    if reader is None:
        abort(404, "Pictures of the backup copies need the dashboard's read-only access to them.")
    try:
        return Response(reader.preview(uid, n), mimetype="image/png")
    except IndexError:
        abort(404, "The backup copy of this study has no such image.")
    except (BadImage, PreviewsBusy) as exc:
        return _picture_refused(exc)
    except NoPreview as exc:
        abort(404, str(exc))
    except BackupError:
        abort(503, "The backup copies cannot be read right now.")


def _picture_refused(exc: BadImage | PreviewsBusy) -> Response:
    """A damaged or too large image is a 422; every preview slot taken, a 503 with Retry-After. A sentence."""
    resp = Response(str(exc), status=422 if isinstance(exc, BadImage) else 503, mimetype="text/plain")
    if isinstance(exc, PreviewsBusy):
        resp.headers["Retry-After"] = str(exc.retry_after)
    return resp


def _restore_choice() -> tuple[str, str | None]:
    values = request.form if request.method == "POST" else request.args
    source = (values.get("source") or MINIO).strip()[:64]
    snapshot = (values.get("snapshot") or "").strip()[:64] or None
    if not valid_name(source) or (snapshot is not None and not valid_snapshot(snapshot)):
        abort(400, "Choose a backup copy (and snapshot) from the list on the study's page.")
    return source, snapshot


@bp.route("/studies/<path:uid>/restore", methods=["GET", "POST"])
def restore(uid: str) -> str | WerkzeugResponse:
    """GET (or a POST without ``confirmed=yes``): the confirmation page. POST confirmed: start the restore,
    or, while the PACS is down, keep it here until the PACS answers."""
    uid = _checked_uid(uid)
    if request.method == "POST":
        form_text("source", 64, "The backup copy")
        form_text("snapshot", 64, "The snapshot")
    source, snapshot = _restore_choice()
    if request.method == "POST" and request.form.get("confirmed") == "yes":
        return _start_restore(uid, source, snapshot)
    data = _study_page_data(uid)
    chosen = next(
        (h for h in data["holdings"] if h["target"] == source and (snapshot is None or h["id"] == snapshot)), None
    )
    if source != MINIO and snapshot is None and chosen is not None:
        snapshot = str(chosen["id"])  # the newest snapshot that holds the study, said on the page
    words = source_words(source, chosen.get("time") if chosen else None, tz())
    return render_template(
        "confirm.html",
        **data,
        source=source,
        snapshot=snapshot,
        source_text=words,
        chosen=chosen,
        down_text=down_sentence(data["down"]) if data["down"] else None,
    )


def _start_restore(uid: str, source: str, snapshot: str | None) -> WerkzeugResponse:
    db = current_app.extensions["db"]
    detail = f"study {uid} from {source}" + (f" snapshot {snapshot}" if snapshot else "")
    down: Reading | None = known_down()
    if down is None:
        try:
            run_id = _backend().restore(uid, source, snapshot)
        except PacsDown as exc:
            down = keeper().mark_down(str(exc))
        except BackupError as exc:
            abort_for(exc)
        else:
            db.audit("restore_requested", g.user, client_ip(), detail)
            return redirect(url_for("studies.job", run_id=run_id))
    wid = mirror().queue_restore(uid, source, snapshot, g.user, client_ip(), time.time())
    db.audit("restore_queued", g.user, client_ip(), detail + " (waits until the PACS answers)")
    return redirect(url_for("restores.waiting", wid=wid))


@bp.route("/restores/<int:run_id>")
def job(run_id: int) -> str:
    run = _run_or_abort(run_id)
    uid = str((run.get("summary") or {}).get("study_uid") or "")
    study = study_summary(uid) if valid_uid(uid) else None
    return render_template("job.html", run=run, study=study, progress=progress_text(run, tz()))


@bp.route("/api/runs/<int:run_id>")
def api_run(run_id: int) -> Response:
    run = _run_or_abort(run_id)
    return jsonify({**run, "progress": progress_text(run, tz())})
