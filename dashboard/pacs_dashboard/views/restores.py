"""Restoring as a person expects: the words on the progress page, restores that wait for the PACS, and a
check of a study that is already in the PACS against its backup (instead of restoring it again)."""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Mapping
from datetime import UTC, tzinfo
from typing import Any

from flask import Blueprint, Response, abort, current_app, g, jsonify, redirect, render_template, url_for
from werkzeug.wrappers import Response as WerkzeugResponse

from pacs_backup.contracts.errors import BackupError

from .backend import valid_uid
from .fallback import known_down, mirror, study_summary, tz
from .health import copy_name
from .security import client_ip
from .timefmt import clock, parse_iso, when

log = logging.getLogger(__name__)

bp = Blueprint("restores", __name__)


def source_words(source: str, snapshot_time: str | None, zone: tzinfo) -> str:
    """ "the local backup copy", "the offsite copy as it was at 27 Nov 2026 14:05" (named as the lights name it)."""
    if source == "cloud-pacs":
        return "the cloud PACS"
    at = parse_iso(snapshot_time) if snapshot_time else None
    return copy_name(source) + (f" as it was at {when(at, zone)}" if at else "")


def progress_text(run: Mapping[str, Any], zone: tzinfo) -> dict[str, Any]:
    """What the progress page says about a restore run: never "0 of ?", always a sentence."""
    s = run.get("summary") or {}
    total, done = s.get("total"), s.get("done")
    state = run.get("state")
    snaps = s.get("snapshots") or []
    used = source_words(str(run.get("target") or ""), snaps[0].get("time") if len(snaps) == 1 else None, zone)
    out: dict[str, Any] = {"state": state, "total": total or None, "done": done if total else None, "detail": ""}
    if state == "queued":
        out["headline"] = "Waiting to start"
        out["detail"] = "The restore starts as soon as the backup service has finished what it is doing."
    elif state == "running" and not total:
        out["headline"] = "Getting the images ready"
        out["detail"] = "Finding the study in " + used + "; from an offsite copy this can take a few minutes."
    elif state == "running":
        out["headline"] = f"Restoring: {done or 0} of {total} images"
    elif state == "ok":
        out["headline"] = (
            f"Done: {s.get('verified', total)} of {total} images restored and verified identical to the backup."
        )
        out["detail"] = f"Restored from {used}."
        out["done"] = total
    else:
        out["headline"] = "The restore did not complete."
        error = str(run.get("error") or "The backup service did not say why.")
        error = error.replace("instances", "images").replace("instance", "image")
        if total and s.get("verified"):
            error = f"{s['verified']} of {total} images were restored and verified. {error}"
        out["detail"] = error + " Try again, or call your technician."
    return out


# --- restores asked while the PACS is down ------------------------------------------------------------
def submit_waiting(backend: Any, db: Any, mirror_: Any, now: float | None = None, zone: tzinfo = UTC) -> int:
    """Hand the restores that waited for the PACS to the plugin, oldest first (the monitor calls this once
    the PACS answers). Returns how many were handed over; stops at the first that cannot reach it."""
    from .backend import BackendBusy, BackendRefused, NotInBackend, PacsDown

    handed = 0
    for w in mirror_.waiting():
        now_ = time.time() if now is None else now
        try:
            run_id = backend.restore(w["study_uid"], w["source"], w["snapshot"])
        except (PacsDown, BackendBusy):  # try again at the next round
            break
        except (BackendRefused, NotInBackend) as exc:
            mirror_.restore_refused(w["id"], str(exc), now_)
            db.audit("restore_refused", w["username"], w["ip"], f"study {w['study_uid']} from {w['source']}: {exc}")
            continue
        except BackupError as exc:
            log.warning("waiting restore %s not handed over yet: %s", w["id"], exc)
            break
        mirror_.restore_submitted(w["id"], run_id, now_)
        db.audit(
            "restore_requested",
            w["username"],
            w["ip"],
            f"study {w['study_uid']} from {w['source']}"
            + (f" snapshot {w['snapshot']}" if w["snapshot"] else "")
            + f" (asked at {when(w['asked_at'], zone)} while the PACS was down)",
        )
        handed += 1
    return handed


def _waiting_or_404(wid: int) -> dict[str, Any]:
    w = mirror().waiting_restore(wid) if 0 < wid < 10**12 else None
    if w is None:
        abort(404, "There is no such restore.")
    return w


def _waiting_words(w: dict[str, Any]) -> dict[str, Any]:
    zone = tz()
    if w["run_id"]:
        text = "The PACS answers again: the restore has started."
    elif w["error"]:
        text = f"The restore could not start: {w['error']}"
    else:
        down = known_down()
        since = f" since {clock(down.down_since, zone)}" if down and down.down_since else ""
        text = (
            f"The PACS is not answering{since}. This restore waits here and starts by itself once the PACS "
            "answers; you can leave this page."
        )
    return {
        "id": w["id"],
        "run_id": w["run_id"],
        "error": w["error"],
        "text": text,
        "asked": f"Asked at {clock(w['asked_at'], zone)} by {w['username'] or 'someone'}.",
        "job_url": url_for("studies.job", run_id=w["run_id"]) if w["run_id"] else None,
    }


