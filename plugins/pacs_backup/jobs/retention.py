"""Forgetting old snapshots without losing a study the law still asks the clinic to keep.

restic's keep policy (``<NAME>_RESTIC_KEEP``) says which snapshots a repository normally keeps. Before
anything is forgotten, each snapshot the policy would drop is checked against the retention rule
(:mod:`pacs_backup.settings.retention`): a study still within its years must stay in at least one kept
snapshot, in its fullest copy (the most instances any snapshot holds). When none of the kept snapshots
holds it so, the newest snapshot that does is kept too. Only the remaining snapshots are forgotten, by
id. A snapshot whose studies cannot be known (its manifest cannot be read) is never forgotten.

Which studies a snapshot holds comes from the catalog when this box recorded the snapshot, otherwise
from the manifest inside the snapshot (so a technician host without the catalog decides the same way).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date

from pacs_backup.clients.restic import Restic, ResticError, SnapshotInfo
from pacs_backup.restore.snapshot_manifests import snapshot_manifest, snapshot_time
from pacs_backup.settings.retention import RetentionRule, study_day
from pacs_backup.state.manifest import ManifestUnreadable

log = logging.getLogger(__name__)

Studies = dict[str, tuple[int, str]]  # study_uid -> (instances, StudyDate as recorded)
Recorded = Callable[[SnapshotInfo], "Studies | None"]  # what this box recorded; None: read the manifest


@dataclass(frozen=True)
class Held:
    """A snapshot and the studies it holds (None: they cannot be known)."""

    snapshot: SnapshotInfo
    studies: Studies | None


@dataclass
class RetentionPlan:
    """What a forget run does: the snapshots it forgets, and those it keeps only for the retention rule."""

    forget: list[str] = field(default_factory=list)
    kept_for: dict[str, list[str]] = field(default_factory=dict)  # snapshot id -> in-retention studies
    unreadable: list[str] = field(default_factory=list)  # kept: what they hold is not known

    @property
    def sentence(self) -> str:
        kept = len(self.kept_for) + len(self.unreadable)
        studies = len({s for held in self.kept_for.values() for s in held})
        return (
            f"{len(self.forget)} snapshot(s) forgotten; {kept} kept beyond the keep policy "
            f"({studies} stud{'y' if studies == 1 else 'ies'} still within the retention period"
            + (f", {len(self.unreadable)} whose manifest could not be read" if self.unreadable else "")
            + ")."
        )


def plan(kept: Sequence[Held], removed: Sequence[Held], rule: RetentionRule, today: date) -> RetentionPlan:
    """Decide which of ``removed`` (what the keep policy drops) may really go."""
    out = RetentionPlan(unreadable=[h.snapshot.id for h in removed if h.studies is None])
    readable = [h for h in (*kept, *removed) if h.studies is not None]
    need: dict[str, int] = {}
    for h in readable:
        day_taken = snapshot_time(h.snapshot).date()
        for uid, (count, study_date) in (h.studies or {}).items():
            if rule.keeps(study_day(study_date, day_taken), today):
                need[uid] = max(need.get(uid, 0), count)
    keeping = [h for h in kept if h.studies is not None]
    newest_first = sorted(
        (h for h in removed if h.studies is not None), key=lambda h: snapshot_time(h.snapshot), reverse=True
    )
    for uid in sorted(need):
        if any((h.studies or {}).get(uid, (0, ""))[0] >= need[uid] for h in keeping):
            continue
        chosen = next(h for h in newest_first if (h.studies or {}).get(uid, (0, ""))[0] >= need[uid])
        keeping.append(chosen)
        out.kept_for.setdefault(chosen.snapshot.id, []).append(uid)
    out.forget = [h.snapshot.id for h in removed if h.studies is not None and h.snapshot.id not in out.kept_for]
    return out


def _held(restic: Restic, snap: SnapshotInfo, recorded: Recorded | None) -> Held:
    known = recorded(snap) if recorded else None
    if known is not None:
        return Held(snap, known)
    try:
        entries = snapshot_manifest(restic, snap)[1] if snap.paths else None
    except (ManifestUnreadable, ResticError) as exc:
        log.warning("what snapshot %s holds cannot be read, so it is never forgotten: %s", snap.short_id, exc)
        entries = None
    if entries is None:
        return Held(snap, None)
    studies: Studies = {}
    for e in entries:
        count, _ = studies.get(e["study_uid"], (0, ""))
        studies[e["study_uid"]] = (count + 1, e["study_date"])
    return Held(snap, studies)


def forget_with_retention(
    restic: Restic,
    keep: dict[str, str],
    rule: RetentionRule,
    today: date,
    recorded: Recorded | None = None,
    prune: bool = True,
) -> RetentionPlan:
    """Apply the keep policy to ``restic``'s repository, except where the retention rule needs a snapshot."""
    kept, removed = restic.forget_plan(keep)
    if not removed:
        return RetentionPlan()
    held_kept = [_held(restic, s, recorded) for s in kept]
    decided = plan(held_kept, [_held(restic, s, recorded) for s in removed], rule, today)
    for snap_id, studies in decided.kept_for.items():
        log.info("snapshot %s kept for the retention rule: it holds %s", snap_id[:8], ", ".join(studies[:5]))
    restic.forget_ids(decided.forget, prune=prune)
    log.info("retention on %s: %s", restic.repository, decided.sentence)
    return decided


def recorded_by(catalog_snapshot: Callable[[str], dict[str, int] | None], dates: dict[str, str]) -> Recorded:
    """What the catalog recorded of a snapshot (its studies' counts, their dates from the catalog)."""

    def recorded(snap: SnapshotInfo) -> Studies | None:
        counts = catalog_snapshot(snap.id)
        return None if counts is None else {uid: (n, dates.get(uid, "")) for uid, n in counts.items()}

    return recorded
