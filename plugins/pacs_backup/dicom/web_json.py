"""DICOM files as the DICOM JSON model of DICOMweb (PS3.18 F.2), without a web framework.

A header is read with ``stop_before_pixels`` (the pixel data is never parsed here); binary values larger than
a threshold become a ``BulkDataURI`` under the instance's address, the pixel data always does. The attribute
sets QIDO-RS answers with at the series and instance levels are picked from the same JSON.
"""

from __future__ import annotations

import re
import struct
from contextlib import suppress
from io import BytesIO
from typing import Any

from pydicom import dcmread
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.filewriter import correct_ambiguous_vr

JsonDataset = dict[str, Any]

IMPLICIT_LE = "1.2.840.10008.1.2"
_UID = re.compile(r"[0-9]{1,20}(?:\.[0-9]{1,20}){0,31}")
PIXEL_DATA = "7FE00010"
AVAILABLE_TRANSFER_SYNTAX = "00083002"
RETRIEVE_URL = "00081190"
BULK_THRESHOLD = 1024  # binary values longer than this (bytes) are given by address, not inline
_BINARY_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "UN", "OB or OW", "US or OW", "US or SS or OW"}

# What QIDO-RS answers at each level (PS3.18 table 10.6.1-5/-6), besides the counts it computes.
SERIES_TAGS = (
    "00080060",  # Modality
    "0008103E",  # SeriesDescription
    "00080021",  # SeriesDate
    "00080031",  # SeriesTime
    "0020000D",  # StudyInstanceUID
    "0020000E",  # SeriesInstanceUID
    "00200011",  # SeriesNumber
)
INSTANCE_TAGS = (
    "00080016",  # SOPClassUID
    "00080018",  # SOPInstanceUID
    "00080060",  # Modality
    "0020000D",  # StudyInstanceUID
    "0020000E",  # SeriesInstanceUID
    "00200013",  # InstanceNumber
    "00280008",  # NumberOfFrames
    "00280010",  # Rows
    "00280011",  # Columns
    "00280100",  # BitsAllocated
    AVAILABLE_TRANSFER_SYNTAX,
)


class NotDicom(Exception):
    """The bytes are not a DICOM file that can be read; ``str()`` says so, for a person."""


def read_header(data: bytes) -> Dataset:
    """The dataset of ``data`` up to (not including) its pixel data. Raises NotDicom."""
    try:
        ds = dcmread(BytesIO(data), stop_before_pixels=True, force=True)
        if "SOPInstanceUID" not in ds:
            raise NotDicom("This copy is not a DICOM image: it has no SOP Instance UID.")
        return ds
    except NotDicom:
        raise
    except (InvalidDicomError, ValueError, EOFError, KeyError, TypeError, IndexError, struct.error, OSError):
        raise NotDicom("This copy could not be read as a DICOM file.") from None


def transfer_syntax(ds: Dataset) -> str:
    """The transfer syntax the file is stored in (implicit little endian when its header names none).

    Raises NotDicom when the file names something that is not a UID (it goes into answers' headers).
    """
    meta = getattr(ds, "file_meta", None)
    ts = str(meta.get("TransferSyntaxUID", IMPLICIT_LE)) if meta is not None else IMPLICIT_LE
    if not _UID.fullmatch(ts):
        raise NotDicom("This copy names a transfer syntax that is not a UID, so it cannot be sent.")
    return ts


def _paths(ds: Dataset, prefix: tuple[str, ...], out: dict[int, str]) -> None:
    """Map every binary element (by identity) to its path below the instance: ``tag[/item/tag...]``."""
    for elem in ds:  # iterating converts raw elements once; the same objects are handed to the handler
        path = (*prefix, f"{elem.tag:08X}")
        if elem.VR == "SQ":
            for index, item in enumerate(elem.value or ()):
                _paths(item, (*path, str(index)), out)
        elif elem.VR in _BINARY_VRS:
            out[id(elem)] = "/".join(path)