@bp.route("/restores/waiting/<int:wid>")
def waiting(wid: int) -> str | WerkzeugResponse:
    w = _waiting_or_404(wid)
    if w["run_id"]:
        return redirect(url_for("studies.job", run_id=w["run_id"]))
    words = _waiting_words(w)
    return render_template(
        "waiting.html",
        w=w,
        words=words,
        study=study_summary(w["study_uid"]),
        source=source_words(w["source"], None, tz()),
    )


@bp.route("/api/restores/waiting/<int:wid>")
def api_waiting(wid: int) -> Response:
    return jsonify(_waiting_words(_waiting_or_404(wid)))


# --- checking a study that is already in the PACS against its backup ----------------------------------
class Checks:
    """Checks running or done in this process (a check is quick to run again, so they are not kept)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[int, dict[str, Any]] = {}
        self._next = 1

    def start(self, backend: Any, study_uid: str, entries: list[dict[str, Any]], user: str | None) -> int:
        with self._lock:
            cid = self._next
            self._next += 1
            self._jobs[cid] = {
                "id": cid,
                "study_uid": study_uid,
                "state": "running",
                "total": len(entries),
                "done": 0,
                "identical": 0,
                "missing": 0,
                "different": 0,
                "user": user,
                "error": None,
            }
            for old in sorted(self._jobs)[:-50]:
                del self._jobs[old]
        threading.Thread(target=self._run, args=(cid, backend, entries), name=f"pacs-check-{cid}", daemon=True).start()
        return cid

    def _run(self, cid: int, backend: Any, entries: list[dict[str, Any]]) -> None:
        job = self._jobs[cid]
        try:
            for e in entries:
                data = backend.instance_file(str(e.get("orthanc_id") or ""))
                outcome = (
                    "missing"
                    if data is None
                    else "identical"
                    if hashlib.sha256(data).hexdigest() == e.get("sha256")
                    else "different"
                )
                with self._lock:
                    job[outcome] += 1
                    job["done"] += 1
            job["state"] = "ok"
        except Exception as exc:  # noqa: BLE001 - shown on the page as a sentence; the trace goes to the log
            log.warning("checking study %s against its backup failed: %s", job["study_uid"], exc)
            job["state"], job["error"] = "failed", "The PACS stopped answering during the check. Try again later."

    def get(self, cid: int) -> dict[str, Any] | None:
        with self._lock:
            job = self._jobs.get(cid)
            return dict(job) if job else None


def check_words(job: dict[str, Any]) -> dict[str, Any]:
    total, done = job["total"], job["done"]
    if job["state"] == "running":
        return {**job, "headline": f"Checking: {done} of {total} images", "detail": "", "restore": False}
    if job["state"] == "failed":
        return {**job, "headline": "The check did not complete.", "detail": job["error"], "restore": False}
    if job["identical"] == total:
        return {
            **job,
            "headline": f"All {total} images in the PACS are identical to the backup.",
            "detail": "Nothing to restore.",
            "restore": False,
        }
    parts = []
    if job["missing"]:
        parts.append(f"{job['missing']} of {total} images are missing from the PACS")
    if job["different"]:
        parts.append(
            f"{job['different']} of {total} images in the PACS differ from the backup (changed or damaged "
            "after they were backed up)"
        )
    return {
        **job,
        "headline": f"{job['identical']} of {total} images in the PACS are identical to the backup.",
        "detail": "; ".join(parts) + ". Restore the study to bring back the backed-up images.",
        "restore": True,
    }


def checks() -> Checks:
    return current_app.extensions.setdefault("checks", Checks())  # type: ignore[no-any-return]


@bp.route("/studies/<path:uid>/check", methods=["POST"])
def check(uid: str) -> WerkzeugResponse:
    if not valid_uid(uid):
        abort(404, "There is no such study.")
    from .backend import NotInBackend, PacsDown

    try:
        entries = current_app.extensions["backend"].study(uid).get("instances") or []
    except NotInBackend:
        abort(404, "This study is not in the backups.")
    except PacsDown:
        abort(503, "The PACS is not answering, so its copy of the study cannot be checked now.")
    if not entries:
        abort(404, "This study is not in the backups.")
    cid = checks().start(current_app.extensions["backend"], uid, entries, g.user)
    current_app.extensions["db"].audit("pacs_check_requested", g.user, client_ip(), f"study {uid}")
    return redirect(url_for("restores.check_page", cid=cid))


def _check_or_404(cid: int) -> dict[str, Any]:
    job = checks().get(cid)
    if job is None:
        abort(
            404,
            "There is no such check (checks are forgotten when the dashboard restarts): start it again "
            "from the study's page.",
        )
    return job


@bp.route("/checks/<int:cid>")
def check_page(cid: int) -> str:
    job = _check_or_404(cid)
    return render_template("check.html", job=check_words(job), study=study_summary(job["study_uid"]))


@bp.route("/api/checks/<int:cid>")
def api_check(cid: int) -> Response:
    return jsonify(check_words(_check_or_404(cid)))
