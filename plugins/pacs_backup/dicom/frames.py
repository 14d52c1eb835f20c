"""One frame's bytes of a DICOM image, as stored (native or encapsulated), with its transfer syntax.

Nothing is decoded or converted: a native frame is its slice of the pixel data, an encapsulated frame its
fragments joined (pydicom's ``encaps.get_frame``, which follows the basic or extended offset table). The file
is parsed up to its pixel data only (``stop_before_pixels``); the pixel data itself is read in place.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from io import BytesIO

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.encaps import get_frame

from .web_json import IMPLICIT_LE, NotDicom, read_header, transfer_syntax

EXPLICIT_BE, DEFLATED = "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"
NATIVE = {IMPLICIT_LE, "1.2.840.10008.1.2.1", EXPLICIT_BE, DEFLATED}
_UNDEFINED = 0xFFFFFFFF
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"}

# The media type of a compressed frame, by transfer syntax (PS3.18 table 8.7.3-5).
MEDIA_TYPES = {
    "1.2.840.10008.1.2.5": "image/x-dicom-rle",
    "1.2.840.10008.1.2.4.50": "image/jpeg",
    "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg",
    "1.2.840.10008.1.2.4.70": "image/jpeg",
    "1.2.840.10008.1.2.4.80": "image/jls",
    "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2",
    "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.4.92": "image/jpx",
    "1.2.840.10008.1.2.4.93": "image/jpx",
    "1.2.840.10008.1.2.4.201": "image/jphc",
    "1.2.840.10008.1.2.4.202": "image/jphc",
    "1.2.840.10008.1.2.4.203": "image/jphc",
}
OCTET_STREAM = "application/octet-stream"


class NoFrame(Exception):
    """The frame asked for is not there (no image, or fewer frames); ``str()`` says so (HTTP 404)."""


class BadPixels(Exception):
    """The image data is damaged or shorter than the image it describes; ``str()`` says so (HTTP 422)."""


@dataclass(frozen=True)
class Frame:
    """One frame as stored: its bytes and the transfer syntax they are encoded in."""

    data: bytes
    transfer_syntax: str

    @property
    def media_type(self) -> str:
        """``application/octet-stream`` for native pixels, else the compressed format's media type."""
        return media_type(self.transfer_syntax)


def media_type(ts: str) -> str:
    """The media type of frames stored in ``ts``."""
    return OCTET_STREAM if ts in NATIVE else MEDIA_TYPES.get(ts, OCTET_STREAM)


def frame_count(ds: Dataset) -> int:
    """How many frames the image (a header) holds: 0 when it has no rows, else Number of Frames (at least 1)."""
    if "Rows" not in ds:
        return 0
    try:
        return max(1, int(ds.get("NumberOfFrames", 1) or 1))
    except (TypeError, ValueError):
        return 1


def frames(data: bytes, numbers: list[int]) -> list[Frame]:
    """Frames ``numbers`` (1-based) of the DICOM file ``data``. Raises NoFrame, BadPixels, NotDicom."""
    ds = read_header(data)
    ts, count = transfer_syntax(ds), frame_count(ds)
    if count == 0:
        raise NoFrame("This instance holds no image, so it has no frames.")
    for n in numbers:
        if not 1 <= n <= count:
            raise NoFrame(f"This image has {count} frame{'s' if count != 1 else ''}; there is no frame {n}.")
    buffer, start, length = _pixel_value(data, ts)
    try:
        if length == _UNDEFINED:
            return [Frame(_encapsulated(buffer, start, ds, n - 1, count, ts == EXPLICIT_BE), ts) for n in numbers]
        return [Frame(_native(buffer, start, length, ds, n - 1), ts) for n in numbers]
    except (ValueError, struct.error, EOFError) as exc:
        raise BadPixels(f"The image data of this copy cannot be read ({str(exc)[:120]}).") from None


def _pixel_value(data: bytes, ts: str) -> tuple[bytes, int, int]:
    """The buffer holding the pixel data, where its value starts and its declared length."""
    if ts == DEFLATED:  # the dataset is deflated: inflate it once to reach the pixels
        try:
            whole = dcmread(BytesIO(data), force=True)
            value = bytes(whole.PixelData)
        except (AttributeError, ValueError, EOFError, KeyError, struct.error) as exc:
            raise BadPixels(f"The image data of this copy cannot be read ({str(exc)[:120]}).") from None
        return value, 0, len(value)
    bio = BytesIO(data)
    try:
        dcmread(bio, stop_before_pixels=True, force=True)
    except Exception:  # noqa: BLE001 - read_header above read the same bytes without error
        raise NotDicom("This copy could not be read as a DICOM file.") from None
    pos, big = bio.tell(), ts == EXPLICIT_BE
    tag = data[pos : pos + 4]
    if tag != (b"\x7f\xe0\x00\x10" if big else b"\xe0\x7f\x10\x00"):
        raise NoFrame("This instance holds no pixel data.")
    if ts == IMPLICIT_LE:
        return data, pos + 8, int(struct.unpack_from("<I", data, pos + 4)[0])
    u32, u16 = (">I", ">H") if big else ("<I", "<H")
    if data[pos + 4 : pos + 6] in _LONG_VRS:
        return data, pos + 12, int(struct.unpack_from(u32, data, pos + 8)[0])
    return data, pos + 8, int(struct.unpack_from(u16, data, pos + 6)[0])


def _native(data: bytes, start: int, length: int, ds: Dataset, index: int) -> bytes:
    rows, cols = int(ds.Rows), int(ds.Columns)
    samples, bits = int(ds.get("SamplesPerPixel", 1) or 1), int(ds.get("BitsAllocated", 8) or 8)
    frame_bits = rows * cols * samples * bits
    first, last = index * frame_bits, (index + 1) * frame_bits
    end = start + min(length, len(data) - start)
    if start + (last + 7) // 8 > end:
        raise BadPixels("The image data of this copy is shorter than the image it describes: the copy is damaged.")
    if first % 8 == 0:
        return bytes(data[start + first // 8 : start + (last + 7) // 8])
    # 1-bit images: a frame may start inside a byte (the first pixel is the lowest bit)
    chunk = data[start + first // 8 : start + (last + 7) // 8]
    value = (int.from_bytes(chunk, "little") >> (first % 8)) & ((1 << frame_bits) - 1)
    return value.to_bytes((frame_bits + 7) // 8, "little")


def _encapsulated(data: bytes, start: int, ds: Dataset, index: int, count: int, big: bool) -> bytes:
    offsets = None
    if "ExtendedOffsetTable" in ds and "ExtendedOffsetTableLengths" in ds:
        offsets = (bytes(ds.ExtendedOffsetTable), bytes(ds.ExtendedOffsetTableLengths))
    buffer = BytesIO(data)  # shares the bytes, no copy
    buffer.seek(start)
    return bytes(
        get_frame(buffer, index, extended_offsets=offsets, number_of_frames=count, endianness=">" if big else "<")
    )
