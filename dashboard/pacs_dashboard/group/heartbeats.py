"""Each clinic's heartbeat (its ``/backup/status`` document, no patient data) and the group's status.

A clinic that has sent nothing for GROUP_QUIET_MINUTES (since its last heartbeat, or since it was added)
is ``quiet``: its own alarm on the group's pages, whatever its last lights said.
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from typing import Any, TypedDict

from psycopg.types.json import Jsonb

from .catalog import Catalog

MAX_STATUS_BYTES = 256 * 1024


class ClinicState(TypedDict):
    """One clinic on the group's status page."""

    clinic: str
    label: str
    active: bool  # it has a token that is not revoked
    last_heartbeat_at: float | None
    age_s: float | None  # since the last heartbeat (None: never heard from)
    quiet: bool
    status: dict[str, Any] | None  # the clinic's last /backup/status document
    studies: int
    instances: int
    size: int
    last_reconciled_at: float | None


def record(catalog: Catalog, clinic: str, status: dict[str, Any]) -> None:
    """Keep the clinic's status document with the time it arrived."""
    with catalog.connection() as conn, conn.transaction():
        conn.execute(
            "UPDATE clinics SET last_heartbeat_at = now(), last_status = %s WHERE id = %s", (Jsonb(status), clinic)
        )


def status_size(status: object) -> int:
    """The document's size as JSON. Raises ValueError for what PostgreSQL's jsonb cannot hold (NaN, Infinity,
    a NUL character, half of a surrogate pair)."""
    text = json.dumps(status, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    if "\\u0000" in text:
        raise ValueError("NUL")
    text.encode("utf-8")  # UnicodeEncodeError (a ValueError) for a lone surrogate
    return len(text)


def group_status(catalog: Catalog, quiet_minutes: float, now: float | None = None) -> list[ClinicState]:
    """Every clinic, by id, with its last heartbeat, its age and whether it has gone quiet."""
    at = time.time() if now is None else now
    with catalog.connection() as conn:
        rows = conn.execute(
            "SELECT id, label, token_sha256 IS NOT NULL AND revoked_at IS NULL, last_heartbeat_at, created_at, "
            "last_status, studies, instances, size, last_reconciled_at FROM clinics ORDER BY id"
        ).fetchall()
    out: list[ClinicState] = []
    for cid, label, active, beat, created, status, studies, instances, size, reconciled in rows:
        since = (beat or created).timestamp()
        out.append(
            ClinicState(
                clinic=cid,
                label=label,
                active=bool(active),
                last_heartbeat_at=_epoch(beat),
                age_s=round(at - beat.timestamp(), 1) if beat else None,
                quiet=bool(active) and at - since > quiet_minutes * 60,
                status=status,
                studies=int(studies),
                instances=int(instances),
                size=int(size),
                last_reconciled_at=_epoch(reconciled),
            )
        )
    return out


def _epoch(when: datetime | None) -> float | None:
    return when.timestamp() if when else None
