"""A restore test's figures, read once from its typed summary (``DrillSummary``): the restore-test light and
the chart of restore tests on the health page both say them from here, so the two cannot disagree.

A restore test is of one copy (the local backup copy, an offsite copy, a backup drive...), and its figures
are that copy's: never a sum over copies, always said with the copy's name.

Pure (no Flask, no I/O).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pacs_backup.contracts.documents import RunDoc, TargetDoc
from pacs_backup.contracts.runs import DrillSummary, RunState

from .light import MINIO, copy_name
from .timefmt import images


@dataclass(frozen=True)
class DrillFigures:
    """What one restore test of one copy found."""

    target: str  # the copy's name in the plugin ("minio", "offsite")
    copy: str  # as staff call it: "the local backup copy"
    at: float  # when it finished (epoch seconds; 0 while it runs)
    state: RunState
    checked: int = 0
    identical: int = 0
    repaired: int = 0  # damaged images put back from the PACS (the local backup copy only)
    mismatches: int = 0  # images named as missing or different
    note: str | None = None  # why nothing was checked, in words

    @property
    def failed(self) -> bool:
        """The test could not finish."""
        return self.state == "failed"

    @property
    def differs(self) -> bool:
        """An image did not come back identical (named, or neither counted identical nor repaired)."""
        return bool(self.mismatches) or self.identical + self.repaired < self.checked

    @property
    def ok(self) -> bool:
        """It finished and every image it checked came back identical or was repaired (none checked: ok too)."""
        return self.state == "ok" and not self.differs

    @property
    def words(self) -> str:
        """``5 of 5 images identical``, ``19 of 20 images identical, 1 repaired`` (as the Restore tests page
        says), ``no images checked``, ``failed`` or ``not finished``."""
        if self.failed:
            return "failed"
        if self.state != "ok":
            return "not finished"
        if not self.checked:
            return "no images checked"
        return f"{self.identical} of {images(self.checked)} identical" + (
            f", {self.repaired} repaired" if self.repaired else ""
        )


def figures(run: RunDoc, target: str | None = None, info: TargetDoc | None = None) -> DrillFigures:
    """The figures of a restore test's run; ``target`` (default: the run's) names the copy, with ``info``
    (its entry in the status) saying what kind of copy it is."""
    name = run.get("target") if target is None else target
    drill = DrillSummary.from_json(run.get("summary"))
    return DrillFigures(
        target=name or "",
        copy=copy_name(name or "", info),
        at=float(run.get("finished_at") or 0.0),
        state=run["state"],
        checked=drill.checked,
        identical=drill.identical,
        repaired=drill.repaired or 0,
        mismatches=len(drill.mismatches),
        note=drill.note,
    )


def newest_of_each_copy(tests: Iterable[DrillFigures]) -> list[DrillFigures]:
    """The newest test of each copy."""
    newest: dict[str, DrillFigures] = {}
    for t in tests:
        if t.target not in newest or t.at > newest[t.target].at:
            newest[t.target] = t
    return list(newest.values())


def last_tests(tests: Iterable[DrillFigures]) -> str:
    """``Last tests: 5 of 5 images identical in the local backup copy; 3 of 3 images identical in the
    offsite copy.`` (``Last test:`` of one copy): the local backup copy first, then the others by name; ''
    when there is none."""
    ordered = sorted(tests, key=lambda t: (t.target != MINIO, t.copy))
    if not ordered:
        return ""
    said = "; ".join(f"{t.words} in {t.copy}" for t in ordered)
    return f"Last test: {said}." if len(ordered) == 1 else f"Last tests: {said}."
