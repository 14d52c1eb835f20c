"""Assembly of the engine from configuration, independent of Orthanc.

The Orthanc entry module creates one :class:`BackupService` with a ``get`` function (the SDK's
``RestApiGet``) and forwards Orthanc's events to it. Tests build the same service with an HTTP getter.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from . import __version__
from .config import Settings, load_settings
from .errors import ConfigError
from .object_store import ObjectStore
from .orthanc_source import Getter, OrthancReader
from .outbox import Outbox
from .replicator import Replicator, ReplicatorOptions
from .retry import RetryPolicy

log = logging.getLogger(__name__)

OUTBOX_FILENAME = "pacs-backup-outbox.sqlite"


class BackupService:
    """The plugin's whole behaviour: configuration, replication and status.

    A configuration error does not raise: it is kept, logged in one line, and shown by
    :meth:`status`, so that Orthanc keeps serving images while the installer fixes the setting.
    """

    def __init__(self, get: Getter, storage_dir: Path, env: Mapping[str, str] | None = None) -> None:
        self.replicator: Replicator | None = None
        self.config_error: str | None = None
        self.settings: Settings | None = None
        try:
            self.settings = load_settings(storage_dir / OUTBOX_FILENAME, os.environ if env is None else env)
        except ConfigError as exc:
            self.config_error = str(exc)
            log.error("PACS backup is NOT running: %s", exc)
            return
        if not self.settings.enabled:
            log.warning("PACS backup is disabled (BACKUP_ENABLED=false): instances are not copied")
            return
        s = self.settings
        self.replicator = Replicator(
            Outbox(s.outbox_path),
            OrthancReader(get),
            ObjectStore(s.store, pool_size=max(4, s.workers * 2)),
            ReplicatorOptions(workers=s.workers, prefix=s.store.prefix,
                              retry=RetryPolicy(s.retry_base_s, s.retry_cap_s),
                              reconcile_every_s=s.reconcile_hours * 3600.0),
        )

    def on_new_instance(self, orthanc_id: str) -> None:
        """Forward a NEW_INSTANCE change. Never raises."""
        if self.replicator is not None:
            self.replicator.on_new_instance(orthanc_id)

    def start(self) -> None:
        """Start the engine's threads (Orthanc has started)."""
        if self.replicator is not None:
            log.warning("PACS backup %s started: copying to bucket %s with %d workers", __version__,
                        self.replicator.store.bucket, self.replicator.options.workers)
            self.replicator.start()

    def stop(self) -> None:
        """Stop the threads (Orthanc is stopping). Unfinished work stays in the outbox."""
        if self.replicator is not None:
            self.replicator.stop()

    def status(self) -> dict[str, Any]:
        """Return ``GET /backup/status``: replication state plus an overall ``state`` word.

        ``state`` is ``error`` (not running or nothing can be copied), ``degraded`` (copies delayed or
        failing) or ``ok``.
        """
        base: dict[str, Any] = {"version": __version__, "time": time.time(), "last_snapshot": None,
                                "last_drill": None}
        if self.config_error is not None:
            return {**base, "state": "error", "enabled": False, "config_error": self.config_error,
                    "last_error": {"message": self.config_error, "at": None}}
        if self.replicator is None:
            return {**base, "state": "error", "enabled": False, "last_error": {
                "message": "Backup is disabled (BACKUP_ENABLED=false).", "at": None}}
        rep = self.replicator.status()
        state = "ok"
        if not rep["store"]["reachable"]:
            state = "error"
        elif rep["failed"] or rep["quarantined"] or (rep["oldest_pending_age_s"] or 0) > 300:
            state = "degraded"
        return {**base, "state": state, "enabled": True, **rep}
