"""The plugin's REST API under ``/backup/``: a route table, each handler a small function.

Handlers receive checked input (see :mod:`pacs_backup.api.http_input`) and return ``(HTTP status, JSON-ready
body)``. A :class:`BadRequest` is a 400, :class:`NotFound` a 404, any other :class:`BackupError` a 409
(the request was understood but cannot be carried out now); each answers ``{"error": sentence}``.

Every route names the least role that may call it (:mod:`pacs_backup.api.access`), checked in :func:`dispatch`
before its handler runs: 403 with a sentence when the caller's role is too low, when a POST/PUT comes from
a page of another site, 415 when a POST/PUT is not JSON. docs/security.md lists the table.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from pacs_backup.contracts.errors import BackupError, BadRequest, Busy, NotFound
from pacs_backup.contracts.runs import run_kind
from pacs_backup.dicom.preview import BadImage, NoPreview, PreviewsBusy, render_copy
from pacs_backup.rclone import config as rclone_config
from pacs_backup.state.catalog import StudyQuery
from pacs_backup.state.manifest import SNAPSHOT_TAG
from pacs_backup.state.search import date_range

from . import copies as copy_routes
from . import http_input as check
from . import referrals as referral_routes
from . import upload_limits as upload_routes
from .access import WRITE_METHODS, Role, body_refusal, cross_site_refusal, role_refusal, user_of
from .answers import Answer, Binary, Request, WithHeaders

if TYPE_CHECKING:
    from pacs_backup.settings.targets import TargetSettings

    from .service import BackupService


Handler = Callable[["BackupService", Request, "re.Match[str]"], Answer]


def _status(svc: BackupService, req: Request, m: re.Match[str]) -> Answer:
    return 200, svc.status()


def _queue_job(svc: BackupService, req: Request, m: re.Match[str]) -> Answer:
    payload = check.json_object(req.body)
    target = check.name(check.text_field(payload, "target", max_chars=64), "target")
    ids = svc.scheduler().request("snapshot" if m["kind"] == "snapshots" else "drill", target)
    return 202, {"runs": ids}


def _restore(svc: BackupService, req: Request, m: re.Match[str]) -> Answer:
    payload = check.json_object(req.body)
    study = check.uid(check.text_field(payload, "study_uid", required=True, max_chars=128) or "")
    source = check.name(check.text_field(payload, "source", required=True, max_chars=64), "source") or ""
    snapshot = check.snapshot_id(check.text_field(payload, "snapshot", max_chars=64))
    return 202, {"run": svc.scheduler().request_restore(study, source, snapshot)}


def _runs(svc: BackupService, req: Request, m: re.Match[str]) -> Answer:
    asked = req.query.get("kind") or None
    try:
        kind = None if asked is None else run_kind(asked)
    except ValueError:
        raise BadRequest("kind is snapshot, drill or restore.") from None
    runs = svc.scheduler().runs.recent(check.limit(req.query.get("limit"), 50, 1000), kind)
    return 200, [r.as_dict() for r in runs]


def _run(svc: BackupService, req: Request, m: re.Match[str]) -> Answer:
    run = svc.scheduler().runs.get(check.run_id(m["id"]))
    if run is None:
        raise NotFound("There is no such run.")
    return 200, run.as_dict()


def _studies(svc: BackupService, req: Request, m: re.Match[str]) -> Answer:
    q = req.query
    catalog = svc.catalog_or_fail()
    if q.get("patient_id") or q.get("accession"):  # exact look-up (technician scripts)
        return 200, catalog.studies_of(q.get("patient_id"), q.get("accession"))
    try:
        first, last = date_range(q.get("from", ""), q.get("to", ""))
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    since = q.get("changed_since")
    try:
        changed_since = float(since) if since else None
    except ValueError:
        raise BadRequest("changed_since is a time in seconds since 1970.") from None
    after = check.uid(q["after"]) if q.get("after") else ""
    modality = q.get("modality", "")
    if modality and not modality.isalnum():
        raise BadRequest(f"{modality[:20]!r} is not a modality (e.g. CR, DX, US).")
    return 200, catalog.studies(
        StudyQuery(
            text=q.get("q", ""),
            date_from=first,
            date_to=last,
            modality=modality[:16],
            limit=check.limit(q.get("limit"), 100, 1000),
            changed_since=changed_since,
            after=after,
        )
    )


def _study(svc: BackupService, req: Request, m: re.Match[str]) -> Answer:
    uid = check.uid(m["uid"])
    entries = svc.catalog_or_fail().study(uid)
    if not entries:
        raise NotFound("This study is not in the backups.")
    return 200, {"study_uid": uid, "instances": entries}


def _study_snapshots(svc: BackupService, req: Request, m: re.Match[str]) -> Answer:
    uid = check.uid(m["uid"])
    holdings = svc.scheduler().snapshots_holding(uid, check.name(req.query.get("target") or None, "target"))
    return 200, [
        {
            "target": t,
            "id": h.snapshot.id,
            "short_id": h.snapshot.short_id,
            "time": h.snapshot.time,
            "instances": h.instances,
        }
        for t, h in holdings
    ]


def _preview(svc: BackupService, req: Request, m: re.Match[str]) -> Answer:
    """A picture of one image of the study, from its copy in the bucket (works when the study is not in
    the PACS). ``?instance=`` picks the image by its position in the study (default: the first)."""
    entries = svc.catalog_or_fail().study(check.uid(m["uid"]))
    if not entries:
        raise NotFound("This study is not in the backups.")
    store = svc.scheduler().ctx.store
    if store is None:
        raise BackupError("No object store is configured.")
    index = check.limit(req.query.get("instance"), 1, len(entries)) - 1
    try:
        png = render_copy(store, entries[index]["key"], check.limit(req.query.get("size"), 256, 1024), svc.limits)
    except PreviewsBusy as exc:  # every preview slot is taken (docs/security.md, limits on previews)
        return 503, WithHeaders({"error": str(exc)}, {"Retry-After": str(exc.retry_after)})
    except BadImage as exc:  # damaged, or larger than a preview may read
        return 422, {"error": str(exc)}
    except NoPreview as exc:
        raise NotFound(str(exc)) from None
    return 200, Binary(png, "image/png")


def _snapshots(svc: BackupService, req: Request, m: re.Match[str]) -> Answer:
    sched = svc.scheduler()
    target = sched.targets.get(check.name(req.query.get("target") or "offsite", "target") or "offsite")
    if target is None:
        raise NotFound("There is no such offsite target.")
    snaps = sched.ctx.restic(target).snapshots(tag=SNAPSHOT_TAG)
    return 200, [{"id": s.id, "short_id": s.short_id, "time": s.time} for s in reversed(snaps)]


def _prepare_drive(svc: BackupService, req: Request, m: re.Match[str]) -> Answer:
    payload = check.json_object(req.body)
    target = check.name(check.text_field(payload, "target", required=True, max_chars=64), "target") or ""
    label = check.text_field(payload, "label", max_chars=64) or time.strftime("Drive prepared %Y-%m-%d %H:%M")
    return 201, svc.scheduler().prepare_drive(target, label)


def _rclone_targets(svc: BackupService) -> tuple[list[str], tuple[TargetSettings, ...]]:
    targets = svc.settings.targets if svc.settings is not None else ()
    return [t.name for t in targets if rclone_config.is_rclone(t)], targets


def _rclone_config(svc: BackupService, req: Request, m: re.Match[str]) -> Answer:
    """The remotes of the rclone configuration the cloud-storage targets use: names and types only, the remote
    names the targets expect, and why the file in place would be refused at its next use (if it would be)."""
    names, targets = _rclone_targets(svc)
    path = rclone_config.config_file(targets, svc.rclone_default, check.name(req.query.get("target") or None, "target"))
    answer = {"targets": names, "remotes": [r.as_dict() for r in rclone_config.remotes_in(path)]}
    answer["remote_names"] = rclone_config.remote_names(targets)
    refused = rclone_config.refusal_of(path)
    return 200, answer | ({"refused": refused} if refused else {})


def _put_rclone_config(svc: BackupService, req: Request, m: re.Match[str]) -> Answer:
    """Check a pasted rclone configuration and write it where the cloud-storage targets read it. With
    ``"test": true`` then test the connection of each cloud-storage target reading it (no ``config``: test only)."""
    payload = check.json_object(req.body)
    text, test = payload.get("config"), payload.get("test") is True
    names, targets = _rclone_targets(svc)
    target = check.name(check.text_field(payload, "target", max_chars=64), "target")
    path = rclone_config.config_file(targets, svc.rclone_default, target)
    if text is None and test:
        remotes, message = rclone_config.remotes_in(path), ""
    elif not isinstance(text, str) or not text.strip():
        raise BadRequest("Paste the rclone configuration (the text of rclone.conf) into 'config'.")
    else:
        remotes = rclone_config.save(path, text)
        if svc.placement is not None:  # a remote of type local is on this box: decide again soon
            svc.placement.refresh_soon()
        listed = ", ".join(f"{r.name} ({r.type})" for r in remotes)
        message = f"The cloud storage configuration is saved: {len(remotes)} remote(s), {listed}." + (
            "" if names else " No cloud-storage target uses it yet (a <NAME>_RESTIC_REPOSITORY starting with rclone:)."
        )
    answer: dict[str, Any] = {"targets": names, "remotes": [r.as_dict() for r in remotes]}
    if test:
        tests = []
        for t in rclone_config.readers_of(targets, path, target):
            try:
                tests.append({"target": t.name, "ok": True, "message": svc.scheduler().ctx.restic(t).probe()})
            except BackupError as exc:
                tests.append({"target": t.name, "ok": False, "message": str(exc)})
        answer["tests"] = tests
        said = " ".join(f"Test of {r['target']}: {r['message']}" for r in tests)
        message = f"{message} {said or 'No cloud-storage target uses this configuration: nothing to test.'}".strip()
    return 200, answer | {"message": message}


def _quarantine(svc: BackupService, req: Request, m: re.Match[str]) -> Answer:
    outbox = svc.outbox_or_fail()
    return 200, [
        {"orthanc_id": oid, "reason": reason}
        for oid, reason in outbox.quarantined(check.limit(req.query.get("limit"), 100, 10000))
    ]


def _requeue(svc: BackupService, req: Request, m: re.Match[str]) -> Answer:
    return 200, {"requeued": svc.outbox_or_fail().requeue_quarantined(time.time())}


class Route(NamedTuple):
    """One row of the route table: method, path pattern, handler and the least role that may call it."""

    method: str
    pattern: re.Pattern[str]
    handler: Handler
    role: Role


M, S, SV, A = Role.MONITOR, Role.STAFF, Role.SERVICE, Role.ADMIN
ROUTES: tuple[Route, ...] = (
    Route("GET", re.compile(r"status"), _status, M),
    Route("POST", re.compile(r"(?P<kind>snapshots|drills)"), _queue_job, S),
    Route("POST", re.compile(r"restores"), _restore, S),
    Route("GET", re.compile(r"runs"), _runs, M),
    Route("GET", re.compile(r"runs/(?P<id>[^/]+)"), _run, M),
    Route("GET", re.compile(r"studies"), _studies, S),
    Route("GET", re.compile(r"studies/(?P<uid>[^/]+)/snapshots"), _study_snapshots, S),
    Route("GET", re.compile(r"studies/(?P<uid>[^/]+)/preview"), _preview, S),
    Route("GET", re.compile(r"studies/(?P<uid>[^/]+)"), _study, S),
    Route("GET", re.compile(r"snapshots"), _snapshots, M),
    Route("GET", re.compile(r"quarantine"), _quarantine, A),
    Route("POST", re.compile(r"drives"), _prepare_drive, SV),
    Route("POST", re.compile(r"quarantine/requeue"), _requeue, A),
    Route("GET", re.compile(r"rclone-config"), _rclone_config, SV),
    Route("PUT", re.compile(r"rclone-config"), _put_rclone_config, SV),
    Route("GET", re.compile(r"copies"), copy_routes.copies, S),
    Route("GET", re.compile(r"copies/(?P<source>[^/]+)/studies"), copy_routes.studies, S),
    Route("GET", re.compile(r"copies/(?P<source>[^/]+)/studies/(?P<uid>[^/]+)"), copy_routes.study, S),
    Route(
        "GET",
        re.compile(r"copies/(?P<source>[^/]+)/studies/(?P<uid>[^/]+)/instances/(?P<sop>[^/]+)"),
        copy_routes.instance,
        S,
    ),
    Route("GET", re.compile(r"referrals"), referral_routes.referrals, S),
    Route("POST", re.compile(r"referrals"), referral_routes.send, S),
    Route("GET", re.compile(r"upload-limits"), upload_routes.upload_limits, S),
    Route("PUT", re.compile(r"upload-limits"), upload_routes.set_upload_limit, A),
)


def refusal(svc: BackupService, route: Route, headers: Mapping[str, str], user: str | None) -> Answer | None:
    """The one place that decides whether ``user`` may call ``route`` with these headers: None, or a 403/415
    answer (role first, then for a POST/PUT where it comes from, then that its body is JSON)."""
    why = role_refusal(svc.access, user, route.role)
    if why is None and route.method in WRITE_METHODS:
        why = cross_site_refusal(headers)
        if why is None and (unreadable := body_refusal(headers)):
            return 415, {"error": unreadable}
    return None if why is None else (403, {"error": why})


def dispatch(
    svc: BackupService,
    method: str,
    path: str,
    raw_query: Mapping[str, str],
    body: bytes,
    headers: Mapping[str, str],
) -> Answer:
    """Answer one request to ``/backup/<path>``; never raises a BackupError.

    ``headers`` (names in lower case) are the HTTP request's, as Orthanc's REST callback passes them
    (``orthanc_entry.on_backup_request``); the caller's role comes from them, for every request."""
    path = path.strip("/")
    try:
        allowed = []
        for route in ROUTES:
            m = route.pattern.fullmatch(path)
            if m is None:
                continue
            if route.method != method.upper():
                allowed.append(route.method)
                continue
            user = user_of(headers)
            refused = refusal(svc, route, headers, user)
            if refused is not None:
                return refused
            role = svc.access.role_of(user)
            req = Request(method.upper(), path, check.decoded_query(raw_query), body, role)
            return route.handler(svc, req, m)
        if allowed:
            return 405, {"error": f"Use {' or '.join(allowed)} for /backup/{path[:80]}."}
        return 404, {"error": f"There is no /backup/{path[:80]}."}
    except BadRequest as exc:
        return 400, {"error": str(exc)}
    except NotFound as exc:
        return 404, {"error": str(exc)}
    except Busy as exc:
        return 429, {"error": str(exc)}
    except BackupError as exc:
        return 409, {"error": str(exc)}
