"""Previews from a backup copy: what staff see before restoring a study that is not in the PACS."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from pydicom.uid import ExplicitVRBigEndian, ImplicitVRLittleEndian

from pacs_backup.preview import NoPreview, render_png
from tests.support.dicomgen import make_instance, new_uid, pydicom_sample_files


def png_size(png: bytes) -> tuple[int, int]:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return struct.unpack(">II", png[16:24])


def decoded_pixels(png: bytes) -> bytes:
    pos, data = 8, b""
    while pos < len(png):
        length = struct.unpack(">I", png[pos : pos + 4])[0]
        kind = png[pos + 4 : pos + 8]
        if kind == b"IDAT":
            data += png[pos + 8 : pos + 8 + length]
        pos += 12 + length
    return zlib.decompress(data)


@pytest.mark.parametrize("syntax", [None, ImplicitVRLittleEndian, ExplicitVRBigEndian])
def test_synthetic_image_previews_at_the_asked_size(syntax):
    kw = {"transfer_syntax": syntax} if syntax else {}
    png = render_png(make_instance(new_uid(), new_uid(), rows=600, cols=400, **kw), size=256)
    width, height = png_size(png)
    assert max(width, height) <= 256 and height > width
    raw = decoded_pixels(png)
    assert len(set(raw)) > 50  # random pixels stay varied: a real picture, not a flat square


def test_pydicom_samples_preview_or_say_why():
    rendered = refused = 0
    for path in pydicom_sample_files():
        try:
            png = render_png(path.read_bytes(), size=128)
        except NoPreview as exc:
            assert str(exc).endswith(".") and len(str(exc)) < 120
            refused += 1
            continue
        assert max(png_size(png)) <= 128
        rendered += 1
    assert rendered >= 10 and refused >= 5


def test_garbage_is_no_preview_not_an_error():
    for data in (b"", b"junk" * 100, io.BytesIO(b"\0" * 132).getvalue()):
        with pytest.raises(NoPreview):
            render_png(data)
