"""The role every copy plays as a source of studies, and the typed documents it hands over."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, TypedDict

from pacs_backup.contracts.errors import BackupError

SourceKind = Literal["pacs", "bucket", "drive", "offsite", "cloud-pacs"]
SOURCE_KINDS: tuple[SourceKind, ...] = ("pacs", "bucket", "drive", "offsite", "cloud-pacs")


class SourceDoc(TypedDict):
    """A source as listed by ``GET /copies`` (and the plugin's ``GET /backup/copies``).

    ``name`` is what goes in URLs: ``pacs``, ``bucket``, ``drive-<target>``, ``offsite`` (the newest
    snapshot of the offsite copy), ``offsite-<snapshot id>`` (``<target>-<snapshot id>`` for a second
    offsite target), ``cloud-pacs``. ``label`` is the sentence shown to people ("Offsite copy, snapshot of
    3 Dec 2026 02:00"); ``available`` is false with a ``reason`` a person can act on (drive not plugged in).
    """

    name: str
    kind: SourceKind
    label: str
    available: bool
    reason: str
    taken_at: str  # a snapshot's time (RFC 3339), else ""


class CopyStudy(TypedDict):
    """A study a source holds, with what QIDO-RS answers about it."""

    study_uid: str
    patient_id: str
    patient_name: str
    study_date: str
    description: str
    accession: str
    modalities: str  # backslash-separated, as DICOM writes a multi-valued string
    series: int
    instances: int


class CopyInstance(TypedDict):
    """One instance a source holds. ``sha256`` is what the copy recorded ("" when it recorded none:
    the PACS itself); ``ref`` is the source's own handle (object key, path in a snapshot, Orthanc id)."""

    study_uid: str
    series_uid: str
    sop_uid: str
    size: int
    sha256: str
    ref: str


class SourceUnavailable(BackupError):
    """The copy cannot be read now (drive unplugged, store or offsite server down); the sentence says which."""


class CopyDamaged(BackupError):
    """The bytes read do not match the sha256 the copy recorded: never shown as if they were the study."""


@dataclass(frozen=True)
class StudyMatch:
    """What a QIDO-RS study search asks for: all fields optional; text matches names and ids."""

    study_uid: str = ""
    patient_id: str = ""
    patient_name: str = ""  # DICOM wildcard matching (``*``, ``?``), case-insensitive
    accession: str = ""
    date_from: str = ""  # YYYYMMDD inclusive
    date_to: str = ""
    modality: str = ""
    limit: int = 100
    offset: int = 0


class CopySource(Protocol):
    """A copy seen as a read-only source of studies."""

    @property
    def doc(self) -> SourceDoc:
        """What this source is, for lists and for the page that says which copy is on screen."""
        ...

    def studies(self, match: StudyMatch) -> list[CopyStudy]:
        """Studies the copy holds that match (a study the copy does not hold is never listed)."""
        ...

    def instances(self, study_uid: str) -> list[CopyInstance]:
        """Every instance of the study in this copy.

        Raises:
            NotFound: the copy does not hold the study.
            SourceUnavailable: the copy cannot be read now.
        """
        ...

    def read(self, instance: CopyInstance) -> bytes:
        """The instance's exact bytes, checked against the sha256 the copy recorded.

        Raises:
            CopyDamaged: the bytes do not match what the copy recorded.
            SourceUnavailable: the copy cannot be read now.
        """
        ...


class UnavailableSource:
    """A copy that cannot be read now (a drive not plugged in, a cloud PACS reached only by C-STORE):
    listed with its reason, holding nothing, and every read refused with that reason."""

    def __init__(self, doc: SourceDoc) -> None:
        self._doc = SourceDoc(**{**doc, "available": False})

    @property
    def doc(self) -> SourceDoc:
        return self._doc

    def studies(self, match: StudyMatch) -> list[CopyStudy]:
        return []

    def instances(self, study_uid: str) -> list[CopyInstance]:
        raise SourceUnavailable(self._doc["reason"])

    def read(self, instance: CopyInstance) -> bytes:
        raise SourceUnavailable(self._doc["reason"])
