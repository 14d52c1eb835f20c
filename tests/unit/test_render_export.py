"""Full-size pictures of DICOM images for exports and the viewer's rendered frames (dicom/render.py).

Each transfer syntax the PACS may hold is made the way a modality or a PACS makes it (tests/support/compressed.py:
DCMTK's own compressors, and pydicom with pylibjpeg-openjpeg for JPEG 2000).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    JPEG2000,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    SecondaryCaptureImageStorage,
)

from pacs_backup.dicom.preview import BadImage, NoPreview, PreviewsBusy, preview_slot
from pacs_backup.dicom.render import UnsupportedRequest, render_frame
from pacs_backup.settings.limits import MB, Limits
from tests.support.compressed import DCMTK_SYNTAXES, dcmtk_compress, j2k_compress
from tests.support.dicomgen import new_uid

ROWS, COLS = 240, 320  # not square: a picture on its side would be seen


def image(
    *,
    bits: int = 16,
    photometric: str = "MONOCHROME2",
    frames: int = 1,
    window: tuple[float, float] | None = None,
    rescale: tuple[float, float] | None = None,
    syntax: str = ExplicitVRLittleEndian,
) -> bytes:
    """A grey (or RGB) image with a gradient and a bright square: structure a picture must keep."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = new_uid()
    meta.TransferSyntaxUID = syntax
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = SecondaryCaptureImageStorage, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = new_uid(), new_uid()
    ds.PatientName, ds.PatientID, ds.Modality = "RENDER^TEST", "R-1", "OT"
    ds.Rows, ds.Columns = ROWS, COLS
    top = (1 << 12) - 1 if bits == 16 else 255
    _, x = np.mgrid[0:ROWS, 0:COLS]
    grey = (x * top // (COLS - 1)).astype(np.uint16 if bits == 16 else np.uint8)
    grey[60:120, 80:160] = top
    if photometric == "RGB":
        pixels = np.stack([grey, grey[:, ::-1], np.full_like(grey, 40)], axis=-1)
        ds.SamplesPerPixel, ds.PlanarConfiguration = 3, 0
    else:
        pixels = grey
        ds.SamplesPerPixel = 1
    if frames > 1:
        pixels = np.stack([pixels if i == 0 else top - pixels for i in range(frames)])
        ds.NumberOfFrames = frames
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, (12 if bits == 16 else 8), (11 if bits == 16 else 7)
    ds.PixelRepresentation = 0
    if window:
        ds.WindowCenter, ds.WindowWidth = window
    if rescale:
        ds.RescaleSlope, ds.RescaleIntercept = rescale
    ds.PixelData = pixels.tobytes()
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def picture(data: bytes, **kw: object) -> np.ndarray:
    out = render_frame(data, **kw)  # type: ignore[arg-type]
    return np.asarray(Image.open(io.BytesIO(out)))


def assert_full_size_and_structured(pixels: np.ndarray) -> None:
    assert pixels.shape[:2] == (ROWS, COLS)
    assert pixels.std() > 30, "a real picture, not a uniform one"
    grey = pixels if pixels.ndim == 2 else pixels[..., 0]
    assert int(grey[90, 120]) >= 250 and int(grey[200, 2]) <= 10  # the bright square, the dark left edge


# name -> bits of the image it compresses (baseline JPEG is 8-bit only)
COMPRESSED = {name: 8 if name == "jpeg-baseline" else 16 for name in DCMTK_SYNTAXES}


@pytest.mark.parametrize("name", list(COMPRESSED))
def test_export_render_dcmtk_compressed_syntaxes_full_size(name):
    data = dcmtk_compress(name, image(bits=COMPRESSED[name]))
    assert dcmread(io.BytesIO(data)).file_meta.TransferSyntaxUID == DCMTK_SYNTAXES[name][2]
    assert_full_size_and_structured(picture(data))


@pytest.mark.parametrize("syntax", [JPEG2000Lossless, JPEG2000])
def test_export_render_jpeg2000_full_size(syntax):
    assert_full_size_and_structured(picture(j2k_compress(image(), syntax)))


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_export_render_native_grey_and_rgb(syntax):
    assert_full_size_and_structured(picture(image(syntax=syntax)))
    rgb = picture(image(bits=8, photometric="RGB", syntax=syntax))
    assert rgb.shape == (ROWS, COLS, 3) and not np.array_equal(rgb[..., 0], rgb[..., 1])  # colour kept


def test_export_render_rgb_jpeg_baseline_keeps_colour():
    data = dcmtk_compress("jpeg-baseline", image(bits=8, photometric="RGB"))
    rgb = picture(data)
    assert rgb.shape == (ROWS, COLS, 3)
    assert abs(int(rgb[10, 300, 0]) - int(rgb[10, 300, 1])) > 100  # red bright at the right, green dark there


def test_export_render_monochrome1_is_inverted():
    normal = picture(image())
    inverted = picture(image(photometric="MONOCHROME1"))
    assert np.abs(normal.astype(int) + inverted.astype(int) - 255).max() <= 1
    compressed = picture(dcmtk_compress("jpeg-ls-lossless", image(photometric="MONOCHROME1")))
    assert np.array_equal(compressed, inverted)


def test_export_render_uses_the_files_window_then_the_asked_one():
    # A narrow window around the gradient's middle: the left quarter is black, the right quarter white.
    windowed = picture(image(window=(2048, 400)))
    assert windowed[200, :60].max() == 0 and windowed[200, -60:].min() == 255
    asked = picture(image(window=(2048, 400)), window=(4095, 2))
    assert asked[200, :300].max() == 0 and asked[90, 120] == 255  # only the brightest values light up
    # The rescale comes first: a window in Hounsfield-like units after slope 1, intercept -1024.
    rescaled = picture(image(rescale=(1, -1024)), window=(1024, 400))
    assert np.array_equal(rescaled, windowed)


def test_export_render_each_frame_of_a_multiframe_image():
    data = dcmtk_compress("rle", image(frames=3))
    first, second = picture(data, frame=0), picture(data, frame=1)
    assert first.shape == second.shape == (ROWS, COLS)
    assert int(first[200, 2]) <= 10 and int(second[200, 2]) >= 245  # the second frame is the negative
    with pytest.raises(NoPreview, match="3 frames; there is no frame 4"):
        render_frame(data, frame=3)


def test_export_render_jpeg_output_and_bad_requests():
    out = render_frame(image(), media="image/jpeg")
    assert out.startswith(b"\xff\xd8") and Image.open(io.BytesIO(out)).size == (COLS, ROWS)
    with pytest.raises(UnsupportedRequest, match="image/png or image/jpeg"):
        render_frame(image(), media="image/gif")
    with pytest.raises(UnsupportedRequest, match="width of at least 1"):
        render_frame(image(), window=(100, 0))


def test_export_render_refuses_what_is_too_large_before_decoding():
    small = Limits(preview_max_image_bytes=1 * MB)
    big = image()  # 240 x 320 x 2 bytes = 150 KB: fine
    render_frame(big, limits=small)
    meta_only = dcmread(io.BytesIO(big))
    meta_only.Rows, meta_only.Columns = 4000, 4000  # 32 MB declared, the data far shorter
    out = io.BytesIO()
    meta_only.save_as(out)
    with pytest.raises(BadImage, match=r"too large to draw .*BACKUP_PREVIEW_MAX_IMAGE_MB"):
        render_frame(out.getvalue(), limits=small)


def test_export_render_damaged_and_imageless_files_say_why():
    with pytest.raises(BadImage):
        render_frame(b"not a DICOM file at all" * 10)
    truncated = image()[:-20000]
    with pytest.raises(BadImage, match="could not be decoded"):
        render_frame(truncated)
    ds = dcmread(io.BytesIO(image()))
    del ds.PixelData
    out = io.BytesIO()
    ds.save_as(out)
    with pytest.raises(NoPreview, match="no image"):
        render_frame(out.getvalue())


def test_export_render_waits_for_a_drawing_slot():
    limits = Limits(preview_slots=1, preview_wait_s=0.1)
    with preview_slot(limits), pytest.raises(PreviewsBusy):
        render_frame(image(), limits=limits)
    render_frame(image(), limits=limits)  # the slot is free again
