"""The object store holding one copy of every instance: reading and writing its objects over S3.

Nothing here assumes the store is local: it may be MinIO on the same box, a MinIO-compatible build,
or a central S3 cluster shared by several clinics (use a prefix per site). The bucket's protection is
checked by :mod:`.bucket`; the client's failures become domain errors in :mod:`.store_errors`.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

import urllib3
from minio.error import S3Error
from minio.time import to_iso8601utc

from pacs_backup.contracts.errors import BackupError, StoreError
from pacs_backup.settings.retention import lock_until
from pacs_backup.settings.store import StoreSettings

from .bucket import BucketReport, prepare_bucket
from .s3_client import KNOWN_SHA256, PresignedPayloadMinio
from .store_errors import CLIENT_ERRORS, ChecksumMismatch, KeyExists, store_error

log = logging.getLogger(__name__)

MAX_SINGLE_PUT = 5 * 1024**3  # S3's limit for one PUT; DICOM files are far smaller


@dataclass(frozen=True)
class StoredObject:
    """What the store reports about one object."""

    key: str
    size: int
    sha256: str | None  # from user metadata; None when the object was not written by us
    orthanc_id: str | None


class Fetched(NamedTuple):
    """An object's bytes with the checksums the store gives with them."""

    data: bytes
    sha256: str | None  # from user metadata, written with the copy
    md5: str | None  # the store's MD5 of the bytes: the ETag of a single-part upload; None otherwise


_MD5_HEX = re.compile(r"[0-9a-f]{32}")


def etag_md5(etag: str | None) -> str | None:
    """The MD5 an ETag states, when it is one (a multipart upload's ETag, ``<hex>-<parts>``, is not)."""
    text = (etag or "").strip().strip('"').lower()
    return text if _MD5_HEX.fullmatch(text) else None


# A small object of ours, written once, on which the store's support of conditional writes is checked.
PROBE_KEY = "catalog/conditional-write-probe"
PROBE_BODY = b"The PACS backup checks here that this store refuses to overwrite an object when asked.\n"


def http_pool(read_timeout_s: float = 60.0, pool_size: int = 16) -> urllib3.PoolManager:
    """Connections to the store, for the MinIO client (and its admin client in the set-up step)."""
    return urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=5.0, read=read_timeout_s),
        maxsize=pool_size,
        # One quick retry for a dropped keep-alive connection; longer outages are the caller's job.
        retries=urllib3.Retry(total=1, backoff_factor=0.2, status_forcelist=[502, 503, 504]),
    )


