"""Jobs the scripts ask the running plugin for: snapshot-now and verify-backups (queued, then watched
with a line when queued, when started, every little while as it runs, and at the end), prepare-drive
and the quarantine list."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from pacs_backup.clients.orthanc_http import OrthancHttp, RequestRefused
from pacs_backup.contracts.documents import RunDoc
from pacs_backup.contracts.errors import SourceError
from pacs_backup.contracts.runs import JobKind

from . import env as cli_env
from .exits import EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE, Fail
from .summary import closing_line, detail_lines, end_line, running_detail, title
from .text import clock, duration, table

FINISHED = ("ok", "failed")
CLOCK: Callable[[], float] = time.monotonic  # what progress lines are timed by (a test moves it on)


@dataclass
class Watch:
    """Follows queued runs until they finish or ``timeout_s`` passes, telling a person what happens."""

    pacs: OrthancHttp
    out: TextIO
    every_s: float = 15.0  # a progress line this often while a run waits or runs
    poll_s: float = 1.0
    now: Callable[[], float] = field(default_factory=lambda: CLOCK)
    wall: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    _started: set[int] = field(default_factory=set)
    _said: dict[int, float] = field(default_factory=dict)

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def queued(self, run: RunDoc, waiting: bool) -> None:
        self._said[run["id"]] = self.now()
        self.say(f"{title(run)} queued (run {run['id']}){'; waiting for it to start...' if waiting else '.'}")

    def run(self, ids: list[int], timeout_s: float) -> dict[int, RunDoc]:
        """Every run that finished, by id (a run missing from the answer was still going at the timeout)."""
        deadline = self.now() + timeout_s
        done: dict[int, RunDoc] = {}
        while True:
            for run_id in ids:
                if run_id not in done:
                    run: RunDoc = self.pacs.get_json(f"/backup/runs/{run_id}")
                    self._report(run)
                    if run["state"] in FINISHED:
                        done[run_id] = run
            if len(done) == len(ids) or self.now() >= deadline:
                return done
            self.sleep(self.poll_s)

    def _report(self, run: RunDoc) -> None:
        run_id, state = run["id"], run["state"]
        if state == "queued":
            if self.now() - self._said.get(run_id, 0.0) >= self.every_s:
                self._said[run_id] = self.now()
                waited = duration(self.wall() - run["queued_at"])
                self.say(f"  {title(run)} is still waiting to start ({waited}; one job runs at a time).")
            return
        if run_id not in self._started and run["started_at"] is not None:
            self._started.add(run_id)
            self._said[run_id] = self.now()
            self.say(f"{title(run)} started at {clock(run['started_at'])} (run {run_id}).")
        if state == "running":
            if self.now() - self._said.get(run_id, 0.0) >= self.every_s:
                self._said[run_id] = self.now()
                elapsed = duration(self.wall() - (run["started_at"] or self.wall()))
                self.say(f"  {title(run)}: running for {elapsed}{running_detail(run)}")
            return
        self.say(end_line(run))
        for line in detail_lines(run):
            self.say(line)


def _refused(exc: RequestRefused, pacs: OrthancHttp, target: str | None, kind: str) -> Fail:
    """The plugin's refusal as an exit: a target it does not have is named with the ones it has (2)."""
    if exc.status != 400:
        return Fail(EXIT_FAILED, exc.sentence)
    known = cli_env.plugin_targets(pacs, kind) if target else []
    if target and target not in known:
        return cli_env.no_such_target(target, known, "drive target" if kind == "drive" else "target")
    return Fail(EXIT_USAGE, exc.sentence)


def _queue(pacs: OrthancHttp, kind: str, target: str | None) -> list[int]:
    try:
        return [int(i) for i in pacs.post_json(f"/backup/{kind}s", {"target": target} if target else {})["runs"]]
    except RequestRefused as exc:
        raise _refused(exc, pacs, target, kind) from None
    except SourceError as exc:
        raise Fail(EXIT_UNREACHABLE, str(exc)) from None


def queue_and_watch(kind: JobKind, a: argparse.Namespace, every_s: float = 15.0) -> int:
    """``snapshot-now`` / ``verify-backups``: queue ``kind`` ('snapshot', 'drill') and follow it."""
    pacs = cli_env.orthanc()
    ids = _queue(pacs, kind, a.target)
    # With --json, stdout holds only the JSON; the running commentary goes to stderr.
    watch = Watch(pacs, sys.stderr if a.json else sys.stdout, every_s=every_s)
    queued: list[RunDoc] = [pacs.get_json(f"/backup/runs/{i}") for i in ids]
    for run in queued:
        watch.queued(run, waiting=not a.no_wait)
    if a.no_wait:
        watch.say("Not waiting (--no-wait): the dashboard and `GET /backup/runs/<run>` show how it ends.")
        if a.json:
            print(json.dumps(queued, indent=2))
        return EXIT_OK
    done = watch.run(ids, a.timeout)
    for run in queued:
        if run["id"] not in done:
            watch.say(
                f"{title(run)} is still going after {duration(a.timeout)} (run {run['id']}); it carries on in the "
                "appliance, and the dashboard shows how it ends."
            )
    finished = [done[i] for i in ids if i in done]
    if a.json:
        print(json.dumps(finished, indent=2))
    elif closing := closing_line(finished, kind):
        watch.say(closing)
    return EXIT_OK if len(finished) == len(ids) and all(r["state"] == "ok" for r in finished) else EXIT_FAILED


def prepare_drive(a: argparse.Namespace) -> int:
    pacs = cli_env.orthanc()
    payload = {"target": a.target, **({"label": a.label} if a.label else {})}
    try:
        answer: dict[str, Any] = pacs.post_json("/backup/drives", payload)
    except RequestRefused as exc:
        raise _refused(exc, pacs, a.target, "drive") from None
    runs = ", ".join(map(str, answer["runs"]))
    print(f"Drive prepared for {a.target} ({a.label or 'no label'}): repository {answer['repository_id'][:8]}.")
    print(f"A first snapshot to it is queued (run {runs}); the dashboard shows when it is done.")
    print("Write that name on the drive: the appliance recognises the drive whenever it is plugged in.")
    return EXIT_OK


def quarantine(a: argparse.Namespace) -> int:
    pacs = cli_env.orthanc()
    if a.requeue:
        count = pacs.post_json("/backup/quarantine/requeue", {})["requeued"]
        print(f"{count} set-aside image(s) queued to be copied again.")
        return EXIT_OK
    rows = pacs.get_json("/backup/quarantine?limit=10000")
    if a.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print("No image is set aside: every image the PACS stored was copied or is waiting to be.")
    else:
        print(f"{len(rows)} image(s) set aside (not copied), and why:")
        for line in table(("PACS id", "reason"), [(r["orthanc_id"], r["reason"]) for r in rows]):
            print(line)
        print("Fix the cause (e.g. the image lacked its UIDs), then run: scripts/quarantine --requeue")
    return EXIT_FAILED if rows else EXIT_OK
