"""A study from any copy as a ZIP anyone can use: the DICOM files with a DICOMDIR, pictures and a README.

:func:`build` reads every instance of the study from one copy (through the dashboard's copy reader, which
checks each against the checksum the copy recorded) into a work folder of its own under the dashboard's
data folder: ``DICOM/I0000001``... (names of at most 8 characters, as a DICOMDIR needs), the ``DICOMDIR``
made by DCMTK's ``dcmmkdir``, ``PICTURES/<series>-<n>.png`` (JPEG for big images) drawn full size by
:func:`pacs_backup.dicom.render.render_frame`, and ``README.txt`` in plain words (the words: export_words.py).
:meth:`Export.chunks` then streams the ZIP (DICOM files stored as they are, not recompressed) and the work
folder is deleted however the download ends.

Bounded: a study larger than ``DASHBOARD_EXPORT_MAX_MB`` is refused, so is one the free disk cannot hold
twice; at most :data:`EXPORTS_AT_ONCE` exports are made at once; folders left by a crash are deleted by the
next export.
"""

from __future__ import annotations

import io
import logging
import os
import secrets
import shutil
import threading
import time
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Protocol

from pydicom import dcmread
from pydicom.errors import InvalidDicomError

from pacs_backup.clients.runner import run
from pacs_backup.contracts.errors import BackupError, NotFound
from pacs_backup.dicom.preview import NoPreview, PreviewsBusy
from pacs_backup.dicom.render import render_frame
from pacs_backup.settings.env_values import number
from pacs_backup.settings.limits import MB, Limits
from pacs_backup.sources.base import CopyInstance

from .export_words import Picture, StudyFacts, readme

log = logging.getLogger(__name__)

EXPORTS_AT_ONCE = 2
BIG_PICTURE_PIXELS = 4_000_000  # images larger than this are saved as JPEG (a PNG would be several MB)
STALE_S = 24 * 3600  # a work folder older than this was left by a crash
DCMMKDIR_TIMEOUT_S = 600
FILESET_ID = "STUDY"
_CHUNK = 1024 * 1024
_HEADER_TAGS = (
    "StudyDescription",
    "StudyDate",
    "AccessionNumber",
    "SeriesInstanceUID",
    "SeriesNumber",
    "SeriesDescription",
    "Modality",
    "InstanceNumber",
    "Rows",
    "Columns",
    "NumberOfFrames",
)


class StudyReader(Protocol):
    """What an export needs of the copy reader (:class:`pacs_dashboard.copy_reader.CopyReader`)."""

    def instances(self, source: str, study_uid: str) -> list[CopyInstance]: ...

    def read(self, source: str, study_uid: str, sop_uid: str) -> bytes: ...


class ExportRefused(BackupError):
    """No ZIP can be made now; ``str()`` says why and what to do, ``status`` is the HTTP answer."""

    def __init__(self, sentence: str, status: int) -> None:
        super().__init__(sentence)
        self.status = status


def max_export_bytes(env: Mapping[str, str]) -> int:
    """DASHBOARD_EXPORT_MAX_MB: the largest study (sum of its files) an export takes (default 4096 MB)."""
    return int(number(env, "DASHBOARD_EXPORT_MAX_MB", 4096, 1, 1_048_576) * MB)


_slots = threading.BoundedSemaphore(EXPORTS_AT_ONCE)


@dataclass
class _Item:
    """One instance as written to the work folder."""

    path: str  # DICOM/I0000001
    series_uid: str
    series_number: int | None
    series_description: str
    modality: str
    instance_number: int | None
    sop_uid: str
    picture: str = ""  # the work folder's temporary name of its picture, "" when none was drawn
    problem: str = ""  # why no picture was drawn


