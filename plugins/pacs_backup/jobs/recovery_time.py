"""How long getting every image back would take, per copy: measured from this box's own restores.

For each copy a study can be restored from (the bucket, each offsite target, the cloud PACS) the figure is
the rate of the restore from it that brought back the most bytes among those of the last 180 days that
succeeded and restored at least :data:`MIN_BYTES`: its seconds per GB, times the clinic's backed-up
images now. A tiny restore is left out because its time is mostly the fixed cost of starting (finding the
study, opening a snapshot), not the transfer. The restore went into Orthanc, so Orthanc's own speed of
taking images in is part of the figure. It is one restore's rate extrapolated, not a promise.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from pacs_backup.contracts.documents import CopyKind, RecoveryTimeDoc
from pacs_backup.contracts.runs import RestoreSummary
from pacs_backup.settings.targets import TargetSettings
from pacs_backup.state.history import Run

from .scheduler import CLOUD_PACS, MINIO, OffsiteScheduler

MIN_BYTES = 1_000_000  # 1 MB: a few X-ray images; below it a restore's time is mostly its start
WINDOW_S = 180 * 86400.0  # restores older than this no longer say how fast this box is
RUNS_READ = 2000  # the newest restore runs read (far more than a clinic restores in 180 days)
GB = 1e9  # decimal, as disks and cloud plans are sold
_CLOUD_BACKENDS = ("rclone:", "s3:", "b2:", "azure:", "gs:", "swift:")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
RESTORE_PAGE = "the \u201cFind & restore a study\u201d page"


@dataclass(frozen=True)
class CopyRef:
    """A copy a study can be restored from: its name as a restore source, and its kind."""

    name: str
    kind: CopyKind

    @property
    def words(self) -> str:
        """How staff call it ("the offsite copy (usb)"), as the dashboard's lights do."""
        kind = {
            "bucket": "the local backup copy",
            "offsite": "the offsite copy",
            "cloud_storage": "the cloud storage copy",
            "drive": "the backup drive",
            "cloud_pacs": "the cloud PACS",
        }[self.kind]
        return kind if self.kind in ("bucket", "cloud_pacs") or self.name.lower() in kind else f"{kind} ({self.name})"


def target_kind(t: TargetSettings) -> CopyKind:
    """An offsite target's kind: a backup drive, cloud storage (rclone or a provider's backend), or offsite."""
    if t.drive:
        return "drive"
    return "cloud_storage" if t.repository.startswith(_CLOUD_BACKENDS) else "offsite"


def copies_of(targets: Iterable[TargetSettings], bucket: bool, cloud_pacs: bool) -> list[CopyRef]:
    """The copies of this install, the bucket first and the cloud PACS last."""
    out = [CopyRef(MINIO, "bucket")] if bucket else []
    out += [CopyRef(t.name, target_kind(t)) for t in targets]
    return out + ([CopyRef(CLOUD_PACS, "cloud_pacs")] if cloud_pacs else [])


def duration_words(seconds: float) -> str:
    """``Under a minute``, ``About 40 min``, ``About 3 h 20 min``, ``About 4.5 days``."""
    if seconds < 60:
        return "Under a minute"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"About {minutes} min"
    if seconds < 48 * 3600:
        hours, rest = divmod(minutes, 60)
        return f"About {hours} h" + (f" {rest} min" if rest else "")
    days = seconds / 86400
    return f"About {days:.1f} days" if days < 10 else f"About {round(days)} days"


def size_words(n: int) -> str:
    """``950 MB``, ``2.1 GB``, ``410 GB`` (decimal units)."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            value = n / scale
            return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"
    return f"{n} bytes"


def day_words(at: float, now: float) -> str:
    """``3 Dec`` this year, ``3 Dec 2025`` before (the box's local time)."""
    d, today = datetime.fromtimestamp(at), datetime.fromtimestamp(now)
    return f"{d.day} {_MONTHS[d.month - 1]}" + ("" if d.year == today.year else f" {d.year}")


def _restored(run: Run) -> int | None:
    """The bytes a finished, successful restore brought back and verified (None: it does not count)."""
    s = run.summary
    if run.kind != "restore" or run.state != "ok" or not isinstance(s, RestoreSummary) or s.ok is not True:
        return None
    if run.started_at is None or run.finished_at is None or run.finished_at <= run.started_at:
        return None
    return s.bytes


def measure(copy: CopyRef, runs: Iterable[Run], archive_bytes: int, now: float) -> RecoveryTimeDoc:
    """The recovery time of ``copy`` from ``runs`` (any runs: those of other copies are skipped)."""
    best: tuple[int, float, Run] | None = None
    small = 0
    for run in runs:
        size = _restored(run) if run.target == copy.name else None
        if size is None or (run.finished_at or 0) < now - WINDOW_S:
            continue
        if size < MIN_BYTES:
            small += 1
        elif best is None or (size, run.finished_at or 0) > (best[0], best[1]):
            best = (size, run.finished_at or 0, run)
    doc = RecoveryTimeDoc(
        copy=copy.name,
        kind=copy.kind,
        measured=best is not None,
        seconds_per_gb=None,
        measured_on=None,
        measured_bytes=None,
        measured_instances=None,
        run_id=None,
        archive_bytes=archive_bytes,
        estimate_s=None,
        sentence="",
    )
    if best is None:
        doc["sentence"] = (
            f"Not measured yet: restore a study from {copy.words} on {RESTORE_PAGE} to measure it."
            if not small
            else f"Not measured yet: the restores from {copy.words} in the last 180 days were under "
            f"{size_words(MIN_BYTES)}, too small to time. Restore a larger study on {RESTORE_PAGE} to measure it."
        )
        return doc
    size, finished, run = best
    per_gb = (finished - float(run.started_at or finished)) / (size / GB)
    estimate = per_gb * archive_bytes / GB
    summary = run.summary
    doc |= {
        "seconds_per_gb": round(per_gb, 3),
        "measured_on": finished,
        "measured_bytes": size,
        "measured_instances": summary.verified if isinstance(summary, RestoreSummary) else None,
        "run_id": run.id,
        "estimate_s": round(estimate, 3),
    }
    measured = f"measured restoring {size_words(size)} on {day_words(finished, now)}"
    doc["sentence"] = (
        f"{duration_words(estimate)} for this clinic's {size_words(archive_bytes)}, {measured}."
        if archive_bytes
        else f"No images are backed up yet; at the rate {measured}, each GB takes {duration_words(per_gb).lower()}."
    )
    return doc


def recovery_times(
    copies: Iterable[CopyRef], runs: Iterable[Run], archive_bytes: int, now: float
) -> list[RecoveryTimeDoc]:
    """One document per copy, in the order given."""
    done = list(runs)
    return [measure(c, done, archive_bytes, now) for c in copies]


def scheduler_recovery_times(offsite: OffsiteScheduler, archive_bytes: int, now: float) -> list[RecoveryTimeDoc]:
    """The recovery times of the copies the running scheduler restores from, from its run history."""
    copies = copies_of(offsite.targets.values(), offsite.ctx.store is not None, offsite.cloud is not None)
    return recovery_times(copies, offsite.runs.recent(RUNS_READ, "restore"), archive_bytes, now)
