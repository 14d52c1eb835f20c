"""The central copy as a source of studies: one clinic's objects in the group store, read with the group
reader's key (list and read only), for the viewer (``/group/copies/<clinic>/dicom-web/``) and for deliveries.

A study's instances come from the group catalog (their keys and the sha256 the clinic recorded), or, for a
study the catalog does not hold yet, from the listing under ``<clinic>/dicom/<study>/``. Every read is
checked: the object's ``sha256`` metadata and the catalog's sha256 must both match its bytes.
"""

from __future__ import annotations

import threading

from pacs_backup.clients.object_store import ObjectStore
from pacs_backup.contracts.errors import BackupError, NotFound, StoreUnavailable
from pacs_backup.contracts.keys import study_prefix
from pacs_backup.settings.store import StoreSettings
from pacs_backup.sources.base import CopyDamaged, CopyInstance, CopyStudy, SourceDoc, SourceUnavailable, StudyMatch
from pacs_backup.state.manifest import sha256_hex

from .catalog import Catalog

SOURCE = "group"
LABEL = "the central copy (group store)"

_stores: dict[int, ObjectStore] = {}
_lock = threading.Lock()


def reader_store(settings: StoreSettings) -> ObjectStore:
    """One client of the group store per settings (the reader key), kept for the process."""
    with _lock:
        store = _stores.get(id(settings))
        if store is None:
            store = _stores[id(settings)] = ObjectStore(settings, timeout_s=30.0, pool_size=8)
        return store


def study_instances(catalog: Catalog, store: ObjectStore, clinic: str, study_uid: str) -> list[CopyInstance]:
    """The study's instances in the group store (catalog first, else the listing). Raises NotFound."""
    with catalog.connection() as conn:
        rows = conn.execute(
            "SELECT series_uid, sop_uid, key, sha256, size FROM instances WHERE clinic = %s AND study_uid = %s "
            "ORDER BY series_uid, sop_uid",
            (clinic, study_uid),
        ).fetchall()
    found = [
        CopyInstance(study_uid=study_uid, series_uid=r[0], sop_uid=r[1], size=int(r[4]), sha256=r[3], ref=r[2])
        for r in rows
    ]
    if not found:
        try:
            keys = sorted(k for k in store.list_keys(study_prefix(study_uid, clinic)) if k.endswith(".dcm"))
        except StoreUnavailable as exc:
            raise SourceUnavailable(f"The group store cannot be reached now: {exc}") from None
        for key in keys:
            series, leaf = key.rsplit("/", 2)[-2:]
            found.append(
                CopyInstance(study_uid=study_uid, series_uid=series, sop_uid=leaf[:-4], size=0, sha256="", ref=key)
            )
    if not found:
        raise NotFound(f"The central copy of clinic {clinic} does not hold this study.")
    return found


def read_checked(store: ObjectStore, key: str, expected: str) -> bytes:
    """An object's exact bytes, refused (CopyDamaged) unless they match its recorded sha256."""
    try:
        data, recorded = store.get_with_sha(key)
    except StoreUnavailable as exc:
        raise SourceUnavailable(f"The group store cannot be reached now: {exc}") from None
    except BackupError as exc:
        raise NotFound(f"The central copy could not give this image: {exc}") from None
    actual = sha256_hex(data)
    if not recorded or recorded != actual or (expected and expected != actual):
        raise CopyDamaged(f"The object {key} in the group store does not match its checksum; it is not used.")
    return data


class GroupCopies:
    """:class:`~pacs_dashboard.copy_reader.CopyReader` of one clinic's central copy (source name ``group``)."""

    def __init__(self, catalog: Catalog, store: ObjectStore, clinic: str) -> None:
        self.catalog, self.store, self.clinic = catalog, store, clinic

    def _only_group(self, source: str) -> None:
        if source != SOURCE:
            raise SourceUnavailable("Only the central copy (group store) is read here.")

    def sources(self, study_uid: str | None = None) -> list[SourceDoc]:
        doc = SourceDoc(
            name=SOURCE, kind="bucket", label=f"Central copy of {self.clinic}", available=True, reason="", taken_at=""
        )
        return [doc]

    def studies(self, source: str, match: StudyMatch) -> list[CopyStudy]:
        self._only_group(source)
        if not match.study_uid:
            return []
        with self.catalog.connection() as conn:
            row = conn.execute(
                "SELECT study_uid, patient_id, patient_name, study_date, description, accession, modalities, "
                "series, instances FROM studies WHERE clinic = %s AND study_uid = %s",
                (self.clinic, match.study_uid),
            ).fetchone()
        if row is None:
            return []
        return [
            CopyStudy(
                study_uid=row[0],
                patient_id=row[1],
                patient_name=row[2],
                study_date=row[3],
                description=row[4],
                accession=row[5],
                modalities="\\".join(m for m in str(row[6]).split(",") if m),
                series=int(row[7]),
                instances=int(row[8]),
            )
        ]

    def instances(self, source: str, study_uid: str) -> list[CopyInstance]:
        self._only_group(source)
        return study_instances(self.catalog, self.store, self.clinic, study_uid)

    def read(self, source: str, study_uid: str, sop_uid: str) -> bytes:
        found = next((i for i in self.instances(source, study_uid) if i["sop_uid"] == sop_uid), None)
        if found is None:
            raise NotFound("The central copy does not hold this image.")
        return read_checked(self.store, found["ref"], found["sha256"])
