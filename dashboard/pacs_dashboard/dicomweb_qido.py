"""QIDO-RS of the DICOMweb service of copies: a study search's parameters as a StudyMatch, a study as DICOM
JSON, the series of a study from its instances' headers, and ``limit``/``offset``.

Matching keys are taken by keyword or by tag (``PatientID`` or ``00100020``); keys not listed here (and
``includefield``, ``fuzzymatching``) are accepted and ignored.
"""

from __future__ import annotations

import re
from typing import TypeVar

from pacs_backup.dicom.web_json import SERIES_TAGS, JsonDataset, element, pick
from pacs_backup.sources.base import CopyInstance, CopyStudy, StudyMatch

from .backend_api import BackendRefused
from .copy_reader import CopyReader

MAX_LIMIT = 1000
_TAGS = {
    "0020000D": "STUDYINSTANCEUID",
    "00100020": "PATIENTID",
    "00100010": "PATIENTNAME",
    "00080050": "ACCESSIONNUMBER",
    "00080020": "STUDYDATE",
    "00080061": "MODALITIESINSTUDY",
    "0020000E": "SERIESINSTANCEUID",
    "00080060": "MODALITY",
    "00200011": "SERIESNUMBER",
    "00080018": "SOPINSTANCEUID",
}
_DATE = re.compile(r"(\d{8})?(-)?(\d{8})?")
T = TypeVar("T")


def query(args: list[tuple[str, str]]) -> dict[str, str]:
    """The matching keys of a query string, by upper-case keyword (the first value of each)."""
    out: dict[str, str] = {}
    for key, value in args:
        name = _TAGS.get(key.upper(), key.upper())
        out.setdefault(name, value.strip())
    return out


def limit_offset(args: list[tuple[str, str]]) -> tuple[int, int]:
    wanted = query(args)
    try:
        limit = int(wanted.get("LIMIT") or 100)
        offset = int(wanted.get("OFFSET") or 0)
    except ValueError:
        raise BackendRefused("limit and offset are whole numbers (e.g. ?limit=25&offset=50).") from None
    if limit < 1 or offset < 0:
        raise BackendRefused("limit is at least 1 and offset at least 0.")
    return min(limit, MAX_LIMIT), offset


def window(rows: list[T], args: list[tuple[str, str]]) -> list[T]:
    limit, offset = limit_offset(args)
    return rows[offset : offset + limit]


def study_match(args: list[tuple[str, str]]) -> StudyMatch:
    """A QIDO-RS study search as a :class:`StudyMatch`. Raises BackendRefused (a sentence) for a bad date."""
    wanted = query(args)
    limit, offset = limit_offset(args)
    date = wanted.get("STUDYDATE", "")
    found = _DATE.fullmatch(date)
    if found is None or (found.group(2) is None and found.group(3) is not None):
        raise BackendRefused("StudyDate is a date (YYYYMMDD) or a range of them (YYYYMMDD-YYYYMMDD).")
    first, dash, last = found.group(1) or "", found.group(2), found.group(3) or ""
    return StudyMatch(
        study_uid=wanted.get("STUDYINSTANCEUID", ""),
        patient_id=wanted.get("PATIENTID", ""),
        patient_name=wanted.get("PATIENTNAME", ""),
        accession=wanted.get("ACCESSIONNUMBER", ""),
        date_from=first,
        date_to=last if dash else first,
        modality=wanted.get("MODALITIESINSTUDY", ""),
        limit=limit,
        offset=offset,
    )


def qido_studies(
    reader: CopyReader, source: str, args: list[tuple[str, str]], only_study: str | None
) -> list[CopyStudy]:
    """The studies of the copy that match (with ``only_study``: that study, when it matches, and no other)."""
    match = study_match(args)
    if only_study is not None:
        if match.study_uid and match.study_uid != only_study:
            return []
        match = StudyMatch(**{**match.__dict__, "study_uid": only_study})
    found = reader.studies(source, match)
    return [s for s in found if only_study is None or s["study_uid"] == only_study]


def study_json(s: CopyStudy, base: str) -> JsonDataset:
    """A study as QIDO-RS answers it (PS3.18 table 10.6.1-5), with its RetrieveURL below ``base``."""
    return {
        "00080020": element("DA", s["study_date"]),
        "00080050": element("SH", s["accession"]),
        "00080061": element("CS", *[m for m in s["modalities"].split("\\") if m]),
        "00081030": element("LO", s["description"]),
        "00081190": element("UR", f"{base}/studies/{s['study_uid']}"),
        "00100010": element("PN", s["patient_name"]),
        "00100020": element("LO", s["patient_id"]),
        "0020000D": element("UI", s["study_uid"]),
        "00201206": element("IS", int(s["series"])),
        "00201208": element("IS", int(s["instances"])),
    }


def qido_series(
    metas: list[tuple[CopyInstance, JsonDataset]], args: list[tuple[str, str]], series_base: str
) -> list[JsonDataset]:
    """One entry per series (its first instance's series attributes and the count of its instances)."""
    wanted = query(args)
    rows: dict[str, JsonDataset] = {}
    counts: dict[str, int] = {}
    for inst, meta in metas:
        uid = inst["series_uid"]
        counts[uid] = counts.get(uid, 0) + 1
        if uid not in rows:
            rows[uid] = pick(meta, SERIES_TAGS)
            rows[uid]["0020000E"] = element("UI", uid)
            rows[uid]["00081190"] = element("UR", f"{series_base}/{uid}")
    out = []
    for uid, row in rows.items():
        row["00201209"] = element("IS", counts[uid])
        values = {
            "SERIESINSTANCEUID": uid,
            "MODALITY": _first(row, "00080060"),
            "SERIESNUMBER": _first(row, "00200011"),
        }
        if all(wanted.get(k, v).upper() == v.upper() for k, v in values.items()):
            out.append(dict(sorted(row.items())))
    out.sort(key=lambda r: (_number(_first(r, "00200011")), _first(r, "0020000E")))
    return window(out, args)


def _first(row: JsonDataset, tag: str) -> str:
    values = row.get(tag, {}).get("Value") or [""]
    return str(values[0])


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return float("inf")