class ObjectStore:
    """A bucket in an S3 endpoint. Thread-safe (the MinIO client pools connections)."""

    def __init__(self, settings: StoreSettings, timeout_s: float = 60.0, pool_size: int = 16) -> None:
        self.settings = settings
        self.bucket = settings.bucket
        self._client = PresignedPayloadMinio(
            settings.endpoint,
            access_key=settings.access_key,
            secret_key=settings.secret_key,
            secure=settings.secure,
            region=settings.region,
            http_client=http_pool(timeout_s, pool_size),
        )

    def ensure_bucket(self) -> BucketReport:
        """Check the bucket's protection (versioning, object lock and its default retention) and report it.

        A missing bucket is created where these keys may (see :func:`.bucket.prepare_bucket`).

        Raises:
            StoreUnavailable / StoreError: the store cannot be reached, refuses our keys, or the bucket
            does not exist and these keys may not create it (the caller retries).
        """
        return prepare_bucket(self._client, self.settings)

    def stat(self, key: str) -> StoredObject | None:
        """Return what the store holds at ``key``, or None when there is no such object."""
        try:
            obj = self._client.stat_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "ResourceNotFound"):
                return None
            raise store_error(exc, f"look up {key}") from exc
        except CLIENT_ERRORS as exc:
            raise store_error(exc, f"look up {key}") from exc
        meta = obj.metadata or {}
        return StoredObject(
            key=key,
            size=int(obj.size or 0),
            sha256=meta.get("x-amz-meta-sha256"),
            orthanc_id=meta.get("x-amz-meta-orthanc-id"),
        )

    def check_conditional_writes(self) -> bool:
        """Whether the store refuses an upload made "only if absent" onto an existing key.

        Such uploads let a copy skip the look-up that precedes it. Checked once on a marker object of
        ours: a store that ignores the condition writes a second version of the marker (harmless) and
        is then used with a look-up before every upload, as before.
        """
        try:
            if self.stat(PROBE_KEY) is None:
                self._upload(PROBE_KEY, PROBE_BODY, {}, if_absent=False)
            self._upload(PROBE_KEY, PROBE_BODY, {}, if_absent=True)
        except KeyExists:
            return True
        except BackupError as exc:
            log.info("conditional writes not used: %s", exc)
        return False

    def put_verified(
        self,
        key: str,
        data: bytes,
        sha256: str,
        orthanc_id: str,
        md5: str | None = None,
        if_absent: bool = False,
        *,
        retain_until: datetime | None = None,
    ) -> None:
        """Upload ``data`` to ``key`` and confirm the store holds exactly these bytes.

        Unless BACKUP_LOCK_MODE is OFF, the copy carries its own object-lock retention (that mode), until
        ``retain_until`` (from :func:`~pacs_backup.settings.retention.lock_until`, with the study's date)
        or, when not given or earlier, BACKUP_LOCK_DAYS from now. Sent with the copy, the retention binds on
        every server, also one that does not stamp the bucket's default on each version.

        The store computes an MD5 of what it received (its ETag for a single-part upload); we compare
        it with ``md5`` (the MD5 the bytes must have, when the caller knows it) or with ours. Stores that
        do not expose it that way are checked by reading back size and sha256.

        With ``if_absent`` the store writes nothing when ``key`` already exists (only use it where
        :meth:`check_conditional_writes` said the store honours it).

        Raises:
            StoreUnavailable: the store cannot be reached (retry later, not counted against the item).
            KeyExists: ``if_absent`` and the key exists; nothing was written.
            StoreError: the store refused the upload, or the copy it holds differs from ``data``.
        """
        if len(data) > MAX_SINGLE_PUT:
            raise StoreError(f"{key} is larger than 5 GiB; the object store cannot take it in one upload.")
        etag = self._upload(key, data, {"sha256": sha256, "orthanc-id": orthanc_id}, if_absent, retain_until)
        if len(etag) == 32 and all(c in "0123456789abcdef" for c in etag):
            if etag != (md5 or hashlib.md5(data, usedforsecurity=False).hexdigest()):
                raise ChecksumMismatch(
                    f"The object store holds different bytes for {key} than were sent (checksum mismatch)."
                )
            return
        stored = self.stat(key)
        if stored is None or stored.size != len(data) or stored.sha256 != sha256:
            raise StoreError(f"The object store did not confirm the copy of {key} (size or checksum differs).")

    def _upload(
        self, key: str, data: bytes, metadata: dict[str, str], if_absent: bool, retain_until: datetime | None = None
    ) -> str:
        """One PUT of ``data`` with its retention (see :meth:`put_verified`); returns the ETag (lower case, no
        quotes).

        The request is made directly (minio-py's put_object sends no conditions and copies the bytes
        once more); a ``sha256`` in ``metadata`` also signs the request, so the client does not hash
        the bytes again and the store refuses a body that does not match it (see s3_client.py).
        """
        headers: dict[str, str | list[str] | tuple[str]] = {
            "Content-Type": "application/dicom",
            **{f"x-amz-meta-{k}": v for k, v in metadata.items()},
        }
        if if_absent:
            headers["If-None-Match"] = "*"
        if metadata.get("sha256"):
            headers[KNOWN_SHA256] = metadata["sha256"]
        headers.update(self.retention_headers(retain_until))
        try:
            result = self._client._put_object(self.bucket, key, data, headers)
        except S3Error as exc:
            if if_absent and exc.code == "PreconditionFailed":
                raise KeyExists(f"{key} already exists in the object store.") from None
            raise store_error(exc, f"upload {key}") from exc
        except CLIENT_ERRORS as exc:
            raise store_error(exc, f"upload {key}") from exc
        return (result.etag or "").strip('"').lower()

    def retention_headers(self, retain_until: datetime | None = None) -> dict[str, str]:
        """The object-lock headers a copy is written with: BACKUP_LOCK_MODE until the later of
        ``retain_until`` and BACKUP_LOCK_DAYS from now (none when BACKUP_LOCK_MODE is OFF)."""
        s = self.settings
        if s.lock_mode == "OFF":
            return {}
        until = lock_until(datetime.now(UTC), s.lock_days)
        if retain_until is not None and retain_until > until:
            until = retain_until
        return {
            "x-amz-object-lock-mode": s.lock_mode,
            "x-amz-object-lock-retain-until-date": str(to_iso8601utc(until)),
        }

    @contextmanager
    def reading(self, key: str, version_id: str | None = None) -> Iterator[Callable[[int], bytes]]:
        """The object at ``key`` as a stream: yields its ``read(n)``, so a caller never holds it whole.

        Raises:
            StoreError: no such object, or refused. StoreUnavailable: cannot reach the store.
        """
        try:
            resp = self._client.get_object(self.bucket, key, version_id=version_id)
        except CLIENT_ERRORS as exc:
            raise store_error(exc, f"read {key}") from exc
        try:
            yield lambda n: bytes(resp.read(n if n >= 0 else None))  # n < 0: all that is left
        except CLIENT_ERRORS as exc:  # raised while the caller read
            raise store_error(exc, f"read {key}") from exc
        finally:
            resp.close()
            resp.release_conn()

    def get(self, key: str, version_id: str | None = None) -> bytes:
        """Return the bytes at ``key`` (errors as :meth:`reading`)."""
        with self.reading(key, version_id) as read:
            return read(-1)

    def get_with_sha(self, key: str, version_id: str | None = None) -> tuple[bytes, str | None]:
        """Return the bytes at ``key`` and the sha256 recorded in its metadata when it was written."""
        data, sha256, _ = self.get_with_checksums(key, version_id)
        return data, sha256

    def get_with_checksums(self, key: str, version_id: str | None = None) -> Fetched:
        """The bytes at ``key``, the sha256 recorded when it was written and the store's MD5 of them."""
        try:
            resp = self._client.get_object(self.bucket, key, version_id=version_id)
        except CLIENT_ERRORS as exc:
            raise store_error(exc, f"read {key}") from exc
        try:
            data = bytes(resp.read())
            return Fetched(data, resp.headers.get("x-amz-meta-sha256"), etag_md5(resp.headers.get("ETag")))
        except CLIENT_ERRORS as exc:
            raise store_error(exc, f"read {key}") from exc
        finally:
            resp.close()
            resp.release_conn()

    def versions_as_of(self, prefix: str, as_of: datetime) -> Iterator[tuple[str, str | None]]:
        """Yield ``(key, version_id)`` of the newest version of each key under ``prefix`` written at or
        before ``as_of`` (keys that did not exist yet are left out)."""
        best: dict[str, tuple[datetime, str | None]] = {}
        try:
            for obj in self._client.list_objects(self.bucket, prefix=prefix, recursive=True, include_version=True):
                if obj.is_delete_marker or not obj.object_name or obj.last_modified is None:
                    continue
                if obj.last_modified <= as_of:
                    current = best.get(obj.object_name)
                    if current is None or obj.last_modified > current[0]:
                        best[obj.object_name] = (obj.last_modified, obj.version_id)
        except CLIENT_ERRORS as exc:
            raise store_error(exc, f"list versions of {prefix}") from exc
        for key in sorted(best):
            yield key, best[key][1]

    def list_keys(self, prefix: str) -> Iterator[str]:
        """Yield every object key under ``prefix`` (latest versions)."""
        try:
            for obj in self._client.list_objects(self.bucket, prefix=prefix, recursive=True):
                if obj.object_name and not obj.is_dir:
                    yield obj.object_name
        except CLIENT_ERRORS as exc:
            raise store_error(exc, f"list {prefix}") from exc

    def ping(self) -> None:
        """Check the store answers for our bucket. Raises StoreUnavailable / StoreError."""
        try:
            self._client.bucket_exists(self.bucket)
        except CLIENT_ERRORS as exc:
            raise store_error(exc, "reach the bucket") from exc
