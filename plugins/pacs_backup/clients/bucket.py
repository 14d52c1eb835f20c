"""The bucket's protection: versioning, object lock and default retention, checked and reported at start.

With keys that may (the store's root account, as in tests or a hand-made set-up) a missing bucket is
created and its protection set as configured. The plugin's own account may not do either, by design (see
store_setup.py): then a difference from BACKUP_LOCK_MODE / BACKUP_LOCK_DAYS is only reported, for the
set-up step to fix with the root account.

When the settings ask for locked copies (BACKUP_LOCK_MODE is not OFF) and the bucket is known to lack
versioning or object lock, :func:`prepare_bucket` refuses (:class:`BucketNotImmutable`): the plugin does
not start copying into a bucket where anyone holding the keys could erase the copies.
"""

from __future__ import annotations

from dataclasses import dataclass

from minio import Minio
from minio.commonconfig import ENABLED
from minio.error import S3Error
from minio.objectlockconfig import DAYS, YEARS, ObjectLockConfig
from minio.versioningconfig import VersioningConfig

from pacs_backup.contracts.errors import StoreError
from pacs_backup.settings.store import StoreSettings

from .store_errors import CLIENT_ERRORS, store_error

# What a store answers when a bucket has no object lock configuration (or cannot have one).
NO_LOCK_CODES = ("ObjectLockConfigurationNotFoundError", "InvalidRequest", "NotImplemented")


class BucketNotImmutable(StoreError):
    """The settings ask for locked copies but the bucket cannot keep them (no versioning or no object lock)."""


@dataclass(frozen=True)
class BucketReport:
    """Protection features of the bucket, with warnings a technician should read."""

    created: bool
    versioning: bool
    object_lock: bool
    warnings: tuple[str, ...]


def lock_config(client: Minio, bucket: str) -> ObjectLockConfig:
    """The bucket's object lock configuration (mode and duration None: no default retention).

    Some servers (Versity S3 Gateway) answer an empty ``<Rule/>`` for a bucket with object lock and no
    default retention, which the client cannot parse: that is read as no default retention.
    Raises the client's exceptions (S3Error with a code of NO_LOCK_CODES: no object lock) for the caller.
    """
    try:
        return client.get_object_lock_config(bucket)
    except ValueError:
        return ObjectLockConfig(None, None, None)


def default_retention(client: Minio, bucket: str) -> tuple[str, int] | None:
    """The bucket's default retention as (mode, days), or None when it has none (or no object lock).

    Raises the client's exceptions (S3Error...) for the caller to translate.
    """
    try:
        config = lock_config(client, bucket)
    except S3Error as exc:
        if exc.code in NO_LOCK_CODES:
            return None
        raise
    if config.mode is None or config.duration is None:
        return None
    days = int(config.duration) * (365 if config.duration_unit == YEARS else 1)
    return str(config.mode), days


def prepare_bucket(client: Minio, settings: StoreSettings) -> BucketReport:
    """Check the bucket's protection (creating the bucket where these keys may) and report it.

    Raises:
        StoreUnavailable / StoreError: the store cannot be reached, refuses our keys, or the bucket
        does not exist and these keys may not create it (the caller retries).
    """
    s, bucket = settings, settings.bucket
    warnings: list[str] = []
    created = False
    try:
        if not client.bucket_exists(bucket):
            try:
                client.make_bucket(bucket, location=s.region, object_lock=s.lock_mode != "OFF")
            except S3Error as exc:
                if exc.code != "AccessDenied":
                    raise
                raise StoreError(
                    f"Bucket {bucket} does not exist and the plugin's account may not create it (by "
                    "design); create it with the object store's root account: `make run`, the Compose "
                    "stack's store-setup service or scripts/store-setup."
                ) from None
            created = True
        readable_versioning = _versioning(client, bucket, warnings)
        versioning = bool(readable_versioning)
        readable_lock = _object_lock_enabled(client, bucket, warnings)
        lock = bool(readable_lock)
        if s.lock_mode != "OFF":
            _refuse_unprotected(s, readable_versioning, readable_lock)
            if lock:
                _check_retention(client, s, warnings)
    except CLIENT_ERRORS as exc:
        raise store_error(exc, f"prepare bucket {bucket}") from exc
    return BucketReport(created=created, versioning=versioning, object_lock=lock, warnings=tuple(warnings))


