"""restore-study and disaster-recovery: bring studies back into the PACS from the bucket, a snapshot or the
group store (this clinic's prefix, with its own group keys), with a progress line while it works and a
verification summary (or a "not found" line) at the end."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import urllib.parse

from pacs_backup.clients.object_store import ObjectStore
from pacs_backup.clients.orthanc_http import OrthancHttp
from pacs_backup.contracts.errors import SourceError
from pacs_backup.restore.from_copies import (
    bucket_manifest,
    restore_from_bucket,
    restore_from_snapshot,
    snapshots_holding,
    studies_matching,
)
from pacs_backup.restore.snapshot_manifests import snapshot_time
from pacs_backup.restore.uploads import RestoreReport
from pacs_backup.state.manifest import BUCKET_MANIFEST_KEY, read_manifest

from . import env as cli_env
from .exits import EXIT_FAILED, EXIT_NOT_FOUND, EXIT_OK, EXIT_USAGE, Fail
from .text import Progress, duration, plural, table

_UID = re.compile(r"[0-9]+(\.[0-9]+)*")


def study_uid(value: str) -> str:
    """argparse type of a StudyInstanceUID: digits and dots, at most 64 characters."""
    if len(value) > 64 or not _UID.fullmatch(value):
        raise argparse.ArgumentTypeError(f"{value[:70]!r} is not a StudyInstanceUID (digits and dots, e.g. 1.2.840.1)")
    return value


def _report(report: RestoreReport, started: float, as_json: bool, nothing: str) -> int:
    """The end of a restore: JSON, or failures, one sentence and the verdict. ``nothing``: the "not found"
    sentence when the copy held nothing to restore."""
    if report.total == 0:
        if as_json:
            print(json.dumps(report.as_dict(), indent=2))
        raise Fail(EXIT_NOT_FOUND, nothing)
    if as_json:
        print(json.dumps(report.as_dict(), indent=2))
        return EXIT_OK if report.ok else EXIT_FAILED
    if report.failures:
        print(f"{plural(len(report.failures), 'image')} NOT verified:")
        for line in table(("image", "why"), report.failures):
            print(line)
    took = duration(time.monotonic() - started)
    print(f"{report.verified} of {report.total} images restored and verified in {took}, from {report.source}.")
    if report.ok:
        print("Result: OK, every image is back and identical to the copy.")
        return EXIT_OK
    print(f"Result: INCOMPLETE, {len(report.failures)} not verified (listed above); run it again or try another copy.")
    return EXIT_FAILED


def _bucket_studies(pacs: OrthancHttp, store: ObjectStore, patient_id: str | None, accession: str | None) -> list[str]:
    """Studies of a patient id / accession in the bucket: the plugin's catalog knows every copy from the
    moment it is made; the manifest kept in the bucket is the way when the plugin cannot answer."""
    query = urllib.parse.urlencode({k: v for k, v in (("patient_id", patient_id), ("accession", accession)) if v})
    try:
        found = pacs.get_json(f"/backup/studies?{query}")
        if isinstance(found, list):
            return [str(s) for s in found]
    except SourceError as exc:
        print(f"note: the backup plugin could not be asked ({exc}); using the bucket's own list", file=sys.stderr)
    return studies_matching(bucket_manifest(store), patient_id, accession)


def _store(source: str) -> tuple[ObjectStore, str, str]:
    """The bucket (``minio``) or this clinic's part of the group store (``group``): store, prefix, words."""
    if source == "group":
        store, clinic = cli_env.group_store()
        return store, clinic, f"group store {store.bucket} ({clinic}/)"
    store, prefix = cli_env.store()
    return store, prefix, f"bucket {store.bucket}"


def _group_studies(store: ObjectStore, clinic: str, patient_id: str | None, accession: str | None) -> list[str]:
    """Studies of a patient id / accession in the clinic's manifest kept in the group store."""
    key = f"{clinic}/{BUCKET_MANIFEST_KEY}"
    entries = read_manifest(store.get(key))[1] if store.stat(key) is not None else []
    return studies_matching(entries, patient_id, accession)


def _asked(a: argparse.Namespace) -> str:
    """What was asked for, in words: ``study 1.2.3``, ``patient id 'P-1'``."""
    if a.study:
        return f"study {a.study}"
    return " and ".join(f"{what} {v!r}" for what, v in (("patient id", a.patient_id), ("accession", a.accession)) if v)


