"""The received-instance screen: every encoding is read, each limit refuses with a reason, real files pass."""

from __future__ import annotations

import struct
import sys
import time
import zlib

import pytest
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian, ImplicitVRLittleEndian

from pacs_backup.dicom.guard import screen, sequence_depth
from pacs_backup.dicom.stream import Reader
from pacs_backup.settings.limits import MB, Limits
from tests.support.dicomgen import make_instance, new_uid, pydicom_sample_files
from tests.support.dicomraw import ENCODINGS, instance, with_elements, write_instance


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
    assert verdict.depth > 32 and "nest" in (verdict.refusal or ""), verdict
    shallow = sequence_depth(deep(5, **kw), limit=32)
    assert shallow.depth == 5 and shallow.refusal is None, shallow


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_security_each_encoding_is_refused_past_the_depth_limit_and_kept_at_it(encoding):
    limits = Limits()
    at = screen(instance(encoding, nesting=32), limits)
    assert at.depth == 32 and at.refusal is None, at
    past = screen(instance(encoding, nesting=33), limits)
    assert past.depth == 33, past
    assert "nest 33 levels deep" in (past.refusal or "") and "BACKUP_MAX_SEQUENCE_DEPTH" in (past.refusal or "")


def test_security_un_of_undefined_length_is_walked_as_the_sequence_it_is():
    # CP-246: an explicit-VR UN element of undefined length holds implicit-VR items. Read as explicit VR,
    # its nesting went unseen and 200 levels were stored; in the other encodings they were refused.
    verdict = screen(instance("un-undefined", nesting=200), Limits())
    assert verdict.depth == 33 and verdict.refusal and "nest" in verdict.refusal, verdict
    shallow = screen(instance("un-undefined", nesting=3), Limits())
    assert shallow.depth == 3 and shallow.refusal is None


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_security_each_encoding_is_refused_past_the_element_limit_and_kept_at_it(encoding):
    limits = Limits(max_elements=1_000)
    at = screen(with_elements(encoding, 1_000), limits)
    assert at.elements == 1_000 and at.refusal is None, at
    past = screen(with_elements(encoding, 1_001), limits)
    assert past.refusal and "more than 1,000 data elements (BACKUP_MAX_ELEMENTS)" in past.refusal, past


def test_security_a_file_of_120000_tags_is_refused_by_default_and_quickly():
    data = instance("explicit-little", extra=120_000)
    started = time.monotonic()
    verdict = screen(data, Limits())
    assert verdict.refusal and "more than 100,000 data elements" in verdict.refusal
    assert time.monotonic() - started < 5  # Orthanc took 32 s to store this file


def test_security_inflating_past_the_cap_is_refused_without_holding_it():
    data = instance("deflated", rows=2048, cols=1024)  # 2 MB of pixels once inflated
    refused = screen(data, Limits(max_inflated_bytes=1 * MB))
    assert refused.refusal and "inflates to more than 1 MB (BACKUP_MAX_INFLATED_MB)" in refused.refusal
    assert screen(data, Limits(max_inflated_bytes=3 * MB)).refusal is None


def test_security_damaged_deflated_data_is_refused_not_kept():
    syntax = b"1.2.840.10008.1.2.1.99"
    meta = struct.pack("<HH", 0x0002, 0x0010) + b"UI" + struct.pack("<H", len(syntax)) + syntax
    good = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = good.compress(instance("explicit-little", nesting=3)[200:]) + good.flush()
    assert screen(b"\0" * 128 + b"DICM" + meta + head, Limits()).refusal is None
    damaged = b"\0" * 128 + b"DICM" + meta + b"\x07" + head  # a deflate block of the reserved type
    verdict = screen(damaged, Limits())
    assert verdict.refusal and "deflated data is damaged" in verdict.refusal, verdict


def test_security_the_time_budget_refuses_a_file_too_slow_to_check():
    data = instance("implicit", extra=60_000)
    verdict = screen(data, Limits(screen_seconds=0.001))
    assert verdict.refusal and "BACKUP_SCREEN_SECONDS" in verdict.refusal, verdict
    assert screen(data, Limits()).refusal is None


def test_a_stream_is_screened_like_bytes(tmp_path):
    path = tmp_path / "deep.dcm"
    with path.open("wb") as f:
        write_instance(f, "deflated", nesting=40)
    with path.open("rb") as f:
        verdict = screen(Reader(read=f.read), Limits())
    assert verdict.depth == 33 and verdict.refusal


@pytest.mark.parametrize("encoding", ["implicit", "explicit-little", "explicit-big"])
def test_security_a_file_without_preamble_and_meta_is_read_in_its_own_encoding(encoding):
    data = instance(encoding, nesting=40)
    bare = data[data.index(b"\x08\x00\x16\x00" if encoding != "explicit-big" else b"\x00\x08\x00\x16") :]
    verdict = screen(bare, Limits())
    assert verdict.depth == 33 and verdict.refusal, verdict


def test_real_files_pass():
    checked = 0
    for path in pydicom_sample_files():
        verdict = screen(path.read_bytes(), Limits())
        assert verdict.depth <= 32 and verdict.refusal is None, (path.name, verdict)
        checked += 1
    assert checked > 40


def test_garbage_is_left_to_orthanc():
    for data in (b"not dicom at all", b"\0" * 128 + b"DICM" + b"\xff" * 50, b"", b"\0" * 132):
        verdict = screen(data, Limits())
        assert verdict.depth == 0 and verdict.refusal is None, (data[:20], verdict)


def _defined_length_nesting(depth: int, implicit: bool) -> bytes:
    """A dataset of sequences with explicit lengths, as another writer might produce."""
    body = b""
    for _ in range(depth):
        item = struct.pack("<HHI", 0xFFFE, 0xE000, len(body)) + body
        head = struct.pack("<HH", 0x0008, 0x1110)
        head += struct.pack("<I", len(item)) if implicit else b"SQ\0\0" + struct.pack("<I", len(item))
        body = head + item
    return body


@pytest.mark.parametrize("implicit", [False, True])
def test_defined_length_nesting_is_found(implicit):
    syntax = b"1.2.840.10008.1.2\0" if implicit else b"1.2.840.10008.1.2.1\0"
    meta = struct.pack("<HH", 0x0002, 0x0010) + b"UI" + struct.pack("<H", len(syntax)) + syntax
    data = b"\0" * 128 + b"DICM" + meta + _defined_length_nesting(300, implicit)
    assert sequence_depth(data, 32).depth > 32
    assert sequence_depth(b"\0" * 128 + b"DICM" + meta + _defined_length_nesting(3, implicit), 32).depth == 3


def test_an_unknown_vr_is_read_as_dcmtk_reads_it():
    # Two capital letters: a future VR, with the 4-byte length form; anything else: the 2-byte form.
    syntax = b"1.2.840.10008.1.2.1\0"
    meta = struct.pack("<HH", 0x0002, 0x0010) + b"UI" + struct.pack("<H", len(syntax)) + syntax
    nested = _defined_length_nesting(40, implicit=False)
    future = struct.pack("<HH", 0x0009, 0x1001) + b"ZZ\0\0" + struct.pack("<I", 2) + b"ab"
    odd = struct.pack("<HH", 0x0009, 0x1002) + b"z?" + struct.pack("<H", 2) + b"ab"
    for element in (future, odd):
        assert sequence_depth(b"\0" * 128 + b"DICM" + meta + element + nested, 32).depth > 32
