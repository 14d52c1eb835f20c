"""Configuration, read once at start from environment variables and validated.

Secrets may also come from ``<NAME>_FILE`` (a path whose content is the secret), the usual form with
Docker secrets. A bad value raises :class:`ConfigError` whose message names the variable.
Every variable is documented in ``.env.example``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from .errors import ConfigError

T = TypeVar("T")

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
        return (f"StoreSettings(endpoint={self.endpoint!r}, secure={self.secure}, bucket={self.bucket!r}, "
                f"prefix={self.prefix!r}, lock={self.lock_mode}/{self.lock_days}d)")


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


def _raw(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    return value.strip() if value is not None and value.strip() != "" else None


def secret(env: Mapping[str, str], name: str, required: bool = True) -> str | None:
    """Read secret ``name`` from the environment, or from the file named by ``<name>_FILE``.

    Raises:
        ConfigError: both or neither are set (when required), or the file cannot be read or is empty.
    """
    direct, path = _raw(env, name), _raw(env, name + "_FILE")
    if direct is not None and path is not None:
        raise ConfigError(f"{name} and {name}_FILE are both set; set only one of them.")
    if path is not None:
        try:
            value = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{name}_FILE={path} cannot be read ({exc.strerror}).") from None
        if not value:
            raise ConfigError(f"{name}_FILE={path} is empty; put the secret in that file.")
        return value
    if direct is None and required:
        raise ConfigError(f"{name} is not set; set it (or {name}_FILE) to the secret.")
    return direct


def parse_bool(name: str, value: str) -> bool:
    """Parse a yes/no value; raises ConfigError naming ``name`` otherwise."""
    low = value.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={value!r} is not a yes/no value; use true or false.")


def _number(name: str, value: str, cast: Callable[[str], T], low: float, high: float) -> T:
    try:
        number = cast(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a number; use a value from {low} to {high}.") from None
    if not low <= float(number) <= high:  # type: ignore[arg-type]
        raise ConfigError(f"{name}={value!r} is out of range; use a value from {low} to {high}.")
    return number


def parse_endpoint(env: Mapping[str, str]) -> tuple[str, bool]:
    """Return ``(host:port, secure)`` from MINIO_ENDPOINT (``host:port`` or an http(s) URL)."""
    raw = _raw(env, "MINIO_ENDPOINT")
    if raw is None:
        raise ConfigError("MINIO_ENDPOINT is not set; set it to the object store, e.g. 127.0.0.1:9000.")
    secure_raw = _raw(env, "MINIO_SECURE")
    if "://" in raw:
        parts = urlsplit(raw)
        if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
            raise ConfigError(f"MINIO_ENDPOINT={raw!r} is not a valid address; use host:port or http(s)://host:port.")
        secure = parts.scheme == "https"
        host = parts.netloc
    else:
        host = raw
        secure = False
    if secure_raw is not None:
        secure = parse_bool("MINIO_SECURE", secure_raw)
    if "/" in host or " " in host or host.startswith(":"):
        raise ConfigError(f"MINIO_ENDPOINT={raw!r} is not a valid address; use host:port or http(s)://host:port.")
    return host, secure


def load_store_settings(env: Mapping[str, str]) -> StoreSettings:
    """Read the object store settings. Raises ConfigError naming the bad variable."""
    endpoint, secure = parse_endpoint(env)
    bucket = _raw(env, "MINIO_BUCKET") or "pacs-backup"
    if not (3 <= len(bucket) <= 63) or not all(c.islower() or c.isdigit() or c in ".-" for c in bucket):
        raise ConfigError(f"MINIO_BUCKET={bucket!r} is not a valid bucket name; "
                          "use 3-63 lowercase letters, digits, '-' or '.'.")
    lock_mode = (_raw(env, "BACKUP_LOCK_MODE") or "GOVERNANCE").upper()
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
        region=_raw(env, "MINIO_REGION"),
        prefix=(_raw(env, "MINIO_PREFIX") or "").strip("/"),
        lock_mode=lock_mode,
        lock_days=_number("BACKUP_LOCK_DAYS", _raw(env, "BACKUP_LOCK_DAYS") or "30", int, 1, 36500),
    )


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
    enabled = parse_bool("BACKUP_ENABLED", _raw(env, "BACKUP_ENABLED") or "true")
    base = _number("BACKUP_RETRY_BASE_SECONDS", _raw(env, "BACKUP_RETRY_BASE_SECONDS") or "1", float, 0.01, 3600)
    cap = _number("BACKUP_RETRY_CAP_SECONDS", _raw(env, "BACKUP_RETRY_CAP_SECONDS") or "300", float, 0.1, 86400)
    if cap < base:
        raise ConfigError("BACKUP_RETRY_CAP_SECONDS is smaller than BACKUP_RETRY_BASE_SECONDS; raise the cap.")
    return Settings(
        enabled=enabled,
        store=load_store_settings(env),
        outbox_path=Path(_raw(env, "BACKUP_OUTBOX_PATH") or default_outbox),
        workers=_number("BACKUP_WORKERS", _raw(env, "BACKUP_WORKERS") or "4", int, 1, 64),
        retry_base_s=base,
        retry_cap_s=cap,
        reconcile_hours=_number("BACKUP_RECONCILE_HOURS", _raw(env, "BACKUP_RECONCILE_HOURS") or "24", float, 0, 8760),
    )
