"""A snapshot's manifest as restores and the copies read it: each read is a restic run (its key derivation
included), so what does not change is remembered: the studies a snapshot holds, and within one restore every
manifest it needs."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from pacs_backup.clients.restic import Restic, SnapshotInfo
from pacs_backup.state.manifest import ManifestEntry, read_manifest, snapshot_manifest_path

KnownCount = Callable[[SnapshotInfo, str], "int | None"]  # what the plugin recorded; None = read the manifest


def snapshot_time(snap: SnapshotInfo) -> datetime:
    """When the snapshot was taken (restic writes RFC 3339 with nanoseconds)."""
    text = snap.time.replace("Z", "+00:00")
    head, _, tail = text.partition(".")
    if tail:  # Python reads at most microseconds: keep 6 digits of the fraction, then the offset
        digits = "".join(c for c in tail if c.isdigit())
        text = f"{head}.{digits[:6]:0<6}{tail[len(digits) :]}"
    return datetime.fromisoformat(text)


def snapshot_manifest(restic: Restic, snap: SnapshotInfo) -> tuple[str, list[ManifestEntry]]:
    """Return ``(storage root inside the snapshot, manifest entries)``."""
    root = snap.paths[0]
    return root, read_manifest(restic.dump(snap.id, snapshot_manifest_path(root)))[1]


# ``(storage root, entries)`` of a snapshot's manifest for some studies (None: all). The plugin hands in its
# copies' memory of manifests, so a restore after a snapshot reads none again.
ManifestOf = Callable[[Restic, SnapshotInfo, "set[str] | None"], tuple[str, list[ManifestEntry]]]


class ReadOnce:
    """The manifests one restore reads, each with one ``restic dump`` (a run, 0.7 s) for finding the snapshot that
    holds a study and for its files alike."""

    def __init__(self, restic: Restic) -> None:
        self._restic = restic
        self._read: dict[str, tuple[str, list[ManifestEntry]]] = {}

    def _manifest(self, snap: SnapshotInfo) -> tuple[str, list[ManifestEntry]]:
        if snap.id not in self._read:
            self._read[snap.id] = snapshot_manifest(self._restic, snap)
        return self._read[snap.id]

    def count(self, snap: SnapshotInfo, study_uid: str) -> int:
        return sum(1 for e in self._manifest(snap)[1] if e["study_uid"] == study_uid)

    def entries(self, restic: Restic, snap: SnapshotInfo, studies: set[str] | None) -> tuple[str, list[ManifestEntry]]:
        root, entries = self._manifest(snap)
        return root, entries if studies is None else [e for e in entries if e["study_uid"] in studies]


_COUNTS: dict[tuple[str, str], dict[str, int]] = {}  # (repository, snapshot id) -> {study: instances}
_COUNTS_LOCK = threading.Lock()


def study_counts(restic: Restic, snap: SnapshotInfo) -> dict[str, int]:
    """``{study_uid: instances}`` a snapshot holds (snapshots never change, so this is remembered)."""
    cache_key = (restic.repository, snap.id)
    with _COUNTS_LOCK:
        if cache_key in _COUNTS:
            return _COUNTS[cache_key]
    counts: dict[str, int] = {}
    for e in snapshot_manifest(restic, snap)[1]:
        counts[e["study_uid"]] = counts.get(e["study_uid"], 0) + 1
    with _COUNTS_LOCK:
        if len(_COUNTS) > 512:
            _COUNTS.clear()
        _COUNTS[cache_key] = counts
    return counts
