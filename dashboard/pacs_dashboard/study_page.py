"""What a study's page (and the confirmation of its restore) shows: the study, its series, whether the PACS
holds it now, the offsite snapshots that hold it and which of its images to draw.

While the PACS answers, everything comes from the plugin; while it does not, the study comes from the
dashboard's mirror of the catalog and its series and pictures from the bucket copies (read-only).
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime
from typing import TypedDict

from flask import abort

from pacs_backup.contracts.errors import BackupError
from pacs_backup.contracts.inputs import is_name, is_snapshot_id
from pacs_backup.settings.retention import RetentionRule, study_day
from pacs_backup.state.catalog import StudySummary

from . import deps
from .backend_api import BackendError, HoldingDoc, NotInBackend, PacsDown, PacsStudy
from .fallback import down_sentence, known_down, known_status, summary_from_instances
from .inputs import abort_for
from .pacs_state import Reading
from .timefmt import parse_iso, when

PREVIEWS = 4  # pictures shown per study (the first image of each series first)

Series = tuple[tuple[str, str], int]  # ((series, modality), images)


class ShownHolding(HoldingDoc):
    """A snapshot holding the study, with its time as people read it (and its short id when two share a minute)."""

    when: str


class StudyPage(TypedDict):
    uid: str
    study: StudySummary
    down: Reading | None  # the PACS is down: the page says since when and uses the dashboard's copies
    in_pacs: PacsStudy | None
    holdings: list[ShownHolding]  # newest first
    holdings_error: str | None
    series: list[Series]
    previews: list[int]  # 1-based positions of the images to draw
    preview_note: str | None  # why no picture is drawn
    kept_until: str | None  # YYYYMMDD: the earliest day its copies may be deleted (None: the rule is not known)
    retention_rule: str | None  # the rule, as staff read it
    kept_by_lock: bool  # each copy is written with an object lock until that day: the store refuses to delete it


def preview_positions(keys: list[tuple[str, str]]) -> list[int]:
    """1-based positions of the images to show: the first of each series, then the next ones, up to PREVIEWS.
    ``keys`` are (series, image) in the order the copies are listed."""
    firsts, seen = [], set()
    for n, (series, _) in enumerate(keys, start=1):
        if series not in seen:
            seen.add(series)
            firsts.append(n)
    rest = [n for n in range(1, len(keys) + 1) if n not in firsts]
    return (firsts + rest)[:PREVIEWS]


def holdings(uid: str) -> tuple[list[ShownHolding], str | None]:
    """The offsite snapshots that hold the study, newest first, each once, with its time as people read it."""
    try:
        listed = deps.backend().study_snapshots(uid)
    except BackendError as exc:
        return [], f"The list of offsite snapshots could not be read: {exc}"
    zone, seen, out = deps.tz(), set(), []
    for h in sorted(listed, key=lambda h: parse_iso(h.get("time")) or 0, reverse=True):
        key = (h.get("target"), h.get("id"))
        if key in seen or not h.get("id") or not is_snapshot_id(str(h["id"])) or not is_name(str(h.get("target"))):
            continue
        seen.add(key)
        out.append(ShownHolding(**h, when=when(parse_iso(h.get("time")), zone) or str(h.get("time") or "")))
    labels = Counter((h["target"], h["when"]) for h in out)
    for h in out:  # two snapshots in the same minute: tell them apart by their short id
        if labels[(h["target"], h["when"])] > 1:
            h["when"] += f" ({h.get('short_id') or str(h['id'])[:8]})"
    return out, None


def study_page(uid: str) -> StudyPage:
    """Everything a study's page shows (404 when the study is not in the backups, or, while the PACS is down,
    not in the dashboard's own list of them)."""
    down = known_down()
    if down is None:
        try:
            return _with_retention(_from_plugin(uid))
        except NotInBackend:
            abort(404, "This study is not in the backups.")
        except PacsDown as exc:
            down = deps.keeper().mark_down(str(exc))
        except BackupError as exc:
            abort_for(exc)
    return _with_retention(_from_copies(uid, down))


def _with_retention(page: StudyPage) -> StudyPage:
    page["kept_until"], page["retention_rule"] = kept_until(page["study"])
    status = known_status()
    doc = status.get("retention") if status else None
    page["kept_by_lock"] = bool(doc) and "lock_note" not in (doc or {})
    return page


def kept_until(study: StudySummary) -> tuple[str | None, str | None]:
    """The earliest day the study's copies may be deleted (``YYYYMMDD``), and the rule, from the newest
    status the plugin gave; a study without a date counts from when it was copied (never earlier)."""
    status = known_status()
    doc = status.get("retention") if status else None
    if not doc:
        return None, None
    copied = study.get("last_copied_at") or time.time()
    day = study_day(study.get("study_date") or "", datetime.fromtimestamp(copied, deps.tz()).date())
    return RetentionRule(int(doc["years"])).keep_until(day).strftime("%Y%m%d"), str(doc.get("rule") or "")


def _from_plugin(uid: str) -> StudyPage:
    backend = deps.backend()
    instances = backend.study(uid).get("instances") or []
    if not instances:
        abort(404, "This study is not in the backups.")
    study = deps.mirror().study(uid) or summary_from_instances(uid, instances)
    study["instances"] = len(instances)
    series = Counter((i.get("series_uid") or "", i.get("modality") or "") for i in instances)
    in_pacs = backend.pacs_study(uid)
    shown, holdings_error = holdings(uid)
    order = [(str(i.get("series_uid") or ""), str(i.get("sop_uid") or "")) for i in instances]
    return StudyPage(
        uid=uid,
        study=study,
        down=None,
        in_pacs=in_pacs,
        holdings=shown,
        holdings_error=holdings_error,
        series=sorted(series.items(), key=str),
        previews=preview_positions(order),
        preview_note=None,
        kept_until=None,
        retention_rule=None,
        kept_by_lock=False,
    )


def _from_copies(uid: str, down: Reading) -> StudyPage:
    """While the PACS is down: the mirror's row, and the series and pictures of the bucket copies."""
    row = deps.mirror().study(uid)
    if row is None:
        abort(
            404,
            f"{down_sentence(down)} This study is not in the dashboard's own list of the backups, "
            "so it can only be looked up once the PACS answers again.",
        )
    page = StudyPage(
        uid=uid,
        study=row,
        down=down,
        in_pacs=None,
        holdings=[],
        holdings_error=None,
        series=[],
        previews=[],
        preview_note=None,
        kept_until=None,
        retention_rule=None,
        kept_by_lock=False,
    )
    reader = deps.bucket()
    if reader is None:
        page["preview_note"] = (
            "Pictures of the backup copies need the dashboard's read-only access to them; "
            "ask your technician to set it up."
        )
        return page
    try:
        counts = reader.series_counts(uid)
    except BackupError:
        page["preview_note"] = "The backup copies cannot be read right now, so no picture can be shown."
        return page
    page["series"] = [((s, row.get("modalities") or ""), n) for s, n in counts]
    page["previews"] = preview_positions([(s, "") for s, n in counts for _ in range(n)])
    return page
