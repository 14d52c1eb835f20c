"""The offsite scheduler's decisions and the run log, without programs (issue 15.8): what runs when,
what joins a waiting run, what a restart leaves behind, and what a person is told."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from pacs_backup.contracts.errors import BadRequest, Busy
from pacs_backup.contracts.runs import DrillSummary, SnapshotSummary
from pacs_backup.jobs.scheduler import MAX_WAITING_RESTORES, MINIO, OffsiteScheduler
from pacs_backup.settings.targets import TargetSettings
from pacs_backup.state.history import RunLog


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def target(name: str, snapshot_h: float = 1, drill_h: float = 24) -> TargetSettings:
    return TargetSettings(
        name=name,
        repository=f"rest:http://127.0.0.1:1/{name}",
        password="secret",
        password_file=None,
        env={},
        snapshot_interval_s=snapshot_h * 3600,
        drill_interval_s=drill_h * 3600,
        check_cycle=10,
        forget=False,
        keep={},
    )


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def runs(tmp_path: Path) -> RunLog:
    return RunLog(tmp_path / "plugin.sqlite")


def scheduler(runs: RunLog, clock: Clock, *names: str, store: bool = True) -> OffsiteScheduler:
    ctx = SimpleNamespace(store=object() if store else None)
    return OffsiteScheduler(
        ctx,  # type: ignore[arg-type]
        tuple(target(n) for n in names),
        runs,
        first_run_delay_s=60,
        minio_drill_interval_s=24 * 3600,
        clock=clock,
    )


# --- run log ---------------------------------------------------------------------------------------------
def test_run_log_records_a_run_from_queued_to_finished_and_masks_passwords(runs, clock):
    run_id = runs.queue("offsite", "snapshot", clock())
    assert runs.waiting("offsite", "snapshot") == run_id and runs.count_waiting("snapshot") == 1
    runs.start(run_id, clock() + 1)
    assert runs.waiting("offsite", "snapshot") is None and runs.count_waiting("snapshot") == 1
    summary = SnapshotSummary(snapshot_id=None, data_added=3)
    runs.finish(run_id, clock() + 5, False, summary, "restic: rest:https://clinic:hunter2@offsite/x refused")
    run = runs.get(run_id)
    assert run is not None and run.state == "failed" and run.summary == summary
    assert "hunter2" not in (run.error or "") and "offsite/x" in (run.error or "")
    assert runs.last("offsite", "snapshot", "failed") == run and runs.last("offsite", "snapshot", "ok") is None
    assert runs.count_waiting("snapshot") == 0


def test_runs_left_running_by_a_crash_say_so_after_the_restart(tmp_path, clock):
    log = RunLog(tmp_path / "plugin.sqlite")
    running = log.queue("offsite", "snapshot", clock())
    log.start(running, clock())
    queued = log.queue("offsite", "drill", clock())
    again = RunLog(tmp_path / "plugin.sqlite")  # the appliance restarted
    for run_id in (running, queued):
        run = again.get(run_id)
        assert run is not None and run.state == "failed" and "restarted" in (run.error or "")


def test_recent_lists_newest_first_and_filters_by_kind(runs, clock):
    ids = [runs.queue("offsite", kind, clock()) for kind in ("snapshot", "drill", "snapshot")]
    assert [r.id for r in runs.recent()] == ids[::-1]
    assert [r.id for r in runs.recent(kind="drill")] == [ids[1]]


# --- scheduler -------------------------------------------------------------------------------------------
def test_asking_twice_joins_the_waiting_run_instead_of_queueing_another(runs, clock):
    s = scheduler(runs, clock, "offsite", "usb")
    first = s.request("snapshot")
    assert len(first) == 2 and s.request("snapshot") == first
    drill = s.request("drill", "offsite")
    assert len(drill) == 1 and drill[0] not in first  # a drill is its own run
    everything = s.request("drill")
    assert drill[0] in everything and s.request("drill", MINIO)[0] in everything  # the bucket is drilled too


def test_unknown_jobs_and_targets_are_refused_with_the_valid_names(runs, clock):
    s = scheduler(runs, clock, "offsite")
    with pytest.raises(BadRequest, match="use snapshot or drill"):
        s.request("delete")
    with pytest.raises(BadRequest, match="configured: offsite"):
        s.request("snapshot", "nas2")
    with pytest.raises(BadRequest, match="use minio or one of: offsite"):
        s.request_restore("1.2.3", "nowhere")


def test_restores_wait_in_a_bounded_line(runs, clock):
    s = scheduler(runs, clock, "offsite")
    for i in range(MAX_WAITING_RESTORES):
        s.request_restore(f"1.2.{i}", "offsite")
    with pytest.raises(Busy, match="already waiting"):
        s.request_restore("1.2.99", "minio")


def test_a_fresh_install_waits_the_first_run_delay_then_follows_each_interval(runs, clock):
    s = scheduler(runs, clock, "offsite")
    start = clock()
    assert s.next_due_at("offsite", "snapshot", 3600) == start + 60
    s._queue_due()
    assert runs.count_waiting("snapshot") == 0  # not before the delay
    clock.now += 61
    s._queue_due()
    assert runs.waiting("offsite", "snapshot") is not None and runs.waiting(MINIO, "drill") is not None
    run_id = runs.waiting("offsite", "snapshot")
    runs.start(run_id, clock())
    runs.finish(run_id, clock() + 10, True, None)
    assert s.next_due_at("offsite", "snapshot", 3600) == clock() + 10 + 3600


def test_drills_go_on_with_the_next_slice_of_the_repository_after_a_restart(runs, clock):
    """The slice read by the last drill is kept as a number in its summary, not read back from a sentence."""
    run_id = runs.queue("offsite", "drill", clock())
    runs.start(run_id, clock())
    runs.finish(run_id, clock(), True, DrillSummary(check="read data subset 7/10: no errors", check_slice=7))
    s = scheduler(runs, clock, "offsite")
    assert s._initial_slice("offsite", target("offsite")) == 7
    old = runs.queue("offsite", "drill", clock() + 1)  # written by a release that kept only the sentence
    runs.start(old, clock() + 1)
    runs.finish(old, clock() + 2, True, DrillSummary(check="the words of a sentence may change"))
    assert s._initial_slice("offsite", target("offsite")) == 0
