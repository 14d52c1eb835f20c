"""Schedules and runs snapshots and drills, one at a time, and records every run.

Each target has its own schedule and history. A failed run is recorded with its reason, shown in
the status, and tried again at the next interval; nothing is reported as success that was not.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from pacs_backup.clients.restic import SnapshotInfo
from pacs_backup.contracts.documents import Forecast, GroupDrillsDoc, TargetDoc
from pacs_backup.contracts.errors import BackupError, BadRequest, Busy, NotFound
from pacs_backup.contracts.redact import mask_url_credentials
from pacs_backup.contracts.runs import DrillSummary, JobKind, RestoreSummary, SnapshotSummary, job_kind
from pacs_backup.replication.cloud_pacs import CloudSender
from pacs_backup.replication.group_copy import GroupSender
from pacs_backup.restore.from_copies import Holding, restore_from_bucket, restore_from_snapshot, snapshots_holding
from pacs_backup.restore.snapshot_manifests import ManifestOf
from pacs_backup.restore.uploads import RestoreReport
from pacs_backup.settings.bandwidth import BandwidthSchedule
from pacs_backup.settings.targets import TargetSettings
from pacs_backup.state.history import RunLog

from .drills import drill_group_store, drill_object_store, drill_target, mismatch_sentence
from .drives import DriveNotConnected, DriveWatch, prepare
from .forecast import forecast
from .placement import Placement
from .snapshots import OffsiteContext, take_snapshot

log = logging.getLogger(__name__)

MINIO = "minio"
CLOUD_PACS = "cloud-pacs"
GROUP = "group"  # the group copy's drills (settings.group.GROUP_COPY)
MAX_WAITING_RESTORES = 10
LIST_AGE_S = 60.0  # a study's page may show a snapshot list read this long ago (this box's own snapshots show at once)


class OffsiteScheduler:
    """One thread that runs queued and scheduled jobs (snapshot / drill) sequentially."""

    def __init__(
        self,
        ctx: OffsiteContext,
        targets: tuple[TargetSettings, ...],
        runs: RunLog,
        *,
        drill_sample: int = 20,
        minio_drill_interval_s: float = 24 * 3600.0,
        first_run_delay_s: float = 60.0,
        clock: Callable[[], float] = time.time,
        drives: DriveWatch | None = None,
        placement: Placement | None = None,
    ) -> None:
        self.ctx = ctx
        self.targets = {t.name: t for t in targets}
        self.runs = runs
        self.drill_sample = drill_sample
        self.minio_drill_interval_s = minio_drill_interval_s
        self.first_run_delay_s = first_run_delay_s
        self._clock = clock
        self._jobs: queue.Queue[tuple[int, str, JobKind] | None] = queue.Queue()  # None: stop
        self._queue_lock = threading.Lock()
        # Restores have their own thread: a clinic waiting for a study must not wait for a snapshot.
        self._restores: queue.Queue[tuple[int, str, str, str | None] | None] = queue.Queue()  # None: stop
        self._restore_thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started_at = clock()
        self._check_slice: dict[str, int] = {}
        self.drives = drives
        self._forecasts: dict[str, tuple[float, Forecast]] = {}
        self.cloud: CloudSender | None = None  # set when a cloud PACS is configured
        self.group: GroupSender | None = None  # set when this clinic is in a group: its store has drills
        self.placement = placement  # where each copy is: decided on this thread, hourly
        # The upload timetable in force for a target: its own, or the one set in the dashboard (as ctx.upload_of).
        self.upload_of: Callable[[TargetSettings], BandwidthSchedule] = lambda t: t.upload
        self.manifest_of: ManifestOf | None = None  # the copies' remembered manifests (else read once)

    # --- requests ---------------------------------------------------------------------------------
    def request_restore(self, study_uid: str, source: str, snapshot: str | None = None) -> int:
        """Queue a restore of one study from ``source`` ('minio' or a target name). Returns the run id."""
        if source not in (MINIO, CLOUD_PACS) and source not in self.targets:
            raise BadRequest(f"Unknown source {source!r}; use minio or one of: {', '.join(self.targets) or 'none'}.")
        if not study_uid or len(study_uid) > 128:
            raise BadRequest("Give the StudyInstanceUID of the study to restore.")
        if self.runs.count_waiting("restore") >= MAX_WAITING_RESTORES:
            raise Busy(f"{MAX_WAITING_RESTORES} restores are already waiting; try again when they are done.")
        run_id = self.runs.queue(source, "restore", self._clock())
        self.runs.progress(run_id, RestoreSummary(study_uid, snapshot, done=0))
        self._restores.put((run_id, source, study_uid, snapshot))
        return run_id

    def request(self, kind: str, target: str | None = None) -> list[int]:
        """Queue ``kind`` ('snapshot' or 'drill') for one target or all. Returns the run ids.

        Raises:
            BackupError: unknown kind or target (the message lists the valid ones).
        """
        try:
            job = job_kind(kind)
        except ValueError:
            raise BadRequest(f"Unknown job {kind!r}; use snapshot or drill.") from None
        stores = [MINIO] if self.ctx.store is not None else []
        names = list(self.targets) + ([*stores, *([GROUP] if self.group else [])] if job == "drill" else [])
        if target is not None:
            if target not in names:
                raise BadRequest(f"Unknown target {target!r}; configured: {', '.join(names) or 'none'}.")
            names = [target]
        if not names:
            raise BackupError("No offsite target is configured (set RESTIC_REPOSITORY).")
        if target is not None:
            self._require_drive(target)
        names = [n for n in names if n not in self.targets or not self._unplugged(n)]
        ids = []
        for name in names:
            with self._queue_lock:  # at most one waiting run per target and kind: asking again joins it
                waiting = self.runs.waiting(name, job)
                if waiting is None:
                    waiting = self.runs.queue(name, job, self._clock())
                    self._jobs.put((waiting, name, job))
            ids.append(waiting)
        return ids

    def _unplugged(self, name: str) -> bool:
        t = self.targets[name]
        return bool(t.drive and self.drives and not self.drives.state(t).connected)

    def _require_drive(self, name: str) -> None:
        """An explicit request for a drive that is not there: say so (409), and write nothing."""
        t = self.targets.get(name)
        if t is not None and t.drive and self.drives is not None:
            state = self.drives.state(t, force=True)
            if not state.connected:
                raise DriveNotConnected(state.sentence)

    def prepare_drive(self, name: str, label: str) -> dict[str, Any]:
        """Make a repository on the drive plugged in for target ``name``, remember it, and snapshot to it."""
        t = self.targets.get(name)
        if t is None or not t.drive or self.drives is None:
            raise BadRequest(f"{name!r} is not a drive target (a <NAME>_RESTIC_REPOSITORY that is a path).")
        with self._queue_lock:  # one preparation at a time
            repo_id = prepare(
                name,
                self.ctx.restic(t),
                Path(t.repository),
                self.ctx.storage_dir,
                self.drives.registry,
                label,
                self._clock(),
            )
        self.drives.state(t, force=True)
        return {"repository_id": repo_id, "runs": self.request("snapshot", name)}

    def snapshots_holding(self, study_uid: str, target: str | None = None) -> list[tuple[str, Holding]]:
        """``(target, snapshot)`` pairs holding the study, newest first, for every (or one) target."""
        if target is not None and target not in self.targets:
            raise NotFound(f"There is no offsite target {target!r}.")
        out: list[tuple[str, Holding]] = []
        for name in [target] if target else list(self.targets):
            restic = self.ctx.restic(self.targets[name])
            held = snapshots_holding(restic, study_uid, known=self._known, max_age_s=LIST_AGE_S)
            out += [(name, h) for h in held]
        return out

    def _known(self, snap: SnapshotInfo, study_uid: str) -> int | None:
        return self.ctx.catalog.snapshot_count(snap.id, study_uid)

    # --- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="pacs-backup-offsite", daemon=True)
        self._thread.start()
        self._restore_thread = threading.Thread(target=self._restore_loop, name="pacs-backup-restore", daemon=True)
        self._restore_thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._jobs.put(None)
        self._restores.put(None)
        for t in (self._thread, self._restore_thread):
            if t:
                t.join(timeout_s)

    def _loop(self) -> None:
        while not self._stop.is_set():
            if self.placement is not None:
                self.placement.refresh_if_due()  # a name lookup may take seconds: never on a request
            try:
                job = self._jobs.get(timeout=5.0)
            except queue.Empty:
                self._queue_due()
                continue
            if self._stop.is_set() or job is None:
                return
            self._execute(*job)

    def _restore_loop(self) -> None:
        while not self._stop.is_set():
            asked = self._restores.get()
            if self._stop.is_set() or asked is None:
                return
            run_id, source, study_uid, snapshot = asked
            self.runs.start(run_id, self._clock())
            base = RestoreSummary(study_uid, snapshot)

            def progress(done: int, total: int, run_id: int = run_id, base: RestoreSummary = base) -> None:
                self.runs.progress(run_id, RestoreSummary(base.study_uid, base.snapshot, done=done, total=total))

            try:
                report = self._restore(source, study_uid, snapshot, progress)
            except Exception as exc:  # recorded as failed; BackupError messages are for people
                if not isinstance(exc, BackupError):
                    log.exception("restore of %s failed unexpectedly", study_uid)
                self.runs.finish(run_id, self._clock(), False, base, str(exc))
                continue
            summary = report.summary(study_uid, snapshot)
            error = (
                None
                if report.ok
                else (
                    "Nothing to restore: the study is not in this backup."
                    if report.total == 0
                    else f"{len(report.failures)} of {report.total} instances did not verify."
                )
            )
            self.runs.finish(run_id, self._clock(), report.ok, summary, error)

    def _restore(
        self, source: str, study_uid: str, snapshot: str | None, progress: Callable[[int, int], None]
    ) -> RestoreReport:
        if self.ctx.orthanc is None:
            raise BackupError("Restores are not available in this setup.")
        if source == CLOUD_PACS:
            if self.cloud is None:
                raise BackupError("No cloud PACS is configured (CLOUD_PACS_URL or CLOUD_PACS_DICOM).")
            return self.cloud.restore(study_uid, self.ctx.orthanc, progress)
        if source == MINIO:
            if self.ctx.store is None:
                raise BackupError("No object store is configured.")
            return restore_from_bucket(
                self.ctx.store, self.ctx.orthanc, [study_uid], self.ctx.prefix, progress=progress
            )
        return restore_from_snapshot(
            self.ctx.restic(self.targets[source]),
            self.ctx.orthanc,
            [study_uid],
            snapshot_id=snapshot,
            progress=progress,
            known=self._known,
            manifest_of=self.manifest_of,
            list_age_s=LIST_AGE_S,
        )

    def _due(self, name: str, kind: JobKind, interval_s: float) -> bool:
        return self._clock() >= self.next_due_at(name, kind, interval_s)

    def _local(self, at: float | None = None) -> datetime:
        """The appliance's local time (upload timetables are in it)."""
        return datetime.fromtimestamp(self._clock() if at is None else at)

    def _window_doc(self, t: TargetSettings, entry: TargetDoc) -> None:
        """A target's upload rule and its next window; a snapshot due outside the window waits for it."""
        upload = self.upload_of(t)
        if upload.unlimited:
            return
        now = self._local()
        opens = upload.next_window(now)
        entry["window"] = upload.rule
        entry["next_window"] = None if opens is None else opens.timestamp()
        due = self._local(entry["next_snapshot_at"])
        later = upload.next_window(due)
        if later is not None:
            entry["next_snapshot_at"] = later.timestamp()

    def next_due_at(self, name: str, kind: JobKind, interval_s: float) -> float:
        """When the next scheduled run of ``kind`` for ``name`` starts (a fresh install: after the delay)."""
        last = self.runs.last(name, kind)
        if last is None:
            return self._started_at + self.first_run_delay_s
        return float(last.finished_at or last.queued_at) + interval_s

    def _queue_due(self) -> None:
        for t in self.targets.values():
            if t.drive and self.drives is not None:
                if self.drives.appeared(t):  # a drive was plugged in: bring it up to date at once
                    self.request("snapshot", t.name)
                    continue
                if not self.drives.state(t).connected:
                    continue  # nothing is written in the drive's place; the status says it is missing
            if self._due(t.name, "snapshot", t.snapshot_interval_s) and self.upload_of(t).allows(self._local()):
                self.request("snapshot", t.name)  # outside its upload window, a snapshot waits for it
            elif self._due(t.name, "drill", t.drill_interval_s):
                self.request("drill", t.name)
        if self.ctx.store is not None and self._due(MINIO, "drill", self.minio_drill_interval_s):
            self.request("drill", MINIO)
        if self.group is not None and self._due(GROUP, "drill", self.minio_drill_interval_s):
            self.request("drill", GROUP)

    def _execute(self, run_id: int, name: str, kind: JobKind) -> None:
        self.runs.start(run_id, self._clock())
        try:
            summary = self._run_job(name, kind)
        except BackupError as exc:
            log.error("%s of %s failed: %s", kind, name, exc)
            self.runs.finish(run_id, self._clock(), False, None, str(exc))
            return
        except Exception as exc:  # recorded as failed; the traceback goes to the log
            log.exception("%s of %s failed unexpectedly", kind, name)
            self.runs.finish(run_id, self._clock(), False, None, f"Unexpected error: {exc}")
            return
        error = None  # a drill that checked nothing did not fail: the lights say "not tested"
        if isinstance(summary, DrillSummary) and not summary.ok:
            error = mismatch_sentence(summary.mismatches)
        self.runs.finish(run_id, self._clock(), error is None, summary, error)
        self._forecasts.pop(name, None)  # a new snapshot changes the size and growth

    def _run_job(self, name: str, kind: JobKind) -> SnapshotSummary | DrillSummary:
        if name == MINIO:
            return drill_object_store(self.ctx, self.drill_sample)
        if name == GROUP and self.group is not None:
            return drill_group_store(self.ctx, self.group, self.drill_sample)
        target = self.targets[name]
        if target.drive and self.drives is not None:
            state = self.drives.state(target, force=True)  # it may have been unplugged since it was queued
            if not state.connected or state.repository_id is None:
                raise DriveNotConnected(state.sentence)
            if kind == "snapshot":
                summary = take_snapshot(self.ctx, target, create=False, drive=state.repository_id)
                self.drives.registry.seen(name, state.repository_id, self._clock(), snapshot=True)
                return summary
        if kind == "snapshot":
            return take_snapshot(self.ctx, target)
        # Rotate the slice read by `restic check` so the whole repository is read once per cycle.
        slice_no = self._check_slice.get(name, self._initial_slice(name, target)) % target.check_cycle + 1
        self._check_slice[name] = slice_no
        return drill_target(self.ctx, target, self.drill_sample, slice_no)

    def _initial_slice(self, name: str, target: TargetSettings) -> int:
        last = self.runs.last(name, "drill", "ok")
        done = last.summary if last else None
        return (done.check_slice or 0) if isinstance(done, DrillSummary) else 0

    # --- status -----------------------------------------------------------------------------------
    def _forecast(self, t: TargetSettings, now: float) -> Forecast:
        """A target's forecast, recomputed at most every minute (it reads every snapshot run)."""
        cached = self._forecasts.get(t.name)
        if cached is None or now - cached[0] > 60 or now < cached[0]:
            quota = None if t.quota_gb is None else int(t.quota_gb * 1e9)
            cached = (now, forecast(self.runs.additions(t.name), now, quota, t.quota_warn_months))
            self._forecasts[t.name] = cached
        return cached[1]

    def status(self) -> dict[str, TargetDoc]:
        """Per target: last snapshot and drill (any outcome) and the last successful one."""
        out: dict[str, TargetDoc] = {}
        now = self._clock()
        for name in [*self.targets, *([MINIO] if self.ctx.store is not None else [])]:
            entry = TargetDoc()
            if self.placement is not None:
                self.placement.place(name, entry)
            if name in self.targets:
                t = self.targets[name]
                entry["repository"] = mask_url_credentials(t.repository)
                entry["next_snapshot_at"] = self.next_due_at(name, "snapshot", t.snapshot_interval_s)
                entry["next_drill_at"] = self.next_due_at(name, "drill", t.drill_interval_s)
                self._window_doc(t, entry)
                entry["forecast"] = self._forecast(t, now)
                if t.drive and self.drives is not None:
                    good = self.runs.last(name, "snapshot", "ok")
                    entry["drive"] = self.drives.status(t, None if good is None else now - float(good.finished_at or 0))
            else:
                entry["next_drill_at"] = self.next_due_at(name, "drill", self.minio_drill_interval_s)
            if name != MINIO:
                last, good = self.runs.last(name, "snapshot"), self.runs.last(name, "snapshot", "ok")
                entry["last_snapshot"] = last.as_dict() if last else None
                entry["last_good_snapshot_age_s"] = round(now - float(good.finished_at or 0), 1) if good else None
            last, good = self.runs.last(name, "drill"), self.runs.last(name, "drill", "ok")
            entry["last_drill"] = last.as_dict() if last else None
            entry["last_good_drill_age_s"] = round(now - float(good.finished_at or 0), 1) if good else None
            out[name] = entry
        return out

    def group_drills(self) -> GroupDrillsDoc:
        """The group store's last drill, the age of its last good one and the next one's time."""
        now = self._clock()
        last, good = self.runs.last(GROUP, "drill"), self.runs.last(GROUP, "drill", "ok")
        return {
            "last_drill": last.as_dict() if last else None,
            "last_good_drill_age_s": round(now - float(good.finished_at or 0), 1) if good else None,
            "next_drill_at": self.next_due_at(GROUP, "drill", self.minio_drill_interval_s),
        }
