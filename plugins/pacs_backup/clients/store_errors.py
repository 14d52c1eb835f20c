"""The object store's failures as domain errors, each with a sentence for a person.

The MinIO client raises its own exceptions (:data:`CLIENT_ERRORS`); :func:`store_error` turns one into
a :class:`StoreUnavailable` (an outage: retry later) or a :class:`StoreError` (a refusal: say why).
"""

from __future__ import annotations

import urllib3
from minio.error import S3Error, ServerError

from pacs_backup.contracts.errors import BackupError, StoreError, StoreUnavailable

AUTH_CODES = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken"}
CLIENT_ERRORS = (S3Error, ServerError, urllib3.exceptions.HTTPError, OSError)

# Whose keys the store refused, and the settings that hold them (the plugin's own; the set-up step's root).
PLUGIN_KEYS = ("our credentials", "MINIO_ACCESS_KEY and MINIO_SECRET_KEY")
ROOT_KEYS = ("the root account", "MINIO_ROOT_USER and MINIO_ROOT_PASSWORD")


class ChecksumMismatch(StoreError):
    """The store's checksum of what it received is not the one expected."""


class KeyExists(StoreError):
    """An upload made only if the key is free found it taken (S3 conditional write, 412)."""


class ObjectMissing(StoreError):
    """The object asked for is not in the store (NoSuchKey): a missing copy, not an outage."""


MISSING_CODES = ("NoSuchKey", "NoSuchObject", "ResourceNotFound")


def keys_refused(keys: tuple[str, str], what: str, code: str) -> StoreError:
    """The store refused ``keys`` (see PLUGIN_KEYS) while trying to ``what``."""
    return StoreError(f"The object store refused {keys[0]} while trying to {what} ({code}); check {keys[1]}.")


def store_error(
    exc: Exception, what: str, keys: tuple[str, str] = PLUGIN_KEYS, then: str = "; retrying"
) -> BackupError:
    """Map a client exception to a domain error with a sentence for a person.

    ``keys``: whose keys were used (PLUGIN_KEYS or ROOT_KEYS); ``then``: what follows an outage.
    """
    if isinstance(exc, S3Error):
        if exc.code in AUTH_CODES:
            return keys_refused(keys, what, exc.code)
        if exc.code in MISSING_CODES:
            return ObjectMissing(f"The object store holds no such object (trying to {what}).")
        if exc.code in ("XMinioStorageFull", "StorageFull", "QuotaExceeded"):
            return StoreError(
                f"The object store is full and refused to {what}; free space on it or add a disk. "
                "Copies wait in the queue meanwhile."
            )
        return StoreError(f"The object store refused to {what}: {exc.code} {exc.message}")
    if isinstance(exc, ServerError):
        return StoreUnavailable(f"The object store failed while trying to {what} (HTTP {exc.status_code}){then}.")
    reason = getattr(exc, "reason", None) or exc
    # urllib3 reasons read "<connection object>: Failed to establish...: [Errno 111] Connection refused"
    short = str(reason).rsplit(": ", 1)[-1] or type(exc).__name__
    return StoreUnavailable(f"The object store cannot be reached while trying to {what} ({short}){then}.")
