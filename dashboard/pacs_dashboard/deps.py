"""What a request may use, typed: the parts :func:`pacs_dashboard.create_app` makes once per application and
keeps on it (``app.extensions``), each behind one accessor here, so no page looks them up by name.

- :func:`settings`, :func:`clinic` and :func:`tz`: read once from the environment;
- :func:`backend`: the backup engine (:class:`~pacs_dashboard.backend_api.BackendApi`);
- :func:`db`: the dashboard's own database (users, sessions, audit, alert state, settings, chart samples);
- :func:`mirror`, :func:`keeper` and :func:`bucket`: what pages use while the PACS is down (the mirror of the
  catalog, the last status and since when, read-only access to the backup copies);
- :func:`copies`: every copy read as a source of studies (the DICOMweb service of copies);
- :func:`checks`: the checks of a study in the PACS against its backup, running in this process;
- :func:`monitor`: the background monitor thread, when one was started.

The accessors work inside a request (or an application context); the monitor thread is handed its parts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo
from typing import TYPE_CHECKING, cast

from flask import Flask, current_app

if TYPE_CHECKING:
    from .backend_api import BackendApi
    from .bucket import BucketReader
    from .checks import Checks
    from .clinic import ClinicSettings
    from .config import DashboardSettings
    from .copy_reader import Copies
    from .db import Database
    from .mirror import Mirror
    from .monitor import Monitor
    from .pacs_state import StatusKeeper

# The keys under app.extensions (tests read and replace them by these names too).
SETTINGS, BACKEND, DB = "settings", "backend", "db"
MIRROR, KEEPER, BUCKET, CHECKS, MONITOR = "mirror", "keeper", "bucket", "checks", "monitor"
COPIES = "copies"


@dataclass(frozen=True)
class Parts:
    """Everything one dashboard application keeps, made by create_app."""

    settings: DashboardSettings
    backend: BackendApi
    db: Database
    mirror: Mirror
    keeper: StatusKeeper
    bucket: BucketReader | None
    checks: Checks
    copies: Copies | None = None  # made from the backend and the bucket reader when not given


def install(app: Flask, parts: Parts) -> None:
    """Keep ``parts`` on ``app`` for the accessors below."""
    app.extensions.update(
        {
            SETTINGS: parts.settings,
            BACKEND: parts.backend,
            DB: parts.db,
            MIRROR: parts.mirror,
            KEEPER: parts.keeper,
            BUCKET: parts.bucket,
            CHECKS: parts.checks,
            COPIES: parts.copies,
        }
    )


def install_monitor(app: Flask, monitor: Monitor) -> None:
    app.extensions[MONITOR] = monitor


def settings() -> DashboardSettings:
    return cast("DashboardSettings", current_app.extensions[SETTINGS])


def clinic() -> ClinicSettings:
    return settings().clinic


def tz() -> tzinfo:
    """The clinic's time zone: every time a page shows is in it."""
    return clinic().tz


def backend() -> BackendApi:
    return cast("BackendApi", current_app.extensions[BACKEND])


def db() -> Database:
    return cast("Database", current_app.extensions[DB])


def mirror() -> Mirror:
    return cast("Mirror", current_app.extensions[MIRROR])


def keeper() -> StatusKeeper:
    return cast("StatusKeeper", current_app.extensions[KEEPER])


def bucket() -> BucketReader | None:
    """Read-only access to the backup copies, or None when no read-only account is configured."""
    return cast("BucketReader | None", current_app.extensions.get(BUCKET))


def copies() -> Copies:
    """Every copy as a read-only source of studies (made on first use when create_app was given none)."""
    found = current_app.extensions.get(COPIES)
    if found is None:
        from .bucket_copies import BucketCopies
        from .copy_reader import Copies, PluginCopies

        reader = bucket()
        direct = BucketCopies(reader, mirror()) if reader is not None else None
        found = Copies(PluginCopies(backend()), direct, settings().view_memory_mb)
        current_app.extensions[COPIES] = found
    return cast("Copies", found)


def checks() -> Checks:
    return cast("Checks", current_app.extensions[CHECKS])


def monitor() -> Monitor | None:
    """The monitor thread, or None when the application was made without one (tests, scripts)."""
    return cast("Monitor | None", current_app.extensions.get(MONITOR))
