"""The plugin's least-privilege object-store account, made the way `make run` and Compose make it.

Most integration tests hand the plugin the session MinIO's root keys (simplest, and they test other
things); tests of what the plugin's keys may and may not do use this helper instead.
"""

from __future__ import annotations

from typing import Protocol

from devstack import new_secret
from pacs_backup.store_setup import SetupReport, SetupSettings, provision


class RootedStore(Protocol):
    """What the helper needs from tests/conftest.py's MinioServer (its keys are the root account)."""

    endpoint: str
    access_key: str
    secret_key: str


def setup_settings(
    server: RootedStore,
    bucket: str,
    lock_mode: str = "GOVERNANCE",
    lock_days: int = 1,
    plugin_key: str | None = None,
    plugin_secret: str | None = None,
) -> SetupSettings:
    """Set-up settings for ``bucket`` on the fixture's MinIO, with a new plugin account unless given."""
    return SetupSettings(
        endpoint=server.endpoint,
        secure=False,
        region=None,
        root_user=server.access_key,
        root_password=server.secret_key,
        bucket=bucket,
        lock_mode=lock_mode,
        lock_days=lock_days,
        plugin_access_key=plugin_key or "plugin-" + new_secret(6).lower().replace("_", "-"),
        plugin_secret_key=plugin_secret or new_secret(),
    )


def plugin_env(settings: SetupSettings) -> dict[str, str]:
    """The plugin's MINIO_* / BACKUP_LOCK_* variables for an account made from ``settings``."""
    return {
        "MINIO_ENDPOINT": settings.endpoint,
        "MINIO_ACCESS_KEY": settings.plugin_access_key,
        "MINIO_SECRET_KEY": settings.plugin_secret_key,
        "MINIO_BUCKET": settings.bucket,
        "BACKUP_LOCK_MODE": settings.lock_mode,
        "BACKUP_LOCK_DAYS": str(settings.lock_days),
    }


def plugin_account(
    server: RootedStore, bucket: str, lock_mode: str = "GOVERNANCE", lock_days: int = 1
) -> tuple[dict[str, str], SetupReport]:
    """Create ``bucket`` and a plugin account for it with the root keys; return the plugin's env and the report."""
    settings = setup_settings(server, bucket, lock_mode, lock_days)
    return plugin_env(settings), provision(settings, wait_s=30)
