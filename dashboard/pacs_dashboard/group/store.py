"""The group store as the group service reads it, with the group reader's key (list and read only).

Each clinic's objects are ``<clinic>/dicom/<Study>/<Series>/<SOP>.dcm`` (metadata ``sha256``) and its manifest
``<clinic>/catalog/manifest.jsonl``. An object the catalog does not know is described from its header:
a ranged GET of its first 64 KB (more when the header is longer), read by pydicom up to the pixel data.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import urllib3
from minio import Minio
from minio.error import S3Error
from pydicom import dcmread
from pydicom.errors import InvalidDicomError

from pacs_backup.settings.store import StoreSettings
from pacs_backup.state.manifest import BUCKET_MANIFEST_KEY, ManifestEntry, ManifestUnreadable, read_manifest

from .ingest import MAX_TEXT, CatalogEntry
from .settings import is_clinic_id

log = logging.getLogger(__name__)

HEADER_BYTES = 64 * 1024
MAX_HEADER_BYTES = 64 * 1024 * 1024  # past this, the whole object is read


@dataclass(frozen=True)
class Listed:
    """One object of the listing."""

    key: str
    size: int
    last_modified: float | None


class GroupStore:
    """Read-only access to the group store's bucket. Raises minio's S3Error / urllib3 errors as they come."""

    def __init__(self, settings: StoreSettings, timeout_s: float = 60.0) -> None:
        self.bucket = settings.bucket
        pool = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=10, read=timeout_s),
            maxsize=8,
            retries=urllib3.Retry(total=3, backoff_factor=0.5, status_forcelist=(500, 502, 503, 504)),
        )
        self._client = Minio(
            settings.endpoint,
            access_key=settings.access_key,
            secret_key=settings.secret_key,
            secure=settings.secure,
            region=settings.region,
            http_client=pool,
        )

    def clinics(self) -> list[str]:
        """The clinic prefixes at the top of the bucket."""
        found = []
        for obj in self._client.list_objects(self.bucket, recursive=False):
            name = (obj.object_name or "").rstrip("/")
            if obj.is_dir and is_clinic_id(name):
                found.append(name)
        return sorted(found)

    def listing(self, clinic: str) -> Iterator[Listed]:
        """Every instance object of ``clinic`` (its ``<clinic>/dicom/`` keys), in the store's order."""
        for obj in self._client.list_objects(self.bucket, prefix=f"{clinic}/dicom/", recursive=True):
            if obj.object_name and not obj.is_dir and obj.object_name.endswith(".dcm"):
                when = obj.last_modified
                yield Listed(
                    obj.object_name, int(obj.size or 0), when.timestamp() if isinstance(when, datetime) else None
                )

    def manifest(self, clinic: str) -> list[ManifestEntry]:
        """The clinic's manifest entries ([] when it has none yet or it cannot be read)."""
        key = f"{clinic}/{BUCKET_MANIFEST_KEY}"
        try:
            resp = self._client.get_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject"):
                return []
            raise
        try:
            data = resp.read()
        finally:
            resp.close()
            resp.release_conn()
        try:
            return read_manifest(data)[1]
        except ManifestUnreadable:
            log.warning(
                "the manifest of clinic %s in the group store is unreadable; its headers are read instead", clinic
            )
            return []

    def _read(self, key: str, length: int | None) -> tuple[bytes, str]:
        resp = self._client.get_object(self.bucket, key, offset=0, length=length or 0)
        try:
            return resp.read(), str(resp.headers.get("x-amz-meta-sha256") or "")
        finally:
            resp.close()
            resp.release_conn()

    def describe(self, obj: Listed) -> CatalogEntry | None:
        """The catalog entry of one object from its DICOM header (None: not a readable DICOM file)."""
        length = HEADER_BYTES
        while True:
            whole = obj.size <= length or length > MAX_HEADER_BYTES
            data, sha = self._read(obj.key, None if whole else length)
            entry = entry_from_header(data, obj, sha)
            if entry is not None or whole:
                return entry
            length *= 8


def entry_from_header(data: bytes, obj: Listed, sha256: str) -> CatalogEntry | None:
    """The entry of an object whose first bytes are ``data`` (None when they do not hold its UIDs yet)."""
    try:
        ds = dcmread(io.BytesIO(data), stop_before_pixels=True, force=True)
        values = {
            name: str(ds.get(name, "") or "").replace("\x00", "")[:MAX_TEXT]
            for name in (
                "StudyInstanceUID",
                "SeriesInstanceUID",
                "SOPInstanceUID",
                "PatientID",
                "PatientName",
                "ResponsiblePerson",
                "PatientSpeciesDescription",
                "PatientBreedDescription",
                "AccessionNumber",
                "StudyDate",
                "StudyDescription",
                "Modality",
            )
        }
    except (InvalidDicomError, EOFError, OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # cut inside an element, or not DICOM
    if not (values["StudyInstanceUID"] and values["SeriesInstanceUID"] and values["SOPInstanceUID"]):
        return None  # the cut came before the UIDs (group 0020): read more
    return CatalogEntry(
        orthanc_id="",
        study_uid=values["StudyInstanceUID"],
        series_uid=values["SeriesInstanceUID"],
        sop_uid=values["SOPInstanceUID"],
        patient_id=values["PatientID"],
        patient_name=values["PatientName"],
        owner=values["ResponsiblePerson"],
        species=values["PatientSpeciesDescription"],
        breed=values["PatientBreedDescription"],
        accession=values["AccessionNumber"],
        study_date=values["StudyDate"],
        description=values["StudyDescription"],
        modality=values["Modality"],
        path="",
        key=obj.key,
        sha256=sha256 if len(sha256) == 64 else "",
        size=obj.size,
        verified_at=None,
        copies=[],
    )
