"""The snapshot targets: one restic repository each (offsite server, cloud storage, external drives).

``offsite`` is read from ``RESTIC_*``, every other target from ``<NAME>_RESTIC_*``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pacs_backup.contracts.errors import ConfigError

from .bandwidth import UNLIMITED, BandwidthSchedule, parse_schedule
from .env_values import optional_number, parse_bool, parse_duration, parse_number, raw, secret


@dataclass(frozen=True)
class TargetSettings:
    """One restic repository that receives snapshots (offsite server, S3, SFTP, USB drive...)."""

    name: str
    repository: str
    password: str | None
    password_file: Path | None
    env: dict[str, str]  # backend credentials passed to restic (AWS_*, RESTIC_REST_*)
    snapshot_interval_s: float
    drill_interval_s: float
    check_cycle: int  # restic check reads 1/check_cycle of the data per drill
    forget: bool
    keep: dict[str, str]
    retry_lock: str = "2m"  # how long restic waits for another process's lock before failing
    drive: bool = False  # an external drive: used only when plugged in and prepared (see drives.py)
    drive_amber_days: float = 7.0  # no snapshot on any of its drives for this long: amber
    drive_red_days: float = 14.0
    quota_gb: float | None = None  # the space the clinic pays for or has (a cloud plan, a drive)
    quota_warn_months: float = 3.0  # amber when it will be full within this many months
    upload: BandwidthSchedule = UNLIMITED  # when it may upload, how fast (settings/bandwidth.py)

    def __repr__(self) -> str:
        return f"TargetSettings(name={self.name!r}, repository={self.repository!r})"


_KEEP_KINDS = ("last", "hourly", "daily", "weekly", "monthly", "yearly", "within")


def _parse_keep(name: str, value: str) -> dict[str, str]:
    keep: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in value.split(","))):
        kind, _, count = part.partition("=")
        if kind not in _KEEP_KINDS or not count:
            raise ConfigError(
                f"{name}={value!r} is not a retention policy; use e.g. daily=14,weekly=8,monthly=24 "
                f"(kinds: {', '.join(_KEEP_KINDS)})."
            )
        keep[kind] = count
    if not keep:
        raise ConfigError(f"{name} is empty; give at least one kind, e.g. daily=14.")
    return keep


def load_target(env: Mapping[str, str], name: str, prefix: str) -> TargetSettings | None:
    """Read one target from ``<prefix>REPOSITORY`` etc. Returns None when its repository is unset."""
    repo = raw(env, prefix + "REPOSITORY")
    if repo is None:
        return None
    password_file = raw(env, prefix + "PASSWORD_FILE")
    direct = raw(env, prefix + "PASSWORD")
    if password_file and direct:
        raise ConfigError(f"{prefix}PASSWORD and {prefix}PASSWORD_FILE are both set; set only one of them.")
    if not password_file and not direct:
        raise ConfigError(f"{prefix}PASSWORD_FILE is not set; the {name} repository needs its password.")
    if password_file and not Path(password_file).is_file():
        raise ConfigError(f"{prefix}PASSWORD_FILE={password_file} does not exist.")
    backend: dict[str, str] = {}
    for var in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_DEFAULT_REGION",
        "REST_USERNAME",
        "REST_PASSWORD",
        "RCLONE_CONFIG",
    ):
        value = secret(env, prefix + var, required=False)
        if value is not None:
            # RCLONE_CONFIG: the rclone configuration file of a cloud-storage target (rclone:remote:path)
            backend["RESTIC_" + var if var.startswith("REST_") else var] = value
    return TargetSettings(
        name=name,
        repository=repo,
        password=direct,
        password_file=Path(password_file) if password_file else None,
        env=backend,
        snapshot_interval_s=60
        * parse_number(
            prefix + "SNAPSHOT_INTERVAL_MINUTES",
            raw(env, prefix + "SNAPSHOT_INTERVAL_MINUTES") or "60",
            float,
            1,
            10080,
        ),
        drill_interval_s=3600
        * parse_number(
            prefix + "DRILL_INTERVAL_HOURS", raw(env, prefix + "DRILL_INTERVAL_HOURS") or "24", float, 0.01, 720
        ),
        check_cycle=parse_number(prefix + "CHECK_CYCLE", raw(env, prefix + "CHECK_CYCLE") or "30", int, 1, 1000),
        forget=parse_bool(prefix + "FORGET", raw(env, prefix + "FORGET") or "false"),
        keep=_parse_keep(prefix + "KEEP", raw(env, prefix + "KEEP") or "within=7d,daily=14,weekly=8,monthly=24"),
        retry_lock=parse_duration(prefix + "RETRY_LOCK", raw(env, prefix + "RETRY_LOCK") or "2m"),
        # A plain path is an external drive unless the installer says it is a disk the box always has.
        drive=repo.startswith("/") and parse_bool(prefix + "DRIVE", raw(env, prefix + "DRIVE") or "true"),
        drive_amber_days=parse_number(
            prefix + "DRIVE_AMBER_DAYS", raw(env, prefix + "DRIVE_AMBER_DAYS") or "7", float, 0.01, 365
        ),
        drive_red_days=parse_number(
            prefix + "DRIVE_RED_DAYS", raw(env, prefix + "DRIVE_RED_DAYS") or "14", float, 0.01, 365
        ),
        quota_gb=optional_number(env, prefix + "QUOTA_GB"),
        quota_warn_months=parse_number(
            prefix + "QUOTA_WARN_MONTHS", raw(env, prefix + "QUOTA_WARN_MONTHS") or "3", float, 0.1, 120
        ),
        upload=parse_schedule(prefix + "UPLOAD_LIMIT", raw(env, prefix + "UPLOAD_LIMIT")),
    )


def load_targets(env: Mapping[str, str]) -> list[TargetSettings]:
    """The snapshot targets: ``offsite`` from RESTIC_*, plus each name in BACKUP_EXTRA_TARGETS from
    ``<NAME>_RESTIC_*`` (e.g. ``usb`` -> USB_RESTIC_REPOSITORY)."""
    targets = []
    main = load_target(env, "offsite", "RESTIC_")
    if main:
        targets.append(main)
    for name in filter(None, (n.strip().lower() for n in (raw(env, "BACKUP_EXTRA_TARGETS") or "").split(","))):
        if not name.replace("-", "").replace("_", "").isalnum() or name in ("offsite", "minio"):
            raise ConfigError(f"BACKUP_EXTRA_TARGETS has an invalid name {name!r}; use letters and digits.")
        prefix = name.upper().replace("-", "_") + "_RESTIC_"
        target = load_target(env, name, prefix)
        if target is None:
            raise ConfigError(f"{prefix}REPOSITORY is not set, but BACKUP_EXTRA_TARGETS names {name!r}.")
        targets.append(target)
    return targets
