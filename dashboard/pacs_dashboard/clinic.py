"""The clinic's own settings for the dashboard: its time zone, and optional read-only access to the backup
copies in the bucket (so that search, a study's page and its pictures still work while the PACS is down).

Read once from the environment, like :mod:`pacs_dashboard.config`; a bad value raises ConfigError naming it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pacs_backup.contracts.errors import ConfigError
from pacs_backup.settings.env_values import secret
from pacs_backup.settings.store import StoreSettings, load_store_settings

log = logging.getLogger(__name__)

# The dashboard's read-only bucket account: DASHBOARD_MINIO_<X> (or the plugin's MINIO_<X> for the
# endpoint, bucket, prefix and region, which are the same store). Keys never fall back to the plugin's
# own (MINIO_ACCESS_KEY may write); only to the read-only MINIO_READER_* pair.
_STORE_NAMES = ("ENDPOINT", "SECURE", "BUCKET", "PREFIX", "REGION")


def _utc() -> ZoneInfo:
    return ZoneInfo("UTC")


@dataclass(frozen=True)
class ClinicSettings:
    tz: ZoneInfo = field(default_factory=_utc)
    store: StoreSettings | None = None  # read-only access to the bucket copies, when configured

    def __repr__(self) -> str:
        return f"ClinicSettings(tz={self.tz.key!r}, store={self.store!r})"


def _system_zone() -> str | None:
    try:
        name = Path("/etc/timezone").read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return name or None


def load_zone(env: Mapping[str, str]) -> ZoneInfo:
    """DASHBOARD_TZ, else TZ, else the system's /etc/timezone, else UTC (e.g. Europe/Berlin)."""
    chosen = (env.get("DASHBOARD_TZ") or "").strip()
    if chosen:
        try:
            return ZoneInfo(chosen)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"DASHBOARD_TZ={chosen!r} is not a time zone; use a name such as Europe/Berlin or America/New_York."
            ) from None
    for candidate in ((env.get("TZ") or "").strip().lstrip(":"), _system_zone()):
        if not candidate:
            continue
        try:
            return ZoneInfo(candidate)
        except (ZoneInfoNotFoundError, ValueError):
            log.warning("time zone %r is not known; set DASHBOARD_TZ (e.g. Europe/Berlin). Using UTC.", candidate)
    return ZoneInfo("UTC")


def load_reader_store(env: Mapping[str, str]) -> StoreSettings | None:
    """The dashboard's read-only bucket settings, or None when no read-only account is given.

    DASHBOARD_MINIO_ACCESS_KEY / _SECRET_KEY, else MINIO_READER_ACCESS_KEY / _SECRET_KEY (the names the
    store-setup step creates the account under, so one pair in .env serves both)."""
    prefix = "DASHBOARD_MINIO_" if secret(env, "DASHBOARD_MINIO_ACCESS_KEY", required=False) else "MINIO_READER_"
    access = secret(env, prefix + "ACCESS_KEY", required=False)
    if access is None:
        return None
    secret_key = secret(env, prefix + "SECRET_KEY", required=True)
    mapped: dict[str, str] = {}
    for name in _STORE_NAMES:
        value = env.get("DASHBOARD_MINIO_" + name) or env.get("MINIO_" + name)
        if value:
            mapped["MINIO_" + name] = value
    mapped["MINIO_ACCESS_KEY"], mapped["MINIO_SECRET_KEY"] = access, secret_key or ""
    try:
        return load_store_settings(mapped)
    except ConfigError as exc:  # name the dashboard's variable, not the plugin's
        raise ConfigError(str(exc).replace("MINIO_", "DASHBOARD_MINIO_")) from None


def load_clinic_settings(env: Mapping[str, str]) -> ClinicSettings:
    return ClinicSettings(tz=load_zone(env), store=load_reader_store(env))
