"""DICOM files written byte by byte, for the limits on incoming files and previews.

pydicom cannot write some encodings an attacker (or an odd router) sends - an explicit-VR UN element of
undefined length holding implicit-VR sequences (CP-246) - and holds a whole image in memory; this writer
streams. Every file is one Secondary Capture instance in one of ``ENCODINGS``:

- ``nesting``: a sequence nested that many levels deep (in the UN encoding: a UN element of undefined
  length whose items nest implicit-VR sequences, after the pixel data, as a private group would be);
- ``extra``: that many more data elements (private ones; in the UN encoding inside the UN sequence);
- ``rows_of``: the pixel rows (default: a gradient), ``pixel_bytes``: how many bytes of pixel data there
  really are (fewer than the image declares makes a damaged file).
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from typing import BinaryIO

from pydicom.uid import generate_uid

ENCODINGS = ("implicit", "explicit-little", "explicit-big", "deflated", "un-undefined")
SYNTAX = {
    "implicit": "1.2.840.10008.1.2",
    "explicit-little": "1.2.840.10008.1.2.1",
    "explicit-big": "1.2.840.10008.1.2.2",
    "deflated": "1.2.840.10008.1.2.1.99",
    "un-undefined": "1.2.840.10008.1.2.1",
}
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
_LONG = {b"OB", b"OW", b"SQ", b"UN", b"UT"}
_UNDEFINED = 0xFFFFFFFF
ROOT = "1.2.826.0.1.3680043.8.498."


def _uid() -> str:
    return str(generate_uid(prefix=ROOT))


class _Encoder:
    def __init__(self, implicit: bool, big: bool) -> None:
        self.implicit, self.end = implicit, ">" if big else "<"

    def element(self, tag: int, vr: bytes, value: bytes) -> bytes:
        if len(value) % 2:
            value += b"\0" if vr in (b"UI", b"OB") else b" "
        return self.header(tag, vr, len(value)) + value

    def header(self, tag: int, vr: bytes, length: int) -> bytes:
        group, elem, e = tag >> 16, tag & 0xFFFF, self.end
        if self.implicit:
            return struct.pack(e + "HHI", group, elem, length)
        if vr in _LONG:
            return struct.pack(e + "HH", group, elem) + vr + b"\0\0" + struct.pack(e + "I", length)
        return struct.pack(e + "HH", group, elem) + vr + struct.pack(e + "H", length)

    def us(self, tag: int, value: int) -> bytes:
        return self.element(tag, b"US", struct.pack(self.end + "H", value))

    def delimiter(self, tag: int) -> bytes:
        return struct.pack(self.end + "HHI", 0xFFFE, tag, _UNDEFINED if tag == 0xE000 else 0)

    def nested(self, tag: int, depth: int, inner: bytes) -> bytes:
        """``depth`` sequences of undefined length, each one item holding the next; ``inner`` in the deepest."""
        body = inner
        for _ in range(depth):
            item = self.delimiter(0xE000) + body + self.delimiter(0xE00D)
            body = self.header(tag, b"SQ", _UNDEFINED) + item + self.delimiter(0xE0DD)
        return body

    def private(self, count: int, first_group: int = 0x0011) -> bytes:
        """``count`` private data elements (their creators included), in tag order."""
        out, made, group = [], 0, first_group
        while made < count:
            for block in range(0x10, 0x100):
                if made >= count:
                    break
                out.append(self.element(group << 16 | block, b"LO", b"ACME %d" % block))
                made += 1
                for elem in range(min(256, count - made)):
                    out.append(self.element(group << 16 | block << 8 | elem, b"LO", b"x"))
                    made += 1
            group += 2
        return b"".join(out)


def _gradient(cols: int, width: int) -> Callable[[int], bytes]:
    line = bytes(range(256)) * (width // 256 + 2)
    return lambda r: line[r % 256 : r % 256 + width]


def write_instance(
    out: BinaryIO,
    encoding: str = "explicit-little",
    *,
    rows: int = 8,
    cols: int = 8,
    bits: int = 8,
    samples: int = 1,
    planar: int = 0,
    nesting: int = 0,
    extra: int = 0,
    rows_of: Callable[[int], bytes] | None = None,
    pixel_bytes: int | None = None,
    study_uid: str | None = None,
) -> None:
    """Write one instance to ``out``, streaming its pixel rows (a 16k x 16k image never sits in memory)."""
    if encoding not in ENCODINGS:
        raise ValueError(encoding)
    enc = _Encoder(encoding == "implicit", encoding == "explicit-big")
    sop = _uid()
    meta_enc = _Encoder(False, False)
    meta = b"".join(
        [
            meta_enc.element(0x00020001, b"OB", b"\0\1"),
            meta_enc.element(0x00020002, b"UI", SECONDARY_CAPTURE.encode()),
            meta_enc.element(0x00020003, b"UI", sop.encode()),
            meta_enc.element(0x00020010, b"UI", SYNTAX[encoding].encode()),
            meta_enc.element(0x00020012, b"UI", (ROOT + "1").encode()),
        ]
    )
    out.write(b"\0" * 128 + b"DICM" + meta_enc.element(0x00020000, b"UL", struct.pack("<I", len(meta))) + meta)
    z = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS) if encoding == "deflated" else None
    deflated = 0

    def put(data: bytes) -> None:
        nonlocal deflated
        if z is None:
            out.write(data)
        else:
            packed = z.compress(data)
            deflated += len(packed)
            out.write(packed)

    un = encoding == "un-undefined"
    head = [
        enc.element(0x00080016, b"UI", SECONDARY_CAPTURE.encode()),
        enc.element(0x00080018, b"UI", sop.encode()),
        enc.element(0x00080060, b"CS", b"OT"),
    ]
    if nesting and not un:
        head.append(enc.nested(0x00081110, nesting, enc.element(0x00081155, b"UI", _uid().encode())))
    head += [enc.element(0x00100010, b"PN", b"TEST^LIMITS"), enc.element(0x00100020, b"LO", b"PID-LIMITS")]
    if extra and not un:
        head.append(enc.private(extra))
    head += [
        enc.element(0x0020000D, b"UI", (study_uid or _uid()).encode()),
        enc.element(0x0020000E, b"UI", _uid().encode()),
        enc.element(0x00200013, b"IS", b"1"),
        enc.us(0x00280002, samples),
        enc.element(0x00280004, b"CS", b"RGB" if samples == 3 else b"MONOCHROME2"),
    ]
    if samples == 3:
        head.append(enc.us(0x00280006, planar))
    head += [enc.us(0x00280010, rows), enc.us(0x00280011, cols)]
    head += [enc.us(0x00280100, bits), enc.us(0x00280101, bits), enc.us(0x00280102, bits - 1)]
    head.append(enc.us(0x00280103, 0))
    width = cols * samples * bits // 8
    total = rows * width if pixel_bytes is None else pixel_bytes
    head.append(enc.header(0x7FE00010, b"OW" if bits == 16 else b"OB", total + total % 2))
    put(b"".join(head))
    rows_of = rows_of or _gradient(cols, width)
    written, r = 0, 0
    while written < total:
        line = rows_of(r)[: total - written] if r < rows else b"\0" * min(width, total - written)
        if bits == 16 and encoding == "explicit-big":
            line = b"".join(line[i + 1 : i + 2] + line[i : i + 1] for i in range(0, len(line), 2))
        put(line)
        written += len(line)
        r += 1
    put(b"\0" * (total % 2))
    if un:  # a private group after the pixel data: creator, then UN of undefined length (implicit inside)
        imp = _Encoder(True, False)
        inner = imp.private(extra, first_group=0x0013) if extra else imp.element(0x00081155, b"UI", _uid().encode())
        content = imp.nested(0x00081110, nesting - 1, inner) if nesting > 1 else inner
        put(enc.element(0x7FE10010, b"LO", b"ACME 1.0"))
        put(enc.header(0x7FE11010, b"UN", _UNDEFINED) + imp.delimiter(0xE000) + content)
        put(imp.delimiter(0xE00D) + imp.delimiter(0xE0DD))
    if z is not None:
        tail = z.flush()
        out.write(tail + b"\0" * ((deflated + len(tail)) % 2))  # a deflated dataset is padded to an even length


def instance(encoding: str = "explicit-little", **kw: object) -> bytes:
    """The bytes of :func:`write_instance` (for small files)."""
    buf = io.BytesIO()
    write_instance(buf, encoding, **kw)  # type: ignore[arg-type]
    return buf.getvalue()


def bomb(side: int = 10_000) -> bytes:
    """A deflated file of about 100 KB whose 8-bit image of zeros inflates to ``side`` x ``side`` bytes."""
    zeros = b"\0" * side
    return instance("deflated", rows=side, cols=side, rows_of=lambda r: zeros)


def counted_by_pydicom(data: bytes) -> int:
    """Data elements and sequence items at every depth, as pydicom reads the file (an independent count)."""
    from pydicom import dcmread

    def count(ds) -> int:  # type: ignore[no-untyped-def]
        n = 0
        for el in ds:
            n += 1
            if el.VR == "SQ":
                n += sum(1 + count(item) for item in el.value)
        return n

    return int(count(dcmread(io.BytesIO(data), force=True)))


def with_elements(encoding: str, total: int) -> bytes:
    """A file of ``encoding`` holding exactly ``total`` data elements and items (counted by pydicom)."""
    probe = counted_by_pydicom(instance(encoding, extra=100))
    data = instance(encoding, extra=100 + total - probe)
    assert counted_by_pydicom(data) == total
    return data
