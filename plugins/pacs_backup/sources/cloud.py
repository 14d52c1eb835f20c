"""The cloud PACS as a source of studies, read by DICOMweb (QIDO-RS to list, WADO-RS to fetch an instance).

Only what this appliance sent there is shown: each instance read back is compared with the sha256 of
the file that was sent (kept by the cloud PACS queue), so a peer that changed the bytes (transcoded,
re-headed) is reported as such instead of being shown as the study. A peer reached by DICOM (C-STORE)
cannot hand an instance back without writing it into the PACS (C-MOVE), so it is listed as unavailable.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

from pacs_backup.contracts.errors import BackupError, CloudNotFound, CloudUnavailable, NotFound
from pacs_backup.replication.cloud_pacs import Pending
from pacs_backup.replication.dicomweb import DicomWeb, split_multipart
from pacs_backup.settings.config import CLOUD_PACS_COPY

from .base import CopyInstance, CopyStudy, SourceDoc, SourceUnavailable, StudyMatch, UnavailableSource
from .studies import matches, verified

DICOM_JSON = {"Accept": "application/dicom+json"}
STUDY_FIELDS = ("00081030", "00080061", "00201206", "00201208")  # description, modalities, series, instances


def _value(item: dict[str, Any], tag: str) -> str:
    values = (item.get(tag) or {}).get("Value") or []
    if not values:
        return ""
    first = values[0]
    if isinstance(first, dict):  # a person name: {"Alphabetic": "Smith^Bella"}
        return str(first.get("Alphabetic", ""))
    return "\\".join(str(v) for v in values) if tag == "00080061" else str(first)


@contextmanager
def _readable() -> Iterator[None]:
    try:
        yield
    except CloudNotFound:
        raise NotFound("The cloud PACS does not hold this study.") from None
    except CloudUnavailable as exc:
        raise SourceUnavailable(str(exc)) from None
    except (NotFound, SourceUnavailable):
        raise
    except BackupError as exc:
        raise SourceUnavailable(f"The cloud PACS cannot be read now: {exc}") from None


class SentRecord(Protocol):
    """What the cloud PACS queue kept of what was sent (its sha256 per instance)."""

    def study_items(self, study_uid: str) -> list[Pending]: ...


class DicomWebReader(DicomWeb):
    """The read-only DICOMweb calls a source needs, beside the sender's own."""

    def _json(self, path: str) -> list[dict[str, Any]]:
        data, _ = self._request("GET", path, headers=DICOM_JSON)
        if not data.strip():
            return []
        try:
            found = json.loads(data)
        except ValueError:
            raise SourceUnavailable(
                f"The cloud PACS at {self.shown} answered a search with something unreadable."
            ) from None
        return [i for i in found if isinstance(i, dict)] if isinstance(found, list) else []

    def search_studies(self, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
        """QIDO-RS ``/studies`` with the given query arguments."""
        return self._json("/studies?" + urllib.parse.urlencode(params))

    def study_instances(self, study_uid: str) -> list[tuple[str, str]]:
        """QIDO-RS: ``(SeriesInstanceUID, SOPInstanceUID)`` of each instance of a study."""
        found = self._json(
            f"/studies/{urllib.parse.quote(study_uid)}/instances?includefield=0020000E&includefield=00080018"
        )
        return [(_value(i, "0020000E"), _value(i, "00080018")) for i in found]

    def instance(self, study_uid: str, series_uid: str, sop_uid: str) -> bytes:
        """WADO-RS: the file of one instance, as the peer keeps it."""
        q = urllib.parse.quote
        data, ctype = self._request(
            "GET",
            f"/studies/{q(study_uid)}/series/{q(series_uid)}/instances/{q(sop_uid)}",
            headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'},
        )
        parts = split_multipart(data, ctype)
        if not parts:
            raise NotFound("The cloud PACS does not hold this image.")
        return parts[0]


class CloudSource:
    """The cloud PACS reached by DICOMweb, checked against what the queue sent."""

    def __init__(self, client: DicomWebReader, queue: SentRecord) -> None:
        self.client = client
        self.queue = queue

    @property
    def doc(self) -> SourceDoc:
        label = f"Cloud PACS ({self.client.shown})"
        return SourceDoc(name=CLOUD_PACS_COPY, kind="cloud-pacs", label=label, available=True, reason="", taken_at="")

    def studies(self, match: StudyMatch) -> list[CopyStudy]:
        params = [
            (tag, value)
            for tag, value in (
                ("StudyInstanceUID", match.study_uid),
                ("PatientID", match.patient_id),
                ("PatientName", match.patient_name),
                ("AccessionNumber", match.accession),
                ("ModalitiesInStudy", match.modality),
                ("StudyDate", f"{match.date_from}-{match.date_to}" if match.date_from or match.date_to else ""),
                ("limit", str(match.limit)),
                ("offset", str(match.offset)),
            )
            if value
        ] + [("includefield", f) for f in STUDY_FIELDS]
        with _readable():
            found = self.client.search_studies(params)
        studies = [
            CopyStudy(
                study_uid=_value(i, "0020000D"),
                patient_id=_value(i, "00100020"),
                patient_name=_value(i, "00100010"),
                study_date=_value(i, "00080020"),
                description=_value(i, "00081030"),
                accession=_value(i, "00080050"),
                modalities=_value(i, "00080061"),
                series=int(_value(i, "00201206") or 0),
                instances=int(_value(i, "00201208") or 0),
            )
            for i in found
        ]
        # the peer paged already; its matching is checked again (a peer may match more loosely)
        return sorted((s for s in studies if matches(s, match)), key=lambda s: s["study_date"], reverse=True)

    def instances(self, study_uid: str) -> list[CopyInstance]:
        sent = {p.sop_uid: p for p in self.queue.study_items(study_uid)}
        with _readable():
            held = self.client.study_instances(study_uid)
        found = [
            CopyInstance(study_uid=study_uid, series_uid=series, sop_uid=sop, size=0, sha256=sent[sop].sha256, ref=sop)
            for series, sop in held
            if sop in sent  # only what this appliance sent can be checked
        ]
        if not found:
            raise NotFound("The cloud PACS does not hold this study (or holds none of the images sent to it).")
        return sorted(found, key=lambda i: (i["series_uid"], i["sop_uid"]))

    def read(self, instance: CopyInstance) -> bytes:
        with _readable():
            data = self.client.instance(instance["study_uid"], instance["series_uid"], instance["sop_uid"])
        return verified(data, instance["sha256"], f"Image {instance['sop_uid']} in the cloud PACS")


def dimse_source(shown: str) -> UnavailableSource:
    """The cloud PACS reached by DICOM: listed, never read (it could only send images into the PACS)."""
    return UnavailableSource(
        SourceDoc(
            name=CLOUD_PACS_COPY,
            kind="cloud-pacs",
            label=f"Cloud PACS ({shown})",
            available=False,
            reason=(
                "The cloud PACS is reached by DICOM (C-STORE), which can only send a study back by writing it into "
                "the PACS (C-MOVE), so it cannot be viewed from there. View it from the bucket or a snapshot, "
                "or restore it from the cloud PACS."
            ),
            taken_at="",
        )
    )