@dataclass
class Export:
    """A made export: its work folder, the download's file name and what the README says."""

    folder: Path
    filename: str
    entries: list[str]  # names inside the ZIP, in order (paths relative to ``folder``)
    facts: StudyFacts
    _released: bool = field(default=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def chunks(self) -> Iterator[bytes]:
        """The ZIP, a piece at a time (never a whole file in memory); the folder is deleted at the end."""
        sink = _Sink()
        try:
            with zipfile.ZipFile(sink, "w", allowZip64=True) as zf:
                for name in self.entries:
                    info = zipfile.ZipInfo.from_file(self.folder / name, name)
                    info.compress_type = zipfile.ZIP_DEFLATED if name == "README.txt" else zipfile.ZIP_STORED
                    with (self.folder / name).open("rb") as src, zf.open(info, "w") as dest:
                        while block := src.read(_CHUNK):
                            dest.write(block)
                            yield sink.take()
                    yield sink.take()
            yield sink.take()
        finally:
            self.cleanup()

    def cleanup(self) -> None:
        """Delete the work folder and free the export's slot (once, whoever calls first)."""
        with self._lock:
            if self._released:
                return
            self._released = True
        shutil.rmtree(self.folder, ignore_errors=True)
        _slots.release()


class _Sink(io.RawIOBase):
    """Where zipfile writes: bytes kept until taken, and no seeking (so zipfile streams)."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._parts.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


def build(reader: StudyReader, source: str, study_uid: str, work_root: Path, limits: Limits, max_bytes: int) -> Export:
    """Read the study from ``source`` and make its export in a new folder under ``work_root``.

    Raises:
        ExportRefused: too large, no disk space, too many exports at once, a file that is not DICOM, or the
            DICOMDIR could not be made.
        NotFound, SourceUnavailable, CopyDamaged: from the reader (the copy lacks the study, cannot be read
            now, or a file does not match its checksum): nothing is kept.
    """
    if not _slots.acquire(blocking=False):
        raise ExportRefused(f"{EXPORTS_AT_ONCE} studies are being exported right now. Try again in a few minutes.", 503)
    folder = work_root / f"export-{secrets.token_hex(8)}"
    export = Export(folder, "study.zip", [], StudyFacts(source=source))
    try:
        _remove_stale(work_root)
        listing = sorted(reader.instances(source, study_uid), key=lambda i: (i["series_uid"], i["sop_uid"]))
        if not listing:
            raise NotFound("This copy holds no image of the study.")
        _check_space(work_root, sum(max(i["size"], 0) for i in listing), max_bytes)
        (folder / "DICOM").mkdir(parents=True)
        (folder / "PICTURES").mkdir()
        items, facts = _fetch(reader, source, study_uid, listing, folder, limits, max_bytes)
        _dicomdir(folder)
        export.facts = facts
        export.entries = ["README.txt", "DICOMDIR", *(i.path for i in items), *_name_pictures(folder, items, facts)]
        (folder / "README.txt").write_text(readme(facts), encoding="utf-8", newline="\r\n")
        export.filename = download_name(facts.study_date, facts.accession)
        return export
    except BaseException:
        export.cleanup()
        raise


def download_name(study_date: str, accession: str) -> str:
    """``study-2026-11-27-ACC42.zip``: the date and accession only (no patient names), in safe characters."""
    parts = ["study"]
    if len(study_date) == 8 and study_date.isdigit():
        parts.append(f"{study_date[:4]}-{study_date[4:6]}-{study_date[6:]}")
    safe = "".join(c for c in accession if c.isascii() and (c.isalnum() or c in "-_"))[:32]
    if safe:
        parts.append(safe)
    return "-".join(parts) + ".zip"


def _remove_stale(work_root: Path) -> None:
    work_root.mkdir(parents=True, exist_ok=True)
    for old in work_root.glob("export-*"):
        try:
            if time.time() - old.stat().st_mtime > STALE_S:
                shutil.rmtree(old, ignore_errors=True)
        except OSError:
            continue


def _check_space(work_root: Path, size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise ExportRefused(
            f"This study is too large to download as one ZIP ({size / MB:,.0f} MB; the limit is "
            f"{max_bytes // MB:,} MB, DASHBOARD_EXPORT_MAX_MB). Ask the technician to copy it from the PACS.",
            413,
        )
    free = shutil.disk_usage(work_root).free
    if free < 2 * size + 64 * MB:
        raise ExportRefused(
            f"The dashboard's disk has too little free space to prepare this study ({free / MB:,.0f} MB free, "
            f"about {(2 * size + 64 * MB) / MB:,.0f} MB needed). Ask the technician to free some space.",
            507,
        )


def _fetch(
    reader: StudyReader,
    source: str,
    study_uid: str,
    listing: list[CopyInstance],
    folder: Path,
    limits: Limits,
    max_bytes: int,
) -> tuple[list[_Item], StudyFacts]:
    """Write each instance as it was read, and draw its first frame while its bytes are at hand."""
    items: list[_Item] = []
    facts = StudyFacts(source=source)
    total = 0
    wait = replace(limits, preview_wait_s=max(limits.preview_wait_s, 120.0))  # an export waits its turn to draw
    for n, inst in enumerate(listing, start=1):
        data = reader.read(source, study_uid, inst["sop_uid"])
        total += len(data)
        if total > max_bytes:
            _check_space(folder, total, max_bytes)
        try:
            ds = dcmread(io.BytesIO(data), stop_before_pixels=True, specific_tags=list(_HEADER_TAGS))
        except (InvalidDicomError, ValueError, TypeError, KeyError, IndexError, AttributeError, EOFError, OSError):
            raise ExportRefused(
                "One of the study's files in this copy is not a DICOM file that can be read, so no ZIP was made. "
                "Export it from another copy, and ask the technician to check this one.",
                422,
            ) from None
        item = _Item(
            path=f"DICOM/I{n:07d}",
            series_uid=str(ds.get("SeriesInstanceUID") or inst["series_uid"]),
            series_number=_int(ds.get("SeriesNumber")),
            series_description=str(ds.get("SeriesDescription") or "")[:64],
            modality=str(ds.get("Modality") or "")[:16],
            instance_number=_int(ds.get("InstanceNumber")),
            sop_uid=inst["sop_uid"],
        )
        (folder / item.path).write_bytes(data)
        facts.description = facts.description or str(ds.get("StudyDescription") or "")[:200]
        facts.study_date = facts.study_date or str(ds.get("StudyDate") or "")[:8]
        facts.accession = facts.accession or str(ds.get("AccessionNumber") or "")[:64]
        if item.modality and item.modality not in facts.modalities:
            facts.modalities.append(item.modality)
        big = (_int(ds.get("Rows")) or 0) * (_int(ds.get("Columns")) or 0) > BIG_PICTURE_PIXELS
        ext, media = ("jpg", "image/jpeg") if big else ("png", "image/png")
        try:
            (folder / "PICTURES" / f"tmp{n:07d}.{ext}").write_bytes(render_frame(data, 0, media, limits=wait))
            item.picture = f"PICTURES/tmp{n:07d}.{ext}"
        except (NoPreview, PreviewsBusy) as exc:
            item.problem = str(exc)
        items.append(item)
    facts.instances = len(items)
    return items, facts


def _int(value: object) -> int | None:
    try:
        return int(str(value)) if value not in (None, "") else None
    except ValueError:
        return None


def _name_pictures(folder: Path, items: list[_Item], facts: StudyFacts) -> list[str]:
    """Give each picture its name, ``PICTURES/<series>-<n>``, series in order of their numbers and images in
    order of theirs; fill the README's list of pictures and of images not drawn. Returns the names in order."""
    by_series: dict[str, list[_Item]] = {}
    for item in items:
        by_series.setdefault(item.series_uid, []).append(item)
    order = sorted(by_series.values(), key=lambda s: (s[0].series_number is None, s[0].series_number or 0))
    series_width = len(str(len(order)))
    names: list[str] = []
    for s, members in enumerate(order, start=1):
        members.sort(key=lambda i: (i.instance_number is None, i.instance_number or 0, i.sop_uid))
        width = len(str(len(members)))
        for k, item in enumerate(members, start=1):
            label = Picture(s, k, item.series_description, item.modality, "", item.problem)
            if item.picture:
                name = f"PICTURES/{s:0{series_width}d}-{k:0{width}d}{Path(item.picture).suffix}"
                (folder / item.picture).rename(folder / name)
                names.append(name)
                facts.pictures.append(label._replace(name=name))
            else:
                facts.not_drawn.append(label)
    facts.series = len(order)
    return names


def _dicomdir(folder: Path) -> None:
    """DCMTK's dcmmkdir writes the DICOMDIR for every file under DICOM/ (any transfer syntax; type 1 values a
    file lacks are invented in the DICOMDIR only: the files stay byte for byte as the copy holds them)."""
    argv = ("dcmmkdir", "--fileset-id", FILESET_ID, "--invent", "--no-xfer-check", "--no-encoding-check",
            "--no-resolution-check", "--output-file", "DICOMDIR", "--recurse", "DICOM")  # fmt: skip
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    done = run(argv, env=env, timeout_s=DCMMKDIR_TIMEOUT_S, cwd=str(folder))
    if done.returncode != 0 or not (folder / "DICOMDIR").is_file():
        log.warning("dcmmkdir failed (exit %s): %s", done.returncode, done.stderr[-2000:])
        raise ExportRefused(
            "The index of the DICOM files (DICOMDIR) could not be made, so no ZIP was made. "
            "The technician log has DCMTK's reason.",
            422,
        )