def restore_study(a: argparse.Namespace) -> int:
    if a.list_snapshots:
        return _list_snapshots(a)
    if not (a.study or a.patient_id or a.accession):
        raise Fail(EXIT_USAGE, "Give a StudyInstanceUID, --patient-id or --accession.")
    pacs = cli_env.orthanc()
    out = sys.stderr if a.json else sys.stdout
    started = time.monotonic()
    if a.source in ("minio", "group"):
        store, prefix, where = _store(a.source)
        if a.study:
            studies = [a.study]
        elif a.source == "group":
            studies = _group_studies(store, prefix, a.patient_id, a.accession)
        else:
            studies = _bucket_studies(pacs, store, a.patient_id, a.accession)
        if not studies:
            raise Fail(EXIT_NOT_FOUND, f"No study in {where} has {_asked(a)}.")
        print(f"Restoring {plural(len(studies), 'study', 'studies')} from {where} into {pacs.url}", file=out)
        with Progress("restoring", out) as progress:
            report = restore_from_bucket(store, pacs, studies, prefix, a.as_of, progress.update)
    else:
        restic = cli_env.restic(a.target)
        print(f"Looking for the snapshots of {restic.repository} that hold {_asked(a)}...", file=out)
        with Progress("restoring", out) as progress:
            report = restore_from_snapshot(
                restic, pacs, [a.study] if a.study else None, a.as_of, a.snapshot, progress.update,
                a.patient_id, a.accession,
            )  # fmt: skip
        where = f"any snapshot of {restic.repository}"
    return _report(report, started, a.json, f"{_asked(a).capitalize()} was not found in {where}.")


def _list_snapshots(a: argparse.Namespace) -> int:
    if not a.study or a.source != "offsite":
        raise Fail(EXIT_USAGE, "--list-snapshots needs --from offsite and a StudyInstanceUID.")
    restic = cli_env.restic(a.target)
    held = snapshots_holding(restic, a.study, a.as_of)
    if not held:
        raise Fail(EXIT_NOT_FOUND, f"Study {a.study} was not found in any snapshot of {restic.repository}.")
    if a.json:
        rows = [{"id": h.snapshot.id, "time": h.snapshot.time, "images": h.instances} for h in held]
        print(json.dumps(rows, indent=2))
        return EXIT_OK
    print(f"Snapshots of {restic.repository} that hold study {a.study} (newest first):")
    when = [snapshot_time(h.snapshot).astimezone().strftime("%Y-%m-%d %H:%M %Z") for h in held]
    for line in table(
        ("snapshot", "taken", "images"),
        [(h.snapshot.short_id, w, h.instances) for h, w in zip(held, when, strict=True)],
    ):
        print(line)
    print("Restore from one of them with --snapshot ID (default: the newest that holds the most of it).")
    return EXIT_OK


def disaster_recovery(a: argparse.Namespace) -> int:
    pacs = cli_env.orthanc()
    existing = len(pacs.get_json("/instances?since=0&limit=1"))
    if existing and not a.into_non_empty:
        raise Fail(
            EXIT_USAGE,
            f"The PACS at {pacs.url} already holds images; disaster recovery rebuilds "
            "into an empty PACS. Add --into-non-empty to merge anyway (nothing is overwritten).",
        )
    out = sys.stderr if a.json else sys.stdout
    started = time.monotonic()
    if a.source in ("minio", "group"):
        store, prefix, where = _store(a.source)
        print(f"Rebuilding the PACS at {pacs.url} from {where}", file=out)
        with Progress("recovering", out) as progress:
            report = restore_from_bucket(store, pacs, None, prefix, a.as_of, progress.update)
        nothing = f"No image was found in {where}: nothing to rebuild from it."
    else:
        restic = cli_env.restic(a.target)
        print(f"Rebuilding the PACS at {pacs.url} from {restic.repository}", file=out)
        with Progress("recovering", out) as progress:
            report = restore_from_snapshot(restic, pacs, None, a.as_of, a.snapshot, progress.update)
        nothing = f"No image was found in the chosen snapshot of {restic.repository}: nothing to rebuild from it."
    return _report(report, started, a.json, nothing)
