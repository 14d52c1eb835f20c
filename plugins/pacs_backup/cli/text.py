"""What the technician scripts print: human sizes and durations, aligned tables, and a progress line
that keeps ticking while a long step (a restic restore, a prune) has nothing to count yet."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TextIO


def size(n: float) -> str:
    """``57.5 KB``, ``3.2 GB`` (powers of 1000, as disks and plans are sold)."""
    value = float(n)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if abs(value) < 1000 or unit == "TB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


def duration(seconds: float) -> str:
    """``3.7 s``, ``4 min 5 s``, ``2 h 3 min``."""
    if seconds < 10:
        return f"{max(seconds, 0):.1f} s"
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def clock(ts: float) -> str:
    """A time of day on this machine's clock, with its zone (``22:04:05 CET``)."""
    return datetime.fromtimestamp(ts).astimezone().strftime("%H:%M:%S %Z")


def plural(n: int, word: str, many: str = "") -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], indent: str = "  ") -> list[str]:
    """Columns aligned on the widest cell; the last column is not padded."""
    cells = [[str(c) for c in headers], *([str(c) for c in r] for r in rows)]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return [indent + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]


def pairs(rows: Sequence[tuple[str, str]], indent: str = "  ") -> list[str]:
    """``label   value`` lines, the values aligned."""
    width = max((len(k) for k, _ in rows), default=0)
    return [f"{indent}{k.ljust(width)}  {v}" for k, v in rows]


class Progress:
    """``label: 12 of 40 images (30%), 45 s`` while work runs.

    On a terminal the line is rewritten in place; in a log (not a terminal) a full line is written every
    ``every_s`` seconds. A ticker thread keeps the elapsed time moving while nothing is counted yet (restic
    reading a snapshot before the first file comes out), so a technician never stares at a silent screen.
    """

    def __init__(
        self,
        label: str,
        out: TextIO | None = None,
        every_s: float = 15.0,
        unit: str = "images",
        now: Callable[[], float] = time.monotonic,
    ) -> None:
        self.label, self.unit, self._now = label, unit, now
        self.out = out or sys.stdout
        self._tty = self.out.isatty()
        self._every = 1.0 if self._tty else every_s
        self._lock = threading.Lock()
        self._started = now()
        self._shown = self._started
        self._done: int | None = None
        self._total: int | None = None
        self._inline = False  # a terminal line rewritten in place is waiting for its newline
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._tick, name="cli-progress", daemon=True)

    def __enter__(self) -> Progress:
        self._ticker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._ticker.join(2)
        if self._inline:
            print(file=self.out, flush=True)  # end the line rewritten in place

    def line(self) -> str:
        elapsed = duration(self._now() - self._started)
        if self._done is None or not self._total:
            return f"{self.label}: working, {elapsed}"
        pct = 100 * self._done // max(self._total, 1)
        return f"{self.label}: {self._done} of {self._total} {self.unit} ({pct}%), {elapsed}"

    def update(self, done: int, total: int) -> None:
        """The restore's callback: ``done`` of ``total`` items so far."""
        with self._lock:
            self._done, self._total = done, total
            if done == total or self._now() - self._shown >= self._every:
                self._show()

    def _show(self) -> None:
        self._shown = self._now()
        if self._tty:
            self._inline = True
            print("\r" + self.line().ljust(70), end="", file=self.out, flush=True)
        else:
            print(self.line(), file=self.out, flush=True)

    def _tick(self) -> None:
        while not self._stop.wait(min(self._every, 1.0)):
            with self._lock:
                if self._now() - self._shown >= self._every:
                    self._show()
