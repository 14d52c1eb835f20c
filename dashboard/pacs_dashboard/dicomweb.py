"""The read-only DICOMweb service of one copy: a request path below a DICOMweb base turned into an answer,
without Flask (views/copies.py serves it at ``/copies/<source>/dicom-web/``; a share link may serve one
study at its own base with ``only_study``).

QIDO-RS: ``studies``, ``studies/{st}/series``, ``studies/{st}/instances``, ``studies/{st}/series/{se}/instances``.
WADO-RS: ``.../metadata`` (study, series, instance), the instances themselves (``studies/{st}``,
``.../series/{se}``, ``.../instances/{sop}``: multipart/related, as stored), ``.../frames/{n[,m...]}``,
``.../rendered`` and ``.../frames/{n}/rendered`` (PNG or JPEG), ``.../bulkdata/{path}`` (the BulkDataURIs
of the metadata). With ``only_study`` every other study is answered as missing (404), and the study search
lists that study only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Iterator
from typing import Any

import pacs_backup.dicom.multipart as multipart
from pacs_backup.contracts.errors import BackupError, NotFound
from pacs_backup.contracts.inputs import is_uid
from pacs_backup.dicom.frames import BadPixels, NoFrame, frame_count, frames
from pacs_backup.dicom.web_json import (
    INSTANCE_TAGS,
    JsonDataset,
    NotDicom,
    bulk_value,
    instance_json,
    pick,
    read_header,
    transfer_syntax,
)
from pacs_backup.sources.base import CopyDamaged, CopyInstance, SourceUnavailable

from .backend_api import BackendError, BackendRefused, NotInBackend, PacsDown
from .copy_reader import CopyReader
from .dicomweb_accept import DICOM, NotAcceptable, check_instances, parse_accept, wants_json
from .dicomweb_media import WebAnswer, error, frame_answer, json_answer, rendered_answer
from .dicomweb_qido import qido_series, qido_studies, study_json, window
from .view_cache import ByteLru

log = logging.getLogger(__name__)
_BASE = "@@instance-url@@"  # stands for an instance's address in cached metadata
MAX_FRAMES = 1000


class DicomWeb:
    """DICOMweb for one source of ``reader``, at ``base_url`` (the address ending in ``/dicom-web``)."""

    def __init__(
        self,
        reader: CopyReader,
        source: str,
        base_url: str,
        *,
        label: str = "",
        only_study: str | None = None,
        headers: ByteLru | None = None,
    ) -> None:
        self.reader, self.source, self.base = reader, source, base_url.rstrip("/")
        self.label = label or f"the copy '{source}'"
        self.only_study = only_study
        self.headers = headers or ByteLru(8 * 1024 * 1024)

    # --- entry -------------------------------------------------------------------------------------------
    def answer(self, path: str, args: Iterable[tuple[str, str]], accept: str | None) -> WebAnswer:
        """The answer to ``GET <base>/<path>?<args>`` with ``Accept: <accept>``; never raises for bad input."""
        parts = [p for p in path.strip("/").split("/") if p]  # already decoded by the web framework
        try:
            return self._route(parts, list(args), accept)
        except NotAcceptable as exc:
            return error(406, str(exc))
        except CopyDamaged:
            return error(
                409, f"The copy of this instance in {self.label} does not match its checksum; it is not shown."
            )
        except (NotFound, NotInBackend, NoFrame) as exc:
            return error(404, str(exc) or "That is not in this copy.")
        except (NotDicom, BadPixels) as exc:
            return error(422, str(exc))
        except BackendRefused as exc:
            return error(400, str(exc))
        except (SourceUnavailable, PacsDown) as exc:
            return error(503, str(exc))
        except (BackendError, BackupError) as exc:
            log.warning("DICOMweb of copy %s: %s", self.source, exc)
            return error(502, f"{self.label[:1].upper()}{self.label[1:]} could not be read: {exc}")

    def _route(self, parts: list[str], args: list[tuple[str, str]], accept: str | None) -> WebAnswer:
        ranges = parse_accept(accept)
        if not parts or parts[0] != "studies":
            return error(404, "This DICOMweb service answers under studies/ only (QIDO-RS and WADO-RS).")
        if len(parts) == 1:
            return self._studies(args, wants_json(ranges))
        study = self._study_uid(parts[1])
        rest = parts[2:]
        if not rest:
            return self._instances_answer(study, self._listing(study), ranges)
        if rest == ["metadata"]:
            return self._metadata(study, self._listing(study), ranges)
        if rest == ["series"]:
            return self._qido_series(study, args, wants_json(ranges))
        if rest == ["instances"]:
            return self._qido_instances(study, self._listing(study), args, wants_json(ranges))
        if rest[0] != "series" or len(rest) < 2:
            return error(404, "There is no such DICOMweb address for a study.")
        series = self._uid(rest[1], "series")
        in_series = [i for i in self._listing(study) if i["series_uid"] == series]
        if not in_series:
            raise NotFound("This copy holds no such series in this study.")
        rest = rest[2:]
        if not rest:
            return self._instances_answer(study, in_series, ranges)
        if rest == ["metadata"]:
            return self._metadata(study, in_series, ranges)
        if rest == ["instances"]:
            return self._qido_instances(study, in_series, args, wants_json(ranges))
        if rest[0] != "instances" or len(rest) < 2:
            return error(404, "There is no such DICOMweb address for a series.")
        sop = self._uid(rest[1], "image")
        instance = next((i for i in in_series if i["sop_uid"] == sop), None)
        if instance is None:
            raise NotFound("This copy holds no such image in this series.")
        return self._instance_route(study, instance, rest[2:], ranges, args)

    def _instance_route(
        self, study: str, inst: CopyInstance, rest: list[str], ranges: list[Any], args: list[tuple[str, str]]
    ) -> WebAnswer:
        if not rest:
            return self._instances_answer(study, [inst], ranges)
        if rest == ["metadata"]:
            return self._metadata(study, [inst], ranges)
        if rest == ["rendered"]:
            return rendered_answer(self._read(inst), 1, ranges, study, args)
        if rest[0] == "frames" and len(rest) in (2, 3):
            numbers = self._frame_numbers(rest[1])
            if len(rest) == 3:
                if rest[2] != "rendered" or len(numbers) != 1:
                    return error(400, "Ask for one frame's rendering at a time: .../frames/{n}/rendered.")
                return rendered_answer(self._read(inst), numbers[0], ranges, study, args)
            return frame_answer(frames(self._read(inst), numbers), ranges, study)
        if rest[0] == "bulkdata" and len(rest) >= 2:
            return self._bulkdata(study, inst, rest[1:], ranges)
        return error(404, "There is no such DICOMweb address for an image.")

    # --- checks ------------------------------------------------------------------------------------------
    def _uid(self, text: str, what: str) -> str:
        if not is_uid(text):
            raise NotFound(f"There is no such {what} in this copy.")
        return text

    def _study_uid(self, text: str) -> str:
        uid = self._uid(text, "study")
        if self.only_study is not None and uid != self.only_study:
            raise NotFound("There is no such study in this copy.")  # the same words as for a missing study
        return uid

    def _listing(self, study: str) -> list[CopyInstance]:
        found = self.reader.instances(self.source, study)
        if not found:
            raise NotFound("This copy does not hold this study.")
        return found

    def _frame_numbers(self, text: str) -> list[int]:
        try:
            numbers = [int(n) for n in text.split(",") if n.strip()]
        except ValueError:
            numbers = []
        if not numbers or len(numbers) > MAX_FRAMES or any(n < 1 for n in numbers):
            raise BackendRefused("Frames are numbered from 1 and listed with commas: .../frames/1 or .../frames/1,2,3.")
        return numbers

    def _read(self, inst: CopyInstance) -> bytes:
        return self.reader.read(self.source, inst["study_uid"], inst["sop_uid"])

    # --- QIDO-RS -----------------------------------------------------------------------------------------
    def _studies(self, args: list[tuple[str, str]], media: str) -> WebAnswer:
        found = qido_studies(self.reader, self.source, args, self.only_study)
        return json_answer([study_json(s, self.base) for s in found], media)

    def _qido_series(self, study: str, args: list[tuple[str, str]], media: str) -> WebAnswer:
        metas = self._metas(study, self._listing(study))
        return json_answer(qido_series(metas, args, f"{self.base}/studies/{study}/series"), media, study)

    def _qido_instances(
        self, study: str, listing: list[CopyInstance], args: list[tuple[str, str]], media: str
    ) -> WebAnswer:
        wanted = {k.upper(): v for k, v in args}
        out = []
        for inst, meta in self._metas(study, listing):
            if any(
                wanted.get(k, v) != v
                for k, v in (("SOPINSTANCEUID", inst["sop_uid"]), ("SERIESINSTANCEUID", inst["series_uid"]))
            ):
                continue
            row = pick(meta, INSTANCE_TAGS)
            row["00081190"] = {"vr": "UR", "Value": [self._instance_url(inst)]}
            out.append(row)
        return json_answer(window(out, args), media, study)

    # --- WADO-RS -----------------------------------------------------------------------------------------
    def _instance_url(self, inst: CopyInstance) -> str:
        return f"{self.base}/studies/{inst['study_uid']}/series/{inst['series_uid']}/instances/{inst['sop_uid']}"

    def _metas(self, study: str, listing: list[CopyInstance]) -> list[tuple[CopyInstance, JsonDataset]]:
        """Each instance's DICOM JSON (headers kept in memory; the pixel data is never parsed)."""
        out = []
        for inst in listing:
            key = (self.source, study, inst["sop_uid"])
            text = self.headers.get(key)
            if text is None:
                ds = read_header(self._read(inst))
                text = json.dumps(instance_json(ds, _BASE + "/bulkdata", has_pixels=frame_count(ds) > 0)).encode()
                self.headers.put(key, text)
            out.append((inst, json.loads(text.decode().replace(_BASE, self._instance_url(inst)))))
        return out

    def _metadata(self, study: str, listing: list[CopyInstance], ranges: list[Any]) -> WebAnswer:
        media = wants_json(ranges)
        return json_answer([meta for _, meta in self._metas(study, listing)], media, study)

    def _instances_answer(self, study: str, listing: list[CopyInstance], ranges: list[Any]) -> WebAnswer:
        """The instances as stored, one part each, streamed (the first is read before answering)."""
        first = self._read(listing[0])
        wanted = {r.transfer_syntax for r in ranges if r.transfer_syntax not in ("", "*")}
        stored = [transfer_syntax(read_header(first))]
        if wanted:  # a transfer syntax was named: every instance's is checked before answering
            stored = [transfer_syntax(read_header(self._read(i))) for i in listing]
        check_instances(ranges, stored)
        boundary = multipart.new_boundary()

        def parts() -> Iterator[tuple[str, bytes]]:
            yield DICOM, first
            for inst in listing[1:]:
                yield DICOM, self._read(inst)  # an error here ends the answer early: never a wrong image

        body = multipart.stream(parts(), boundary)
        return WebAnswer(200, multipart.content_type(DICOM, boundary), body, study_uid=study)

    def _bulkdata(self, study: str, inst: CopyInstance, path: list[str], ranges: list[Any]) -> WebAnswer:
        data = self._read(inst)
        if path == ["7FE00010"]:
            count = frame_count(read_header(data))
            if count == 0:
                raise NotFound("This image has no pixel data.")
            return frame_answer(frames(data, list(range(1, count + 1))), ranges, study)
        try:
            value = bulk_value(data, path)
        except KeyError:
            raise NotFound("This image has no such bulk data.") from None
        body, ctype = multipart.encode([("application/octet-stream", value)], "application/octet-stream")
        return WebAnswer(200, ctype, body, study_uid=study)
