"""The group service's settings, from the environment (``*_FILE`` variants for secrets), read once.

- GROUP_DATABASE_URL (or _FILE): the catalog, ``postgresql://user:password@host:5432/database``;
- GROUP_STORE_ENDPOINT, GROUP_STORE_BUCKET, GROUP_READER_ACCESS_KEY / _SECRET_KEY (or _FILE): the group
  store with the group reader's key (read and list only), for the reconcile and the rebuild; optional;
- GROUP_RECONCILE_MINUTES (60) and GROUP_QUIET_MINUTES (10).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from pacs_backup.contracts.errors import ConfigError
from pacs_backup.settings.env_values import number, raw, secret
from pacs_backup.settings.store import StoreSettings, load_store_settings

# A clinic's id, chosen by the group's administrator: its prefix in the group store.
CLINIC_ID = re.compile(r"[a-z0-9][a-z0-9-]{1,31}")
CLINIC_ID_RULE = "a clinic id is 2-32 lowercase letters, digits and '-', starting with a letter or digit"


def is_clinic_id(text: str) -> bool:
    return bool(CLINIC_ID.fullmatch(text))


@dataclass(frozen=True)
class GroupServiceSettings:
    database_url: str
    store: StoreSettings | None = None  # the group reader's access; None: no reconcile, no rebuild
    reconcile_minutes: float = 60.0
    quiet_minutes: float = 10.0

    def __repr__(self) -> str:  # the URL may hold the database password
        return (
            f"GroupServiceSettings(store={self.store!r}, reconcile_minutes={self.reconcile_minutes}, "
            f"quiet_minutes={self.quiet_minutes})"
        )


def load_group_store(env: Mapping[str, str]) -> StoreSettings | None:
    """The group store with the reader key, or None when GROUP_READER_ACCESS_KEY is not set."""
    access = secret(env, "GROUP_READER_ACCESS_KEY", required=False)
    if access is None:
        return None
    mapped = {
        "MINIO_ACCESS_KEY": access,
        "MINIO_SECRET_KEY": secret(env, "GROUP_READER_SECRET_KEY", required=True) or "",
        "BACKUP_LOCK_MODE": "OFF",  # the reader never writes
    }
    for name in ("ENDPOINT", "SECURE", "BUCKET", "REGION"):
        value = raw(env, "GROUP_STORE_" + name)
        if value is not None:
            mapped["MINIO_" + name] = value
    if "MINIO_ENDPOINT" not in mapped or "MINIO_BUCKET" not in mapped:
        raise ConfigError(
            "GROUP_READER_ACCESS_KEY is set but GROUP_STORE_ENDPOINT or GROUP_STORE_BUCKET is not; "
            "set both to the group store (e.g. https://s3.group.example:9000 and group-pacs)."
        )
    try:
        return load_store_settings(mapped)
    except ConfigError as exc:  # name the group's variables, not the plugin's
        raise ConfigError(str(exc).replace("MINIO_", "GROUP_STORE_")) from None


def load_group_settings(env: Mapping[str, str]) -> GroupServiceSettings:
    """Read the group service's settings. Raises ConfigError naming the variable."""
    url = secret(env, "GROUP_DATABASE_URL", required=False)
    if not url or not url.startswith(("postgresql://", "postgres://")):
        raise ConfigError(
            "GROUP_DATABASE_URL (or GROUP_DATABASE_URL_FILE) is not set to the group catalog's PostgreSQL, "
            "e.g. postgresql://group:password@postgres:5432/group; DASHBOARD_MODE=group needs it."
        )
    return GroupServiceSettings(
        database_url=url,
        store=load_group_store(env),
        reconcile_minutes=number(env, "GROUP_RECONCILE_MINUTES", 60.0, 1, 7 * 24 * 60),
        quiet_minutes=number(env, "GROUP_QUIET_MINUTES", 10.0, 0.1, 24 * 60),
    )
