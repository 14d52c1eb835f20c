"""Synthetic DICOM instances for tests and benchmarks (pydicom), and pydicom's own sample files."""

from __future__ import annotations

import io
import os
import random
import sys
from pathlib import Path

import pydicom.data
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

ROOT_UID = "1.2.826.0.1.3680043.8.498."  # pydicom's documented UID root for generated UIDs


def new_uid() -> str:
    """Return a fresh, valid DICOM UID."""
    return str(generate_uid(prefix=ROOT_UID))


def make_instance(
    study_uid: str,
    series_uid: str,
    sop_uid: str | None = None,
    *,
    rows: int = 64,
    cols: int = 64,
    patient_name: str = "TEST^PATIENT",
    patient_id: str = "PID-1",
    accession: str = "ACC-1",
    modality: str = "CT",
    instance_number: int = 1,
    rng: random.Random | None = None,
    owner: str | None = None,
    species: str | None = None,
    breed: str | None = None,
    study_date: str = "20261127",
    nesting: int = 0,
    transfer_syntax: str = ExplicitVRLittleEndian,
) -> bytes:
    """Return the bytes of one valid DICOM Part-10 file with random 16-bit pixels.

    ``rows=cols=512`` gives a ~0.5 MB CT slice; ``rows=2500, cols=2000`` a ~10 MB radiograph.
    """
    rng = rng or random.Random()
    meta = FileMetaDataset()
    sop_class = CTImageStorage if modality == "CT" else SecondaryCaptureImageStorage
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_uid or new_uid()
    meta.TransferSyntaxUID = transfer_syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.AccessionNumber = accession
    ds.Modality = modality
    ds.StudyDate = study_date
    ds.StudyTime = "101500"
    ds.StudyDescription = "Synthetic study"
    ds.SeriesNumber = 1
    ds.InstanceNumber = instance_number
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.Rows, ds.Columns = rows, cols
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = rng.randbytes(rows * cols * 2)
    if owner is not None:
        ds.ResponsiblePerson = owner  # what veterinary modalities send as the animal's owner
    if species is not None:
        ds.PatientSpeciesDescription = species
    if breed is not None:
        ds.PatientBreedDescription = breed
    if nesting:
        ds.ReferencedStudySequence = nested_sequence(nesting)
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def nested_sequence(depth: int) -> Sequence:
    """A sequence whose items hold a sequence ... ``depth`` levels deep (built without recursion)."""
    inner = Dataset()
    inner.ReferencedSOPInstanceUID = new_uid()
    seq = Sequence([inner])
    for _ in range(depth - 1):
        item = Dataset()
        item.ReferencedStudySequence = seq
        seq = Sequence([item])
    return seq


def make_study(n_instances: int, series: int = 1, **kw: object) -> tuple[str, list[bytes]]:
    """Return ``(StudyInstanceUID, [file bytes...])`` for a study of ``n_instances`` in ``series`` series."""
    study = new_uid()
    series_uids = [new_uid() for _ in range(series)]
    files = [
        make_instance(study, series_uids[i % series], instance_number=i + 1, **kw)  # type: ignore[arg-type]
        for i in range(n_instances)
    ]
    return study, files


def pydicom_sample_files() -> list[Path]:
    """Every DICOM file shipped inside the pydicom package (compressed, multi-frame, odd charsets...)."""
    folder = Path(os.path.dirname(pydicom.data.__file__)) / "test_files"
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in (".dcm", ""))


def nested_instance(depth: int) -> bytes:
    """A small valid file whose sequences nest ``depth`` deep (what crashes a recursive DICOM reader)."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(10_000)  # pydicom writes nested sequences recursively
    try:
        return make_instance(new_uid(), new_uid(), rows=8, cols=8, nesting=depth, modality="OT")
    finally:
        sys.setrecursionlimit(old)
