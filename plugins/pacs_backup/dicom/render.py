"""A full-size 8-bit picture (PNG or JPEG) of one frame of a DICOM image, native or compressed.

Decoding is pydicom's with maintained decoders (pylibjpeg with libjpeg, openjpeg and rle; Pillow), never
our own: JPEG baseline, extended and lossless, JPEG-LS, JPEG 2000 and RLE, as the PACS holds them. Grey
images are mapped to 8 bits as a viewer's first look would: the rescale (or Modality LUT), then the
window asked for, else the file's own window (or VOI LUT), else robust low and high values (1 % and 99 %);
MONOCHROME1 is inverted. Colour stays colour (YBR is turned into RGB, palettes are applied).

Memory stays bounded (docs/security.md, "Limits on incoming files and previews"): the file's structure
is checked first without recursion (:func:`guard.screen`), the declared size of a frame is checked against
``BACKUP_PREVIEW_MAX_IMAGE_MB`` before any pixel is decoded, only the asked frame is decoded, the mapping
to 8 bits goes through a table a band of rows at a time, and pictures are drawn in the process's
``BACKUP_PREVIEW_CONCURRENCY`` slots (:func:`preview.preview_slot`; :class:`PreviewsBusy` after the wait).
"""

from __future__ import annotations

import io
import os
import struct
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from PIL import Image
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.multival import MultiValue
from pydicom.pixels.processing import apply_color_lut, apply_modality_lut, apply_voi

from pacs_backup.settings.limits import MB, Limits, load_limits

from .guard import screen
from .preview import BadImage, NoPreview, preview_slot

__all__ = ["MEDIA", "BadImage", "NoPreview", "UnsupportedRequest", "render_frame"]

MEDIA: Final = ("image/png", "image/jpeg")
JPEG_QUALITY: Final = 90
_BAND_ROWS: Final = 256  # rows mapped to 8 bits at a time (bounds the temporary arrays)
_MAX_TABLE: Final = 1 << 20  # a grey table covers at most this many stored values, else values are mapped directly
# What decoders and pydicom raise on a damaged file (anything else is a bug and reaches the log).
_DECODE_ERRORS = (
    InvalidDicomError,
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    AttributeError,
    RuntimeError,
    NotImplementedError,
    OSError,
    EOFError,
    struct.error,
)

Grey = npt.NDArray[np.float64]


class UnsupportedRequest(ValueError):
    """What was asked cannot be drawn (a media type other than PNG or JPEG, a window narrower than 1): HTTP 400."""


def render_frame(
    data: bytes,
    frame: int = 0,
    media: str = "image/png",
    window: tuple[float, float] | None = None,
    *,
    limits: Limits | None = None,
) -> bytes:
    """The picture of frame ``frame`` (0-based) of the DICOM file ``data``, full size, as ``media``.

    Args:
        window: (centre, width) in the image's own units (after rescale); None uses the file's window,
            else robust low and high values.
        limits: defaults to the environment (BACKUP_PREVIEW_MAX_IMAGE_MB and the file limits).
    Raises:
        UnsupportedRequest: ``media`` or ``window`` cannot be honoured.
        NoPreview: the file holds no image, no such frame, or a kind of image that cannot be drawn.
        BadImage: the file is damaged, or larger than a picture may be (a subclass of NoPreview).
        PreviewsBusy: every drawing slot stayed taken for ``BACKUP_PREVIEW_WAIT_SECONDS``.
    """
    if media not in MEDIA:
        raise UnsupportedRequest(f"Pictures can be drawn as {' or '.join(MEDIA)} only, not {media[:40]!r}.")
    if window is not None and not (np.isfinite(window).all() and window[1] >= 1):
        raise UnsupportedRequest("A window is a centre and a width of at least 1.")
    limits = limits or load_limits(os.environ)
    verdict = screen(data, limits)
    if verdict.refusal:
        raise BadImage("This file cannot be drawn: its structure is beyond the limits for incoming files.")
    with preview_slot(limits):
        try:
            ds = dcmread(io.BytesIO(data))
            _check(ds, frame, limits)
            ds.pixel_array_options(index=frame)
            pixels = ds.pixel_array
        except NoPreview:
            raise
        except _DECODE_ERRORS:
            raise BadImage("The image in this file could not be decoded: the file is damaged or unusual.") from None
        picture = _picture(ds, pixels, frame, window)
        return _encode(picture, media)


