"""Backup drives: each drive target's drives (last update, which to swap in next) and preparing a new drive.

Preparing is the one explicit step that makes a drive a backup drive (the plugin's ``POST /backup/drives``,
as ``scripts/prepare-drive`` does): the plugin makes an encrypted backup on it and starts its first
snapshot; it never erases a drive that already holds a backup. Its answer, or why not, shows as its sentence.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, g, redirect, render_template, url_for
from werkzeug.wrappers import Response as WerkzeugResponse

from pacs_backup.contracts.errors import BackupError

from .. import deps
from ..backend_api import BackendRefused, NotInBackend
from ..fallback import down_sentence
from ..inputs import form_text, sentence
from ..security import client_ip

bp = Blueprint("drives", __name__)


def _drive_targets() -> tuple[list[dict[str, Any]], str | None]:
    """``([{"name", "drive", "drives"}...], None)``, or ``([], why)`` when the PACS does not answer."""
    reading = deps.keeper().read()
    if reading.status is None:
        return [], down_sentence(reading) + " The backup drives show once it answers again."
    out = []
    for name, info in (reading.status.get("offsite") or {}).items():
        drive = info.get("drive")
        if drive:
            drives = [
                {**d, "plugged_in": drive.get("connected") and d.get("repository_id") == drive.get("repository_id")}
                for d in sorted(drive.get("drives") or [], key=lambda d: float(d.get("prepared_at") or 0))
            ]
            out.append({"name": name, "drive": drive, "drives": drives})
    return out, None


def _page(error: str | None = None, typed_label: str = "", chosen: str = "") -> str:
    targets, notice = _drive_targets()
    return render_template(
        "drives.html", targets=targets, notice=notice, error=error, typed_label=typed_label, chosen=chosen
    )


@bp.route("/drives")
def view() -> str:
    return _page()


@bp.route("/drives/prepare", methods=["POST"])
def prepare() -> str | WerkzeugResponse | tuple[str, int]:
    db = deps.db()
    target = form_text("target", 64, "The backup drive target")
    label = form_text("label", 64, "The drive's name")
    try:
        answer = deps.backend().prepare_drive(target, label)
    except (BackendRefused, NotInBackend) as exc:  # the plugin's own sentence: not plugged in, already prepared...
        db.audit("drive_prepare_refused", g.user, client_ip(), f"{target}: {label!r}: {exc}"[:500])
        return _page(str(exc), label, target), 400
    except BackupError as exc:
        db.audit("drive_prepare_failed", g.user, client_ip(), f"{target}: {label!r}")
        return _page(sentence(exc), label, target), 503
    repo = str(answer.get("repository_id") or "")[:8]
    db.audit("drive_prepared", g.user, client_ip(), f"{target}: {label!r} (backup id {repo})")
    name = f"“{label}”" if label else "The new drive"
    flash(
        f"{name} is now a backup drive for {target}. Its first backup has started; it shows below with its "
        "time once it is done. Keep the drive plugged in until then."
    )
    return redirect(url_for("drives.view"))
