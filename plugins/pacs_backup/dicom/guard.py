"""Refusing pathological DICOM files before Orthanc stores them.

A file whose sequences nest a few hundred levels deep is accepted by C-STORE, and then crashes
Orthanc (DCMTK's recursive parser) every time its tags are read - a denial of service that survives
restarts, because the file is kept. A file with 120,000 tags took Orthanc 32 s to store and 12.7 s to
show. Real modalities nest a handful of levels and send at most a few thousand elements (an enhanced
multi-frame image some tens of thousands). This module walks a file's element headers without
recursion and without parsing values, so the plugin's received-instance filter can refuse such files
with a clear reason.

The walk reads every encoding DCMTK reads: implicit VR, explicit VR little and big endian, deflated
(inflated as it is read, never past its cap), and explicit-VR UN of undefined length, whose value is a
sequence in implicit VR little endian (CP-246). A value that starts with an item tag is walked into
even when its VR is not SQ (implicit VR, UN), as DCMTK does. It fails closed: when the walk reaches
one of its own limits (elements, inflated size, time) or cannot read the file's deflated data, the
verdict refuses the file and says why; a file is never kept because it could not be checked.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass

from pacs_backup.settings.limits import Limits

from .stream import (
    DEFLATED,
    EXPLICIT_BE,
    EXPLICIT_LE,
    IMPLICIT_LE,
    BadDeflate,
    DicomLimit,
    Reader,
    open_dataset,
)

__all__ = ["DEFLATED", "EXPLICIT_BE", "EXPLICIT_LE", "IMPLICIT_LE", "Element", "Verdict", "screen", "walk"]

ITEM, ITEM_END, SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
UNDEFINED = 0xFFFFFFFF
PIXEL_DATA = 0x7FE00010
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"}
_SHORT_VRS = {
    *(b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT", b"PN"),
    *(b"SH", b"SL", b"SS", b"ST", b"TM", b"UI", b"UL", b"US"),
}
_ITEM_TAGS = (b"\xfe\xff\x00\xe0", b"\xff\xfe\xe0\x00")  # an item tag, little and big endian
_CHECK_EVERY = 4096  # headers between two looks at the clock


class ElementLimit(DicomLimit):
    def __init__(self, limit: int) -> None:
        super().__init__(f"it holds more than {limit:,} data elements (BACKUP_MAX_ELEMENTS)")


class TimeLimit(DicomLimit):
    def __init__(self, seconds: float) -> None:
        super().__init__(f"checking its structure took longer than {seconds:g} s (BACKUP_SCREEN_SECONDS)")


@dataclass(frozen=True)
class Element:
    """One plain element met by :func:`walk`: its nesting depth, tag, VR and where its value lies."""

    depth: int
    tag: int
    vr: bytes
    offset: int
    length: int


@dataclass
class Budget:
    """How far one walk may go: data elements and items counted at every depth (``count``, kept up to
    date by the walk), and a deadline."""

    max_elements: int
    deadline: float = float("inf")  # time.monotonic() value
    seconds: float = 0.0  # for the sentence
    count: int = 0


@dataclass(frozen=True)
class Verdict:
    """What the walk found: the deepest nesting, the data elements and items counted at every depth (the
    count BACKUP_MAX_ELEMENTS limits), and why the file is refused (if it is)."""

    depth: int
    elements: int = 0
    refusal: str | None = None


def _vr_is_long(vr: bytes) -> bool:
    """Whether an explicit VR has the 4-byte length form. An unknown VR of two capital letters is a future
    VR (which has the long form); any other unknown VR has the short form - as DCMTK reads them."""
    if vr in _LONG_VRS:
        return True
    if vr in _SHORT_VRS:
        return False
    return len(vr) == 2 and vr.isalpha() and vr.isupper()


def walk(src: Reader, pos: int, *, implicit: bool, big: bool, budget: Budget) -> Iterator[Element | int]:
    """Walk a dataset that starts at ``pos`` without recursion.

    Yields the new depth (an int) each time a sequence opens, and every plain element (pixel data
    fragments are skipped; encapsulated pixel data is yielded with length ``UNDEFINED`` and the offset of
    its first item). A consumer may look at an element's value with ``src.view`` before asking for the
    next one. Raises ElementLimit, TimeLimit, InflateLimit or BadDeflate.
    """
    # Each open container: (end offset or None for undefined length, kind, implicit, big endian), kind one
    # of "seq", "item", "frag". The encoding changes inside a UN sequence (implicit VR little endian).
    stack: list[tuple[int | None, str, bool, bool]] = []
    depth = steps = 0
    imp, be = implicit, big
    while True:
        while stack and stack[-1][0] is not None and pos >= stack[-1][0]:  # defined-length containers end
            if stack.pop()[1] == "seq":
                depth -= 1
            imp, be = (stack[-1][2], stack[-1][3]) if stack else (implicit, big)
        steps += 1
        if steps % _CHECK_EVERY == 0 and time.monotonic() > budget.deadline:
            raise TimeLimit(budget.seconds)
        src.advance(pos)
        head = src.view(pos, 12)
        if len(head) < 8:
            return
        group, elem, length = struct.unpack_from(">HHI" if be else "<HHI", head)
        tag = group << 16 | elem
        if group == 0xFFFE:  # item and delimiters: always a 4-byte length, no VR
            pos += 8
            if tag == ITEM:
                if stack and stack[-1][1] == "frag":  # a pixel data fragment: skip its bytes
                    pos += length
                else:
                    budget.count += 1
                    if budget.count > budget.max_elements:
                        raise ElementLimit(budget.max_elements)
                    stack.append((None if length == UNDEFINED else pos + length, "item", imp, be))
            elif tag in (ITEM_END, SEQ_END):
                while stack:
                    _, kind, _, _ = stack.pop()
                    if kind == "seq":
                        depth -= 1
                    if (tag == ITEM_END and kind == "item") or (tag == SEQ_END and kind in ("seq", "frag")):
                        break
                imp, be = (stack[-1][2], stack[-1][3]) if stack else (implicit, big)
            continue
        budget.count += 1
        if budget.count > budget.max_elements:
            raise ElementLimit(budget.max_elements)
        if imp:
            vr, size = b"", 8
        else:
            vr = head[4:6]
            if _vr_is_long(vr):
                if len(head) < 12:
                    return
                length, size = struct.unpack_from(">I" if be else "<I", head, 8)[0], 12
            else:
                length, size = struct.unpack_from(">H" if be else "<H", head, 6)[0], 8
        pos += size
        if tag == PIXEL_DATA and length == UNDEFINED:
            yield Element(depth, tag, vr, pos, length)
            stack.append((None, "frag", imp, be))
            continue
        un = vr == b"UN"
        if vr == b"SQ" or length == UNDEFINED or (vr in (b"", b"UN") and length and src.view(pos, 4) in _ITEM_TAGS):
            depth += 1
            yield depth
            if un:  # CP-246: a UN value is encoded in implicit VR little endian, whatever the file's syntax
                imp, be = True, False
            stack.append((None if length == UNDEFINED else pos + length, "seq", imp, be))
        else:
            yield Element(depth, tag, vr, pos, length)
            pos += length


def screen(data: bytes | Reader, limits: Limits) -> Verdict:
    """Walk a whole file and judge it against ``limits``: the refusal (a sentence) says why, or is None."""
    started = time.monotonic()
    budget = Budget(limits.max_elements, started + limits.screen_seconds, limits.screen_seconds)
    src = data if isinstance(data, Reader) else Reader(data)
    deepest = 0
    try:
        body, start, syntax = open_dataset(src, limits.max_inflated_bytes)
        for event in walk(body, start, implicit=syntax == IMPLICIT_LE, big=syntax == EXPLICIT_BE, budget=budget):
            if isinstance(event, int):
                deepest = max(deepest, event)
                if deepest > limits.max_sequence_depth:
                    return Verdict(
                        deepest,
                        budget.count,
                        f"Refused a DICOM file whose sequences nest {deepest} levels deep (limit "
                        f"{limits.max_sequence_depth}, BACKUP_MAX_SEQUENCE_DEPTH): such files crash the PACS when "
                        "read. Ask the sender to check the device that produced it.",
                    )
    except (DicomLimit, BadDeflate) as exc:
        return Verdict(
            deepest,
            budget.count,
            f"Refused a DICOM file because {exc}: it cannot be checked safely, and such files stall or crash "
            "the PACS. Ask the sender to check the device that produced it.",
        )
    return Verdict(deepest, budget.count)


def sequence_depth(data: bytes, limit: int) -> Verdict:
    """Measure how deep sequences nest in ``data`` (the other limits at their defaults)."""
    return screen(data, Limits(max_sequence_depth=limit))
