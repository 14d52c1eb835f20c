"""Offsite snapshots and restore drills for one restic target, and drills of the object store.

A snapshot holds Orthanc's storage directory (the DICOM files exactly as stored) plus, inside it,
``pacs-backup/manifest.jsonl`` (study/series/instance -> file, key, sha256) and a copy of Orthanc's
configuration without passwords. That is everything needed to rebuild the PACS elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import socket
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .catalog import Catalog, read_manifest, write_manifest
from .config import TargetSettings
from .errors import BackupError, SourceGone
from .object_store import ObjectStore
from .orthanc_source import OrthancReader
from .restic import Restic

log = logging.getLogger(__name__)

SNAPSHOT_TAG = "pacs-backup"
STATE_SUBDIR = "pacs-backup"  # inside the storage directory, so the manifest travels in the snapshot
MANIFEST_NAME = "manifest.jsonl"
BUCKET_MANIFEST_KEY = "catalog/manifest.jsonl"


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
    host: str = socket.gethostname()
    clock: Callable[[], float] = time.time
    # Repositories known to exist: later snapshots skip the existence check (one restic run less).
    initialized: set[str] = field(default_factory=set)

    @property
    def state_dir(self) -> Path:
        return self.storage_dir / STATE_SUBDIR

    def restic(self, target: TargetSettings) -> Restic:
        return Restic(target.repository, password=target.password, password_file=target.password_file,
                      extra_env=target.env, cache_dir=self.storage_dir.parent / "pacs-backup-restic-cache",
                      retry_lock=target.retry_lock)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _redacted_config(raw: str) -> str:
    try:
        config = json.loads(raw)
    except ValueError:
        return "{}"
    if isinstance(config, dict) and isinstance(config.get("RegisteredUsers"), dict):
        config["RegisteredUsers"] = {user: "<redacted>" for user in config["RegisteredUsers"]}
    return json.dumps(config, indent=2)


def prepare_manifest(ctx: OffsiteContext) -> int:
    """Catalogue new copies and write the manifest and configuration copy. Returns the entry count."""
    ctx.catalog.fill(ctx.reader, ctx.clock())
    ctx.state_dir.mkdir(parents=True, exist_ok=True)
    count = write_manifest(ctx.catalog.entries(), ctx.state_dir / MANIFEST_NAME,
                           {"created_at": ctx.clock(), "storage_dir": str(ctx.storage_dir), "host": ctx.host})
    (ctx.state_dir / "orthanc-config.json").write_text(_redacted_config(ctx.config_json()))
    if ctx.store is not None:
        try:  # the bucket gets the manifest too, so a restore from the bucket can search by patient
            data = (ctx.state_dir / MANIFEST_NAME).read_bytes()
            ctx.store.put_verified(BUCKET_MANIFEST_KEY, data, sha256_bytes(data), "manifest")
        except BackupError as exc:
            log.warning("manifest not copied to the bucket: %s", exc)
    return count


def take_snapshot(ctx: OffsiteContext, target: TargetSettings) -> dict[str, Any]:
    """Take one snapshot to ``target`` (creating the repository on first use) and apply retention.

    Returns:
        A summary: snapshot id, new/changed files, bytes added, manifest entries.
    Raises:
        BackupError (ResticError and subclasses) with a message for a person.
    """
    restic = ctx.restic(target)
    if target.repository in ctx.initialized:
        restic.check_reachable()
        created = False
    else:
        created = restic.ensure()
        ctx.initialized.add(target.repository)
    entries = prepare_manifest(ctx)
    excludes = [str(ctx.storage_dir / "index"), str(ctx.storage_dir / "index-*"), "*.sqlite", "*.sqlite-wal",
                "*.sqlite-shm", "*.sqlite-journal"]
    summary = restic.backup([str(ctx.storage_dir)], tags=[SNAPSHOT_TAG], host=ctx.host, excludes=excludes)
    result = {"snapshot_id": summary.get("snapshot_id"), "files_new": summary.get("files_new", 0),
              "files_changed": summary.get("files_changed", 0), "data_added": summary.get("data_added", 0),
              "total_files": summary.get("total_files_processed", 0), "manifest_entries": entries,
              "repository_created": created, "forgot": False}
    if target.forget:
        restic.forget(target.keep)
        result["forgot"] = True
    return result


def drill_object_store(ctx: OffsiteContext, sample_size: int, rng: random.Random | None = None) -> dict[str, Any]:
    """Restore a sample from the bucket and compare with Orthanc and the recorded sha256.

    A copy that differs or is missing is repaired from Orthanc (when Orthanc still holds the exact
    bytes that were backed up) and counted as repaired.
    """
    if ctx.store is None:
        raise BackupError("No object store is configured.")
    ctx.catalog.fill(ctx.reader, ctx.clock())
    sample = ctx.catalog.sample(sample_size, rng)
    res: dict[str, Any] = {"checked": 0, "identical": 0, "repaired": 0, "mismatches": [], "orthanc_changed": 0}
    for e in sample:
        res["checked"] += 1
        try:
            source: bytes | None = ctx.reader.read_file(e["orthanc_id"])
        except SourceGone:
            source = None
        if source is not None and sha256_bytes(source) != e["sha256"]:
            res["orthanc_changed"] += 1
            res["mismatches"].append({"key": e["key"], "problem": "Orthanc's file differs from the backed-up one"})
            continue
        try:
            copy_sha = sha256_bytes(ctx.store.get(e["key"]))
        except BackupError:
            copy_sha = None
        if copy_sha == e["sha256"]:
            res["identical"] += 1
            continue
        problem = "missing from the bucket" if copy_sha is None else "bytes differ in the bucket"
        if source is None:
            res["mismatches"].append({"key": e["key"], "problem": problem + "; Orthanc no longer has it"})
            continue
        ctx.store.put_verified(e["key"], source, e["sha256"], e["orthanc_id"])
        res["repaired"] += 1
        log.warning("drill repaired %s (%s) from Orthanc", e["key"], problem)
    res["ok"] = not res["mismatches"]
    return res


def latest_manifest(restic: Restic) -> tuple[str, str, dict[str, dict[str, Any]]]:
    """Return ``(snapshot id, storage root in the snapshot, {orthanc_id: entry})`` of the newest snapshot."""
    snaps = restic.snapshots(tag=SNAPSHOT_TAG)
    if not snaps:
        raise BackupError(f"There is no snapshot in {restic.repository} yet.")
    snap = snaps[-1]
    root = snap.paths[0]
    _, entries = read_manifest(restic.dump(snap.id, f"{root}/{STATE_SUBDIR}/{MANIFEST_NAME}"))
    return snap.id, root, {e["orthanc_id"]: e for e in entries}


def drill_target(ctx: OffsiteContext, target: TargetSettings, sample_size: int, check_slice: int,
                 rng: random.Random | None = None) -> dict[str, Any]:
    """Restore a sample from the newest snapshot, compare sha256, and read 1/N of the repository.

    Args:
        check_slice: which slice (1..check_cycle) ``restic check --read-data-subset`` reads this time.
    """
    restic = ctx.restic(target)
    ctx.catalog.fill(ctx.reader, ctx.clock())
    sample = ctx.catalog.sample(sample_size, rng)
    snap_id, root, manifest = latest_manifest(restic)
    present = [manifest[e["orthanc_id"]] for e in sample if e["orthanc_id"] in manifest]
    res: dict[str, Any] = {"snapshot_id": snap_id, "checked": 0, "identical": 0, "mismatches": [],
                           "not_yet_in_snapshot": len(sample) - len(present)}
    with tempfile.TemporaryDirectory(prefix="pacs-drill-") as tmp:
        if present:
            restic.restore(snap_id, Path(tmp), includes=[f"{root}/{e['path']}" for e in present])
        for e in present:
            res["checked"] += 1
            f = Path(tmp + root) / e["path"]
            got = sha256_bytes(f.read_bytes()) if f.exists() else None
            if got == e["sha256"]:
                res["identical"] += 1
            else:
                res["mismatches"].append({"key": e["key"], "problem": "missing from the snapshot" if got is None
                                          else "bytes differ in the snapshot"})
    subset = f"{check_slice}/{target.check_cycle}"
    restic.check(read_data_subset=subset)
    res["check"] = f"read data subset {subset}: no errors"
    res["ok"] = not res["mismatches"]
    return res
