"""Configuration, read once at start from environment variables and validated.

Secrets may also come from ``<NAME>_FILE`` (a path whose content is the secret), the usual form with
Docker secrets. A bad value raises :class:`ConfigError` whose message names the variable.
Every variable is documented in ``.env.example``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit

from pacs_backup.contracts.errors import ConfigError

from .limits import Limits, load_limits

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
        return (
            f"StoreSettings(endpoint={self.endpoint!r}, secure={self.secure}, bucket={self.bucket!r}, "
            f"prefix={self.prefix!r}, lock={self.lock_mode}/{self.lock_days}d)"
        )


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

    def __repr__(self) -> str:
        return f"TargetSettings(name={self.name!r}, repository={self.repository!r})"


_KEEP_KINDS = ("last", "hourly", "daily", "weekly", "monthly", "yearly", "within")


def _parse_keep(name: str, raw: str) -> dict[str, str]:
    keep: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        kind, _, value = part.partition("=")
        if kind not in _KEEP_KINDS or not value:
            raise ConfigError(
                f"{name}={raw!r} is not a retention policy; use e.g. daily=14,weekly=8,monthly=24 "
                f"(kinds: {', '.join(_KEEP_KINDS)})."
            )
        keep[kind] = value
    if not keep:
        raise ConfigError(f"{name} is empty; give at least one kind, e.g. daily=14.")
    return keep


def load_target(env: Mapping[str, str], name: str, prefix: str) -> TargetSettings | None:
    """Read one target from ``<prefix>REPOSITORY`` etc. Returns None when its repository is unset."""
    repo = _raw(env, prefix + "REPOSITORY")
    if repo is None:
        return None
    password_file = _raw(env, prefix + "PASSWORD_FILE")
    direct = _raw(env, prefix + "PASSWORD")
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
        * _number(
            prefix + "SNAPSHOT_INTERVAL_MINUTES",
            _raw(env, prefix + "SNAPSHOT_INTERVAL_MINUTES") or "60",
            float,
            1,
            10080,
        ),
        drill_interval_s=3600
        * _number(
            prefix + "DRILL_INTERVAL_HOURS", _raw(env, prefix + "DRILL_INTERVAL_HOURS") or "24", float, 0.01, 720
        ),
        check_cycle=_number(prefix + "CHECK_CYCLE", _raw(env, prefix + "CHECK_CYCLE") or "30", int, 1, 1000),
        forget=parse_bool(prefix + "FORGET", _raw(env, prefix + "FORGET") or "false"),
        keep=_parse_keep(prefix + "KEEP", _raw(env, prefix + "KEEP") or "within=7d,daily=14,weekly=8,monthly=24"),
        retry_lock=_duration(prefix + "RETRY_LOCK", _raw(env, prefix + "RETRY_LOCK") or "2m"),
        # A plain path is an external drive unless the installer says it is a disk the box always has.
        drive=repo.startswith("/") and parse_bool(prefix + "DRIVE", _raw(env, prefix + "DRIVE") or "true"),
        drive_amber_days=_number(
            prefix + "DRIVE_AMBER_DAYS", _raw(env, prefix + "DRIVE_AMBER_DAYS") or "7", float, 0.01, 365
        ),
        drive_red_days=_number(
            prefix + "DRIVE_RED_DAYS", _raw(env, prefix + "DRIVE_RED_DAYS") or "14", float, 0.01, 365
        ),
        quota_gb=_optional_number(env, prefix + "QUOTA_GB"),
        quota_warn_months=_number(
            prefix + "QUOTA_WARN_MONTHS", _raw(env, prefix + "QUOTA_WARN_MONTHS") or "3", float, 0.1, 120
        ),
    )


def _optional_number(env: Mapping[str, str], name: str) -> float | None:
    raw = _raw(env, name)
    return None if raw is None else _number(name, raw, float, 0.001, 10_000_000)


def _duration(name: str, raw: str) -> str:
    if not (raw[:-1].isdigit() and raw[-1] in "smh"):
        raise ConfigError(f"{name}={raw!r} is not a duration; use e.g. 30s, 2m or 1h.")
    return raw


def load_targets(env: Mapping[str, str]) -> list[TargetSettings]:
    """The snapshot targets: ``offsite`` from RESTIC_*, plus each name in BACKUP_EXTRA_TARGETS from
    ``<NAME>_RESTIC_*`` (e.g. ``usb`` -> USB_RESTIC_REPOSITORY)."""
    targets = []
    main = load_target(env, "offsite", "RESTIC_")
    if main:
        targets.append(main)
    for name in filter(None, (n.strip().lower() for n in (_raw(env, "BACKUP_EXTRA_TARGETS") or "").split(","))):
        if not name.replace("-", "").replace("_", "").isalnum() or name in ("offsite", "minio"):
            raise ConfigError(f"BACKUP_EXTRA_TARGETS has an invalid name {name!r}; use letters and digits.")
        prefix = name.upper().replace("-", "_") + "_RESTIC_"
        target = load_target(env, name, prefix)
        if target is None:
            raise ConfigError(f"{prefix}REPOSITORY is not set, but BACKUP_EXTRA_TARGETS names {name!r}.")
        targets.append(target)
    return targets


@dataclass(frozen=True)
class DicomPeerSettings:
    """A cloud PACS reached by DICOM (DIMSE): C-STORE to send, C-FIND to verify, C-MOVE to restore."""

    aet: str  # the remote's AE title
    host: str
    port: int
    local_aet: str | None = None  # the AE title this appliance calls with (None: Orthanc's own DicomAet)

    @property
    def shown(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.aet}@{host}:{self.port}"


@dataclass(frozen=True)
class CloudPacsSettings:
    """A remote PACS that receives a copy of every instance: by DICOMweb (``url``) or by DICOM (``dicom``)."""

    url: str | None
    username: str | None
    password: str | None
    dicom: DicomPeerSettings | None = None

    def __repr__(self) -> str:
        return f"CloudPacsSettings(url={self.url!r}, dicom={self.dicom!r})"


def parse_aet(name: str, raw: str) -> str:
    """An AE title: 1-16 printable ASCII characters, no backslash; ConfigError naming ``name`` otherwise."""
    aet = raw.strip()
    if not 1 <= len(aet) <= 16 or not all(" " <= c <= "~" and c != "\\" for c in aet):
        raise ConfigError(f"{name}={raw!r} is not an AE title; use 1-16 letters, digits or _-. (e.g. CLOUDPACS).")
    return aet


def parse_dicom_peer(name: str, raw: str) -> tuple[str, str, int]:
    """``AET@host:port`` (an IPv6 address in brackets: ``AET@[fd00::1]:104``) -> (aet, host, port)."""
    usage = f"{name}={raw!r} is not a DICOM peer; use AET@host:port, e.g. CLOUDPACS@pacs.example.net:104."
    aet, at, address = raw.strip().rpartition("@")
    if not at:
        raise ConfigError(usage)
    if address.startswith("["):
        host, bracket, rest = address[1:].partition("]")
        if not bracket or not rest.startswith(":"):
            raise ConfigError(usage)
        port_text = rest[1:]
    else:
        host, colon, port_text = address.rpartition(":")
        if not colon or ":" in host:
            raise ConfigError(usage)
    if not host or any(c.isspace() or c in "/@[]" for c in host):
        raise ConfigError(usage)
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ConfigError(f"{name}={raw!r} has no valid port; use a number from 1 to 65535 after the host.")
    return parse_aet(name, aet), host, int(port_text)


def load_cloud_pacs(env: Mapping[str, str]) -> CloudPacsSettings | None:
    """Either CLOUD_PACS_URL (its DICOMweb root) with CLOUD_PACS_USERNAME, CLOUD_PACS_PASSWORD (or _FILE),
    or CLOUD_PACS_DICOM (``AET@host:port``) with CLOUD_PACS_DICOM_LOCAL_AET (optional). Not both."""
    url, dicom = _raw(env, "CLOUD_PACS_URL"), _raw(env, "CLOUD_PACS_DICOM")
    local_aet = _raw(env, "CLOUD_PACS_DICOM_LOCAL_AET")
    if url is not None and dicom is not None:
        raise ConfigError(
            "CLOUD_PACS_URL and CLOUD_PACS_DICOM are both set; set only one: the cloud PACS's DICOMweb root "
            "or its DICOM address (AET@host:port)."
        )
    if dicom is not None:
        for other in ("CLOUD_PACS_USERNAME", "CLOUD_PACS_PASSWORD"):
            if _raw(env, other) is not None or _raw(env, other + "_FILE") is not None:
                raise ConfigError(f"{other} is set, but DICOM (CLOUD_PACS_DICOM) has no password; leave it empty.")
        aet, host, port = parse_dicom_peer("CLOUD_PACS_DICOM", dicom)
        return CloudPacsSettings(
            url=None,
            username=None,
            password=None,
            dicom=DicomPeerSettings(
                aet, host, port, None if local_aet is None else parse_aet("CLOUD_PACS_DICOM_LOCAL_AET", local_aet)
            ),
        )
    if local_aet is not None:
        raise ConfigError("CLOUD_PACS_DICOM_LOCAL_AET is set, but CLOUD_PACS_DICOM is not; set both or neither.")
    if url is None:
        return None
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"CLOUD_PACS_URL={url!r} must start with https:// (its DICOMweb root).")
    user = _raw(env, "CLOUD_PACS_USERNAME")
    return CloudPacsSettings(
        url=url, username=user, password=secret(env, "CLOUD_PACS_PASSWORD", required=user is not None)
    )


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
    targets: tuple[TargetSettings, ...] = ()
    drill_sample: int = 20
    minio_drill_hours: float = 24.0
    first_run_delay_s: float = 60.0
    limits: Limits = field(default_factory=Limits)  # on incoming files and previews (limits.py)
    store_quota_gb: float | None = None  # the object store's space for this site, when limited
    cloud_pacs: CloudPacsSettings | None = None


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
        raise ConfigError(
            f"MINIO_BUCKET={bucket!r} is not a valid bucket name; use 3-63 lowercase letters, digits, '-' or '.'."
        )
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
        reconcile_hours=_number("BACKUP_RECONCILE_HOURS", _raw(env, "BACKUP_RECONCILE_HOURS") or "168", float, 0, 8760),
        targets=tuple(load_targets(env)),
        drill_sample=_number("BACKUP_DRILL_SAMPLE", _raw(env, "BACKUP_DRILL_SAMPLE") or "20", int, 1, 100000),
        minio_drill_hours=_number(
            "BACKUP_DRILL_INTERVAL_HOURS", _raw(env, "BACKUP_DRILL_INTERVAL_HOURS") or "24", float, 0.01, 720
        ),
        first_run_delay_s=_number(
            "BACKUP_FIRST_RUN_DELAY_SECONDS", _raw(env, "BACKUP_FIRST_RUN_DELAY_SECONDS") or "60", float, 0, 86400
        ),
        store_quota_gb=_optional_number(env, "MINIO_QUOTA_GB"),
        cloud_pacs=load_cloud_pacs(env),
        limits=load_limits(env),
    )
