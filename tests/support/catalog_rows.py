"""Catalog rows for unit tests: one backed-up instance with plain study details."""

from __future__ import annotations

from pacs_backup.state.manifest import ManifestEntry


def manifest_entry(study: str, series: str, sop: str, *, orthanc_id: str, key: str, sha256: str = "s") -> ManifestEntry:
    """One instance of ``study`` (a dog called Bella, a DX of 26 Nov 2026), as the catalog records it."""
    return ManifestEntry(
        orthanc_id=orthanc_id,
        study_uid=study,
        series_uid=series,
        sop_uid=sop,
        patient_id="P",
        patient_name="Smith^Bella",
        owner="",
        species="",
        breed="",
        accession="",
        study_date="20261126",
        description="",
        modality="DX",
        path="",
        key=key,
        sha256=sha256,
        size=1,
    )
