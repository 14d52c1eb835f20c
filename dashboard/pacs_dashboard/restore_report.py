"""The monthly restore-test report: every restore test run in a calendar month of the clinic's time zone,
what each checked and found, the totals, the repairs, and one sentence saying whether every checked image
came back byte for byte - the proof an auditor or an insurer asks for.

Pure functions (no Flask, no I/O): the page hands in the plugin's runs and status.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Literal

from pacs_backup.contracts.documents import LightColour, RunDoc, StatusDoc
from pacs_backup.contracts.runs import DrillSummary

from .light import AMBER, GREEN, RED, copy_name
from .timefmt import images, local, when

_MONTH = re.compile(r"(\d{4})-(\d{2})")
_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


@dataclass(frozen=True)
class Month:
    year: int
    month: int

    @property
    def key(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def title(self) -> str:
        return f"{_NAMES[self.month - 1]} {self.year}"

    def shifted(self, months: int) -> Month:
        index = self.year * 12 + self.month - 1 + months
        return Month(index // 12, index % 12 + 1)

    def bounds(self, tz: tzinfo) -> tuple[float, float]:
        """Epoch seconds of its first moment and of the next month's, in the clinic's time zone."""
        following = self.shifted(1)
        start = datetime(self.year, self.month, 1, tzinfo=tz)
        return start.timestamp(), datetime(following.year, following.month, 1, tzinfo=tz).timestamp()


def this_month(tz: tzinfo, now: float) -> Month:
    today = local(now, tz)
    return Month(today.year, today.month)


def parse_month(text: str | None, tz: tzinfo, now: float) -> Month:
    """``YYYY-MM``; empty: the last complete month. Raises ValueError with the sentence to show."""
    current = this_month(tz, now)
    if not text:
        return current.shifted(-1)
    m = _MONTH.fullmatch(text.strip())
    if m is None or not 1 <= int(m[2]) <= 12 or not 1970 <= int(m[1]) <= 9000:
        raise ValueError(f"'{text[:20]}' is not a month; use the form {current.key}")
    return Month(int(m[1]), int(m[2]))


# passed; problem (failed, or an image not identical); untested (checked no image); unfinished
DrillOutcome = Literal["passed", "problem", "untested", "unfinished"]


@dataclass(frozen=True)
class DrillRow:
    """One restore test as the report prints it."""

    at: str  # date and time in the clinic's time zone
    copy: str
    checked: int
    identical: int
    differing: int
    missing: int
    repaired: int
    result: str  # in words
    light: LightColour
    outcome: DrillOutcome


@dataclass
class Totals:
    tests: int = 0
    passed: int = 0
    problem: int = 0  # failed to run, or an image did not come back identical
    untested: int = 0  # checked no image
    unfinished: int = 0
    checked: int = 0
    identical: int = 0
    differing: int = 0
    missing: int = 0
    repaired: int = 0

    def add(self, row: DrillRow) -> None:
        self.tests += 1
        setattr(self, row.outcome, getattr(self, row.outcome) + 1)
        self.checked, self.identical = self.checked + row.checked, self.identical + row.identical
        self.differing, self.missing = self.differing + row.differing, self.missing + row.missing
        self.repaired += row.repaired


@dataclass
class MonthReport:
    month: Month
    rows: list[DrillRow] = field(default_factory=list)
    totals: Totals = field(default_factory=Totals)
    statement: str = ""
    proven: bool = False  # every test checked images and every checked image came back byte for byte
    repairs: list[str] = field(default_factory=list)


def _run_time(run: RunDoc) -> float:
    return float(run.get("finished_at") or run.get("started_at") or run.get("queued_at") or 0.0)


def _row(run: RunDoc, status: StatusDoc | None, tz: tzinfo) -> DrillRow:
    copies = status.get("offsite") if status else None
    info = copies.get(run["target"]) if copies else None
    who = copy_name(run["target"], info).removeprefix("the ")  # "Offsite copy (offsite)", as the lights say
    drill = DrillSummary.from_json(run.get("summary"))
    checked, identical, repaired = drill.checked, drill.identical, drill.repaired or 0
    missing, differing = drill.missing, drill.differing  # differing: also any image neither identical nor named
    result: str
    light: LightColour
    outcome: DrillOutcome
    if run["state"] == "failed":
        result, light, outcome = f"Failed: {run.get('error') or 'the test could not finish.'}", RED, "problem"
    elif run["state"] != "ok":
        result, light, outcome = "Not finished yet", AMBER, "unfinished"
    elif differing or missing:
        result, light, outcome = f"Problem: {images(differing + missing)} did not come back identical", RED, "problem"
    elif checked == 0:
        note = (drill.note or "").rstrip(".")
        result, light, outcome = "Not tested: no image to check" + (f" ({note})" if note else ""), AMBER, "untested"
    elif repaired:
        result, light, outcome = f"Passed after repairing {images(repaired)} from the PACS", AMBER, "passed"
    else:
        result, light, outcome = "Passed: every image identical", GREEN, "passed"
    return DrillRow(
        at=when(_run_time(run), tz),
        copy=who[0].upper() + who[1:],
        checked=checked,
        identical=identical,
        differing=differing,
        missing=missing,
        repaired=repaired,
        result=result,
        light=light,
        outcome=outcome,
    )


def build_report(month: Month, runs: list[RunDoc], status: StatusDoc | None, tz: tzinfo) -> MonthReport:
    """The report of ``month`` from the plugin's runs (any kinds, any months: only its drills are kept)."""
    start, end = month.bounds(tz)
    drills = sorted((r for r in runs if r["kind"] == "drill" and start <= _run_time(r) < end), key=_run_time)
    report = MonthReport(month, [_row(r, status, tz) for r in drills])
    t = report.totals
    for row in report.rows:
        t.add(row)
        if row.repaired:
            report.repairs.append(f"{row.at}, {row.copy}: {images(row.repaired)} repaired from the PACS.")
    report.proven = bool(t.tests) and t.passed == t.tests and not t.repaired
    report.statement = _statement(month, t, report.proven)
    return report


def _statement(month: Month, t: Totals, proven: bool) -> str:
    if not t.tests:
        return f"No restore test ran in {month.title}."
    if proven:
        return f"Every restore test in {month.title} restored every checked image byte for byte."
    what = [
        f"{t.problem} of {tests(t.tests)} found a problem" if t.problem else "",
        f"{images(t.differing)} came back different" if t.differing else "",
        f"{images(t.missing)} missing" if t.missing else "",
        f"{images(t.repaired)} had to be repaired from the PACS" if t.repaired else "",
        f"{tests(t.untested)} checked no image" if t.untested else "",
        f"{tests(t.unfinished)} not finished yet" if t.unfinished else "",
    ]
    return f"Not every restore test in {month.title} restored every checked image byte for byte: " + (
        "; ".join(w for w in what if w) + "."
    )


def tests(n: int) -> str:
    return "1 test" if n == 1 else f"{n} tests"
