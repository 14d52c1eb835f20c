"""The object store's settings: its address, the plugin's keys, the bucket and its object lock.

Nothing here assumes the store is local (see :mod:`pacs_backup.clients.object_store`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from pacs_backup.contracts.errors import ConfigError

from .env_values import parse_bool, parse_number, raw, secret

LOCK_MODES = ("GOVERNANCE", "COMPLIANCE", "OFF")


@dataclass(frozen=True)
class StoreSettings:
    """Where the per-instance copies go (any S3 endpoint)."""

    endpoint: str  # host:port, no scheme
    secure: bool
    access_key: str
    secret_key: str
    bucket: str
    region: str | None
    prefix: str
    lock_mode: str  # GOVERNANCE, COMPLIANCE or OFF
    lock_days: int

    def __repr__(self) -> str:  # never print secrets, even in a debugger or a log of the object
        return (
            f"StoreSettings(endpoint={self.endpoint!r}, secure={self.secure}, bucket={self.bucket!r}, "
            f"prefix={self.prefix!r}, lock={self.lock_mode}/{self.lock_days}d)"
        )


def parse_endpoint(
    env: Mapping[str, str], name: str = "MINIO_ENDPOINT", secure_name: str = "MINIO_SECURE"
) -> tuple[str, bool]:
    """Return ``(host:port, secure)`` from ``name`` (``host:port`` or an http(s) URL) and ``secure_name``."""
    endpoint = raw(env, name)
    if endpoint is None:
        raise ConfigError(f"{name} is not set; set it to the object store, e.g. 127.0.0.1:9000.")
    secure_raw = raw(env, secure_name)
    if "://" in endpoint:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
            raise ConfigError(f"{name}={endpoint!r} is not a valid address; use host:port or http(s)://host:port.")
        secure = parts.scheme == "https"
        host = parts.netloc
    else:
        host = endpoint
        secure = False
    if secure_raw is not None:
        secure = parse_bool(secure_name, secure_raw)
    if "/" in host or " " in host or host.startswith(":"):
        raise ConfigError(f"{name}={endpoint!r} is not a valid address; use host:port or http(s)://host:port.")
    return host, secure


def parse_bucket(name: str, bucket: str) -> str:
    """A bucket name (3-63 lowercase letters, digits, '-' or '.'); ConfigError naming ``name`` otherwise."""
    if not (3 <= len(bucket) <= 63) or not all(c.islower() or c.isdigit() or c in ".-" for c in bucket):
        raise ConfigError(
            f"{name}={bucket!r} is not a valid bucket name; use 3-63 lowercase letters, digits, '-' or '.'."
        )
    return bucket


def parse_lock_mode(name: str, value: str) -> str:
    """GOVERNANCE, COMPLIANCE or OFF (any case); ConfigError naming ``name`` otherwise."""
    lock_mode = value.upper()
    if lock_mode not in LOCK_MODES:
        raise ConfigError(f"{name}={lock_mode!r} is not valid; use one of {', '.join(LOCK_MODES)}.")
    return lock_mode


def load_store_settings(env: Mapping[str, str]) -> StoreSettings:
    """Read the object store settings. Raises ConfigError naming the bad variable."""
    endpoint, secure = parse_endpoint(env)
    bucket = parse_bucket("MINIO_BUCKET", raw(env, "MINIO_BUCKET") or "pacs-backup")
    lock_mode = parse_lock_mode("BACKUP_LOCK_MODE", raw(env, "BACKUP_LOCK_MODE") or "GOVERNANCE")
    access, secret_key = secret(env, "MINIO_ACCESS_KEY"), secret(env, "MINIO_SECRET_KEY")
    assert access is not None and secret_key is not None  # noqa: S101 - required=True guarantees it
    return StoreSettings(
        endpoint=endpoint,
        secure=secure,
        access_key=access,
        secret_key=secret_key,
        bucket=bucket,
        region=raw(env, "MINIO_REGION"),
        prefix=(raw(env, "MINIO_PREFIX") or "").strip("/"),
        lock_mode=lock_mode,
        lock_days=parse_number("BACKUP_LOCK_DAYS", raw(env, "BACKUP_LOCK_DAYS") or "30", int, 1, 36500),
    )
