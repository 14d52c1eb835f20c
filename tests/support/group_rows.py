"""Catalog rows of a clinic for the group service's tests: studies with the names, owners, species, ids and
dates staff search by (accents, apostrophes, umlauts, other scripts), a few instances each."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from pacs_backup.contracts.keys import instance_key
from pacs_backup.state.manifest import ManifestEntry

# (patient name, owner, species, breed, patient id, accession, study date, description, modality)
STUDIES: list[tuple[str, str, str, str, str, str, str, str, str]] = [
    ("Müller^Bella", "Hans Müller", "Canine", "Labrador", "P-200", "A-1001", "20261126", "Thorax", "DX"),
    ("O'Brien^Rex", "Siobhan O'Brien", "Canine", "Terrier", "VET1042", "A-1002", "20261001", "Hip dysplasia", "DX"),
    ("García^Luna", "José García", "Feline", "Siamese", "P-201", "B/77", "20250315", "Abdomen", "CR"),
    ("Nguyen^Max", "Lan Nguyen", "Equine", "Arabian", "EQ-9", "A-1003", "20240102", "Fetlock", "DX"),
    ("猫^Coco", "山田 花子", "Feline", "", "JP-1", "", "20261120", "胸部", "CT"),
    ("Dubois^Zoë", "Émile Dubois", "Lapine", "Lop", "P-300", "A-2000", "20261126", "Dental", "DX"),
    ("Smith^Bella", "John Smith", "Canine", "Beagle", "P-2000", "A-1001-B", "", "Knee", "MR"),
    ("Kowalski^Milo", "Anna Kowalski", "Feline", "Maine Coon", "PL 55", "A-3", "20230704", "Thorax follow-up", "US"),
]


def study_uid(clinic_number: int, index: int) -> str:
    return f"1.2.826.0.1.{clinic_number}.{index + 1}"


def clinic_entries(clinic: str, clinic_number: int, series: int = 2, per_series: int = 2) -> list[ManifestEntry]:
    """The instances of every study in :data:`STUDIES` for one clinic (UIDs differ between clinics); keys are the
    clinic's own layout (``dicom/...``), as its catalog and manifest hold them."""
    out = []
    for i, (name, owner, species, breed, pid, accession, date, desc, modality) in enumerate(STUDIES):
        study = study_uid(clinic_number, i)
        for s in range(series):
            for n in range(per_series):
                sop = f"{study}.{s + 1}.{n + 1}"
                out.append(
                    ManifestEntry(
                        orthanc_id=hashlib.sha1(f"{clinic}{sop}".encode()).hexdigest()[:36],  # noqa: S324 - an id
                        study_uid=study,
                        series_uid=f"{study}.{s + 1}",
                        sop_uid=sop,
                        patient_id=pid,
                        patient_name=name,
                        owner=owner,
                        species=species,
                        breed=breed,
                        accession=accession,
                        study_date=date,
                        description=desc,
                        modality=modality if s == 0 else "SR" if modality == "CT" else modality,
                        path="",
                        key=instance_key(study, f"{study}.{s + 1}", sop),
                        sha256=hashlib.sha256(sop.encode()).hexdigest(),
                        size=1000 + n,
                    )
                )
    return out


def feed_entries(entries: list[ManifestEntry], verified_at: float | None = None) -> list[dict[str, Any]]:
    """The entries as a clinic's feed POSTs them (with ``verified_at`` and ``copies``)."""
    at = time.time() if verified_at is None else verified_at
    return [{**e, "verified_at": at, "copies": ["bucket", "group"]} for e in entries]