def _check(ds: Dataset, frame: int, limits: Limits) -> None:
    """Refuse, before decoding, what has no image, no such frame, or a frame larger than the limit."""
    if "PixelData" not in ds:
        raise NoPreview("This file holds no image that can be drawn (no pixel data).")
    rows, cols = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
    samples, bits = int(ds.get("SamplesPerPixel") or 1), int(ds.get("BitsAllocated") or 16)
    frames = int(ds.get("NumberOfFrames") or 1)
    if rows <= 0 or cols <= 0 or samples not in (1, 3) or bits not in (1, 8, 16, 32, 64):
        raise BadImage("The image size in the file is not plausible.")
    if not 0 <= frame < frames:
        raise NoPreview(f"This image has {frames} frame{'s' if frames != 1 else ''}; there is no frame {frame + 1}.")
    size = rows * cols * samples * max(bits // 8, 1)
    if size > limits.preview_max_image_bytes:
        raise BadImage(
            f"This image is too large to draw ({cols} x {rows}, {size / MB:.0f} MB; the limit is "
            f"{limits.preview_max_image_bytes // MB} MB, BACKUP_PREVIEW_MAX_IMAGE_MB)."
        )


def _picture(ds: Dataset, pixels: npt.NDArray[Any], frame: int, window: tuple[float, float] | None) -> Image.Image:
    photometric = str(ds.get("PhotometricInterpretation") or "MONOCHROME2").strip()
    if photometric == "PALETTE COLOR":
        try:
            pixels = apply_color_lut(pixels, ds)
        except _DECODE_ERRORS:
            raise BadImage("The colour palette of this image could not be read.") from None
    if pixels.ndim == 3 and pixels.shape[-1] == 3:
        return Image.fromarray(_colour_8bit(pixels, ds), "RGB")
    if pixels.ndim != 2:
        raise NoPreview("Only grey and colour images can be drawn.")
    return Image.fromarray(_grey_8bit(pixels, ds, frame, window, photometric == "MONOCHROME1"), "L")


def _colour_8bit(pixels: npt.NDArray[Any], ds: Dataset) -> npt.NDArray[np.uint8]:
    """RGB as 8 bits: a 16-bit palette or RGB of more than 8 bits is scaled down."""
    if pixels.dtype == np.uint8:
        return np.ascontiguousarray(pixels, dtype=np.uint8)
    palette = str(ds.get("PhotometricInterpretation") or "").strip() == "PALETTE COLOR"
    bits = 16 if palette else min(max(int(ds.get("BitsStored") or 16), 8), 16)
    scaled = np.clip(pixels.astype(np.float32) * (255.0 / ((1 << bits) - 1)), 0, 255)
    return np.asarray(scaled, dtype=np.uint8)


def _grey_8bit(
    pixels: npt.NDArray[Any], ds: Dataset, frame: int, window: tuple[float, float] | None, invert: bool
) -> npt.NDArray[np.uint8]:
    """Map grey values to 8 bits through a table over the stored values (a band of rows at a time)."""
    modality = _modality_dataset(ds, frame)
    if pixels.dtype.kind in "iub":
        low, high = int(pixels.min()), int(pixels.max())
        if high - low < _MAX_TABLE:
            stored = np.arange(low, high + 1, dtype=np.int64)
            counts = np.zeros(high - low + 1, dtype=np.int64)
            for r in range(0, pixels.shape[0], _BAND_ROWS):
                counts += np.bincount(
                    (pixels[r : r + _BAND_ROWS].astype(np.int64) - low).ravel(), minlength=len(counts)
                )
            table = _to_8bit(stored, counts, modality, ds, frame, window, invert)
            out = np.empty(pixels.shape, dtype=np.uint8)
            for r in range(0, pixels.shape[0], _BAND_ROWS):
                out[r : r + _BAND_ROWS] = table[pixels[r : r + _BAND_ROWS].astype(np.int64) - low]
            return out
    # Floating point or very wide integers: map the values themselves (rare; the size limit bounds them).
    values = pixels.astype(np.float64)
    return _to_8bit(values.ravel(), None, modality, ds, frame, window, invert).reshape(pixels.shape)


def _to_8bit(
    stored: npt.NDArray[Any],
    counts: npt.NDArray[np.int64] | None,
    modality: Dataset,
    ds: Dataset,
    frame: int,
    window: tuple[float, float] | None,
    invert: bool,
) -> npt.NDArray[np.uint8]:
    """0-255 for each of ``stored`` (with ``counts``, how often each occurs, for the robust range)."""
    try:
        real = np.asarray(apply_modality_lut(stored, modality), dtype=np.float64)
    except _DECODE_ERRORS:
        raise BadImage("The rescale table of this image could not be read.") from None
    chosen = window or _file_window(ds, frame)
    if chosen is not None:
        grey = _linear(real, *chosen, _voi_function(ds))
    elif ds.get("VOILUTSequence") and stored.dtype.kind in "iu":
        try:
            lut = np.asarray(apply_voi(np.rint(real).astype(np.int64), ds), dtype=np.float64)
        except _DECODE_ERRORS:
            raise BadImage("The display table (VOI LUT) of this image could not be read.") from None
        grey = _stretch(lut, float(lut.min()), float(lut.max()))
    else:
        low, high = _robust_range(real, counts)
        grey = _stretch(real, low, high)
    if invert:
        grey = 1.0 - grey
    return np.rint(grey * 255.0).astype(np.uint8)


def _linear(x: Grey, centre: float, width: float, function: str) -> Grey:
    """The window as PS3.3 C.11.2.1.2 defines it, as a fraction 0-1."""
    if function == "SIGMOID":
        return np.asarray(1.0 / (1.0 + np.exp(-4.0 * (x - centre) / width)), dtype=np.float64)
    if function == "LINEAR_EXACT":
        return np.clip((x - (centre - width / 2)) / width, 0.0, 1.0)
    width = max(width, 1.0)
    if width == 1.0:
        return np.where(x < centre - 0.5, 0.0, 1.0)
    return np.clip((x - (centre - 0.5)) / (width - 1) + 0.5, 0.0, 1.0)


def _stretch(x: Grey, low: float, high: float) -> Grey:
    return np.clip((x - low) / max(high - low, 1e-9), 0.0, 1.0)


def _robust_range(real: Grey, counts: npt.NDArray[np.int64] | None) -> tuple[float, float]:
    """The values below which 1 % and above which 1 % of the pixels lie."""
    order = np.argsort(real, kind="stable")
    weights = counts[order] if counts is not None else np.ones(len(real), dtype=np.int64)
    cumulative = np.cumsum(weights)
    total = int(cumulative[-1])
    low_at = int(np.searchsorted(cumulative, total * 0.01, side="right"))
    high_at = int(np.searchsorted(cumulative, total * 0.99, side="left"))
    low, high = float(real[order[min(low_at, len(order) - 1)]]), float(real[order[min(high_at, len(order) - 1)]])
    if high <= low:  # a nearly uniform image: use its whole range
        low, high = float(real.min()), float(real.max())
    return low, high


def _functional(ds: Dataset, frame: int, sequence: str) -> Dataset | None:
    """The per-frame (else shared) functional group item ``sequence`` of an enhanced multi-frame image."""
    for groups, index in (("PerFrameFunctionalGroupsSequence", frame), ("SharedFunctionalGroupsSequence", 0)):
        items = ds.get(groups)
        if items and index < len(items) and items[index].get(sequence):
            item: Dataset = items[index].get(sequence)[0]
            return item
    return None


def _modality_dataset(ds: Dataset, frame: int) -> Dataset:
    """Where the rescale is: the file itself, or its functional groups (enhanced CT, MR...)."""
    if "RescaleSlope" in ds or "ModalityLUTSequence" in ds:
        return ds
    item = _functional(ds, frame, "PixelValueTransformationSequence")
    return item if item is not None and "RescaleSlope" in item and "RescaleIntercept" in item else ds


def _file_window(ds: Dataset, frame: int) -> tuple[float, float] | None:
    """The file's first window (centre, width), when it has a usable one."""
    source: Dataset | None = ds if "WindowCenter" in ds else _functional(ds, frame, "FrameVOILUTSequence")
    if source is None:
        return None
    try:
        centre, width = source.get("WindowCenter"), source.get("WindowWidth")
        centre = float(centre[0] if _multi(centre) else centre)
        width = float(width[0] if _multi(width) else width)
    except (TypeError, ValueError, IndexError):
        return None
    return (centre, width) if np.isfinite(centre) and np.isfinite(width) and width >= 1 else None


def _multi(value: object) -> bool:
    return isinstance(value, list | tuple | MultiValue)


def _voi_function(ds: Dataset) -> str:
    return str(ds.get("VOILUTFunction") or "LINEAR").strip().upper()


def _encode(picture: Image.Image, media: str) -> bytes:
    out = io.BytesIO()
    if media == "image/jpeg":
        picture.save(out, "JPEG", quality=JPEG_QUALITY)
    else:
        picture.save(out, "PNG", compress_level=3)  # 3x faster than 6 for a 5 MP X-ray, 15 % larger
    return out.getvalue()
