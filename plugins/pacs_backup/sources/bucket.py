"""The object-store bucket as a source of studies.

A study's instances are the objects under its key prefix (``dicom/<study>/``); each read is checked
against the sha256 the object carries in its metadata and the one the catalog recorded when it was
copied. Studies are found in the catalog (written as each copy is made), or, on a box without one, in
the manifest kept in the bucket (``catalog/manifest.jsonl``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pacs_backup.clients.object_store import ObjectStore
from pacs_backup.clients.store_errors import ObjectMissing
from pacs_backup.contracts.errors import BackupError, NotFound, StoreUnavailable
from pacs_backup.contracts.keys import study_prefix
from pacs_backup.restore.from_copies import bucket_manifest
from pacs_backup.state.catalog import Catalog, StudyQuery
from pacs_backup.state.manifest import ManifestEntry, sha256_hex

from .base import CopyDamaged, CopyInstance, CopyStudy, SourceDoc, SourceUnavailable, StudyMatch
from .studies import copy_study, select, summarize

CATALOG_ROWS = 1000  # studies the catalog hands over for one search, before the exact match


@contextmanager
def _readable(what: str) -> Iterator[None]:
    """Store errors as a source's: an outage is SourceUnavailable, a missing object NotFound."""
    try:
        yield
    except StoreUnavailable as exc:
        raise SourceUnavailable(f"The object store cannot be read now: {exc}") from None
    except (CopyDamaged, NotFound, SourceUnavailable):
        raise
    except ObjectMissing:
        raise NotFound(f"The bucket has no {what}.") from None
    except BackupError as exc:
        raise SourceUnavailable(f"The object store refused to give {what}: {exc}") from None


class BucketSource:
    """The bucket of the object store, read object by object."""

    def __init__(self, store: ObjectStore, prefix: str = "", catalog: Catalog | None = None) -> None:
        self.store = store
        self.prefix = prefix
        self.catalog = catalog

    @property
    def doc(self) -> SourceDoc:
        return SourceDoc(
            name="bucket",
            kind="bucket",
            label=f"Object store (bucket {self.store.bucket})",
            available=True,
            reason="",
            taken_at="",
        )

    def studies(self, match: StudyMatch) -> list[CopyStudy]:
        if self.catalog is None:
            with _readable("manifest"):
                return select(summarize(bucket_manifest(self.store)), match)
        query = StudyQuery(
            text=match.study_uid,  # a UID is matched from its start; the exact match follows
            date_from=match.date_from or None,
            date_to=match.date_to or None,
            modality=match.modality,
            limit=CATALOG_ROWS,
        )
        return select((copy_study(s) for s in self.catalog.studies(query)), match)

    def _recorded(self, study_uid: str) -> dict[str, ManifestEntry]:
        return {e["key"]: e for e in self.catalog.study(study_uid)} if self.catalog is not None else {}

    def instances(self, study_uid: str) -> list[CopyInstance]:
        recorded = self._recorded(study_uid)
        with _readable("study"):
            keys = [k for k in self.store.list_keys(study_prefix(study_uid, self.prefix)) if k.endswith(".dcm")]
        found = []
        for key in keys:
            e = recorded.get(key)
            series, leaf = ["", "", *key.rsplit("/", 2)][-2:]
            found.append(
                CopyInstance(
                    study_uid=study_uid,
                    series_uid=e["series_uid"] if e else series,
                    sop_uid=e["sop_uid"] if e else leaf.removesuffix(".dcm"),
                    size=int(e["size"]) if e else 0,
                    sha256=e["sha256"] if e else "",  # else the object's own metadata is checked when read
                    ref=key,
                )
            )
        if not found:
            raise NotFound("The bucket does not hold this study.")
        return sorted(found, key=lambda i: (i["series_uid"], i["sop_uid"]))

    def read(self, instance: CopyInstance) -> bytes:
        what = f"Image {instance['sop_uid']} in the bucket"
        with _readable(f"image {instance['sop_uid']}"):
            data, recorded = self.store.get_with_sha(instance["ref"])
        digest = sha256_hex(data)
        expected = [s for s in (recorded, instance["sha256"]) if s]
        if not expected:
            raise CopyDamaged(f"{what} carries no checksum, so it cannot be checked; it was not copied by this system.")
        if any(s != digest for s in expected):
            raise CopyDamaged(
                f"{what} does not match the checksum recorded when it was backed up: this copy of the image is "
                "damaged or was changed, so it is not shown. Use another copy, and run a restore test of the bucket."
            )
        return data