def _refuse_unprotected(s: StoreSettings, versioning: bool | None, lock: bool | None) -> None:
    """Raise :class:`BucketNotImmutable` when the bucket is known to lack object lock or versioning.

    ``None``: these keys may not read that setting (a warning says so); not a reason to refuse.
    """
    asked = f"BACKUP_LOCK_MODE={s.lock_mode}"
    if lock is False:
        raise BucketNotImmutable(
            f"Backup copies are not being made: bucket {s.bucket} has no object lock but {asked} asks for "
            "locked copies, so set MINIO_BUCKET to a new bucket name (the store set-up step creates it with "
            "object lock) or set BACKUP_LOCK_MODE=OFF to accept copies that anyone holding the keys can delete."
        )
    if versioning is False:
        raise BucketNotImmutable(
            f"Backup copies are not being made: bucket {s.bucket} has no versioning but {asked} asks for "
            "locked copies, so enable versioning on it with the object store's root account (run the store "
            "set-up step) or set BACKUP_LOCK_MODE=OFF to accept copies that can be overwritten."
        )


def _versioning(client: Minio, bucket: str, warnings: list[str]) -> bool | None:
    """Whether the bucket keeps versions (enabling it where these keys may); None when they may not read it."""
    try:
        if client.get_bucket_versioning(bucket).status == ENABLED:
            return True
    except S3Error as exc:
        if exc.code != "AccessDenied":
            raise
        warnings.append(
            f"The plugin's account may not read the versioning of bucket {bucket}, so it "
            "cannot check that overwritten copies are kept; allow it s3:GetBucketVersioning."
        )
        return None
    try:
        client.set_bucket_versioning(bucket, VersioningConfig(ENABLED))
        return True
    except S3Error as exc:
        warnings.append(
            f"Bucket {bucket} has no versioning and it cannot be enabled ({exc.code}): "
            "an overwritten copy cannot be recovered. Run the store set-up step with the "
            "object store's root account."
        )
        return False


def _check_retention(client: Minio, s: StoreSettings, warnings: list[str]) -> None:
    """Make the bucket's default retention what the settings ask, or say why it is not."""
    current = default_retention(client, s.bucket)
    if current == (s.lock_mode, s.lock_days):
        return
    try:
        client.set_object_lock_config(s.bucket, ObjectLockConfig(s.lock_mode, s.lock_days, DAYS))
    except S3Error as exc:
        if exc.code != "AccessDenied":
            raise
        now = "none, so new copies are not locked" if current is None else f"{current[0]} {current[1]} days"
        warnings.append(
            f"Bucket {s.bucket}'s default retention is {now}; BACKUP_LOCK_MODE/BACKUP_LOCK_DAYS ask for "
            f"{s.lock_mode} {s.lock_days} days. The plugin's account may not change it (by design): run the "
            "store set-up step with the object store's root account to apply it."
        )


def _object_lock_enabled(client: Minio, bucket: str, warnings: list[str]) -> bool | None:
    """Whether the bucket has object lock; None when these keys may not read it (said in ``warnings``)."""
    try:
        lock_config(client, bucket)
        return True
    except S3Error as exc:
        if exc.code in NO_LOCK_CODES:
            return False
        if exc.code == "AccessDenied":
            warnings.append(
                f"The plugin's account may not read bucket {bucket}'s object lock settings, "
                "so it cannot check that copies are locked; allow it "
                "s3:GetBucketObjectLockConfiguration."
            )
            return None
        raise
