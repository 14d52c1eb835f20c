"""Object key layout: ``[prefix/]dicom/<StudyInstanceUID>/<SeriesInstanceUID>/<SOPInstanceUID>.dcm``.

DICOM UIDs are digits and dots (at most 64 characters), but a PACS stores whatever a modality sent.
A component that is not a plain, short identifier is replaced by a digest so that no value can
escape the layout (``..``, ``/``, control characters, very long strings).
"""

from __future__ import annotations

import hashlib
import re

_SAFE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_DIGEST_MARK = "h-"


def safe_component(value: str) -> str:
    """Return ``value`` if it is safe as one path component, otherwise ``h-<sha256 prefix>``.

    Args:
        value: a UID or other identifier as found in the DICOM file.
    Returns:
        A string of ``[A-Za-z0-9._-]`` that contains no ``..`` and no separator. A value that itself
        begins with ``h-`` is digested too, so no UID can pose as another UID's digest (two studies
        would then share a folder, and restoring one would bring back the other).
    """
    if _SAFE.fullmatch(value) and ".." not in value and not value.startswith(_DIGEST_MARK):
        return value
    return _DIGEST_MARK + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:40]


def instance_key(study_uid: str, series_uid: str, sop_uid: str, prefix: str = "", variant: str | None = None) -> str:
    """Build the object key of one instance.

    Args:
        study_uid, series_uid, sop_uid: the instance's DICOM UIDs.
        prefix: optional site prefix (a central bucket shared by several clinics).
        variant: set only when two different Orthanc instances share all three UIDs (e.g. the same
            UIDs under two patient ids); the second is kept at ``<SOP>.<variant>.dcm``.
    Returns:
        The key, e.g. ``dicom/1.2.3/1.2.3.4/1.2.3.4.5.dcm``.
    """
    leaf = safe_component(sop_uid) + (f".{safe_component(variant)}" if variant else "") + ".dcm"
    parts = [safe_component(study_uid), safe_component(series_uid), leaf]
    head = f"{prefix.strip('/')}/dicom" if prefix.strip("/") else "dicom"
    return "/".join([head, *parts])


def study_prefix(study_uid: str, prefix: str = "") -> str:
    """Return the key prefix under which all objects of one study live (ends with ``/``)."""
    head = f"{prefix.strip('/')}/dicom" if prefix.strip("/") else "dicom"
    return f"{head}/{safe_component(study_uid)}/"
