"""Reading instances out of Orthanc through its REST API.

The same reader works inside the plugin (``orthanc.RestApiGet``, no network) and in scripts and
tests (HTTP with a password): it only needs a ``get(uri) -> bytes`` function that raises
:class:`SourceGone` for a missing resource and :class:`SourceError` for anything else.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pacs_backup.contracts.errors import BackupError, CorruptInstance, SourceError

Getter = Callable[[str], bytes]


@dataclass(frozen=True)
class SeriesInfo:
    """Study and series details shared by all instances of a series (cached)."""

    series_uid: str
    study_uid: str
    modality: str
    patient_id: str
    patient_name: str
    accession: str
    study_date: str
    study_description: str
    owner: str = ""  # ResponsiblePerson (0010,2297): the animal's owner in veterinary studies
    species: str = ""  # PatientSpeciesDescription (0010,2201)
    breed: str = ""  # PatientBreedDescription (0010,2292)


@dataclass(frozen=True)
class InstanceUids:
    """The three UIDs that place an instance in the key layout."""

    study: str
    series: str
    sop: str
    size: int = 0  # bytes of the stored file, as Orthanc reports it (0 when unknown)
    info: SeriesInfo | None = None  # patient and study details (for the catalog)


@dataclass(frozen=True)
class StoredFile:
    """An instance's exact bytes, where Orthanc keeps them, and their MD5 when already checked."""

    data: bytes
    path: str  # relative to Orthanc's storage directory ("" when Orthanc does not say)
    # The MD5 Orthanc recorded when it received the file, for the store's checksum to be compared with
    # (None: read through the REST API, or Orthanc recorded none). Not computed here: reading the file
    # again to hash it would cost as much as the copy; the store's answer proves the same end to end.
    md5: str | None


@dataclass(frozen=True)
class ChangesPage:
    """One page of Orthanc's change log (``/changes?since=``): what the plugin needs of it."""

    new_instances: list[str]
    deleted_instances: list[str]
    first_seq: int | None  # None: the page is empty
    last: int  # the sequence number to ask from next
    done: bool  # no more changes after this page


