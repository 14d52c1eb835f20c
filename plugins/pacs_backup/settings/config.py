"""The engine's configuration, read once at start from environment variables and validated.

The parts are read by their own modules: the object store (:mod:`.store`), the snapshot targets
(:mod:`.targets`), the cloud PACS (:mod:`.cloud_peer`) and the limits (:mod:`.limits`); each value by
:mod:`.env_values`. A bad value raises :class:`ConfigError` whose message names the variable.
Every variable is documented in ``.env.example``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pacs_backup.contracts.errors import ConfigError

from .cloud_peer import CloudPacsSettings, load_cloud_pacs
from .env_values import optional_number, parse_bool, parse_number, raw
from .limits import Limits, load_limits
from .store import StoreSettings, load_store_settings
from .targets import TargetSettings, load_targets


@dataclass(frozen=True)
class Settings:
    """Everything the replication engine needs."""

    enabled: bool
    store: StoreSettings
    outbox_path: Path
    workers: int
    retry_base_s: float
    retry_cap_s: float
    reconcile_hours: float
    targets: tuple[TargetSettings, ...] = ()
    drill_sample: int = 20
    minio_drill_hours: float = 24.0
    first_run_delay_s: float = 60.0
    limits: Limits = field(default_factory=Limits)  # on incoming files and previews (limits.py)
    store_quota_gb: float | None = None  # the object store's space for this site, when limited
    cloud_pacs: CloudPacsSettings | None = None


def load_settings(default_outbox: Path, env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate the engine's settings.

    Args:
        default_outbox: outbox database path to use when BACKUP_OUTBOX_PATH is not set (the entry
            module passes a file on Orthanc's storage volume).
        env: the environment (defaults to ``os.environ``).
    Returns:
        The validated :class:`Settings`.
    Raises:
        ConfigError: naming the first variable that is missing or invalid.
    """
    env = os.environ if env is None else env
    enabled = parse_bool("BACKUP_ENABLED", raw(env, "BACKUP_ENABLED") or "true")
    base = parse_number("BACKUP_RETRY_BASE_SECONDS", raw(env, "BACKUP_RETRY_BASE_SECONDS") or "1", float, 0.01, 3600)
    cap = parse_number("BACKUP_RETRY_CAP_SECONDS", raw(env, "BACKUP_RETRY_CAP_SECONDS") or "300", float, 0.1, 86400)
    if cap < base:
        raise ConfigError("BACKUP_RETRY_CAP_SECONDS is smaller than BACKUP_RETRY_BASE_SECONDS; raise the cap.")
    return Settings(
        enabled=enabled,
        store=load_store_settings(env),
        outbox_path=Path(raw(env, "BACKUP_OUTBOX_PATH") or default_outbox),
        workers=parse_number("BACKUP_WORKERS", raw(env, "BACKUP_WORKERS") or "4", int, 1, 64),
        retry_base_s=base,
        retry_cap_s=cap,
        reconcile_hours=parse_number(
            "BACKUP_RECONCILE_HOURS", raw(env, "BACKUP_RECONCILE_HOURS") or "168", float, 0, 8760
        ),
        targets=tuple(load_targets(env)),
        drill_sample=parse_number("BACKUP_DRILL_SAMPLE", raw(env, "BACKUP_DRILL_SAMPLE") or "20", int, 1, 100000),
        minio_drill_hours=parse_number(
            "BACKUP_DRILL_INTERVAL_HOURS", raw(env, "BACKUP_DRILL_INTERVAL_HOURS") or "24", float, 0.01, 720
        ),
        first_run_delay_s=parse_number(
            "BACKUP_FIRST_RUN_DELAY_SECONDS", raw(env, "BACKUP_FIRST_RUN_DELAY_SECONDS") or "60", float, 0, 86400
        ),
        store_quota_gb=optional_number(env, "MINIO_QUOTA_GB"),
        cloud_pacs=load_cloud_pacs(env),
        limits=load_limits(env),
    )
