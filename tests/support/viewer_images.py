"""Radiographs for the viewer's tests: a known picture (a gradient with a bright square) in a CR instance with
Pixel Spacing, and the same compressed by DCMTK (RLE, JPEG baseline, JPEG lossless, JPEG-LS) as modalities send
them."""

from __future__ import annotations

import io
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ComputedRadiographyImageStorage, ExplicitVRLittleEndian

from tests.support.dicomgen import new_uid

# dcmcrle / dcmcjpeg options -> the transfer syntax they write.
COMPRESSIONS = {
    "rle": ("dcmcrle", []),
    "jpeg-baseline": ("dcmcjpeg", ["+eb"]),
    "jpeg-lossless": ("dcmcjpeg", ["+el"]),
    "jpeg-ls": ("dcmcjpls", []),  # not among dwv 0.36's decoders: the viewer says so
}


def picture(rows: int, cols: int, bits: int) -> np.ndarray:
    """A left-to-right gradient with a bright square in the middle: never uniform, easy to recognise."""
    top = (1 << bits) - 1
    img = np.tile(np.linspace(0, top * 0.6, cols), (rows, 1))
    img[rows // 3 : 2 * rows // 3, cols // 3 : 2 * cols // 3] = top
    return img.astype(np.uint16 if bits > 8 else np.uint8)


def radiograph(
    study_uid: str,
    series_uid: str,
    *,
    series_number: int = 1,
    instance_number: int = 1,
    rows: int = 512,
    cols: int = 400,
    bits: int = 12,
    patient_name: str = "Rex^Buddy",
    owner: str = "Smith^Anna",
    description: str = "Thorax two views",
) -> bytes:
    """One CR instance (16-bit words, ``bits`` stored, or 8-bit) with Pixel Spacing 0.2 mm."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ComputedRadiographyImageStorage
    meta.MediaStorageSOPInstanceUID = new_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = study_uid, series_uid
    ds.PatientName, ds.PatientID, ds.AccessionNumber = patient_name, "VIEW-1", "ACC-VIEW"
    ds.ResponsiblePerson, ds.PatientSpeciesDescription = owner, "Canine"
    ds.Modality, ds.StudyDate, ds.StudyTime, ds.StudyDescription = "CR", "20261201", "093000", description
    ds.SeriesNumber, ds.InstanceNumber = series_number, instance_number
    ds.SeriesDescription = f"View {series_number}"
    ds.Rows, ds.Columns = rows, cols
    ds.PixelSpacing = [0.2, 0.2]
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    words = 16 if bits > 8 else 8
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = words, bits, bits - 1, 0
    ds.PixelData = picture(rows, cols, bits).tobytes()
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def compress(data: bytes, kind: str) -> bytes:
    """``data`` compressed by DCMTK (``kind`` one of COMPRESSIONS); DCMTK is a program of the test machine."""
    program, args = COMPRESSIONS[kind]
    with tempfile.TemporaryDirectory() as work:
        src, dst = Path(work) / "in.dcm", Path(work) / "out.dcm"
        src.write_bytes(data)
        subprocess.run([program, *args, str(src), str(dst)], check=True, capture_output=True, timeout=60)
        return dst.read_bytes()
