"""The answers of the DICOMweb service of copies that carry images: frames as stored, and rendered pictures
(PNG or JPEG, drawn by the plugin's renderer ``pacs_backup.dicom.render``), with :class:`WebAnswer`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pacs_backup.dicom.multipart as multipart
from pacs_backup.dicom.frames import OCTET_STREAM, Frame
from pacs_backup.dicom.preview import BadImage, NoPreview, PreviewsBusy

from .dicomweb_accept import MediaRange, frame_type, rendered_type


@dataclass
class WebAnswer:
    """An HTTP answer: status, Content-Type, body (bytes, or chunks streamed) and the study it opened."""

    status: int
    content_type: str
    body: bytes | Iterator[bytes]
    headers: dict[str, str] = field(default_factory=dict)
    study_uid: str = ""  # the study whose images or details this answer gives ("" for none): for the audit


def error(status: int, sentence: str, headers: dict[str, str] | None = None) -> WebAnswer:
    return WebAnswer(status, "application/json", json.dumps({"error": sentence}).encode(), headers or {})


def json_answer(value: Any, media: str, study_uid: str = "") -> WebAnswer:
    return WebAnswer(200, media, json.dumps(value).encode(), study_uid=study_uid)


def frame_answer(found: list[Frame], ranges: list[MediaRange], study_uid: str) -> WebAnswer:
    """Frames as stored, one part each (``<media type>; transfer-syntax=<uid>``)."""
    ts = found[0].transfer_syntax
    chosen = frame_type(ranges, found[0].media_type, ts)
    part = f"{chosen}; transfer-syntax={ts}"
    body, ctype = multipart.encode([(part, f.data) for f in found], chosen)
    if chosen == OCTET_STREAM:
        ctype = multipart.content_type(chosen, ctype.rsplit("boundary=", 1)[1], ts)
    return WebAnswer(200, ctype, body, study_uid=study_uid)


def _window(args: list[tuple[str, str]]) -> tuple[float, float] | None:
    """``window=<centre>,<width>[,<function>]`` of a rendered request (PS3.18 8.3.5.1.4), else None."""
    for key, value in args:
        if key.lower() == "window":
            try:
                centre, width = (float(v) for v in value.split(",")[:2])
            except ValueError:
                return None
            return centre, width
    return None


def rendered_answer(
    data: bytes, frame: int, ranges: list[MediaRange], study_uid: str, args: list[tuple[str, str]] | None = None
) -> WebAnswer:
    """A full-size picture of ``frame`` (1-based) as PNG or JPEG, as the client accepts."""
    media = rendered_type(ranges)
    try:
        from pacs_backup.dicom.render import UnsupportedRequest, render_frame
    except ImportError:
        return error(406, "Rendered pictures cannot be drawn by this dashboard: its image renderer is not installed.")
    try:
        picture = render_frame(data, frame - 1, media, _window(args or []))
    except UnsupportedRequest as exc:
        return error(400, str(exc))
    except BadImage as exc:
        return error(422, str(exc))
    except NoPreview as exc:
        return error(422, str(exc))
    except PreviewsBusy as exc:
        return error(503, str(exc), {"Retry-After": str(exc.retry_after)})
    return WebAnswer(200, media, picture, study_uid=study_uid)
