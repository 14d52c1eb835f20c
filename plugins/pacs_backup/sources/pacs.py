"""The PACS itself (Orthanc, through its REST API) as a source of studies: only read, never written.

Inside the plugin the calls go through the SDK (no network); a search is Orthanc's ``/tools/find``
(a POST that only reads). The PACS records no sha256 of its own, so its instances carry none.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from pacs_backup.clients.orthanc_source import Getter
from pacs_backup.contracts.errors import BackupError, NotFound, SourceGone

from .base import CopyInstance, CopyStudy, SourceDoc, SourceUnavailable, StudyMatch
from .studies import matches

Poster = Callable[[str, bytes], bytes]
FIND_ROWS = 1000  # studies Orthanc hands over for one search, before they are sorted and paged


class PacsSource:
    """The clinic's Orthanc, read through ``get`` (and ``post`` for its read-only searches)."""

    def __init__(self, get: Getter, post: Poster) -> None:
        self._get, self._post = get, post

    @property
    def doc(self) -> SourceDoc:
        return SourceDoc(name="pacs", kind="pacs", label="The PACS", available=True, reason="", taken_at="")

    def _json(self, method: str, uri: str, body: Any = None) -> Any:
        try:
            raw = self._get(uri) if method == "GET" else self._post(uri, json.dumps(body).encode())
            return json.loads(raw)
        except SourceGone:
            raise NotFound("The PACS does not hold this study.") from None
        except BackupError as exc:
            raise SourceUnavailable(f"The PACS cannot be read now: {exc}") from None
        except ValueError:
            raise SourceUnavailable(f"The PACS answered {uri} with something unreadable.") from None

    def _find(self, match: StudyMatch, limit: int) -> list[dict[str, Any]]:
        query = {
            name: value
            for name, value in (
                ("StudyInstanceUID", match.study_uid),
                ("PatientID", match.patient_id),
                ("PatientName", match.patient_name),
                ("AccessionNumber", match.accession),
                ("StudyDate", f"{match.date_from}-{match.date_to}" if match.date_from or match.date_to else ""),
            )
            if value
        }
        found = self._json(
            "POST",
            "/tools/find",
            {"Level": "Study", "Expand": True, "Query": query, "Limit": limit, "CaseSensitive": False},
        )
        return [s for s in found if isinstance(s, dict)] if isinstance(found, list) else []

    def studies(self, match: StudyMatch) -> list[CopyStudy]:
        rows = [(s, _study(s)) for s in self._find(match, FIND_ROWS)]
        rows = [r for r in rows if matches(r[1], replace(match, modality=""))]  # modalities: from the series
        rows.sort(key=lambda r: (r[1]["study_date"], r[1]["study_uid"]), reverse=True)
        page: list[CopyStudy] = []
        for found, study in rows[match.offset :]:
            if len(page) == match.limit:
                break
            series = self._json("GET", f"/studies/{found['ID']}/series")
            modalities = sorted({str((s.get("MainDicomTags") or {}).get("Modality", "")) for s in series} - {""})
            study["series"] = len(series)
            study["instances"] = sum(len(s.get("Instances") or []) for s in series)
            study["modalities"] = "\\".join(modalities)
            if matches(study, match):
                page.append(study)
        return page

    def _study_id(self, study_uid: str) -> str:
        found = self._find(StudyMatch(study_uid=study_uid), 2)
        if not found:
            raise NotFound("The PACS does not hold this study.")
        return str(found[0]["ID"])

    def instances(self, study_uid: str) -> list[CopyInstance]:
        out = []
        for series in self._json("GET", f"/studies/{self._study_id(study_uid)}/series"):
            series_uid = str((series.get("MainDicomTags") or {}).get("SeriesInstanceUID", ""))
            for inst in self._json("GET", f"/series/{series['ID']}/instances"):
                out.append(
                    CopyInstance(
                        study_uid=study_uid,
                        series_uid=series_uid,
                        sop_uid=str((inst.get("MainDicomTags") or {}).get("SOPInstanceUID", "")),
                        size=int(inst.get("FileSize") or 0),
                        sha256="",  # the PACS records none
                        ref=str(inst["ID"]),
                    )
                )
        if not out:
            raise NotFound("The PACS does not hold this study.")
        return sorted(out, key=lambda i: (i["series_uid"], i["sop_uid"]))

    def read(self, instance: CopyInstance) -> bytes:
        try:
            return self._get(f"/instances/{instance['ref']}/file")
        except SourceGone:
            raise NotFound("The PACS no longer holds this image.") from None
        except BackupError as exc:
            raise SourceUnavailable(f"The PACS cannot be read now: {exc}") from None


def _study(found: dict[str, Any]) -> CopyStudy:
    tags, patient = found.get("MainDicomTags") or {}, found.get("PatientMainDicomTags") or {}
    return CopyStudy(
        study_uid=str(tags.get("StudyInstanceUID", "")),
        patient_id=str(patient.get("PatientID", "")),
        patient_name=str(patient.get("PatientName", "")),
        study_date=str(tags.get("StudyDate", "")),
        description=str(tags.get("StudyDescription", "")),
        accession=str(tags.get("AccessionNumber", "")),
        modalities="",
        series=len(found.get("Series") or []),
        instances=0,
    )
