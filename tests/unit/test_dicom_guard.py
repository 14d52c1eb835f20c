"""The received-instance screen: deep nesting is measured without recursion; real files pass."""

from __future__ import annotations

import sys

import pytest
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, ImplicitVRLittleEndian

from pacs_backup.dicom_guard import sequence_depth
from tests.support.dicomgen import make_instance, new_uid, pydicom_sample_files


def deep(depth: int, **kw) -> bytes:
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(max(old, depth * 20 + 1000))  # pydicom writes nested sequences recursively
    try:
        return make_instance(new_uid(), new_uid(), rows=8, cols=8, nesting=depth, **kw)
    finally:
        sys.setrecursionlimit(old)


@pytest.mark.parametrize("syntax", [None, ImplicitVRLittleEndian, DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian])
def test_deep_nesting_is_found_in_every_transfer_syntax(syntax):
    kw = {"transfer_syntax": syntax} if syntax else {}
    verdict = sequence_depth(deep(200, **kw), limit=32)
    assert verdict.depth > 32, verdict
    shallow = sequence_depth(deep(5, **kw), limit=32)
    assert shallow.depth == 5 and shallow.unreadable is None, shallow


def test_real_files_pass():
    checked = 0
    for path in pydicom_sample_files():
        data = path.read_bytes()
        verdict = sequence_depth(data, limit=32)
        assert verdict.depth <= 32, (path.name, verdict)
        checked += 1
    assert checked > 40


def test_garbage_is_left_to_orthanc():
    assert sequence_depth(b"not dicom at all", 32).depth == 0
    assert sequence_depth(b"\0" * 128 + b"DICM" + b"\xff" * 50, 32).depth == 0


def _defined_length_nesting(depth: int, implicit: bool) -> bytes:
    """A dataset of sequences with explicit lengths, as another writer might produce."""
    import struct

    body = b""
    for _ in range(depth):
        item = struct.pack("<HHI", 0xFFFE, 0xE000, len(body)) + body
        head = struct.pack("<HH", 0x0008, 0x1110)
        head += struct.pack("<I", len(item)) if implicit else b"SQ\0\0" + struct.pack("<I", len(item))
        body = head + item
    return body


@pytest.mark.parametrize("implicit", [False, True])
def test_defined_length_nesting_is_found(implicit):
    import struct

    syntax = b"1.2.840.10008.1.2\0" if implicit else b"1.2.840.10008.1.2.1\0"
    meta = struct.pack("<HH", 0x0002, 0x0010) + b"UI" + struct.pack("<H", len(syntax)) + syntax
    data = b"\0" * 128 + b"DICM" + meta + _defined_length_nesting(300, implicit)
    assert sequence_depth(data, 32).depth > 32
    assert sequence_depth(b"\0" * 128 + b"DICM" + meta + _defined_length_nesting(3, implicit), 32).depth == 3
