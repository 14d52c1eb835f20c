"""A study's ZIP made from a stand-in copy reader (export.py): the files as read, a DICOMDIR DCMTK and
dicom3tools accept, pictures, a README in plain words; damaged copies, limits and clean-up."""

from __future__ import annotations

import hashlib
import io
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from PIL import Image
from pydicom import dcmread
from pydicom.uid import JPEG2000Lossless

from pacs_backup.contracts.errors import NotFound
from pacs_backup.dicom.render import render_frame
from pacs_backup.settings.limits import Limits
from pacs_backup.sources.base import CopyDamaged, CopyInstance
from pacs_dashboard.export import EXPORTS_AT_ONCE, ExportRefused, build, download_name
from tests.support.compressed import dcmtk_compress, j2k_compress
from tests.support.dicomgen import make_instance, new_uid


class FakeReader:
    """A copy holding the given files; ``damaged`` SOP instance UIDs fail their checksum."""

    def __init__(self, files: list[bytes]) -> None:
        self.files = {str(dcmread(io.BytesIO(f), stop_before_pixels=True).SOPInstanceUID): f for f in files}
        self.damaged: set[str] = set()

    def instances(self, source: str, study_uid: str) -> list[CopyInstance]:
        out = []
        for sop, data in self.files.items():
            ds = dcmread(io.BytesIO(data), stop_before_pixels=True)
            if ds.StudyInstanceUID == study_uid:
                out.append(CopyInstance(study_uid=study_uid, series_uid=str(ds.SeriesInstanceUID), sop_uid=sop,
                                        size=len(data), sha256="", ref=sop))  # fmt: skip
        if not out:
            raise NotFound("This copy does not hold this study.")
        return out

    def read(self, source: str, study_uid: str, sop_uid: str) -> bytes:
        if sop_uid in self.damaged:
            raise CopyDamaged("The image does not match the checksum recorded when it was backed up.")
        return self.files[sop_uid]


def mixed_study() -> tuple[str, list[bytes], set[str]]:
    """Three series: native, compressed by DCMTK and by openjpeg, and two images no picture can be made of.
    Returns the study UID, the files and the SOP UIDs of those two."""
    study, series = new_uid(), [new_uid() for _ in range(3)]

    def one(s: int, n: int, **kw: object) -> bytes:
        data = make_instance(study, series[s], instance_number=n, rows=200, cols=300, accession="ACC 42/7",
                             patient_name="Müller^Bella", **kw)  # type: ignore[arg-type]  # fmt: skip
        ds = dcmread(io.BytesIO(data))
        ds.SeriesNumber = s + 1
        buf = io.BytesIO()
        ds.save_as(buf)
        return buf.getvalue()

    files = [
        one(0, 2),
        one(0, 1, transfer_syntax="1.2.840.10008.1.2"),
        dcmtk_compress("jpeg-lossless", one(1, 1)),
        dcmtk_compress("jpeg-ls-lossless", one(1, 2)),
        dcmtk_compress("rle", one(1, 3)),
        j2k_compress(one(2, 1, modality="OT"), JPEG2000Lossless),
    ]
    cut = dcmread(io.BytesIO(one(2, 2, modality="OT")))
    cut.PixelData = cut.PixelData[:1000]  # damaged in the modality: too short
    empty = dcmread(io.BytesIO(one(2, 3, modality="OT")))
    del empty.PixelData
    for ds in (cut, empty):
        buf = io.BytesIO()
        ds.save_as(buf)
        files.append(buf.getvalue())
    return study, files, {str(cut.SOPInstanceUID), str(empty.SOPInstanceUID)}


def unzip(chunks: list[bytes], into: Path) -> zipfile.ZipFile:
    zf = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    zf.extractall(into)
    return zf


