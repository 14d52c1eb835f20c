"""dev/supervise.py, the watch `make run` puts on Orthanc, with a stand-in program (fast, no Orthanc)."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest

import devstack
from tests.support.common import ROOT, wait_until

pytestmark = pytest.mark.timeout(120)

# A stand-in that records each start and how it ended; what it does on SIGTERM is chosen per test.
PROGRAM = textwrap.dedent("""
    import os, signal, subprocess, sys, time
    work = sys.argv[1]
    with open(os.path.join(work, "starts"), "a") as f:
        f.write(f"{os.getpid()}\\n")
    mode = sys.argv[2]
    if mode == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        def term(*_):
            open(os.path.join(work, f"term-{os.getpid()}"), "w").close()
            sys.exit(0)
        signal.signal(signal.SIGTERM, term)
    open(os.path.join(work, f"ready-{os.getpid()}"), "w").close()  # its SIGTERM handler is in place
    if mode == "exit0":
        time.sleep(0.3)
        sys.exit(0)
    if mode == "leftover":
        helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        with open(os.path.join(work, "helper"), "w") as f:
            f.write(str(helper.pid))
    while True:
        time.sleep(0.1)
""")


class Supervised:
    def __init__(self, work: Path, mode: str = "normal", *extra: str) -> None:
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        (work / "program.py").write_text(PROGRAM)
        self.child_pid_file, self.log = work / "child.pid", work / "supervise.log"
        argv = [
            sys.executable,
            str(ROOT / "dev" / "supervise.py"),
            "--name",
            "standin",
            "--log",
            str(self.log),
            "--child-pid-file",
            str(self.child_pid_file),
            "--min-backoff",
            "0.2",
            "--max-backoff",
            "1.6",
            *extra,
            "--",
            sys.executable,
            str(work / "program.py"),
            str(work),
            mode,
        ]
        self.proc = devstack.spawn("supervise", argv, work / "out.log")

    def starts(self) -> list[int]:
        path = self.work / "starts"
        return [int(x) for x in path.read_text().split()] if path.exists() else []

    def child(self) -> int:
        return int(
            wait_until(
                lambda: self.child_pid_file.exists() and self.child_pid_file.read_text().strip(),
                10,
                "the child's pid file",
            )
        )

    def wait_starts(self, n: int) -> list[int]:
        return wait_until(lambda: len(s := self.starts()) >= n and s, 20, f"{n} starts")  # type: ignore[return-value]

    def lines(self, word: str) -> list[str]:
        return [ln for ln in self.log.read_text().splitlines() if word in ln] if self.log.exists() else []


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:  # a zombie (dead, not yet reaped) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.fixture
def supervised(tmp_path):
    made: list[Supervised] = []

    def make(mode: str = "normal", *extra: str) -> Supervised:
        s = Supervised(tmp_path / f"s{len(made)}", mode, *extra)
        made.append(s)
        return s

    yield make
    for s in made:
        s.proc.kill()
        for pid in s.starts():
            if not gone(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_crashed_program_is_restarted_with_growing_delays(supervised):
    s = supervised()
    first = s.wait_starts(1)[0]
    assert s.child() == first
    os.kill(first, signal.SIGSEGV)  # what Orthanc's stack overflow looks like from outside
    second = s.wait_starts(2)[1]
    assert second != first and s.child() == second and gone(first)
    os.kill(second, signal.SIGKILL)
    s.wait_starts(3)
    restarts = s.lines("exited unexpectedly")
    assert "signal SIGSEGV" in restarts[0] and "restart 1 in 0.2 s" in restarts[0]
    assert "signal SIGKILL" in restarts[1] and "restart 2 in 0.4 s" in restarts[1]  # quick failures back off
    assert s.proc.alive()


def test_stop_is_passed_on_and_nothing_restarts(supervised):
    s = supervised()
    child = s.wait_starts(1)[0]
    s.proc.stop(30)  # what `make down` does with .devstack/pids/orthanc.pid
    assert not s.proc.alive() and s.proc.popen.returncode == 0
    assert (s.work / f"term-{child}").exists(), "the program did not get SIGTERM"
    assert gone(child) and len(s.starts()) == 1 and not s.lines("exited unexpectedly")
    assert not s.child_pid_file.exists()
    assert s.lines("stopped")


def test_an_exit_nobody_asked_for_is_restarted_even_with_code_0(supervised):
    s = supervised("exit0")
    s.wait_starts(3)
    assert "exit code 0" in s.lines("exited unexpectedly")[0]


def test_a_program_that_ignores_sigterm_is_killed_after_the_stop_timeout(supervised):
    s = supervised("stubborn", "--stop-timeout", "1")
    child = s.wait_starts(1)[0]
    wait_until(lambda: (s.work / f"ready-{child}").exists(), 10, "the program's SIGTERM handler")
    t0 = time.monotonic()
    s.proc.stop(30)
    assert time.monotonic() - t0 < 10 and gone(child)
    assert s.lines("did not stop within 1 s")


def test_a_killed_supervisor_takes_the_program_down(supervised):
    # Never an unsupervised Orthanc left running: the next `make run` would start a second one on its index.
    s = supervised()
    child = s.wait_starts(1)[0]
    s.proc.kill()
    wait_until(lambda: gone(child), 10, "the program to stop after its supervisor was killed")
    assert (s.work / f"term-{child}").exists()


def test_what_a_crashed_program_left_behind_is_cleaned_up_before_the_restart(supervised):
    s = supervised("leftover")
    child = s.wait_starts(1)[0]
    helper = int(wait_until(lambda: (s.work / "helper").exists() and (s.work / "helper").read_text(), 10, "helper"))
    os.kill(child, signal.SIGKILL)
    s.wait_starts(2)
    wait_until(lambda: gone(helper), 10, "the crashed program's helper to be gone")
