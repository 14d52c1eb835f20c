"""Which copies this appliance can show a study from, by name, as the settings configure them.

Names (what goes in URLs): ``pacs``, ``bucket``, ``drive-<target>`` (the newest snapshot on the drive
plugged in for a drive target), ``offsite`` (the newest snapshot of the first restic target that is not a
drive) and ``offsite-<snapshot id>`` (one snapshot of it, any date); every other such target is
``<target>`` and ``<target>-<snapshot id>``; ``cloud-pacs``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pacs_backup.clients.restic import RepositoryMissing, Restic, SnapshotInfo
from pacs_backup.contracts.errors import BackupError, NotFound
from pacs_backup.contracts.inputs import is_snapshot_id
from pacs_backup.contracts.runs import TakenSnapshot
from pacs_backup.restore.snapshot_manifests import KnownCount, study_counts
from pacs_backup.settings.targets import TargetSettings
from pacs_backup.state.manifest import SNAPSHOT_TAG, read_manifest

from .base import CopySource, SourceDoc, SourceKind, SourceUnavailable, StudyMatch, UnavailableSource
from .cache import ViewCache
from .snapshot import ManifestCache, SnapshotSource, indexed, taken_label

log = logging.getLogger(__name__)

DriveState = Callable[[TargetSettings], "tuple[bool, str]"]  # (plugged in, the sentence when not)
# A repository's snapshot list is asked again after this long. The plugin warms it itself after each snapshot
# it takes (warm()), so this only bounds how late a snapshot taken by another box shows.
LIST_TTL_S = 600.0


@dataclass(frozen=True)
class Parts:
    """What the registry is made of: the copies the running plugin has."""

    targets: Sequence[TargetSettings]
    restic_for: Callable[[TargetSettings], Restic]
    cache: ViewCache
    pacs: CopySource | None = None
    bucket: CopySource | None = None
    cloud: CopySource | None = None
    drive_state: DriveState | None = None
    known: KnownCount | None = None  # instances of a study in a snapshot, as the catalog recorded them


@dataclass(frozen=True)
class _Restic:
    """A restic target as a family of sources: its name prefix, kind and how its snapshots are labelled."""

    target: TargetSettings
    alias: str
    kind: SourceKind
    title: str


class SourceRegistry:
    """The sources of this appliance. Thread-safe; snapshot manifests and lists are remembered."""

    def __init__(self, parts: Parts, clock: Callable[[], float] = time.monotonic) -> None:
        self.parts = parts
        self.manifests = ManifestCache()
        self._clock = clock
        self._lock = threading.Lock()
        self._lists: dict[str, tuple[float, list[SnapshotInfo]]] = {}
        families, first = [], True
        for t in parts.targets:
            if t.drive:
                families.append(_Restic(t, f"drive-{t.name}", "drive", f"Backup drive '{t.name}'"))
            else:
                alias = "offsite" if first else t.name
                title = "Offsite copy" if first else f"Copy '{t.name}'"
                families.append(_Restic(t, alias, "offsite", title))
                first = False
        self._families = families

    # --- snapshots -------------------------------------------------------------------------------
    def _snapshots(self, family: _Restic, fresh: bool = False) -> list[SnapshotInfo]:
        """The target's snapshots, oldest first (asked again after LIST_TTL_S, or when ``fresh``)."""
        now = self._clock()
        with self._lock:
            cached = self._lists.get(family.target.name)
        if cached is not None and not fresh and now - cached[0] < LIST_TTL_S:
            return cached[1]
        try:
            snaps = self.parts.restic_for(family.target).snapshots(tag=SNAPSHOT_TAG)
        except RepositoryMissing:
            snaps = []
        except BackupError as exc:
            raise SourceUnavailable(f"{family.title} cannot be read now: {exc}") from None
        with self._lock:
            self._lists[family.target.name] = (now, snaps)
        return snaps

    def _doc(self, family: _Restic, snap: SnapshotInfo, newest: bool) -> SourceDoc:
        when = taken_label(snap)
        if family.kind == "drive":
            name, label = family.alias, f"{family.title}, snapshot of {when}"
        elif newest:
            name, label = family.alias, f"{family.title}, newest snapshot ({when})"
        else:
            name, label = f"{family.alias}-{snap.short_id}", f"{family.title}, snapshot of {when}"
        return SourceDoc(name=name, kind=family.kind, label=label, available=True, reason="", taken_at=snap.time)

    def _source(self, family: _Restic, snap: SnapshotInfo, newest: bool) -> SnapshotSource:
        restic = self.parts.restic_for(family.target)
        return SnapshotSource(self._doc(family, snap, newest), restic, snap, self.manifests, self.parts.cache)

    def _unplugged(self, family: _Restic) -> UnavailableSource | None:
        if family.kind != "drive" or self.parts.drive_state is None:
            return None
        plugged, sentence = self.parts.drive_state(family.target)
        if plugged:
            return None
        doc = SourceDoc(
            name=family.alias, kind="drive", label=family.title, available=False, reason=sentence, taken_at=""
        )
        return UnavailableSource(doc)

    def _unavailable(self, family: _Restic, reason: str) -> SourceDoc:
        return SourceDoc(
            name=family.alias, kind=family.kind, label=family.title, available=False, reason=reason, taken_at=""
        )

    def _holds(self, family: _Restic, snap: SnapshotInfo, study_uid: str) -> bool:
        known = self.parts.known(snap, study_uid) if self.parts.known is not None else None
        if known is None:
            try:
                known = study_counts(self.parts.restic_for(family.target), snap).get(study_uid, 0)
            except BackupError:
                return False  # a snapshot whose manifest cannot be read is not offered
        return known > 0

    def _family_docs(self, family: _Restic, study_uid: str | None) -> list[SourceDoc]:
        unplugged = self._unplugged(family)
        if unplugged is not None:
            return [unplugged.doc]
        try:
            snaps = list(reversed(self._snapshots(family)))
        except SourceUnavailable as exc:
            return [self._unavailable(family, str(exc))]
        if not snaps:
            return [] if study_uid else [self._unavailable(family, f"{family.title} holds no snapshot yet.")]
        if family.kind == "drive":
            snaps = snaps[:1]
        holding = [s for s in snaps if study_uid is None or self._holds(family, s, study_uid)]
        docs = [self._doc(family, snaps[0], True)] if holding and holding[0] is snaps[0] else []
        if family.kind != "drive":
            docs += [self._doc(family, s, False) for s in holding]
        return docs

    def warm(self) -> None:
        """Read each offsite target's snapshot list and its newest snapshot's manifest now (after a snapshot, at
        start), so the first look at a study there costs one restic run - fetching the study - instead of three.
        A repository that cannot be read is left for the next look to report."""
        for family in self._families:
            if family.kind == "drive":
                continue
            try:
                snaps = self._snapshots(family, fresh=True)
                if snaps:
                    self.manifests.get(self.parts.restic_for(family.target), snaps[-1])
            except BackupError:
                continue

    def warm_in_background(self) -> None:
        """:meth:`warm` in a thread of its own (restic runs take a second or two; nobody waits for them)."""
        threading.Thread(target=self.warm, name="pacs-backup-warm-copies", daemon=True).start()

    def after_snapshot(self, taken: TakenSnapshot) -> None:
        """A snapshot was just taken here: its manifest is the file the job wrote into it, so it is known without
        ``restic dump``; then the lists are read again in the background."""
        try:
            _, entries = read_manifest(taken.manifest_file.read_bytes())
        except (OSError, BackupError, ValueError) as exc:
            log.warning("the new snapshot's manifest is read from the repository instead: %s", exc)
        else:
            self.manifests.remember(taken.repository, taken.snapshot_id, indexed(taken.root, entries))
        self.warm_in_background()

    # --- the interface ---------------------------------------------------------------------------
    def _fixed(self) -> list[CopySource]:
        return [s for s in (self.parts.pacs, self.parts.bucket) if s is not None]

    def list_sources(self, study_uid: str | None = None) -> list[SourceDoc]:
        """Every source; with a study, only those holding it (one entry per snapshot, newest first)."""
        docs: list[SourceDoc] = []
        for source in self._fixed():
            docs += _if_holding(source, study_uid)
        for family in self._families:
            docs += self._family_docs(family, study_uid)
        if self.parts.cloud is not None:
            docs += _if_holding(self.parts.cloud, study_uid)
        return docs

    def open_source(self, name: str) -> CopySource:
        """The source called ``name``.

        Raises:
            NotFound: no source has that name here. SourceUnavailable: its repository cannot be read now.
        """
        named = {s.doc["name"]: s for s in [*self._fixed(), *([self.parts.cloud] if self.parts.cloud else [])]}
        if name in named:
            return named[name]
        for family in self._families:
            if name == family.alias:
                unplugged = self._unplugged(family)
                if unplugged is not None:
                    return unplugged
                snaps = self._snapshots(family)
                if not snaps:
                    raise NotFound(f"{family.title} holds no snapshot yet.")
                return self._source(family, snaps[-1], True)
            wanted = name.removeprefix(family.alias + "-")
            if family.kind != "drive" and name.startswith(family.alias + "-") and is_snapshot_id(wanted):
                for fresh in (False, True):  # a snapshot taken since the list was asked
                    chosen = [s for s in self._snapshots(family, fresh) if s.id.startswith(wanted)]
                    if chosen:
                        return self._source(family, chosen[-1], False)
                raise NotFound(f"There is no snapshot {wanted} in the {family.title.lower()}.")
        known = ", ".join(d["name"] for d in self.list_sources()[:8])
        raise NotFound(f"There is no copy called {name!r} here; the copies are: {known or 'none'}.")


def _if_holding(source: CopySource, study_uid: str | None) -> list[SourceDoc]:
    """The source's entry, when it holds the study (or no study was asked); unavailable ones say why."""
    if study_uid is None:
        return [source.doc]
    try:
        held = bool(source.studies(StudyMatch(study_uid=study_uid, limit=1)))
        if held or isinstance(source, UnavailableSource):
            return [source.doc]
        return []
    except SourceUnavailable as exc:
        return [SourceDoc(**{**source.doc, "available": False, "reason": str(exc)})]
    except NotFound:
        return []
