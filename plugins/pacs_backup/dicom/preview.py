"""A small PNG preview of a DICOM image from a backup copy, without Orthanc and without numpy.

Staff check they are restoring the right study by looking at it; when the study is not in the PACS
(or the PACS is down) the picture must come from the backup copy itself. This reads the image of an
uncompressed file (grey 8/16-bit or RGB, the first frame), maps it to 8 bits between robust low and
high values (as a viewer's default window would), shrinks it to fit ``size`` and writes a PNG with
zlib. Compressed images (JPEG, JPEG 2000, RLE) get no preview: :class:`NoPreview` says so.

Memory stays bounded whatever the file declares (docs/security.md, "Limits on incoming files and
previews"): the file is read forward through a small window (a deflated one inflated as it is read,
never past its cap), the declared size of the image is checked before any pixel is read, only the
rows and columns of the picture are read, and at most ``preview_slots`` previews are drawn at once in
a process (:func:`render_copy`; the others wait a little, then get :class:`PreviewsBusy`).
"""

from __future__ import annotations

import struct
import threading
import zlib
from array import array
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Protocol

from pacs_backup.settings.limits import MB, Limits

from .guard import EXPLICIT_BE, IMPLICIT_LE, UNDEFINED, Budget, Element, walk
from .stream import BadDeflate, DicomLimit, Reader, open_dataset

_UNCOMPRESSED = {IMPLICIT_LE, "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1.99", EXPLICIT_BE}
ROWS, COLUMNS, BITS, SIGNED, SAMPLES, PHOTOMETRIC, PLANAR, PIXELS = (
    0x00280010,
    0x00280011,
    0x00280100,
    0x00280103,
    0x00280002,
    0x00280004,
    0x00280006,
    0x7FE00010,
)
_WANTED = {ROWS, COLUMNS, BITS, SIGNED, SAMPLES, PHOTOMETRIC, PLANAR, PIXELS}
RETRY_AFTER_S = 2


class NoPreview(Exception):
    """This image cannot be previewed here; ``str()`` says why, for a person (HTTP 404)."""


class BadImage(NoPreview):
    """The file is damaged or larger than a preview may read (short pixel data, an implausible size): HTTP 422."""


class PreviewsBusy(Exception):
    """Every preview slot stayed taken for the whole wait: HTTP 503, ask again after ``retry_after`` seconds."""

    def __init__(self, retry_after: int = RETRY_AFTER_S) -> None:
        super().__init__("Other pictures are being drawn right now; this one will be shown in a moment.")
        self.retry_after = retry_after


@dataclass(frozen=True)
class _Image:
    rows: int
    cols: int
    bits: int
    signed: bool
    samples: int
    photometric: str
    planar: int
    big: bool
    src: Reader
    start: int  # where the pixel data's value starts in src
    length: int  # its declared length


def _header(data: bytes | Reader, limits: Limits) -> _Image:
    src = data if isinstance(data, Reader) else Reader(data)
    budget = Budget(limits.max_elements)
    try:
        body, start, syntax = open_dataset(src, limits.max_inflated_bytes)
        if syntax not in _UNCOMPRESSED:
            raise NoPreview("This image is stored compressed; open it in the PACS after restoring to see it.")
        big = syntax == EXPLICIT_BE
        u16 = ">H" if big else "<H"
        numbers: dict[int, int] = {}
        photometric, pixels = "", None
        for e in walk(body, start, implicit=syntax == IMPLICIT_LE, big=big, budget=budget):
            if not isinstance(e, Element) or e.depth != 0:
                continue
            if e.tag > PIXELS:
                break
            if e.tag not in _WANTED:
                continue
            if e.tag == PIXELS:
                pixels = e
                break
            value = body.view(e.offset, min(e.length, 64))
            if e.tag == PHOTOMETRIC:
                photometric = value.decode("ascii", "replace").strip(" \0")
            elif len(value) >= 2:
                numbers[e.tag] = int(struct.unpack_from(u16, value)[0])
    except (DicomLimit, BadDeflate) as exc:
        raise BadImage(f"This file cannot be previewed because {exc}.") from None
    except (struct.error, ValueError):
        raise BadImage("The file could not be read.") from None
    if pixels is None or ROWS not in numbers or COLUMNS not in numbers:
        raise NoPreview("This file holds no image that can be previewed.")
    if pixels.length == UNDEFINED:
        raise BadImage("The file says its image is not compressed, but the image data is stored compressed.")
    return _Image(
        rows=numbers[ROWS],
        cols=numbers[COLUMNS],
        bits=numbers.get(BITS, 16),
        signed=numbers.get(SIGNED, 0) == 1,
        samples=numbers.get(SAMPLES, 1),
        photometric=photometric or "MONOCHROME2",
        planar=numbers.get(PLANAR, 0),
        big=big,
        src=body,
        start=pixels.offset,
        length=pixels.length,
    )


