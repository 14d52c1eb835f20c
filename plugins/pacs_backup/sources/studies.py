"""What every source does alike with what a copy recorded: studies summed up from manifest lines, a QIDO-RS
style search over them, and the instances of a study as :class:`CopyInstance` documents."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable

from pacs_backup.contracts.errors import NotFound
from pacs_backup.state.catalog import StudySummary
from pacs_backup.state.manifest import ManifestEntry, sha256_hex

from .base import CopyDamaged, CopyInstance, CopyStudy, StudyMatch


def copy_study(s: StudySummary) -> CopyStudy:
    """A catalog's study summary as a source lists it (modalities backslash-separated, as DICOM writes them)."""
    return CopyStudy(
        study_uid=s["study_uid"],
        patient_id=s["patient_id"],
        patient_name=s["patient_name"],
        study_date=s["study_date"],
        description=s["description"],
        accession=s["accession"],
        modalities="\\".join(m for m in s["modalities"].split(",") if m),
        series=int(s["series"]),
        instances=int(s["instances"]),
    )


def summarize(entries: Iterable[ManifestEntry]) -> list[CopyStudy]:
    """One :class:`CopyStudy` per study of the manifest lines (series and instances counted)."""
    studies: dict[str, CopyStudy] = {}
    series: dict[str, set[str]] = {}
    modalities: dict[str, list[str]] = {}
    for e in entries:
        uid = e["study_uid"]
        if uid not in studies:
            studies[uid] = CopyStudy(
                study_uid=uid,
                patient_id=e["patient_id"],
                patient_name=e["patient_name"],
                study_date=e["study_date"],
                description=e["description"],
                accession=e["accession"],
                modalities="",
                series=0,
                instances=0,
            )
            series[uid], modalities[uid] = set(), []
        studies[uid]["instances"] += 1
        series[uid].add(e["series_uid"])
        if e["modality"] and e["modality"] not in modalities[uid]:
            modalities[uid].append(e["modality"])
    for uid, study in studies.items():
        study["series"] = len(series[uid])
        study["modalities"] = "\\".join(sorted(modalities[uid]))
    return list(studies.values())


def wildcard(pattern: str, value: str) -> bool:
    """DICOM matching of one value: ``*`` and ``?`` wildcards, case-insensitive; an empty pattern matches all."""
    if not pattern:
        return True
    plain = pattern.replace("[", "[[]")  # brackets are literal in DICOM, not a character class
    return fnmatch.fnmatchcase(value.casefold(), plain.casefold())


def matches(study: CopyStudy, match: StudyMatch) -> bool:
    """Whether a study fits every field asked for."""
    if match.study_uid and study["study_uid"] != match.study_uid:
        return False
    if not (wildcard(match.patient_id, study["patient_id"]) and wildcard(match.accession, study["accession"])):
        return False
    if match.patient_name and not wildcard(match.patient_name, study["patient_name"]):
        return False
    date = study["study_date"]
    if match.date_from and (not date or date < match.date_from):
        return False
    if match.date_to and (not date or date > match.date_to):
        return False
    return not match.modality or match.modality.upper() in study["modalities"].upper().split("\\")


def select(studies: Iterable[CopyStudy], match: StudyMatch) -> list[CopyStudy]:
    """The studies that fit, newest study date first, then ``offset`` and ``limit`` applied."""
    found = sorted((s for s in studies if matches(s, match)), key=lambda s: (s["study_date"], s["study_uid"]))
    found.reverse()
    return found[match.offset : match.offset + match.limit]


def copy_instance(e: ManifestEntry, ref: str) -> CopyInstance:
    """A manifest line as an instance of a source, with the source's own handle."""
    return CopyInstance(
        study_uid=e["study_uid"],
        series_uid=e["series_uid"],
        sop_uid=e["sop_uid"],
        size=int(e["size"]),
        sha256=e["sha256"],
        ref=ref,
    )


def study_instances(
    entries: Iterable[ManifestEntry], study_uid: str, ref: Callable[[ManifestEntry], str], where: str
) -> list[CopyInstance]:
    """The study's instances among the lines, ordered by series then instance.

    Raises:
        NotFound: no line of the study (``where`` names the copy in the sentence).
    """
    found = sorted(
        (copy_instance(e, ref(e)) for e in entries if e["study_uid"] == study_uid),
        key=lambda i: (i["series_uid"], i["sop_uid"]),
    )
    if not found:
        raise NotFound(f"{where} does not hold this study.")
    return found


def verified(data: bytes, expected: str, what: str) -> bytes:
    """``data`` when its sha256 is ``expected``.

    Raises:
        CopyDamaged: a sentence naming ``what`` (the copy and the instance).
    """
    if sha256_hex(data) != expected:
        raise CopyDamaged(
            f"{what} does not match the checksum recorded when it was backed up: this copy of the image is "
            "damaged or was changed, so it is not shown. Use another copy, and run a restore test of this one."
        )
    return data
