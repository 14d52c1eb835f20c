""" "Bring this study to my clinic": a study of clinic B delivered into clinic A's PACS, from the central copy.

A request (table ``group_deliveries`` in the dashboard's SQLite file) names the study, its clinic and the clinic
it goes to; it is made by a user who may see both and audited. Clinic A's appliance pulls it with its own
token (views/group_deliveries_api.py): the list of its deliveries, the study's objects, each object's bytes
(read by the group service from clinic B's prefix with the reader key, checked against its sha256), then
it restores them into its PACS verified as any restore and reports back; the report is audited too.

States: ``pending`` (asked), ``taken`` (clinic A started it), ``delivered`` or ``failed`` (with its sentence).
"""

from __future__ import annotations

import json
import time
from typing import Any, Literal, TypedDict, cast

from pacs_backup.contracts.errors import BackupError
from pacs_backup.contracts.inputs import is_uid

from ..db import Database
from .catalog import Catalog

State = Literal["pending", "taken", "delivered", "failed"]
OPEN: tuple[State, ...] = ("pending", "taken")


class Refused(BackupError):
    """The request cannot be made or the report not taken: ``str(err)`` says why, for a person."""


class Delivery(TypedDict):
    id: int
    source_clinic: str
    study_uid: str
    target_clinic: str
    requested_by: str
    requested_at: float
    state: State
    taken_at: float | None
    finished_at: float | None
    sentence: str


_COLS = (
    "id, source_clinic, study_uid, target_clinic, requested_by, requested_at, state, taken_at, finished_at, sentence"
)


def _delivery(row: tuple[Any, ...]) -> Delivery:
    keys = [c.strip() for c in _COLS.split(",")]
    return cast(Delivery, dict(zip(keys, row, strict=True)))


def request(db: Database, catalog: Catalog, user: str, ip: str | None, source: str, study: str, target: str) -> int:
    """Ask for ``study`` of clinic ``source`` to be brought into clinic ``target``; returns the request's id.

    The caller has checked the user may see both clinics. Raises Refused with a sentence.
    """
    if not is_uid(study):
        raise Refused("That is not a study instance UID.")
    if source == target:
        raise Refused(f"This study is already in clinic {target}.")
    with catalog.connection() as conn:
        held = conn.execute(
            "SELECT instances FROM studies WHERE clinic = %s AND study_uid = %s", (source, study)
        ).fetchone()
        active = conn.execute(
            "SELECT 1 FROM clinics WHERE id = %s AND token_sha256 IS NOT NULL AND revoked_at IS NULL", (target,)
        ).fetchone()
    if held is None:
        raise Refused(f"The central copy of clinic {source} does not hold this study.")
    if active is None:
        raise Refused(f"Clinic {target} is not an active member of the group; it cannot receive studies.")
    waiting = db.query(
        "SELECT id FROM group_deliveries WHERE source_clinic=? AND study_uid=? AND target_clinic=? "
        "AND state IN ('pending', 'taken')",
        (source, study, target),
    )
    if waiting:
        return int(waiting[0][0])  # asking again joins the request already waiting
    db.execute(
        "INSERT INTO group_deliveries (source_clinic, study_uid, target_clinic, requested_by, requested_at) "
        "VALUES (?, ?, ?, ?, ?)",
        (source, study, target, user, time.time()),
    )
    new_id = int(
        db.query(  # the one open request for this study and clinic (a second one joins it, above)
            "SELECT MAX(id) FROM group_deliveries WHERE source_clinic=? AND study_uid=? AND target_clinic=?",
            (source, study, target),
        )[0][0]
    )
    db.audit(
        "group_delivery_requested",
        user,
        ip,
        f"delivery {new_id}: study {study} of clinic {source} to clinic {target} ({held[0]} images)",
    )
    return new_id


def get(db: Database, delivery_id: int) -> Delivery | None:
    rows = db.query(f"SELECT {_COLS} FROM group_deliveries WHERE id=?", (delivery_id,))  # noqa: S608 - constant
    return _delivery(rows[0]) if rows else None


def for_clinic(db: Database, clinic: str) -> list[Delivery]:
    """The deliveries clinic ``clinic`` has to fetch (pending or started), oldest first; marks them taken."""
    rows = db.query(
        f"SELECT {_COLS} FROM group_deliveries WHERE target_clinic=? AND state IN ('pending', 'taken') "  # noqa: S608
        "ORDER BY id LIMIT 20",
        (clinic,),
    )
    db.execute(
        "UPDATE group_deliveries SET state='taken', taken_at=? WHERE target_clinic=? AND state='pending'",
        (time.time(), clinic),
    )
    return [_delivery(r) for r in rows]


def recent(db: Database, clinics: list[str], limit: int = 100) -> list[Delivery]:
    """The newest deliveries from or to any of ``clinics`` (what a user may see)."""
    if not clinics:
        return []
    marks = ", ".join("?" for _ in clinics)
    rows = db.query(
        f"SELECT {_COLS} FROM group_deliveries WHERE source_clinic IN ({marks}) OR target_clinic IN ({marks}) "  # noqa: S608
        "ORDER BY id DESC LIMIT ?",
        (*clinics, *clinics, limit),
    )
    return [_delivery(r) for r in rows]


def finish(db: Database, delivery: Delivery, report: object) -> Delivery:
    """Record clinic A's report (``{"ok", "total", "verified", "sentence", "failures"}``) and audit it."""
    if not isinstance(report, dict) or not isinstance(report.get("ok"), bool):
        raise Refused('The report is not JSON like {"ok": true, "total": 3, "verified": 3, "sentence": "..."}.')
    total, verified = report.get("total"), report.get("verified")
    if not isinstance(total, int) or not isinstance(verified, int):
        raise Refused("The report does not say how many images were brought and verified.")
    given = str(report.get("sentence") or "")[:500]
    ok = report["ok"] and total > 0 and verified == total
    sentence = given or (
        f"{verified} of {total} images brought into clinic {delivery['target_clinic']}'s PACS and verified."
        if ok
        else f"Only {verified} of {total} images could be brought and verified."
    )
    state: State = "delivered" if ok else "failed"
    kept = {"ok": ok, "total": total, "verified": verified, "failures": report.get("failures") or []}
    db.execute(
        "UPDATE group_deliveries SET state=?, finished_at=?, sentence=?, report=? WHERE id=?",
        (state, time.time(), sentence, json.dumps(kept)[:20000], delivery["id"]),
    )
    db.audit(
        "group_delivery_done" if ok else "group_delivery_failed",
        f"clinic {delivery['target_clinic']}",
        None,
        f"delivery {delivery['id']}: study {delivery['study_uid']} of clinic {delivery['source_clinic']} "
        f"to clinic {delivery['target_clinic']}: {sentence}",
    )
    found = get(db, delivery["id"])
    assert found is not None  # noqa: S101 - just written
    return found


def words(d: Delivery) -> str:
    """The delivery's state as the page says it."""
    if d["state"] == "pending":
        return f"Waiting for clinic {d['target_clinic']} to fetch it."
    if d["state"] == "taken":
        return f"Clinic {d['target_clinic']} is bringing it into its PACS."
    return d["sentence"]