def _check(img: _Image, limits: Limits) -> int:
    """The first frame's size in bytes, once it is known to be drawable and present: before any pixel is read."""
    if img.rows <= 0 or img.cols <= 0:
        raise BadImage("The image size in the file is not plausible.")
    if img.samples not in (1, 3):
        raise NoPreview("Only grey and RGB images can be previewed.")
    if img.samples == 3 and img.photometric not in ("RGB", "YBR_FULL"):
        raise NoPreview(f"Colour images stored as {img.photometric[:20]} cannot be previewed here.")
    if img.bits not in (8, 16) or (img.samples == 3 and img.bits != 8):
        raise NoPreview(f"Images with {img.bits} bits per pixel cannot be previewed.")
    frame = img.rows * img.cols * img.samples * (img.bits // 8)
    if frame > limits.preview_max_image_bytes:
        raise BadImage(
            f"This image is too large to preview ({img.cols} x {img.rows}, {frame / MB:.0f} MB; the limit is "
            f"{limits.preview_max_image_bytes // MB} MB, BACKUP_PREVIEW_MAX_IMAGE_MB). Restore it to see it."
        )
    present = img.length
    if img.src.size is not None:
        present = min(present, img.src.size - img.start)
    if present < frame:
        raise BadImage(
            f"The image data in this file is shorter than the image it describes ({max(present, 0):,} of "
            f"{frame:,} bytes): the file is damaged."
        )
    return frame


def _row(img: _Image, pos: int, n: int) -> bytes:
    img.src.advance(pos)
    line = img.src.view(pos, n)
    if len(line) < n:
        raise BadImage("The image data in this file ends before the image does: the file is damaged.")
    return line


def _grey(img: _Image, rows: range, cols: range) -> array[int]:
    """The sampled pixels, row after row, reading only the sampled rows."""
    width = img.cols * img.bits // 8
    out = array("h" if img.signed else "H") if img.bits == 16 else array("b" if img.signed else "B")
    for r in rows:
        line = _row(img, img.start + r * width, width)
        if img.bits == 8:
            out.frombytes(line[0 : img.cols : cols.step])
        else:
            values = array(out.typecode, line)
            if img.big:
                values.byteswap()
            out.extend(values[0 : img.cols : cols.step])
    return out


def _rgb(img: _Image, rows: range, cols: range) -> bytes:
    """The sampled pixels as RGB triplets; planar files are read plane by plane (forward only)."""
    step = cols.step
    if not img.planar:
        out = bytearray()
        for r in rows:
            line = _row(img, img.start + r * img.cols * 3, img.cols * 3)
            row = bytearray(len(cols) * 3)
            for k in range(3):
                row[k::3] = line[k : 3 * img.cols : 3 * step]
            out += row
        return bytes(out)
    plane = img.rows * img.cols
    planes = [
        b"".join(_row(img, img.start + k * plane + r * img.cols, img.cols)[0 : img.cols : step] for r in rows)
        for k in range(3)
    ]
    out = bytearray(len(planes[0]) * 3)
    for k in range(3):
        out[k::3] = planes[k]
    return bytes(out)


def render_png(data: bytes | Reader, size: int = 256, limits: Limits | None = None) -> bytes:
    """A PNG of the first frame of ``data`` (a DICOM file), at most ``size`` pixels on each side.

    Raises NoPreview (BadImage when the file is damaged or too large), never anything else for bad input.
    """
    limits = limits or Limits()
    img = _header(data, limits)
    _check(img, limits)
    step = max(1, -(-max(img.rows, img.cols) // size))
    out_rows, out_cols = range(0, img.rows, step), range(0, img.cols, step)
    try:
        if img.samples == 3:
            return _png(len(out_cols), len(out_rows), 2, _lines(_rgb(img, out_rows, out_cols), len(out_cols) * 3))
        values = _grey(img, out_rows, out_cols)
    except (DicomLimit, BadDeflate) as exc:
        raise BadImage(f"This file cannot be previewed because {exc}.") from None
    return _png(
        len(out_cols), len(out_rows), 0, _lines(_window(values, img.photometric == "MONOCHROME1"), len(out_cols))
    )


def _window(values: array[int], invert: bool) -> bytes:
    """Map values to 8 bits between robust low and high values (computed on a sample of them)."""
    sample = sorted(values[i] for i in range(0, len(values), max(1, len(values) // 4096)))
    low, high = sample[len(sample) // 100], sample[-1 - len(sample) // 100]
    span = max(high - low, 1)

    def grey(v: int) -> int:
        g = max(0, min(255, (v - low) * 255 // span))
        return 255 - g if invert else g

    if values.typecode in ("B", "b"):  # 8 bits: one table over every byte value, applied at C speed
        table = bytes(grey(b - 256 if values.typecode == "b" and b > 127 else b) for b in range(256))
        return values.tobytes().translate(table)
    first, last = sample[0], sample[-1]  # every value outside the sample's range maps like its end
    table = bytes(grey(v) for v in range(first, last + 1))
    top = len(table) - 1
    return bytes(table[0 if v < first else top if v > last else v - first] for v in values)


def _lines(raw: bytes, width: int) -> bytes:
    """PNG scanlines: each row of ``width`` bytes behind a filter byte 0."""
    return b"".join(b"\0" + raw[i : i + width] for i in range(0, len(raw), width))


def _png(width: int, height: int, colour: int, raw: bytes) -> bytes:
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload))
            + kind
            + payload
            + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)
        )

    header = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 6)) + chunk(b"IEND", b"")


# --- at most N previews at once in this process -------------------------------------------------------
_slots_lock = threading.Lock()
_slots: tuple[int, threading.BoundedSemaphore] | None = None


def _semaphore(n: int) -> threading.BoundedSemaphore:
    global _slots  # one set of slots per process, sized by the first (or a changed) setting
    with _slots_lock:
        if _slots is None or _slots[0] != n:
            _slots = (n, threading.BoundedSemaphore(n))
        return _slots[1]


@contextmanager
def preview_slot(limits: Limits) -> Iterator[None]:
    """Hold one of the process's ``preview_slots`` while drawing; raises PreviewsBusy after ``preview_wait_s``."""
    slots = _semaphore(limits.preview_slots)
    if not slots.acquire(timeout=limits.preview_wait_s):
        raise PreviewsBusy()
    try:
        yield
    finally:
        slots.release()


class _Store(Protocol):
    def reading(self, key: str) -> AbstractContextManager[Callable[[int], bytes]]: ...


def render_copy(store: _Store, key: str, size: int, limits: Limits) -> bytes:
    """A PNG of the copy at ``key`` in the object store, read as a stream (never whole), in a preview slot.

    Raises PreviewsBusy, NoPreview (BadImage) and the store's own errors (BackupError)."""
    with preview_slot(limits), store.reading(key) as read:
        return render_png(Reader(read=read), size, limits)
