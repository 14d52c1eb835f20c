"""Previews from a backup copy: what staff see before restoring a study that is not in the PACS."""

from __future__ import annotations

import contextlib
import io
import struct
import zlib

import pytest
from pydicom.uid import ExplicitVRBigEndian, ImplicitVRLittleEndian

from pacs_backup.dicom.preview import BadImage, NoPreview, PreviewsBusy, preview_slot, render_copy, render_png
from pacs_backup.dicom.stream import Reader
from pacs_backup.settings.limits import MB, Limits
from tests.support.dicomgen import make_instance, new_uid, pydicom_sample_files
from tests.support.dicomraw import ENCODINGS, bomb, instance, write_instance
from tests.support.preview_memory import FileStore


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


# --- limits: damaged and oversized files, streams, slots (docs/security.md) -------------------------------
def grey_of(png: bytes) -> bytes:
    width, height = png_size(png)
    raw = decoded_pixels(png)
    assert len(raw) == height * (width + 1)
    return raw


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_every_encoding_previews(encoding):
    png = render_png(instance(encoding, rows=300, cols=200, nesting=3), size=100)
    assert png_size(png) == (67, 100)
    assert len(set(decoded_pixels(png))) > 50


@pytest.mark.parametrize("planar", [0, 1])
def test_rgb_previews_in_its_colours(planar):
    red = (b"\xff\0\0" * 64) if not planar else None

    def rows_of(r: int) -> bytes:
        if planar:  # the writer streams rows of bytes: the three planes one after the other
            return (b"\xff" if r < 64 else b"\0") * 64
        return red

    data = instance("explicit-little", rows=64, cols=64, samples=3, planar=planar, rows_of=rows_of)
    raw = decoded_pixels(render_png(data, size=64))
    assert raw[1:4] == b"\xff\0\0" and raw[-3:] == b"\xff\0\0"


@pytest.mark.parametrize("samples", [1, 3])
def test_security_short_pixel_data_is_a_bad_image_not_a_broken_png(samples):
    data = instance("explicit-little", rows=100, cols=100, samples=samples, pixel_bytes=100 * 100 * samples - 300)
    with pytest.raises(BadImage, match=r"shorter than the image it describes \(9,700 of 10,000 bytes\)|29,700 of"):
        render_png(data)


def test_security_pixel_data_cut_short_in_a_stream_is_a_bad_image(tmp_path):
    path = tmp_path / "cut.dcm"
    path.write_bytes(instance("explicit-little", rows=300, cols=300)[:-20_000])  # the copy ends early
    with path.open("rb") as f, pytest.raises(BadImage, match="ends before the image does"):
        render_png(Reader(read=f.read))


def test_security_a_declared_size_past_the_limit_is_refused_before_reading_pixels():
    data = instance("explicit-little", rows=4000, cols=4000, bits=16, pixel_bytes=0)  # 32 MB declared, none there
    with pytest.raises(BadImage, match=r"too large to preview \(4000 x 4000, 31 MB; the limit is 16 MB"):
        render_png(data, limits=Limits(preview_max_image_bytes=16 * MB))
    with pytest.raises(BadImage, match="shorter than the image"):
        render_png(data)  # within the default limit: then the missing pixels are the problem


def test_security_a_bomb_previews_in_a_small_window():
    png = render_png(bomb(3000), size=64)
    assert png_size(png) == (64, 64) and set(grey_of(png)) == {0}


def test_security_a_bomb_past_the_inflate_cap_is_a_bad_image():
    with pytest.raises(BadImage, match="BACKUP_MAX_INFLATED_MB"):
        render_png(bomb(3000), limits=Limits(max_inflated_bytes=4 * MB))


def test_security_previews_wait_for_a_slot_then_say_busy():
    limits = Limits(preview_slots=1, preview_wait_s=0.05)
    data = instance("explicit-little", rows=64, cols=64)
    with preview_slot(limits):
        with pytest.raises(PreviewsBusy) as busy:
            render_copy(FileStore(), "unused", 64, limits)
        assert busy.value.retry_after >= 1 and str(busy.value).endswith(".")
    store = FakeStore(data)
    assert png_size(render_copy(store, "k", 64, limits)) == (64, 64)  # the slot is free again


def test_render_copy_streams_the_object(tmp_path):
    path = tmp_path / "copy.dcm"
    with path.open("wb") as f:
        write_instance(f, "deflated", rows=512, cols=512, bits=16)
    png = render_copy(FileStore(), str(path), 128, Limits())
    assert png_size(png) == (128, 128)


class FakeStore:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def get(self, key: str) -> bytes:
        return self.data

    @contextlib.contextmanager
    def reading(self, key: str):
        yield io.BytesIO(self.data).read
