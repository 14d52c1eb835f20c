"""The plugin's least-privilege object-store account, made the way `make run` and Compose make it.

Most integration tests hand the plugin the session MinIO's root keys (simplest, and they test other
things); tests of what the plugin's keys may and may not do use this helper instead.
"""

from __future__ import annotations

import dataclasses
import sqlite3
from typing import Any, Protocol

from devstack import new_secret
from pacs_backup.cli.store_setup import SetupReport, SetupSettings, provision


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


def reader_store(minio_server, bucket, tz: str = "Europe/Berlin") -> tuple[dict[str, str], dict[str, str]]:
    """The bucket set up as `make run` / Compose do, with the plugin's account and the dashboard's read-only
    one; returns the plugin's MINIO_* and the dashboard's DASHBOARD_* variables."""
    settings = dataclasses.replace(
        setup_settings(minio_server, bucket),
        reader_access_key="reader-" + new_secret(6).lower().replace("_", "-"),
        reader_secret_key=new_secret(),
    )
    assert provision(settings, wait_s=30).reader == settings.reader_access_key
    return plugin_env(settings), {
        "DASHBOARD_TZ": tz,
        "DASHBOARD_MINIO_ENDPOINT": settings.endpoint,
        "DASHBOARD_MINIO_BUCKET": bucket,
        "DASHBOARD_MINIO_ACCESS_KEY": settings.reader_access_key or "",
        "DASHBOARD_MINIO_SECRET_KEY": settings.reader_secret_key or "",
    }


def mirrored(dashboard: Any) -> int:
    """How many studies the dashboard's own mirror of the catalog holds (0 before its first copy)."""
    path = dashboard.work / "mirror.sqlite"
    if not path.exists():
        return 0
    with sqlite3.connect(path) as con:
        try:
            return int(con.execute("SELECT COUNT(*) FROM studies").fetchone()[0])
        except sqlite3.OperationalError:
            return 0
