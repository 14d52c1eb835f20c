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


def parse_endpoint(env: Mapping[str, str]) -> tuple[str, bool]:
    """Return ``(host:port, secure)`` from MINIO_ENDPOINT (``host:port`` or an http(s) URL)."""
    endpoint = raw(env, "MINIO_ENDPOINT")
    if endpoint is None:
        raise ConfigError("MINIO_ENDPOINT is not set; set it to the object store, e.g. 127.0.0.1:9000.")
    secure_raw = raw(env, "MINIO_SECURE")
    if "://" in endpoint:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
            raise ConfigError(
                f"MINIO_ENDPOINT={endpoint!r} is not a valid address; use host:port or http(s)://host:port."
            )
        secure = parts.scheme == "https"
        host = parts.netloc
    else:
        host = endpoint
        secure = False
    if secure_raw is not None:
        secure = parse_bool("MINIO_SECURE", secure_raw)
    if "/" in host or " " in host or host.startswith(":"):
        raise ConfigError(f"MINIO_ENDPOINT={endpoint!r} is not a valid address; use host:port or http(s)://host:port.")
    return host, secure


def load_store_settings(env: Mapping[str, str]) -> StoreSettings:
    """Read the object store settings. Raises ConfigError naming the bad variable."""
    endpoint, secure = parse_endpoint(env)
    bucket = raw(env, "MINIO_BUCKET") or "pacs-backup"
    if not (3 <= len(bucket) <= 63) or not all(c.islower() or c.isdigit() or c in ".-" for c in bucket):
        raise ConfigError(
            f"MINIO_BUCKET={bucket!r} is not a valid bucket name; use 3-63 lowercase letters, digits, '-' or '.'."
        )
    lock_mode = (raw(env, "BACKUP_LOCK_MODE") or "GOVERNANCE").upper()
    if lock_mode not in LOCK_MODES:
        raise ConfigError(f"BACKUP_LOCK_MODE={lock_mode!r} is not valid; use one of {', '.join(LOCK_MODES)}.")
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
