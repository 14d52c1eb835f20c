"""A restic snapshot (offsite server, cloud storage or drive, of any date) as a source of studies.

What it holds comes from the manifest inside the snapshot (read once per snapshot: snapshots never
change). Bytes are fetched only for the study asked: one ``restic restore --include`` of that study's
files into the view cache (:mod:`.cache`), each file checked against the manifest's sha256 before it is
kept. The whole repository is never restored to look at one study.
"""

from __future__ import annotations

import re
import shutil
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from pacs_backup.clients.restic import Restic, SnapshotInfo
from pacs_backup.contracts.errors import BackupError
from pacs_backup.contracts.keys import safe_component
from pacs_backup.restore.snapshot_manifests import snapshot_manifest
from pacs_backup.state.manifest import ManifestEntry

from .base import CopyDamaged, CopyInstance, CopyStudy, SourceDoc, SourceUnavailable, StudyMatch
from .cache import ViewCache
from .studies import select, study_instances, summarize, verified

_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Manifest:
    """A snapshot's manifest, by study: the storage root inside the snapshot, each study's lines, the studies."""

    root: str
    by_study: dict[str, list[ManifestEntry]]
    studies: list[CopyStudy]


def indexed(root: str, entries: list[ManifestEntry]) -> Manifest:
    by_study: dict[str, list[ManifestEntry]] = {}
    for e in entries:
        by_study.setdefault(e["study_uid"], []).append(e)
    return Manifest(root, by_study, summarize(entries))


class ManifestCache:
    """Snapshot manifests by (repository, snapshot id), the few most recently used kept in memory."""

    def __init__(self, keep: int = 8) -> None:
        self._keep = keep
        self._lock = threading.Lock()
        self._manifests: OrderedDict[tuple[str, str], Manifest] = OrderedDict()
        self._gates: dict[tuple[str, str], threading.Lock] = {}

    def remember(self, repository: str, snapshot_id: str, manifest: Manifest) -> None:
        """Keep a snapshot's manifest known without restic (the one the snapshot job wrote just before)."""
        with self._lock:
            self._manifests[(repository, snapshot_id)] = manifest
            self._manifests.move_to_end((repository, snapshot_id))
            while len(self._manifests) > self._keep:
                old, _ = self._manifests.popitem(last=False)
                self._gates.pop(old, None)

    def entries(self, restic: Restic, snap: SnapshotInfo, studies: set[str] | None) -> tuple[str, list[ManifestEntry]]:
        """``(storage root, entries)`` of ``studies`` (None: all) in the snapshot, as restores ask for them."""
        manifest = self.get(restic, snap)
        wanted = manifest.by_study if studies is None else {s: manifest.by_study.get(s, []) for s in studies}
        return manifest.root, [e for lines in wanted.values() for e in lines]

    def get(self, restic: Restic, snap: SnapshotInfo) -> Manifest:
        """The snapshot's manifest (read with ``restic dump`` once, then from memory).

        Raises:
            SourceUnavailable: the repository cannot be read now, or the manifest is unreadable.
        """
        key = (restic.repository, snap.id)
        with self._lock:
            gate = self._gates.setdefault(key, threading.Lock())
        with gate:  # two looks at one snapshot read its manifest once
            with self._lock:
                if key in self._manifests:
                    self._manifests.move_to_end(key)
                    return self._manifests[key]
            try:
                manifest = indexed(*snapshot_manifest(restic, snap))
            except BackupError as exc:
                raise SourceUnavailable(f"Snapshot {snap.short_id} cannot be read now: {exc}") from None
            self.remember(*key, manifest)
            return manifest


def taken_label(snap: SnapshotInfo) -> str:
    """``3 Dec 2026 02:00`` (UTC) from restic's RFC 3339 time."""
    date, _, clock = snap.time.partition("T")
    y, m, d = [*date.split("-"), "", "", ""][:3]
    months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    month = months[int(m) - 1] if m.isdigit() and 1 <= int(m) <= 12 else m
    return f"{int(d) if d.isdigit() else d} {month} {y} {clock[:5]} UTC".strip()


class SnapshotSource:
    """One snapshot of one restic repository, read study by study through the view cache."""

    def __init__(
        self,
        doc: SourceDoc,
        restic: Restic,
        snap: SnapshotInfo,
        manifests: ManifestCache,
        cache: ViewCache,
    ) -> None:
        self._doc = doc
        self.restic = restic
        self.snapshot = snap
        self._manifests = manifests
        self._cache = cache

    @property
    def doc(self) -> SourceDoc:
        return self._doc

    def _manifest(self) -> Manifest:
        return self._manifests.get(self.restic, self.snapshot)

    def studies(self, match: StudyMatch) -> list[CopyStudy]:
        return select(self._manifest().studies, match)

    def instances(self, study_uid: str) -> list[CopyInstance]:
        manifest = self._manifest()
        where = f"Snapshot {self.snapshot.short_id} ({self._doc['label']})"
        entries = manifest.by_study.get(study_uid, [])
        return study_instances(entries, study_uid, lambda e: f"{manifest.root}/{e['path']}", where)

    def cache_key(self, study_uid: str) -> str:
        """The study's folder in the view cache (one per snapshot and study)."""
        return f"{self.snapshot.id[:32]}-{safe_component(study_uid)}"

    def read(self, instance: CopyInstance) -> bytes:
        what = f"Image {instance['sop_uid']} in snapshot {self.snapshot.short_id}"
        if not _SHA256.fullmatch(instance["sha256"]):  # also what names its file in the view cache
            raise CopyDamaged(f"{what} has no valid checksum in the snapshot's manifest, so it cannot be checked.")
        key = self.cache_key(instance["study_uid"])
        try:
            data = self._cache.read(key, instance["sha256"] + ".dcm", lambda into: self._fetch(instance, into))
        except FileNotFoundError:
            raise CopyDamaged(
                f"{what} is listed in the snapshot's manifest but restic did not give its file back: this copy "
                "of the image is damaged. Use another copy, and run a restore test of this one."
            ) from None
        return verified(data, instance["sha256"], what)  # checked again: the cache is a file on this box

    def _fetch(self, instance: CopyInstance, into: Path) -> None:
        """Write the files of the instance's study into ``into`` as ``<sha256>.dcm`` (checked when read)."""
        wanted = [i for i in self.instances(instance["study_uid"]) if i["sha256"]]
        if not wanted:  # never a restore without --include: that would be the whole snapshot
            return
        restored = into / ".restic"
        try:
            self.restic.restore(self.snapshot.id, restored, includes=[i["ref"] for i in wanted])
        except BackupError as exc:
            raise SourceUnavailable(f"Snapshot {self.snapshot.short_id} cannot be read now: {exc}") from None
        top = restored.resolve()
        for i in wanted:  # checked when read: one damaged file must not hide the study's other images
            path = Path(str(restored) + i["ref"])
            # A manifest names the files and their checksums; one that does not hold (a path leaving the restore,
            # a checksum that is no sha256) is never followed: that image reads as damaged.
            if not _SHA256.fullmatch(i["sha256"]) or not path.resolve().is_relative_to(top):
                continue
            if path.is_file() and not path.is_symlink():
                path.replace(into / f"{i['sha256']}.dcm")
        shutil.rmtree(restored, ignore_errors=True)
