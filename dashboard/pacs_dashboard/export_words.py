"""The README of a study's ZIP, in plain words: what is inside, how to open it, and which images have no picture.

It names only the study (its description, date, accession number and kinds of images), never a patient or
an owner: the DICOM files carry those for whoever opens them in a viewer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class Picture(NamedTuple):
    """One image of the study: its series and place in it, and its picture (or why it has none)."""

    series: int
    number: int
    series_description: str
    modality: str
    name: str  # PICTURES/1-01.png, "" when none was drawn
    problem: str  # why no picture was drawn


@dataclass
class StudyFacts:
    """What the README says about the study, gathered while its files are read."""

    source: str
    description: str = ""
    study_date: str = ""  # YYYYMMDD
    accession: str = ""
    instances: int = 0
    series: int = 0
    modalities: list[str] = field(default_factory=list)
    pictures: list[Picture] = field(default_factory=list)
    not_drawn: list[Picture] = field(default_factory=list)


def source_words(source: str) -> str:
    """The copy a ZIP was read from, as staff call it."""
    if source == "pacs":
        return "the PACS"
    if source == "bucket":
        return "the local backup copy"
    if source.startswith("drive-"):
        return "a backup drive"
    if source == "cloud-pacs":
        return "the cloud PACS"
    if source.startswith("offsite"):
        return "an offsite backup snapshot"
    return f"the backup copy '{source}'"


def date_words(study_date: str) -> str:
    """``20261127`` as ``27 Nov 2026``; anything else as it is (or "date not recorded")."""
    if len(study_date) == 8 and study_date.isdigit() and 1 <= int(study_date[4:6]) <= 12:
        return f"{int(study_date[6:])} {_MONTHS[int(study_date[4:6]) - 1]} {study_date[:4]}"
    return study_date or "date not recorded"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def readme(facts: StudyFacts) -> str:
    """The README.txt of the ZIP."""
    title = facts.description or "Imaging study"
    lines = [
        f"{title}, {date_words(facts.study_date)}",
        "=" * min(len(title) + 2 + len(date_words(facts.study_date)), 78),
        "",
        "This folder holds one imaging study (X-rays or other images) and nothing about any other patient.",
        "",
        f"Study: {title}",
        f"Date: {date_words(facts.study_date)}",
    ]
    if facts.accession:
        lines.append(f"Accession number: {facts.accession}")
    if facts.modalities:
        lines.append(f"Kinds of images: {', '.join(facts.modalities)}")
    lines += [
        f"Contents: {_plural(facts.instances, 'image')} in {facts.series} series",
        f"Copied from {source_words(facts.source)} of the clinic; each DICOM file is exactly as stored there.",
        "",
        "HOW TO LOOK AT THE IMAGES",
        "",
        "1. Without special software: open the PICTURES folder. Each image is a picture (PNG, or JPEG for",
        "   large ones) at full size that any computer, tablet or phone can show. Pictures are for looking",
        "   only: they are not meant for a diagnosis, and moving images show their first frame.",
        "2. With a DICOM viewer (what vets and doctors use, for example Horos, OsiriX, RadiAnt, Weasis or",
        "   MicroDicom): open the DICOMDIR file, or the whole folder, in the viewer. The DICOM folder holds",
        "   the original images with all their details; DICOMDIR is their index.",
        "",
        "If you received this folder as a ZIP file, unpack it first (on most computers: right-click, then",
        "'Extract all' or 'Open').",
        "",
        "WHAT IS IN THIS FOLDER",
        "",
        "README.txt    this text",
        "DICOMDIR      the index of the DICOM files, read by DICOM viewers",
        "DICOM/        the original images (DICOM files; their names are short on purpose)",
        "PICTURES/     one picture per image, named <series>-<image>: 1-2.png is series 1, image 2",
    ]
    if facts.pictures:
        lines += ["", "PICTURES", ""]
        lines += [f"{p.name:<24} series {p.series}{_series_words(p)}, image {p.number}" for p in facts.pictures]
    if facts.not_drawn:
        lines += [
            "",
            "IMAGES WITHOUT A PICTURE",
            "",
            "These images are in the DICOM folder but no picture could be made of them; open them in a DICOM",
            "viewer:",
            "",
        ]
        lines += [f"- series {p.series}{_series_words(p)}, image {p.number}: {p.problem}" for p in facts.not_drawn]
    return "\n".join(lines) + "\n"


def _series_words(p: Picture) -> str:
    said = " ".join(x for x in (p.modality, p.series_description) if x)
    return f" ({said})" if said else ""
