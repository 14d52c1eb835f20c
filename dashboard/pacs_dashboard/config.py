"""Dashboard settings from environment variables (``*_FILE`` variants for secrets), read once."""

from __future__ import annotations

import os
import secrets
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pacs_backup.contracts.errors import ConfigError
from pacs_backup.settings.env_values import number, parse_bool, secret

from .clinic import ClinicSettings, load_clinic_settings
from .group.settings import GroupServiceSettings, load_group_settings
from .heartbeat import HeartbeatSettings, load_heartbeat_settings
from .mailer import SmtpSettings, check_address, is_plain_address, load_smtp_settings
from .shares import ShareSettings, load_share_settings


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
    session_hours: float = 12.0
    idle_minutes: float = 60.0
    webhook_hosts: tuple[str, ...] = ()
    # How many reverse proxies (Compose's HTTPS front) stand before the dashboard: their forwarded
    # client address and scheme are believed, so throttling counts per real address. 0: none.
    trusted_proxies: int = 0
    # The clinic's time zone and the optional read-only bucket access (see clinic.py).
    clinic: ClinicSettings = field(default_factory=ClinicSettings)
    # Whom staff call (the staff guide prints it): the technician's name, phone and e-mail, as written.
    technician_contact: str = ""
    # The clinic's mail server for plain e-mail alerts (None: not set up), and the dead-man's switch.
    smtp: SmtpSettings | None = None
    heartbeat: HeartbeatSettings = field(default_factory=HeartbeatSettings)
    # Recent instances kept in memory for the DICOMweb service of copies (a viewer asks for one image often).
    view_memory_mb: float = 256.0
    # Share links: their default and longest lifetime (shares.py).
    shares: ShareSettings = field(default_factory=ShareSettings)
    # DASHBOARD_MODE: "clinic" (one clinic's appliance) or "group" (the group service: group/, docs/groups.md).
    mode: Literal["clinic", "group"] = "clinic"
    group: GroupServiceSettings | None = None  # the group service's catalog and store, in group mode

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
    mode = _mode(env)
    url = (env.get("ORTHANC_URL") or "").strip()
    if mode == "group" and not url:
        url = "http://127.0.0.1:8042"  # the group service has no PACS of its own; its pages read the catalog
    if not url.startswith(("http://", "https://")):
        raise ConfigError("ORTHANC_URL is not set to an http(s) address of Orthanc (e.g. http://orthanc:8042).")
    try:
        urllib.parse.urlsplit(url).port  # noqa: B018 - raises ValueError for a bad port number
    except ValueError:
        raise ConfigError(f"ORTHANC_URL has no valid port number: {url!r} (e.g. http://orthanc:8042).") from None
    data_dir = Path(env.get("DASHBOARD_DATA_DIR") or "dashboard-data")
    interval = env.get("DASHBOARD_MONITOR_SECONDS", "30")
    try:
        monitor = float(interval)
    except ValueError:
        raise ConfigError(f"DASHBOARD_MONITOR_SECONDS={interval!r} is not a number of seconds.") from None
    urls = tuple(u for u in (env.get("APPRISE_URLS") or "").replace(",", " ").split() if u)
    # Webhook alerts (json://) may only go to these hosts, so the dashboard cannot be made to send
    # requests to arbitrary machines on the clinic's network.
    hooks = tuple(h.lower() for h in (env.get("DASHBOARD_WEBHOOK_HOSTS") or "").replace(",", " ").split() if h)
    smtp = load_smtp_settings(env)
    for u in urls:  # a plain address needs the mail server; say so at start, not at the first alert
        if is_plain_address(u) and (check_address(u) or smtp is None):
            raise ConfigError(
                f"APPRISE_URLS holds {u!r}: "
                + (check_address(u) or "a plain e-mail address needs DASHBOARD_SMTP_HOST (the mail server).")
            )
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
        # A stolen cookie stops working after this many hours, whatever happens.
        session_hours=number(env, "DASHBOARD_SESSION_HOURS", 12.0, 0.05, 24 * 30),
        # ...and after this many minutes without a request (0 = no idle limit).
        idle_minutes=number(env, "DASHBOARD_IDLE_MINUTES", 60.0, 0, 7 * 24 * 60),
        webhook_hosts=hooks,
        trusted_proxies=int(number(env, "DASHBOARD_TRUSTED_PROXIES", 0, 0, 5)),
        clinic=load_clinic_settings(env),
        technician_contact=" ".join((env.get("DASHBOARD_TECHNICIAN_CONTACT") or "").split())[:300],
        smtp=smtp,
        heartbeat=load_heartbeat_settings(env),
        shares=load_share_settings(env),
        mode=mode,
        group=load_group_settings(env) if mode == "group" else None,
    )


def _mode(env: Mapping[str, str]) -> Literal["clinic", "group"]:
    value = (env.get("DASHBOARD_MODE") or "clinic").strip().lower()
    if value == "clinic":
        return "clinic"
    if value == "group":
        return "group"
    raise ConfigError(f"DASHBOARD_MODE={value[:20]!r} is not a mode; use clinic (the default) or group.")