class OrthancReader:
    """Read instance files and their UIDs. Thread-safe."""

    def __init__(self, get: Getter, series_cache_size: int = 2048, storage_dir: Path | None = None) -> None:
        self._get = get
        self._storage_dir = storage_dir
        self._series: OrderedDict[str, SeriesInfo] = OrderedDict()
        self._cache_size = series_cache_size
        self._lock = threading.Lock()

    def _json(self, uri: str) -> Any:
        raw = self._get(uri)
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise SourceError(f"Orthanc returned something unreadable for {uri}.") from exc

    def read_file(self, orthanc_id: str) -> bytes:
        """Return the exact bytes Orthanc stored for the instance. Raises SourceGone / SourceError."""
        return self._get(f"/instances/{orthanc_id}/file")

    def read_stored(self, orthanc_id: str) -> StoredFile:
        """Return the instance's exact bytes and where Orthanc stores them.

        Inside the plugin the bytes are read straight from Orthanc's storage folder when Orthanc keeps
        them there uncompressed and their size is the one it recorded. That spares Orthanc reading the
        file and handing over two more copies of it (memory and time on a small box). The caller checks
        them against ``md5`` (Orthanc's record) through the store's checksum of what it received.
        Anything else (compression, another storage, no MD5 recorded, another size) goes through the
        REST API as before.

        Raises:
            SourceGone / SourceError.
        """
        info = self._json(f"/instances/{orthanc_id}/attachments/dicom/info")
        uuid = str(info.get("Uuid", "")) if isinstance(info, dict) else ""
        path = f"{uuid[0:2]}/{uuid[2:4]}/{uuid}" if len(uuid) >= 5 and "/" not in uuid and ".." not in uuid else ""
        md5, size = info.get("UncompressedMD5"), info.get("UncompressedSize")
        raw = info.get("CompressedSize") == size and info.get("CompressedMD5") == md5
        if self._storage_dir is not None and path and isinstance(md5, str) and isinstance(size, int) and raw:
            try:
                data = (self._storage_dir / path).read_bytes()
            except OSError:
                data = b""
            if len(data) == size:
                return StoredFile(data, path, md5)
        return StoredFile(self.read_file(orthanc_id), path, None)

    def uids(self, orthanc_id: str) -> InstanceUids:
        """Return the instance's study, series and SOP instance UIDs.

        Raises:
            SourceGone: the instance was deleted. CorruptInstance: a UID is missing.
        """
        inst = self._json(f"/instances/{orthanc_id}")
        sop = (inst.get("MainDicomTags") or {}).get("SOPInstanceUID")
        series_id = inst.get("ParentSeries")
        if not sop or not series_id:
            raise CorruptInstance(f"Instance {orthanc_id} has no SOPInstanceUID or series in Orthanc.")
        info = self._series_info(series_id, orthanc_id)
        return InstanceUids(
            study=info.study_uid, series=info.series_uid, sop=str(sop), size=int(inst.get("FileSize") or 0), info=info
        )

    def _series_info(self, series_id: str, orthanc_id: str) -> SeriesInfo:
        with self._lock:
            cached = self._series.get(series_id)
        if cached is not None:
            return cached
        series = self._json(f"/series/{series_id}")
        tags = series.get("MainDicomTags") or {}
        study = self._json(f"/studies/{series.get('ParentStudy')}")
        stags, ptags = study.get("MainDicomTags") or {}, study.get("PatientMainDicomTags") or {}
        if not tags.get("SeriesInstanceUID") or not stags.get("StudyInstanceUID"):
            raise CorruptInstance(f"Instance {orthanc_id} has no SeriesInstanceUID or StudyInstanceUID.")
        vet = self._veterinary_tags(orthanc_id)
        info = SeriesInfo(
            series_uid=str(tags["SeriesInstanceUID"]),
            study_uid=str(stags["StudyInstanceUID"]),
            modality=str(tags.get("Modality", "")),
            patient_id=str(ptags.get("PatientID", "")),
            patient_name=str(ptags.get("PatientName", "")),
            accession=str(stags.get("AccessionNumber", "")),
            study_date=str(stags.get("StudyDate", "")),
            study_description=str(stags.get("StudyDescription", "")),
            owner=vet.get("ResponsiblePerson", ""),
            species=vet.get("PatientSpeciesDescription", ""),
            breed=vet.get("PatientBreedDescription", ""),
        )
        with self._lock:
            # Orthanc ids are hashes of the UIDs, so a cached mapping never goes stale.
            self._series[series_id] = info
            while len(self._series) > self._cache_size:
                self._series.popitem(last=False)
        return info

    def _veterinary_tags(self, orthanc_id: str) -> dict[str, str]:
        """Owner, species and breed (not among Orthanc's main tags; read once per series, in UTF-8).

        Best effort: a copy must not wait for search details, so a failure leaves them empty.
        """
        try:
            tags = self._json(f"/instances/{orthanc_id}/simplified-tags")
        except BackupError:
            return {}
        if not isinstance(tags, dict):
            return {}
        names = ("ResponsiblePerson", "PatientSpeciesDescription", "PatientBreedDescription")
        return {n: str(tags[n])[:256] for n in names if isinstance(tags.get(n), str)}

    def storage_path(self, orthanc_id: str) -> str:
        """The instance's file inside Orthanc's storage directory (relative).

        Raises:
            SourceGone / SourceError / CorruptInstance.
        """
        uuid = str(self._json(f"/instances/{orthanc_id}/attachments/dicom/info").get("Uuid", ""))
        if len(uuid) < 5:
            raise CorruptInstance(f"Instance {orthanc_id} has no stored file in Orthanc.")
        # Orthanc's file storage layout: <StorageDirectory>/<uuid[0:2]>/<uuid[2:4]>/<uuid>
        return f"{uuid[0:2]}/{uuid[2:4]}/{uuid}"

    def describe(self, orthanc_id: str) -> tuple[InstanceUids, SeriesInfo, str]:
        """Return UIDs, study/series details and the storage path (relative to the storage directory).

        Raises:
            SourceGone / SourceError / CorruptInstance.
        """
        inst = self._json(f"/instances/{orthanc_id}")
        sop = (inst.get("MainDicomTags") or {}).get("SOPInstanceUID")
        if not sop or not inst.get("ParentSeries"):
            raise CorruptInstance(f"Instance {orthanc_id} has no SOPInstanceUID or series in Orthanc.")
        info = self._series_info(inst["ParentSeries"], orthanc_id)
        path = self.storage_path(orthanc_id)
        return InstanceUids(info.study_uid, info.series_uid, str(sop)), info, path

    def changes(self, since: int, limit: int) -> ChangesPage:
        """Return the changes after sequence number ``since`` (at most ``limit``)."""
        doc = self._json(f"/changes?since={since}&limit={limit}")
        try:
            rows = doc["Changes"]
            new = [str(c["ID"]) for c in rows if c["ChangeType"] == "NewInstance"]
            gone = [str(c["ID"]) for c in rows if c["ChangeType"] == "Deleted" and c.get("ResourceType") == "Instance"]
            first = min((int(c["Seq"]) for c in rows), default=None)
            return ChangesPage(new, gone, first, int(doc["Last"]), bool(doc["Done"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise SourceError("Orthanc's change log is not in the expected form.") from exc

    def last_change(self) -> int:
        """Return the sequence number of Orthanc's newest change (0 when there is none)."""
        doc = self._json("/changes?last")
        try:
            return int(doc["Last"])
        except (KeyError, TypeError, ValueError) as exc:
            raise SourceError("Orthanc's change log is not in the expected form.") from exc

    def list_instances(self, since: int, limit: int) -> list[str]:
        """Return up to ``limit`` instance ids starting at index ``since`` of Orthanc's listing."""
        ids = self._json(f"/instances?since={since}&limit={limit}")
        if not isinstance(ids, list):
            raise SourceError("Orthanc's instance listing is not a list.")
        return [str(i) for i in ids]
