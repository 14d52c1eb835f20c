"""A small PNG preview of a DICOM image from a backup copy, without Orthanc and without numpy.

Staff check they are restoring the right study by looking at it; when the study is not in the PACS
(or the PACS is down) the picture must come from the backup copy itself. This reads the image of an
uncompressed file (grey 8/16-bit or RGB, the first frame), maps it to 8 bits between robust low and
high values (as a viewer's default window would), shrinks it to fit ``size`` and writes a PNG with
zlib. Compressed images (JPEG, JPEG 2000, RLE) get no preview: :class:`NoPreview` says so.
"""

from __future__ import annotations

import struct
import zlib
from array import array
from dataclasses import dataclass

from .dicom_guard import EXPLICIT_BE, IMPLICIT_LE, UNDEFINED, Element, dataset, walk

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


class NoPreview(Exception):
    """This image cannot be previewed here; ``str()`` says why, for a person."""


@dataclass(frozen=True)
class _Image:
    rows: int
    cols: int
    bits: int
    signed: bool
    samples: int
    photometric: str
    planar: int
    pixels: bytes
    big: bool


def _read(data: bytes) -> _Image:
    try:
        body, syntax = dataset(data)
    except (struct.error, zlib.error, IndexError):
        raise NoPreview("The file could not be read.") from None
    if syntax not in _UNCOMPRESSED:
        raise NoPreview("This image is stored compressed; open it in the PACS after restoring to see it.")
    big = syntax == EXPLICIT_BE
    found: dict[int, Element] = {}
    try:
        for e in walk(body, implicit=syntax == IMPLICIT_LE, big=big):
            if (
                isinstance(e, Element)
                and e.depth == 0
                and e.tag in (ROWS, COLUMNS, BITS, SIGNED, SAMPLES, PHOTOMETRIC, PLANAR, PIXELS)
            ):
                found[e.tag] = e
                if e.tag == PIXELS:
                    break
    except Exception:  # noqa: BLE001 - any damage in the file means "no preview", never an error page
        raise NoPreview("The file could not be read.") from None
    if PIXELS not in found or ROWS not in found or COLUMNS not in found or found[PIXELS].length == UNDEFINED:
        raise NoPreview("This file holds no image that can be previewed.")
    u16 = ">H" if big else "<H"

    def number(tag: int, default: int) -> int:
        e = found.get(tag)
        return int(struct.unpack_from(u16, body, e.offset)[0]) if e is not None and e.length >= 2 else default

    def text(tag: int) -> str:
        e = found.get(tag)
        return body[e.offset : e.offset + e.length].decode("ascii", "replace").strip(" \0") if e else ""

    px = found[PIXELS]
    return _Image(
        rows=number(ROWS, 0),
        cols=number(COLUMNS, 0),
        bits=number(BITS, 16),
        signed=number(SIGNED, 0) == 1,
        samples=number(SAMPLES, 1),
        photometric=text(PHOTOMETRIC) or "MONOCHROME2",
        planar=number(PLANAR, 0),
        pixels=body[px.offset : px.offset + px.length],
        big=big,
    )


def _grey_values(img: _Image) -> array[int]:
    count = img.rows * img.cols
    if img.bits == 8:
        values = array("b" if img.signed else "B", img.pixels[:count])
    elif img.bits == 16:
        values = array("h" if img.signed else "H")
        values.frombytes(img.pixels[: count * 2])
        if img.big:
            values.byteswap()
    else:
        raise NoPreview(f"Images with {img.bits} bits per pixel cannot be previewed.")
    if len(values) < count:
        raise NoPreview("The image data is shorter than the image.")
    return values


def render_png(data: bytes, size: int = 256) -> bytes:
    """A PNG of the first frame of ``data`` (a DICOM file), at most ``size`` pixels on each side."""
    img = _read(data)
    if img.rows <= 0 or img.cols <= 0 or img.rows * img.cols > 100_000_000:
        raise NoPreview("The image size in the file is not plausible.")
    step = max(1, -(-max(img.rows, img.cols) // size))
    out_rows, out_cols = range(0, img.rows, step), range(0, img.cols, step)
    if img.samples == 3 and img.bits == 8:
        plane = img.rows * img.cols
        lines = []
        for r in out_rows:
            line = bytearray(b"\0")
            for c in out_cols:
                i = r * img.cols + c
                line += (
                    bytes(img.pixels[k * plane + i] for k in range(3)) if img.planar else img.pixels[3 * i : 3 * i + 3]
                )
            lines.append(bytes(line))
        return _png(len(out_cols), len(out_rows), 2, b"".join(lines))
    if img.samples != 1:
        raise NoPreview("Only grey and RGB images can be previewed.")
    values = _grey_values(img)
    sample = sorted(values[i] for i in range(0, len(values), max(1, len(values) // 4096)))
    low, high = sample[len(sample) // 100], sample[-1 - len(sample) // 100]
    span = max(high - low, 1)
    invert = img.photometric == "MONOCHROME1"
    lines = []
    for r in out_rows:
        base = r * img.cols
        row = bytearray(b"\0")
        for c in out_cols:
            v = (values[base + c] - low) * 255 // span
            v = 0 if v < 0 else 255 if v > 255 else v
            row.append(255 - v if invert else v)
        lines.append(bytes(row))
    return _png(len(out_cols), len(out_rows), 0, b"".join(lines))


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
