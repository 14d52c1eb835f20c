"""A clinic's membership of a group of clinics: its id, the group store and the group service.

Read from the GROUP_* variables (documented in ``.env.example`` and docs/groups.md). Without
GROUP_CLINIC_ID the clinic is in no group and nothing here is used. The group store is any S3 with
versioning and object lock; this clinic writes under ``<clinic-id>/`` with its own keys, made by the
group's admin (``pacs-backup group add-clinic``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from pacs_backup.contracts.errors import ConfigError

from .env_values import number, raw, secret
from .store import StoreSettings, parse_bucket, parse_endpoint, parse_lock_mode

CLINIC_ID = re.compile(r"[a-z0-9][a-z0-9-]{1,31}")
GROUP_COPY = "group"  # the group copy's name as a copy (a drill's target, a light, a restore source)


def parse_clinic_id(name: str, value: str) -> str:
    """A clinic id: 2-32 lowercase letters, digits or '-', starting with a letter or digit."""
    if not CLINIC_ID.fullmatch(value):
        raise ConfigError(
            f"{name}={value!r} is not a clinic id; use 2-32 lowercase letters, digits or '-' "
            "starting with a letter or digit (e.g. north)."
        )
    return value


@dataclass(frozen=True)
class GroupSettings:
    """This clinic in its group: the group store (prefix = clinic id) and the group service."""

    clinic_id: str
    store: StoreSettings  # the group store, with this clinic's own keys; prefix is the clinic id
    service_url: str | None  # the group service (None: only the group copy, no catalog feed)
    service_token: str | None
    heartbeat_s: float = 60.0
    manifest_s: float = 300.0  # the clinic's manifest in the group store is rewritten at most this often

    def __repr__(self) -> str:  # never print secrets
        return f"GroupSettings(clinic_id={self.clinic_id!r}, store={self.store!r}, service_url={self.service_url!r})"


def load_group_store(env: Mapping[str, str], clinic_id: str, access_key: str, secret_key: str) -> StoreSettings:
    """The group store's settings with the given keys (the clinic's, or the root account's)."""
    endpoint, secure = parse_endpoint(env, "GROUP_STORE_ENDPOINT", "GROUP_STORE_SECURE")
    return StoreSettings(
        endpoint=endpoint,
        secure=secure,
        access_key=access_key,
        secret_key=secret_key,
        bucket=parse_bucket("GROUP_STORE_BUCKET", raw(env, "GROUP_STORE_BUCKET") or "group-pacs"),
        region=raw(env, "GROUP_STORE_REGION"),
        prefix=clinic_id,
        lock_mode=parse_lock_mode("GROUP_LOCK_MODE", raw(env, "GROUP_LOCK_MODE") or "GOVERNANCE"),
        lock_days=int(number(env, "GROUP_LOCK_DAYS", 30, 1, 36500)),
    )


def load_group(env: Mapping[str, str]) -> GroupSettings | None:
    """This clinic's group settings, or None when GROUP_CLINIC_ID is unset.

    Raises:
        ConfigError: naming the first GROUP_* variable that is missing or invalid.
    """
    clinic = raw(env, "GROUP_CLINIC_ID")
    if clinic is None:
        return None
    clinic = parse_clinic_id("GROUP_CLINIC_ID", clinic)
    access, secret_key = secret(env, "GROUP_STORE_ACCESS_KEY"), secret(env, "GROUP_STORE_SECRET_KEY")
    assert access is not None and secret_key is not None  # noqa: S101 - required=True guarantees it
    url = raw(env, "GROUP_SERVICE_URL")
    if url is not None and not url.startswith(("http://", "https://")):
        raise ConfigError(f"GROUP_SERVICE_URL={url!r} must start with https:// (the group service's address).")
    token = secret(env, "GROUP_SERVICE_TOKEN", required=url is not None)
    if token is not None and url is None:
        raise ConfigError("GROUP_SERVICE_TOKEN is set but GROUP_SERVICE_URL is not; set the group service's address.")
    return GroupSettings(
        clinic_id=clinic,
        store=load_group_store(env, clinic, access, secret_key),
        service_url=None if url is None else url.rstrip("/"),
        service_token=token,
        heartbeat_s=number(env, "GROUP_HEARTBEAT_SECONDS", 60, 1, 86400),
        manifest_s=number(env, "GROUP_MANIFEST_SECONDS", 300, 1, 86400),
    )
