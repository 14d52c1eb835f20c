"""The bucket as a source of studies read directly, with the dashboard's read-only account: what the
DICOMweb service for copies uses while the PACS (and the plugin in it) does not answer, so a study stays
viewable (and a share link keeps working) from its bucket copy.

Studies are found in the dashboard's mirror of the catalog (or, for one study asked by UID, in the bucket
itself); a study's instances are the objects under its key prefix; each read is checked against the sha256
its object carries, as the plugin's own bucket source does.
"""

from __future__ import annotations

from pacs_backup.contracts.errors import BackupError, NotFound, StoreUnavailable
from pacs_backup.dicom.web_json import NotDicom, read_header
from pacs_backup.sources.base import CopyDamaged, CopyInstance, CopyStudy, SourceDoc, SourceUnavailable, StudyMatch
from pacs_backup.sources.studies import copy_study, matches
from pacs_backup.state.manifest import sha256_hex

from .bucket import BucketReader
from .mirror import Mirror

BUCKET = "bucket"
LABEL = "Local backup copy (object store)"
_DIGESTED = "h-"  # a key component that is a digest of a UID that could not be used as it is


def bucket_doc() -> SourceDoc:
    return SourceDoc(name=BUCKET, kind="bucket", label=LABEL, available=True, reason="", taken_at="")


class BucketCopies:
    """:class:`~pacs_dashboard.copy_reader.CopyReader` for the ``bucket`` source only, without the PACS."""

    def __init__(self, reader: BucketReader, mirror: Mirror | None) -> None:
        self.reader, self.mirror = reader, mirror

    def _keys(self, study_uid: str) -> list[str]:
        try:
            return [k for k in self.reader.study_keys(study_uid) if k.endswith(".dcm")]
        except StoreUnavailable as exc:
            raise SourceUnavailable(f"The local backup copy (object store) cannot be reached now: {exc}") from None
        except BackupError as exc:
            raise SourceUnavailable(f"The local backup copy (object store) could not be read: {exc}") from None

    def _only_bucket(self, source: str) -> None:
        if source != BUCKET:
            raise SourceUnavailable(
                "The PACS is not answering, and only the local backup copy (bucket) can be read without it."
            )

    def sources(self, study_uid: str | None = None) -> list[SourceDoc]:
        if study_uid and not self._keys(study_uid):
            return []
        return [bucket_doc()]

    def studies(self, source: str, match: StudyMatch) -> list[CopyStudy]:
        self._only_bucket(source)
        if match.study_uid:
            row = self.mirror.study(match.study_uid) if self.mirror else None
            if row is not None:
                found = [copy_study(row)] if self._keys(match.study_uid) else []
            else:
                found = self._from_header(match.study_uid)
        elif self.mirror is not None:
            text = " ".join(p for p in (match.patient_id, match.accession) if p and "*" not in p and "?" not in p)
            try:
                rows = self.mirror.search(text, match.date_from, match.date_to, match.modality, limit=1000)
            except ValueError:
                rows = []
            found = [copy_study(r) for r in rows]
        else:
            found = []
        kept = [s for s in found if matches(s, match)]
        return kept[match.offset : match.offset + match.limit]

    def _from_header(self, study_uid: str) -> list[CopyStudy]:
        """The study described from its first instance in the bucket (not in the mirror yet)."""
        keys = self._keys(study_uid)
        if not keys:
            return []
        try:
            ds = read_header(self._get(keys[0], study_uid)[0])
        except NotDicom:
            return []
        series = {k.rsplit("/", 2)[-2] for k in keys}
        return [
            CopyStudy(
                study_uid=study_uid,
                patient_id=str(ds.get("PatientID", "")),
                patient_name=str(ds.get("PatientName", "")),
                study_date=str(ds.get("StudyDate", "")),
                description=str(ds.get("StudyDescription", "")),
                accession=str(ds.get("AccessionNumber", "")),
                modalities=str(ds.get("Modality", "")),
                series=len(series),
                instances=len(keys),
            )
        ]

    def instances(self, source: str, study_uid: str) -> list[CopyInstance]:
        self._only_bucket(source)
        found: list[CopyInstance] = []
        for key in self._keys(study_uid):
            series, leaf = key.rsplit("/", 2)[-2:]
            sop = leaf.removesuffix(".dcm")
            if series.startswith(_DIGESTED) or sop.startswith(_DIGESTED):
                try:  # the key holds digests of unusual UIDs: the file says what they are
                    ds = read_header(self._get(key, study_uid)[0])
                    series, sop = str(ds.get("SeriesInstanceUID", series)), str(ds.SOPInstanceUID)
                except NotDicom:
                    pass
            found.append(CopyInstance(study_uid=study_uid, series_uid=series, sop_uid=sop, size=0, sha256="", ref=key))
        if not found:
            raise NotFound("The local backup copy (bucket) does not hold this study.")
        return sorted(found, key=lambda i: (i["series_uid"], i["sop_uid"]))

    def _get(self, key: str, study_uid: str) -> tuple[bytes, str | None]:
        try:
            return self.reader.store.get_with_sha(key)
        except StoreUnavailable as exc:
            raise SourceUnavailable(f"The local backup copy (object store) cannot be reached now: {exc}") from None
        except BackupError as exc:
            raise NotFound(f"The local backup copy (bucket) could not give this image: {exc}") from None

    def read(self, source: str, study_uid: str, sop_uid: str) -> bytes:
        found = next((i for i in self.instances(source, study_uid) if i["sop_uid"] == sop_uid), None)
        if found is None:
            raise NotFound("The local backup copy (bucket) does not hold this image.")
        data, recorded = self._get(found["ref"], study_uid)
        if not recorded or recorded != sha256_hex(data):
            raise CopyDamaged(
                f"The copy of this instance in the {LABEL.lower()} does not match its checksum; it is not shown."
            )
        return data