def instance_json(ds: Dataset, bulk_base: str, *, has_pixels: bool | None = None) -> JsonDataset:
    """The DICOM JSON model of ``ds`` (a header from :func:`read_header`).

    ``bulk_base`` is the address of the instance's ``bulkdata`` (without a trailing slash); the pixel data,
    when the image has any, is given there as ``7FE00010``, and so is each binary value longer than
    BULK_THRESHOLD, at its path (``<tag>[/<item>/<tag>...]``).
    """
    with suppress(AttributeError, ValueError, KeyError, TypeError):  # left as read: dropped below if ambiguous
        correct_ambiguous_vr(ds, True)
    paths: dict[int, str] = {}
    _paths(ds, (), paths)

    def bulk(elem: DataElement) -> str:
        return f"{bulk_base}/{paths.get(id(elem), f'{elem.tag:08X}')}"

    out: JsonDataset = ds.to_json_dict(
        bulk_data_threshold=BULK_THRESHOLD * 4 // 3 + 4, bulk_data_element_handler=bulk, suppress_invalid_tags=True
    )
    for key, value in list(out.items()):
        if not isinstance(value, dict) or not str(value.get("vr", "")).isalpha() or len(str(value["vr"])) != 2:
            out.pop(key)  # an element whose VR stayed ambiguous is left out, never sent malformed
    ts = transfer_syntax(ds)
    out[AVAILABLE_TRANSFER_SYNTAX] = {"vr": "UI", "Value": [ts]}
    if has_pixels if has_pixels is not None else "Rows" in ds:
        native_words = (
            ts in (IMPLICIT_LE, "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.2")
            and int(ds.get("BitsAllocated", 8) or 8) > 8
        )
        out[PIXEL_DATA] = {"vr": "OW" if native_words else "OB", "BulkDataURI": f"{bulk_base}/{PIXEL_DATA}"}
    return dict(sorted(out.items()))


def pick(full: JsonDataset, tags: tuple[str, ...]) -> JsonDataset:
    """The attributes of ``full`` named by ``tags`` (those it has)."""
    return {t: full[t] for t in tags if t in full}


def element(vr: str, *values: object) -> dict[str, Any]:
    """One attribute of the JSON model: ``{"vr": vr, "Value": [...]}`` without empty values (PN as names)."""
    kept = [v for v in values if v not in ("", None)]
    if vr == "PN":
        kept = [{"Alphabetic": str(v)} for v in kept]
    return {"vr": vr, "Value": kept} if kept else {"vr": vr}


def first_value(full: JsonDataset, tag: str) -> str:
    """The first value of ``tag`` in ``full`` as text ("" when absent)."""
    values = full.get(tag, {}).get("Value") or [""]
    value = values[0]
    return str(value.get("Alphabetic", "")) if isinstance(value, dict) else str(value)


def bulk_value(data: bytes, path: list[str]) -> bytes:
    """The binary value at ``path`` (``<tag>[/<item>/<tag>...]``, as in a BulkDataURI) before the pixel data.

    Raises KeyError when there is no binary value there, NotDicom when the file cannot be read.
    """
    item: Dataset = read_header(data)
    parts = list(path)
    while parts:
        part = parts.pop(0)
        if len(part) != 8:
            raise KeyError(part)
        try:
            tag = int(part, 16)
        except ValueError:
            raise KeyError(part) from None
        if tag not in item:
            raise KeyError(part)
        elem = item[tag]
        if not parts:
            if elem.VR not in _BINARY_VRS or not isinstance(elem.value, bytes | bytearray):
                raise KeyError(part)
            return bytes(elem.value)
        index = parts.pop(0)
        if elem.VR != "SQ" or not index.isdigit() or int(index) >= len(elem.value):
            raise KeyError(part)
        item = elem.value[int(index)]
    raise KeyError("/".join(path))