def test_export_zip_holds_every_file_as_read_a_valid_dicomdir_pictures_and_readme(tmp_path):
    study, files, undrawable = mixed_study()
    work = tmp_path / "work"
    made = build(FakeReader(files), "bucket", study, work, Limits(), 1 << 30)
    assert made.filename == "study-2026-11-27-ACC427.zip"  # the date and accession only: no patient name
    zf = unzip(list(made.chunks()), tmp_path / "out")
    assert list(work.iterdir()) == []  # the work folder is gone once the ZIP is sent
    out = tmp_path / "out"
    dicom = sorted((out / "DICOM").iterdir())
    assert all(len(p.name) <= 8 and p.name.isupper() for p in dicom)
    assert sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in dicom) == sorted(
        hashlib.sha256(f).hexdigest() for f in files
    )
    assert all(zf.getinfo(f"DICOM/{p.name}").compress_type == zipfile.ZIP_STORED for p in dicom)

    dump = subprocess.run(("dcmdump", "-q", str(out / "DICOMDIR")), capture_output=True, text=True, timeout=60)
    assert dump.returncode == 0, dump.stderr
    for f in files:
        assert str(dcmread(io.BytesIO(f), stop_before_pixels=True).SOPInstanceUID) in dump.stdout
    assert dump.stdout.count("ReferencedSOPInstanceUIDInFile") == len(files)
    assert shutil.which("dciodvfy"), "dciodvfy (Debian's dicom3tools, dev/setup) is needed"
    check = subprocess.run(("dciodvfy", str(out / "DICOMDIR")), capture_output=True, text=True, timeout=60)
    assert check.returncode == 0 and "Error" not in check.stdout + check.stderr, check.stdout + check.stderr

    pictures = sorted((out / "PICTURES").iterdir())
    assert [p.name for p in pictures] == ["1-1.png", "1-2.png", "2-1.png", "2-2.png", "2-3.png", "3-1.png"]
    # In order of instance number: the second file read is image 1 of series 1.
    assert pictures[0].read_bytes() == render_frame(files[1]) != pictures[1].read_bytes()
    for p in pictures:
        with Image.open(p) as im:
            assert im.size == (300, 200)
    readme = (out / "README.txt").read_text(encoding="utf-8")
    assert "Synthetic study" in readme and "27 Nov 2026" in readme and "8 images in 3 series" in readme
    assert "DICOMDIR" in readme and "PICTURES" in readme and "local backup copy" in readme
    assert "Müller" not in readme and "Bella" not in readme  # no patient's name in the plain-words file
    assert "IMAGES WITHOUT A PICTURE" in readme
    assert "series 3 (OT), image 2: The image in this file could not be decoded" in readme
    assert "series 3 (OT), image 3: This file holds no image" in readme
    assert len(undrawable) == 2
    assert "\r\n" in readme.replace("\n", "\r\n")  # CRLF on disk, for every editor
    assert b"\r\n" in (out / "README.txt").read_bytes()


def test_export_big_images_are_jpeg(tmp_path):
    study, series = new_uid(), new_uid()
    big = make_instance(study, series, rows=2100, cols=2000)
    made = build(FakeReader([big]), "pacs", study, tmp_path / "w", Limits(), 1 << 30)
    unzip(list(made.chunks()), tmp_path / "out")
    (picture,) = (tmp_path / "out" / "PICTURES").iterdir()
    assert picture.name == "1-1.jpg"
    with Image.open(picture) as im:
        assert im.format == "JPEG" and im.size == (2000, 2100)


def test_export_a_damaged_copy_aborts_and_leaves_nothing(tmp_path):
    study, files, _ = mixed_study()
    reader = FakeReader(files)
    reader.damaged.add(next(iter(reader.files)))
    work = tmp_path / "work"
    with pytest.raises(CopyDamaged, match="checksum"):
        build(reader, "bucket", study, work, Limits(), 1 << 30)
    assert list(work.iterdir()) == []
    reader.damaged.clear()
    for _ in range(EXPORTS_AT_ONCE + 1):  # the failed export gave its slot back
        build(reader, "bucket", study, work, Limits(), 1 << 30).cleanup()


def test_export_refuses_too_large_and_too_many_at_once(tmp_path):
    study, files, _ = mixed_study()
    reader = FakeReader(files)
    with pytest.raises(ExportRefused, match="DASHBOARD_EXPORT_MAX_MB") as too_big:
        build(reader, "pacs", study, tmp_path, Limits(), 1000)
    assert too_big.value.status == 413
    held = [build(reader, "pacs", study, tmp_path, Limits(), 1 << 30) for _ in range(EXPORTS_AT_ONCE)]
    with pytest.raises(ExportRefused, match="being exported right now") as busy:
        build(reader, "pacs", study, tmp_path, Limits(), 1 << 30)
    assert busy.value.status == 503
    for h in held:
        h.cleanup()
        h.cleanup()  # twice is harmless (the download's end and the response's close both call it)
    build(reader, "pacs", study, tmp_path, Limits(), 1 << 30).cleanup()
    with pytest.raises(NotFound):
        build(reader, "pacs", new_uid(), tmp_path, Limits(), 1 << 30)
    assert not list(tmp_path.glob("export-*"))


def test_export_download_name_never_carries_more_than_date_and_accession():
    assert download_name("20261127", "A-1") == "study-2026-11-27-A-1.zip"
    assert download_name("", "") == "study.zip"
    assert download_name("2026", '../"; x=\r\nDoe^John') == "study-xDoeJohn.zip"
