"""Dashboard settings from environment variables (``*_FILE`` variants for secrets), read once."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pacs_backup.config import parse_bool, secret
from pacs_backup.errors import ConfigError


@dataclass(frozen=True)
class DashboardSettings:
    orthanc_url: str
    orthanc_username: str | None
    orthanc_password: str | None
    admin_username: str | None
    admin_password: str | None
    secret_key: str
    data_dir: Path
    cookie_secure: bool
    apprise_urls: tuple[str, ...]
    monitor_interval_s: float

    def __repr__(self) -> str:
        return f"DashboardSettings(orthanc_url={self.orthanc_url!r}, data_dir={str(self.data_dir)!r})"


def _secret_key(env: Mapping[str, str], data_dir: Path) -> str:
    """DASHBOARD_SECRET_KEY(_FILE), or a random key generated once and kept in the data directory."""
    value = secret(env, "DASHBOARD_SECRET_KEY", required=False)
    if value:
        return value
    path = data_dir / "secret_key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


def load_dashboard_settings(env: Mapping[str, str] | None = None) -> DashboardSettings:
    """Read and validate the dashboard's settings. Raises ConfigError naming the variable."""
    env = os.environ if env is None else env
    url = (env.get("ORTHANC_URL") or "").strip()
    if not url.startswith(("http://", "https://")):
        raise ConfigError("ORTHANC_URL is not set to an http(s) address of Orthanc (e.g. http://orthanc:8042).")
    data_dir = Path(env.get("DASHBOARD_DATA_DIR") or "dashboard-data")
    interval = env.get("DASHBOARD_MONITOR_SECONDS", "30")
    try:
        monitor = float(interval)
    except ValueError:
        raise ConfigError(f"DASHBOARD_MONITOR_SECONDS={interval!r} is not a number of seconds.") from None
    urls = tuple(u for u in (env.get("APPRISE_URLS") or "").replace(",", " ").split() if u)
    return DashboardSettings(
        orthanc_url=url.rstrip("/"),
        orthanc_username=(env.get("ORTHANC_USERNAME") or None),
        orthanc_password=secret(env, "ORTHANC_PASSWORD", required=False),
        admin_username=(env.get("DASHBOARD_USERNAME") or None),
        admin_password=secret(env, "DASHBOARD_PASSWORD", required=False),
        secret_key=_secret_key(env, data_dir),
        data_dir=data_dir,
        cookie_secure=parse_bool("DASHBOARD_COOKIE_SECURE", env.get("DASHBOARD_COOKIE_SECURE") or "true"),
        apprise_urls=urls,
        monitor_interval_s=max(1.0, monitor),
    )
