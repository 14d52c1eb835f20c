"""Refusing pathological DICOM files before Orthanc stores them.

A file whose sequences nest a few hundred levels deep is accepted by C-STORE, and then crashes
Orthanc (DCMTK's recursive parser) every time its tags are read - a denial of service that survives
restarts, because the file is kept. Real modalities nest a handful of levels. This module measures
the nesting of a file without recursion (and without parsing values), so the plugin's
received-instance filter can refuse such files with a clear log line.

The walk only reads element headers: tag, VR, length. A value that starts with an item tag is walked
into even when its VR is not SQ (implicit VR, UN), as DCMTK does. Anything it cannot follow is left
to Orthanc to judge (the filter never refuses a file for being unusual, only for nesting too deep).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

ITEM, ITEM_END, SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
UNDEFINED = 0xFFFFFFFF
PIXEL_DATA = 0x7FE00010
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"}
IMPLICIT_LE, EXPLICIT_BE, DEFLATED = "1.2.840.10008.1.2", "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"
MAX_INFLATED = 512 * 1024 * 1024
MAX_ELEMENTS = 2_000_000


@dataclass(frozen=True)
class Verdict:
    """What the walk found: the deepest sequence nesting, and why it stopped early (if it did)."""

    depth: int
    unreadable: str | None = None


class _Unreadable(Exception):
    pass


def _meta(data: bytes) -> tuple[int, str]:
    """Skip preamble and file meta group; return (offset of the dataset, transfer syntax UID)."""
    pos = 132 if data[128:132] == b"DICM" else 0
    syntax = IMPLICIT_LE if pos == 0 else ""
    while pos + 8 <= len(data) and struct.unpack_from("<H", data, pos)[0] == 0x0002:
        elem = struct.unpack_from("<H", data, pos + 2)[0]
        vr = data[pos + 4 : pos + 6]
        if vr in _LONG_VRS:
            length, head = struct.unpack_from("<I", data, pos + 8)[0], 12
        else:
            length, head = struct.unpack_from("<H", data, pos + 6)[0], 8
        if elem == 0x0010:
            syntax = data[pos + head : pos + head + length].rstrip(b"\0 ").decode("ascii", "replace")
        pos += head + length
    return pos, syntax or "1.2.840.10008.1.2.1"


@dataclass(frozen=True)
class Element:
    """One plain element met by :func:`walk`: its nesting depth, tag, VR and where its value lies."""

    depth: int
    tag: int
    vr: bytes
    offset: int
    length: int


def dataset(data: bytes) -> tuple[bytes, str]:
    """The dataset bytes of a DICOM file (deflated ones inflated) and its transfer syntax UID."""
    start, syntax = _meta(data)
    body = data[start:]
    if syntax == DEFLATED:
        body = zlib.decompressobj(-zlib.MAX_WBITS).decompress(body, MAX_INFLATED)
    return body, syntax


def sequence_depth(data: bytes, limit: int) -> Verdict:
    """Measure how deep sequences nest in ``data``, stopping as soon as ``limit`` is exceeded."""
    deepest = 0
    try:
        body, syntax = dataset(data)
        for event in walk(body, implicit=syntax == IMPLICIT_LE, big=syntax == EXPLICIT_BE):
            if isinstance(event, int):
                deepest = max(deepest, event)
                if deepest > limit:
                    break
    except (struct.error, zlib.error, _Unreadable, IndexError) as exc:
        return Verdict(depth=deepest, unreadable=str(exc) or type(exc).__name__)
    return Verdict(deepest)


def walk(buf: bytes, *, implicit: bool, big: bool) -> Iterator[Element | int]:
    """Walk a dataset without recursion: yields the new depth (an int) each time a sequence opens, and
    every plain element (pixel data fragments are skipped; encapsulated pixel data is yielded with
    length ``UNDEFINED`` and the offset of its first item)."""
    u16, u32 = (">H", ">I") if big else ("<H", "<I")
    # Each open container: (end offset or None for undefined length, kind) with kind "seq", "item", "frag".
    stack: list[tuple[int | None, str]] = []
    depth = 0
    pos, n = 0, len(buf)
    for _ in range(MAX_ELEMENTS):
        while stack and stack[-1][0] is not None and pos >= stack[-1][0]:  # defined-length containers end
            if stack.pop()[1] == "seq":
                depth -= 1
        if pos + 8 > n:
            return
        group, elem = struct.unpack_from(u16, buf, pos)[0], struct.unpack_from(u16, buf, pos + 2)[0]
        tag = group << 16 | elem
        if group == 0xFFFE:  # item and delimiters: always a 4-byte length, no VR
            length = struct.unpack_from(u32, buf, pos + 4)[0]
            pos += 8
            if tag == ITEM:
                if stack and stack[-1][1] == "frag":  # a pixel data fragment: skip its bytes
                    pos += length
                else:
                    stack.append((None if length == UNDEFINED else pos + length, "item"))
            elif tag in (ITEM_END, SEQ_END):
                while stack:
                    _, kind = stack.pop()
                    if kind == "seq":
                        depth -= 1
                    if (tag == ITEM_END and kind == "item") or (tag == SEQ_END and kind in ("seq", "frag")):
                        break
            continue
        if implicit:
            vr, length, head = b"", struct.unpack_from(u32, buf, pos + 4)[0], 8
        else:
            vr = buf[pos + 4 : pos + 6]
            if vr in _LONG_VRS:
                length, head = struct.unpack_from(u32, buf, pos + 8)[0], 12
            else:
                length, head = struct.unpack_from(u16, buf, pos + 6)[0], 8
        pos += head
        value_is_items = length != 0 and buf[pos : pos + 4] in (b"\xfe\xff\x00\xe0", b"\xff\xfe\xe0\x00")
        if tag == PIXEL_DATA and length == UNDEFINED:
            yield Element(depth, tag, vr, pos, length)
            stack.append((None, "frag"))
        elif vr == b"SQ" or length == UNDEFINED or (vr in (b"", b"UN") and value_is_items):
            depth += 1
            yield depth
            stack.append((None if length == UNDEFINED else pos + length, "seq"))
        else:
            yield Element(depth, tag, vr, pos, length)
            pos += length
    raise _Unreadable("too many elements")
