"""DICOM files in compressed transfer syntaxes, made as a modality or a PACS makes them: DCMTK's compressors
(dcmcjpeg, dcmcjpls, dcmcrle; Debian's DCMTK has no JPEG 2000 encoder) and pydicom with pylibjpeg-openjpeg."""

from __future__ import annotations

import io
import shutil
import subprocess
import tempfile
from pathlib import Path

from pydicom import dcmread
from pydicom.uid import JPEG2000

# name -> (DCMTK program, its options, the transfer syntax it writes)
DCMTK_SYNTAXES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "jpeg-baseline": ("dcmcjpeg", ("+eb",), "1.2.840.10008.1.2.4.50"),
    "jpeg-extended": ("dcmcjpeg", ("+ee",), "1.2.840.10008.1.2.4.51"),
    "jpeg-lossless": ("dcmcjpeg", ("+el",), "1.2.840.10008.1.2.4.57"),
    "jpeg-lossless-sv1": ("dcmcjpeg", ("+e1",), "1.2.840.10008.1.2.4.70"),
    "jpeg-ls-lossless": ("dcmcjpls", ("+el",), "1.2.840.10008.1.2.4.80"),
    "jpeg-ls-near-lossless": ("dcmcjpls", ("+en",), "1.2.840.10008.1.2.4.81"),
    "rle": ("dcmcrle", (), "1.2.840.10008.1.2.5"),
}


def dcmtk_compress(name: str, data: bytes) -> bytes:
    """``data`` compressed by DCMTK as ``name`` (a key of DCMTK_SYNTAXES); argument tuple, no shell."""
    program, options, _ = DCMTK_SYNTAXES[name]
    assert shutil.which(program), f"{program} (Debian's dcmtk) is needed"
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in.dcm", Path(tmp) / "out.dcm"
        src.write_bytes(data)
        subprocess.run((program, *options, str(src), str(dst)), check=True, capture_output=True, timeout=60)
        return dst.read_bytes()


def j2k_compress(data: bytes, syntax: str) -> bytes:
    """``data`` as JPEG 2000 (lossless or lossy) by pydicom with pylibjpeg-openjpeg."""
    ds = dcmread(io.BytesIO(data))
    ds.compress(syntax, encoding_plugin="pylibjpeg", **({"j2k_psnr": [80]} if syntax == JPEG2000 else {}))
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()
