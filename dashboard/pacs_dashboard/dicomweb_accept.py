"""The ``Accept`` header of a DICOMweb request, and what the service of copies answers for it.

Nothing is converted: an instance is sent as stored, a frame in the encoding it is stored in. A request the
stored form cannot satisfy (a transfer syntax other than the stored one, uncompressed frames of a compressed
image) is refused with a sentence (HTTP 406) rather than answered with something else.
"""

from __future__ import annotations

from dataclasses import dataclass

from pacs_backup.dicom.frames import OCTET_STREAM

DICOM = "application/dicom"
DICOM_JSON = "application/dicom+json"
JSON_TYPES = (DICOM_JSON, "application/json")
RENDERED_TYPES = ("image/png", "image/jpeg")


class NotAcceptable(Exception):
    """What the client accepts cannot be given from this copy as stored; ``str()`` says why (HTTP 406)."""


@dataclass(frozen=True)
class MediaRange:
    """One entry of an Accept header: ``multipart/related; type="image/jpeg"; transfer-syntax=*; q=0.9``."""

    media: str  # lower case, e.g. multipart/related, application/dicom+json, */*
    type: str  # a multipart's type parameter ("" when absent)
    transfer_syntax: str  # "" when absent, "*" for any
    q: float


def parse_accept(header: str | None) -> list[MediaRange]:
    """The entries of ``header``, best first; ``*/*`` when there is none."""
    ranges: list[MediaRange] = []
    for entry in (header or "").split(","):
        media, *params = [p.strip() for p in entry.split(";")]
        if not media:
            continue
        values = {}
        for param in params:
            name, _, value = param.partition("=")
            values[name.strip().lower()] = value.strip().strip('"')
        try:
            q = float(values.get("q", "1"))
        except ValueError:
            q = 1.0
        ranges.append(MediaRange(media.lower(), values.get("type", "").lower(), values.get("transfer-syntax", ""), q))
    ranges.sort(key=lambda r: -r.q)
    return [r for r in ranges if r.q > 0] or [MediaRange("*/*", "", "", 1.0)]


def _any(media: str) -> bool:
    return media in ("*/*", "*", "multipart/*", "")


def wants_json(ranges: list[MediaRange]) -> str:
    """The JSON media type to answer with (QIDO-RS, metadata). Raises NotAcceptable."""
    for r in ranges:
        if r.media in JSON_TYPES:
            return DICOM_JSON if r.media == DICOM_JSON else "application/json"
        if _any(r.media) or r.media == "application/*":
            return DICOM_JSON
    raise NotAcceptable("This address answers in DICOM JSON only: ask with Accept: application/dicom+json.")


def check_instances(ranges: list[MediaRange], stored: list[str]) -> None:
    """Whether instances stored in the transfer syntaxes ``stored`` may be sent. Raises NotAcceptable."""
    for r in ranges:
        if _any(r.media) and not r.type:
            return
        if (
            r.media == "multipart/related"
            and r.type in ("", DICOM, "*/*", "application/*")
            and (r.transfer_syntax in ("", "*") or all(ts == r.transfer_syntax for ts in stored))
        ):
            return
    shown = ", ".join(sorted(set(stored))) or "its stored transfer syntax"
    raise NotAcceptable(
        f"Instances are sent as the copy stores them ({shown}), never converted: ask with "
        'Accept: multipart/related; type="application/dicom"; transfer-syntax=*.'
    )


def frame_type(ranges: list[MediaRange], stored_media: str, ts: str) -> str:
    """The type of each part when sending frames stored as ``stored_media`` in ``ts``. Raises NotAcceptable."""
    for r in ranges:
        if _any(r.media) and not r.type:
            return stored_media
        if r.media != "multipart/related":
            continue
        if r.transfer_syntax not in ("", "*", ts):
            continue
        if _any(r.type) or r.type == stored_media:
            return stored_media
        if r.type.endswith("/*") and stored_media.startswith(r.type[:-1]):
            return stored_media
        if r.type == OCTET_STREAM and (stored_media == OCTET_STREAM or r.transfer_syntax in ("*", ts)):
            return OCTET_STREAM
    raise NotAcceptable(
        f"The frames of this image are stored as {stored_media} (transfer syntax {ts}) and are sent as stored, "
        f'never converted: ask with Accept: multipart/related; type="{stored_media}", or '
        'type="application/octet-stream"; transfer-syntax=*.'
    )


def rendered_type(ranges: list[MediaRange]) -> str:
    """image/png or image/jpeg, as the client prefers. Raises NotAcceptable."""
    for r in ranges:
        if r.media in RENDERED_TYPES:
            return r.media
        if _any(r.media) or r.media == "image/*":
            return "image/png"
    raise NotAcceptable("A rendered image is sent as image/png or image/jpeg: ask with Accept: image/png.")
