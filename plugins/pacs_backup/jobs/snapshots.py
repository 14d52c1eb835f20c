"""Offsite snapshots and restore drills for one restic target, and drills of the object store.

A snapshot holds Orthanc's storage directory (the DICOM files exactly as stored) plus, inside it,
``pacs-backup/manifest.jsonl`` (study/series/instance -> file, key, sha256) and a copy of Orthanc's
configuration without passwords. That is everything needed to rebuild the PACS elsewhere.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from pacs_backup.clients.object_store import ObjectStore
from pacs_backup.clients.orthanc_source import OrthancReader
from pacs_backup.clients.restic import Restic
from pacs_backup.contracts.errors import BackupError
from pacs_backup.contracts.redact import redacted_config, write_private
from pacs_backup.contracts.runs import SnapshotSummary, TakenSnapshot
from pacs_backup.settings.bandwidth import BandwidthSchedule
from pacs_backup.settings.retention import RetentionRule, load_retention
from pacs_backup.settings.targets import TargetSettings
from pacs_backup.state.catalog import Catalog
from pacs_backup.state.manifest import (
    BUCKET_MANIFEST_KEY,
    MANIFEST_NAME,
    SNAPSHOT_TAG,
    STATE_SUBDIR,
    ManifestEntry,
    sha256_hex,
    write_manifest,
)

from .retention import forget_with_retention, recorded_by

log = logging.getLogger(__name__)


def _own_upload(target: TargetSettings) -> BandwidthSchedule:
    return target.upload


@dataclass
class OffsiteContext:
    """What snapshots and drills need from the running plugin."""

    reader: OrthancReader
    catalog: Catalog
    store: ObjectStore | None
    storage_dir: Path
    config_json: Callable[[], str]  # Orthanc's configuration (passwords are removed before writing)
    orthanc: Any = None  # where restores go (restore.OrthancTarget); None = restores unavailable
    prefix: str = ""  # the bucket's key prefix for this site
    retention: RetentionRule = field(default_factory=lambda: load_retention({}))  # how long copies keep a study
    host: str = socket.gethostname()
    clock: Callable[[], float] = time.time
    # Repositories known to exist: later snapshots skip the existence check (one restic run less).
    initialized: set[str] = field(default_factory=set)
    after_snapshot: Callable[[TakenSnapshot], None] | None = None  # told of each snapshot taken (the copies remember)
    # The upload timetable in force for a target (settings/upload_overrides.py: the dashboard's, else .env's).
    upload_of: Callable[[TargetSettings], BandwidthSchedule] = _own_upload

    @property
    def state_dir(self) -> Path:
        return self.storage_dir / STATE_SUBDIR

    def restic(self, target: TargetSettings) -> Restic:
        target = replace(target, upload=self.upload_of(target))  # the rule in force at this run
        return Restic.for_target(target, cache_dir=self.storage_dir.parent / "pacs-backup-restic-cache")


def prepare_manifest(ctx: OffsiteContext) -> dict[str, int]:
    """Catalogue older copies, then write the manifest of the files in Orthanc's storage right now and
    the configuration copy. Returns ``{study_uid: instances}`` of what the manifest lists."""
    ctx.catalog.backfill(ctx.reader, ctx.clock())
    if not ctx.state_dir.exists():
        ctx.state_dir.mkdir(parents=True, mode=0o700)
    counts: dict[str, int] = {}

    def present() -> Iterator[ManifestEntry]:
        for e in ctx.catalog.entries(ctx.storage_dir):
            counts[e["study_uid"]] = counts.get(e["study_uid"], 0) + 1
            yield e

    write_manifest(
        present(),
        ctx.state_dir / MANIFEST_NAME,
        {"created_at": ctx.clock(), "storage_dir": str(ctx.storage_dir), "host": ctx.host},
    )
    write_private(ctx.state_dir / "orthanc-config.json", redacted_config(ctx.config_json()))
    if ctx.store is not None:
        try:  # the bucket gets the manifest too, so a restore from the bucket can search by patient
            data = (ctx.state_dir / MANIFEST_NAME).read_bytes()
            ctx.store.put_verified(BUCKET_MANIFEST_KEY, data, sha256_hex(data), "manifest")
        except BackupError as exc:
            log.warning("manifest not copied to the bucket: %s", exc)
    return counts


def take_snapshot(
    ctx: OffsiteContext, target: TargetSettings, create: bool = True, drive: str | None = None
) -> SnapshotSummary:
    """Take one snapshot to ``target`` (creating the repository on first use) and apply retention.

    Args:
        drive: the repository id of the backup drive ``target`` is on (recorded in the summary).
    Returns:
        What it did: snapshot id, new/changed files, bytes added, manifest entries.
    Raises:
        BackupError (ResticError and subclasses) with a message for a person.
    """
    restic = ctx.restic(target)
    if not create:  # an external drive: its repository is made only by the explicit preparation step
        created = False
    elif target.repository in ctx.initialized:
        restic.check_reachable()
        created = False
    else:
        created = restic.ensure()
        ctx.initialized.add(target.repository)
    started = time.perf_counter()
    counts = prepare_manifest(ctx)
    manifest_s = time.perf_counter() - started
    new_box = not ctx.catalog.has_snapshots(target.name)
    if not counts and not created and new_box and restic.snapshots(tag=SNAPSHOT_TAG):
        # A new (or rebuilt) box whose PACS is still empty, pointed at the clinic's repository: a snapshot
        # of nothing would become the newest one, and a whole-clinic restore from it would bring nothing
        # back. (A box that has taken snapshots here before records its PACS as it is, even empty.)
        return SnapshotSummary(
            snapshot_id=None,
            skipped="The PACS holds no images yet, so no snapshot was taken: the newest snapshot in the "
            "repository still holds the clinic's images. Restore them with disaster-recovery.",
            drive=drive,
        )
    excludes = [
        str(ctx.storage_dir / "index"),
        str(ctx.storage_dir / "index-*"),
        "*.sqlite",
        "*.sqlite-wal",
        "*.sqlite-shm",
        "*.sqlite-journal",
    ]
    started = time.perf_counter()
    done = restic.backup([str(ctx.storage_dir)], tags=[SNAPSHOT_TAG], host=ctx.host, excludes=excludes)
    restic_s = time.perf_counter() - started
    snapshot_id = str(done["snapshot_id"]) if done.get("snapshot_id") else None
    if snapshot_id:
        ctx.catalog.record_snapshot(target.name, snapshot_id, ctx.clock(), counts)
        if ctx.after_snapshot is not None:
            taken = TakenSnapshot(
                restic.repository, snapshot_id, str(ctx.storage_dir.absolute()), ctx.state_dir / MANIFEST_NAME
            )
            ctx.after_snapshot(taken)
    kept = None
    if target.forget:
        recorded = recorded_by(ctx.catalog.snapshot_studies, ctx.catalog.study_dates())
        today = datetime.fromtimestamp(ctx.clock()).date()
        decided = forget_with_retention(restic, target.keep, ctx.retention, today, recorded)
        kept = len(decided.kept_for) + len(decided.unreadable)
    return SnapshotSummary(
        snapshot_id=snapshot_id,
        files_new=int(done.get("files_new", 0)),
        files_changed=int(done.get("files_changed", 0)),
        data_added=int(done.get("data_added", 0)),
        total_files=int(done.get("total_files_processed", 0)),
        manifest_entries=sum(counts.values()),
        studies=len(counts),
        repository_created=created,
        forgot=target.forget,
        kept_for_retention=kept,
        drive=drive,
        manifest_s=round(manifest_s, 3),
        restic_s=round(restic_s, 3),
    )
