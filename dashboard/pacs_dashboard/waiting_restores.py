"""Restores asked while the PACS was down, handed to the plugin once it answers again.

A page keeps such a restore in the mirror file (:meth:`Mirror.queue_restore`) with who asked and when; the
monitor thread calls :func:`submit_waiting` at each round while the PACS answers. The plugin then runs the
restore like any other (a run, with its progress page); the dashboard never restores anything itself.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, tzinfo

from pacs_backup.contracts.errors import BackupError

from .backend_api import BackendApi, BackendBusy, BackendRefused, NotInBackend, PacsDown
from .db import Database
from .mirror import Mirror
from .timefmt import when

log = logging.getLogger(__name__)


def submit_waiting(
    backend: BackendApi, db: Database, mirror: Mirror, now: float | None = None, zone: tzinfo = UTC
) -> int:
    """Hand the restores that waited for the PACS to the plugin, oldest first. Returns how many were handed
    over; stops at the first that cannot reach it (tried again at the next round). One the plugin refuses
    (the copy is gone, the study is not in it) is marked refused, with its sentence, and audited."""
    handed = 0
    for w in mirror.waiting():
        now_ = time.time() if now is None else now
        try:
            run_id = backend.restore(w["study_uid"], w["source"], w["snapshot"])
        except (PacsDown, BackendBusy):  # try again at the next round
            break
        except (BackendRefused, NotInBackend) as exc:
            mirror.restore_refused(w["id"], str(exc), now_)
            db.audit("restore_refused", w["username"], w["ip"], f"study {w['study_uid']} from {w['source']}: {exc}")
            continue
        except BackupError as exc:
            log.warning("waiting restore %s not handed over yet: %s", w["id"], exc)
            break
        mirror.restore_submitted(w["id"], run_id, now_)
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
