"""The engine's configuration, read once at start from environment variables and validated.

The parts are read by their own modules: the object store (:mod:`.store`), the snapshot targets
(:mod:`.targets`), the cloud PACS (:mod:`.cloud_peer`), the group of clinics (:mod:`.group`) and the
limits (:mod:`.limits`); each value by
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
from .group import GroupSettings, load_group
from .limits import Limits, load_limits
from .referral_peers import ReferralPeer, load_referral_peers
from .retention import RetentionRule, load_retention
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
    # Copies on this box that are still to be judged as offsite (BACKUP_TREAT_AS_OFFSITE): tests and trials only.
    treat_as_offsite: frozenset[str] = frozenset()
    retention: RetentionRule = field(default_factory=lambda: load_retention({}))  # how long every copy keeps a study
    view_cache_mb: int = 2048  # studies fetched from snapshots to be looked at, on disk (sources/cache.py)
    referral_peers: tuple[ReferralPeer, ...] = ()  # clinics a study can be sent to on request
    group: GroupSettings | None = None  # this clinic's group of clinics (GROUP_*), when it is in one


CLOUD_PACS_COPY = "cloud-pacs"  # the cloud PACS's name as a copy (a source, a light)


def load_treat_as_offsite(env: Mapping[str, str], targets: tuple[TargetSettings, ...], cloud: bool) -> frozenset[str]:
    """BACKUP_TREAT_AS_OFFSITE: names of copies on this box (a loopback rest-server, a second Orthanc) that
    tests and trials judge as if they were offsite. Each must be a configured copy."""
    names = frozenset(n.strip().lower() for n in (raw(env, "BACKUP_TREAT_AS_OFFSITE") or "").split(",") if n.strip())
    known = [t.name for t in targets] + ([CLOUD_PACS_COPY] if cloud else [])
    unknown = sorted(names - set(known))
    if unknown:
        raise ConfigError(
            f"BACKUP_TREAT_AS_OFFSITE names {unknown[0]!r}, which is not a copy here; use the names of the snapshot "
            f"targets or cloud-pacs (configured: {', '.join(known) or 'none'})."
        )
    return names


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
    targets = tuple(load_targets(env))
    cloud_pacs = load_cloud_pacs(env)
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
        targets=targets,
        retention=load_retention(env),
        drill_sample=parse_number("BACKUP_DRILL_SAMPLE", raw(env, "BACKUP_DRILL_SAMPLE") or "20", int, 1, 100000),
        minio_drill_hours=parse_number(
            "BACKUP_DRILL_INTERVAL_HOURS", raw(env, "BACKUP_DRILL_INTERVAL_HOURS") or "24", float, 0.01, 720
        ),
        first_run_delay_s=parse_number(
            "BACKUP_FIRST_RUN_DELAY_SECONDS", raw(env, "BACKUP_FIRST_RUN_DELAY_SECONDS") or "60", float, 0, 86400
        ),
        store_quota_gb=optional_number(env, "MINIO_QUOTA_GB"),
        cloud_pacs=cloud_pacs,
        limits=load_limits(env),
        treat_as_offsite=load_treat_as_offsite(env, targets, cloud_pacs is not None),
        view_cache_mb=parse_number(
            "BACKUP_VIEW_CACHE_MB", raw(env, "BACKUP_VIEW_CACHE_MB") or "2048", int, 16, 1024 * 1024
        ),
        referral_peers=load_referral_peers(env),
        group=load_group(env),
    )
