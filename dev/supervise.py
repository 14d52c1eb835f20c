#!/usr/bin/env python3
"""Keep one program running: restart it with backoff when it exits without being asked to.

`make run` starts Orthanc through this supervisor because Orthanc 1.10 / 1.12 crash on some input
no plugin can intercept (deeply nested JSON sent to its own REST routes, DICOM uploads nested ~50
deep; see docs/security.md, "Known Orthanc crashes"). The appliance must come back by itself; the
plugin's durable outbox and its reconciliation at start make sure nothing is lost meanwhile.

    supervise.py --name orthanc --log LOG --child-pid-file FILE -- Orthanc /path/orthanc.json

- The supervisor's own pid is what `.devstack/pids/orthanc.pid` holds: stopping the supervisor
  (SIGTERM or SIGINT) stops the program cleanly (SIGTERM, then SIGKILL after --stop-timeout) and
  ends the supervisor. The program's current pid is in --child-pid-file while it runs.
- Any other exit (a crash, a signal from elsewhere, even exit code 0) is restarted after a delay that
  doubles from --min-backoff up to --max-backoff while the program keeps failing quickly, and starts
  again from --min-backoff once it ran --stable-after seconds. The next program starts only after the
  previous one is gone: two Orthancs on one index crash.
- Leftovers of a crashed program (its process group, e.g. a restic it had started) are killed before
  the restart, so they cannot hold the index or a repository busy.
- If the supervisor itself is killed, the kernel sends the program SIGTERM (PR_SET_PDEATHSIG).
- One line per start, exit and restart goes to --log (timestamps, no secrets: only the program's name,
  pid, exit status and delays) and to standard output, which `make run` sends to the program's log.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

PR_SET_PDEATHSIG = 1


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


class Supervisor:
    def __init__(self, a: argparse.Namespace) -> None:
        self.a = a
        self.child: subprocess.Popen[bytes] | None = None
        self.stopping: str | bool = False  # the name of the signal that asked to stop
        self.restarts = 0
        self.libc = ctypes.CDLL(None, use_errno=True)  # loaded here: the forked child should only call it

    # --- logging ------------------------------------------------------------------------------
    def log(self, message: str) -> None:
        line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} supervise[{os.getpid()}] {self.a.name}: {message}"
        print(line, flush=True)
        if self.a.log:
            self.a.log.parent.mkdir(parents=True, exist_ok=True)
            with open(self.a.log, "a") as f:
                f.write(line + "\n")

    # --- signals ------------------------------------------------------------------------------
    def on_stop(self, signum: int, _frame: object) -> None:
        # Only flags here: the main loop logs and signals the program (a handler that prints could
        # interrupt a print of the main loop).
        self.stopping = self.stopping or signal_name(signum)

    # --- the program --------------------------------------------------------------------------
    def start(self) -> subprocess.Popen[bytes]:
        parent = os.getpid()

        def in_child() -> None:
            # The program dies with the supervisor instead of running on unsupervised, and gets its own
            # process group so that what it leaves behind after a crash can be cleaned up as a whole.
            self.libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
            if os.getppid() != parent:  # the supervisor died before prctl took effect
                os._exit(1)

        child = subprocess.Popen(self.a.argv, stdin=subprocess.DEVNULL, preexec_fn=in_child, process_group=0)
        if self.a.child_pid_file:
            tmp = self.a.child_pid_file.with_suffix(".tmp")
            tmp.write_text(str(child.pid))
            tmp.replace(self.a.child_pid_file)
        self.log(f"started pid {child.pid}" + (f" (restart {self.restarts})" if self.restarts else ""))
        return child

    def wait(self, child: subprocess.Popen[bytes]) -> int:
        """Wait for the program to exit; once asked to stop, pass SIGTERM on, then SIGKILL after the timeout."""
        deadline: float | None = None
        while True:
            try:
                return child.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                pass
            if self.stopping and deadline is None:
                self.log(f"{self.stopping} received: stopping pid {child.pid}")
                child.send_signal(signal.SIGTERM)
                deadline = time.monotonic() + self.a.stop_timeout
            elif deadline is not None and time.monotonic() > deadline:
                self.log(f"pid {child.pid} did not stop within {self.a.stop_timeout:.0f} s: killing it")
                child.kill()
                deadline = float("inf")

    def clean_up(self, child: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):  # nothing was left behind
            os.killpg(child.pid, signal.SIGKILL)
        if self.a.child_pid_file:
            self.a.child_pid_file.unlink(missing_ok=True)

    def sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < end:
            time.sleep(min(0.1, max(0.0, end - time.monotonic())))

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self.on_stop)
        delay = self.a.min_backoff
        while not self.stopping:
            started = time.monotonic()
            self.child = self.start()
            code = self.wait(self.child)
            ran = time.monotonic() - started
            self.clean_up(self.child)
            how = f"signal {signal_name(-code)}" if code < 0 else f"exit code {code}"
            if self.stopping:
                self.log(f"pid {self.child.pid} stopped ({how})")
                break
            if ran >= self.a.stable_after:
                delay = self.a.min_backoff
            self.restarts += 1
            self.log(
                f"pid {self.child.pid} exited unexpectedly ({how}) after {ran:.1f} s; "
                f"restart {self.restarts} in {delay:.1f} s"
            )
            self.sleep(delay)
            delay = min(self.a.max_backoff, delay * 2)
        return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--name", required=True, help="the program's name in log lines")
    p.add_argument("--log", type=Path, help="file that receives one line per start, exit and restart")
    p.add_argument("--child-pid-file", type=Path, help="file holding the running program's pid")
    p.add_argument("--min-backoff", type=float, default=1.0, help="first restart delay in seconds (1)")
    p.add_argument("--max-backoff", type=float, default=30.0, help="longest restart delay in seconds (30)")
    p.add_argument(
        "--stable-after", type=float, default=60.0, help="a run this long resets the delay to --min-backoff (60 s)"
    )
    p.add_argument(
        "--stop-timeout", type=float, default=45.0, help="on stop, SIGKILL the program after this many seconds (45)"
    )
    p.add_argument("argv", nargs="+", help="the program and its arguments (after --)")
    a = p.parse_args(argv)
    if a.min_backoff <= 0 or a.max_backoff < a.min_backoff:
        p.error("--min-backoff must be > 0 and <= --max-backoff")
    return Supervisor(a).run()


if __name__ == "__main__":
    sys.exit(main())
