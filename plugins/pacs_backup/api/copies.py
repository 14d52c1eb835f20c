"""Routes that read a study from any copy (``GET /backup/copies...``) without writing it into the PACS,
and the assembly of those copies (:func:`copy_sources`) from the running engine.

A copy that cannot be read now answers 503 with its sentence (a drive not plugged in), a copy whose
bytes do not match what it recorded 409 (never shown as the study), an unknown copy or study 404.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from pathlib import Path

from pacs_backup.clients.orthanc_source import Getter
from pacs_backup.contracts.errors import BackupError, BadRequest, NotFound
from pacs_backup.contracts.inputs import is_plain_text
from pacs_backup.jobs.drives import DriveWatch
from pacs_backup.jobs.snapshots import OffsiteContext
from pacs_backup.replication.cloud_pacs import CloudSender
from pacs_backup.settings.config import Settings
from pacs_backup.settings.targets import TargetSettings
from pacs_backup.sources.base import CopySource, SourceUnavailable, StudyMatch
from pacs_backup.sources.bucket import BucketSource
from pacs_backup.sources.cache import ViewCache
from pacs_backup.sources.cloud import CloudSource, DicomWebReader, dimse_source
from pacs_backup.sources.pacs import PacsSource, Poster
from pacs_backup.sources.registry import Parts, SourceRegistry
from pacs_backup.state.catalog import Catalog

from . import http_input as check
from .answers import Answer, Binary, EngineParts, PartsHandler, Request

VIEW_CACHE_DIR = "pacs-backup-view-cache"  # beside Orthanc's storage folder, never inside a snapshot
DATE = re.compile(r"(\d{8})?(-)?(\d{8})?")


def copy_sources(
    settings: Settings,
    storage_dir: Path,
    get: Getter,
    post: Poster | None,
    ctx: OffsiteContext,
    drives: DriveWatch | None,
    cloud: CloudSender | None,
) -> SourceRegistry:
    """The copies of the running engine as sources (the view cache is emptied here, at start)."""
    catalog: Catalog = ctx.catalog
    cloud_source: CopySource | None = None
    peer = settings.cloud_pacs
    if peer is not None and cloud is not None:
        if peer.url is not None:
            cloud_source = CloudSource(DicomWebReader(peer.url, peer.username, peer.password), cloud.queue)
        else:
            cloud_source = dimse_source(cloud.client.shown)

    def drive_state(target: TargetSettings) -> tuple[bool, str]:
        assert drives is not None  # noqa: S101 - only asked when there is a drive watch
        state = drives.state(target)
        unplugged = f"The backup drive '{target.name}' is not plugged in."
        return state.connected, unplugged if state.mount_point is None else state.sentence

    parts = Parts(
        targets=settings.targets,
        restic_for=ctx.restic,
        cache=ViewCache(storage_dir.parent / VIEW_CACHE_DIR, settings.view_cache_mb * 1024 * 1024),
        pacs=PacsSource(get, post) if post is not None else None,
        bucket=BucketSource(ctx.store, settings.store.prefix, catalog) if ctx.store is not None else None,
        cloud=cloud_source,
        drive_state=drive_state if drives is not None else None,
        known=lambda snap, study: catalog.snapshot_count(snap.id, study),
    )
    return SourceRegistry(parts)


def _copies_of(svc: EngineParts) -> SourceRegistry:
    if svc.copies is None:
        raise BackupError(svc.config_error or "Backup is disabled (BACKUP_ENABLED=false).")
    return svc.copies


def _unavailable_is_503(handler: PartsHandler) -> PartsHandler:
    @functools.wraps(handler)
    def answer(svc: EngineParts, req: Request, m: re.Match[str]) -> Answer:
        try:
            return handler(svc, req, m)
        except SourceUnavailable as exc:
            return 503, {"error": str(exc)}

    return answer


def _text(query: Mapping[str, str], name: str, max_chars: int = 64) -> str:
    value = query.get(name, "").strip()
    if not is_plain_text(value, max_chars):
        raise BadRequest(f"{name} is at most {max_chars} characters.")
    return value


def study_match(query: Mapping[str, str]) -> StudyMatch:
    """A QIDO-RS style study search from query arguments (400 with a sentence for a bad one)."""
    uid = check.uid(query["StudyInstanceUID"]) if query.get("StudyInstanceUID") else ""
    dates = DATE.fullmatch(query.get("StudyDate", "").strip())
    if dates is None or (dates[1] and dates[3] and dates[1] > dates[3]):
        raise BadRequest("StudyDate is YYYYMMDD or a range YYYYMMDD-YYYYMMDD.")
    first, ranged, last = dates[1] or "", dates[2], dates[3] or ""
    modality = _text(query, "ModalitiesInStudy", 16)
    if modality and not modality.isalnum():
        raise BadRequest(f"{modality!r} is not a modality (e.g. CR, DX, US).")
    offset = query.get("offset", "0") or "0"
    if not offset.isdigit() or len(offset) > 7:
        raise BadRequest("offset is a whole number.")
    return StudyMatch(
        study_uid=uid,
        patient_id=_text(query, "PatientID"),
        patient_name=_text(query, "PatientName"),
        accession=_text(query, "AccessionNumber"),
        date_from=first,
        date_to=last if ranged else first,
        modality=modality.upper(),
        limit=check.limit(query.get("limit"), 100, 1000),
        offset=int(offset),
    )


def _source(svc: EngineParts, m: re.Match[str]) -> CopySource:
    name = check.name(m["source"], "copy") or ""
    return _copies_of(svc).open_source(name)


@_unavailable_is_503
def copies(svc: EngineParts, req: Request, m: re.Match[str]) -> Answer:
    """Every copy (with ``?study=``: those holding the study, one entry per snapshot, newest first)."""
    study = check.uid(req.query["study"]) if req.query.get("study") else None
    return 200, _copies_of(svc).list_sources(study)


@_unavailable_is_503
def studies(svc: EngineParts, req: Request, m: re.Match[str]) -> Answer:
    """The studies a copy holds that match the query arguments (QIDO-RS names)."""
    match = study_match(req.query)
    return 200, _source(svc, m).studies(match)


@_unavailable_is_503
def study(svc: EngineParts, req: Request, m: re.Match[str]) -> Answer:
    """Every instance of a study in a copy."""
    uid = check.uid(m["uid"])
    return 200, _source(svc, m).instances(uid)


@_unavailable_is_503
def instance(svc: EngineParts, req: Request, m: re.Match[str]) -> Answer:
    """The exact bytes of one instance from a copy, checked against what that copy recorded."""
    uid, sop = check.uid(m["uid"]), check.uid(m["sop"], "instance")
    source = _source(svc, m)
    chosen = [i for i in source.instances(uid) if i["sop_uid"] == sop]
    if not chosen:
        raise NotFound("This copy of the study has no such image.")
    return 200, Binary(source.read(chosen[0]), "application/dicom")
