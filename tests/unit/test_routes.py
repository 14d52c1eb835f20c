"""The plugin's route table: every kind of error becomes its status and a sentence, input is checked first."""

from __future__ import annotations

from typing import Any

from pacs_backup.errors import BackupError, Busy, NotFound
from pacs_backup.history import RunLog
from pacs_backup.routes import dispatch


class FakeScheduler:
    def __init__(self, runs: RunLog, fail: Exception | None = None) -> None:
        self.runs, self.fail, self.asked = runs, fail, []

    def request(self, kind: str, target: str | None) -> list[int]:
        if self.fail:
            raise self.fail
        self.asked.append((kind, target))
        return [1]

    def request_restore(self, study: str, source: str, snapshot: str | None) -> int:
        if self.fail:
            raise self.fail
        self.asked.append(("restore", study, source, snapshot))
        return 7


class FakeService:
    def __init__(self, runs: RunLog, fail: Exception | None = None) -> None:
        self.sched = FakeScheduler(runs, fail)

    def status(self) -> dict[str, Any]:
        return {"state": "ok"}

    def scheduler(self) -> FakeScheduler:
        return self.sched


def call(svc: Any, method: str, path: str, query: dict[str, str] | None = None, body: bytes = b"") -> tuple[int, Any]:
    return dispatch(svc, method, path, query or {}, body)


def test_routes_answer_with_status_and_sentence(tmp_path):
    svc = FakeService(RunLog(tmp_path / "r.sqlite"))
    assert call(svc, "GET", "status") == (200, {"state": "ok"})
    assert call(svc, "POST", "drills", body=b'{"target": "offsite"}') == (202, {"runs": [1]})
    assert call(svc, "POST", "restores", body=b'{"study_uid": "1.2.3", "source": "minio"}') == (202, {"run": 7})
    code, answer = call(svc, "GET", "nowhere")
    assert code == 404 and "There is no /backup/nowhere" in answer["error"]
    code, answer = call(svc, "DELETE", "status")
    assert code == 405 and "GET" in answer["error"]
    code, answer = call(svc, "GET", "runs/12")
    assert code == 404 and answer["error"] == "There is no such run."
    code, answer = call(svc, "POST", "restores", body=b'{"study_uid": "../x", "source": "minio"}')
    assert code == 400 and "not a valid study identifier" in answer["error"]
    assert svc.sched.asked == [("drill", "offsite"), ("restore", "1.2.3", "minio", None)]


def test_error_types_choose_the_status(tmp_path):
    for error, status in (
        (Busy("Too many waiting."), 429),
        (NotFound("Not there."), 404),
        (BackupError("Cannot now."), 409),
    ):
        svc = FakeService(RunLog(tmp_path / f"{status}.sqlite"), error)
        code, answer = call(svc, "POST", "snapshots")
        assert (code, answer) == (status, {"error": str(error)})


def test_run_log_keeps_runs_and_masks_addresses(tmp_path):
    runs = RunLog(tmp_path / "r.sqlite")
    rid = runs.queue("offsite", "snapshot", 1.0)
    assert runs.waiting("offsite", "snapshot") == rid and runs.count_waiting("snapshot") == 1
    runs.start(rid, 2.0)
    runs.finish(rid, 3.0, False, {"data_added": 5}, "cannot open rest:https://u:secret-pw@h/x")
    run = runs.get(rid)
    assert run is not None and run.state == "failed" and "secret-pw" not in (run.error or "")
    assert runs.waiting("offsite", "snapshot") is None and runs.last("offsite", "snapshot") == run
    assert RunLog(tmp_path / "r.sqlite").get(rid) == run  # kept across a restart
