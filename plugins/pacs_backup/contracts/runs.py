"""What each kind of run did, typed: a snapshot, a restore test (``drill``) or a restore of a study.

A run's summary is written once, by the job that ran, as one of the classes below, and read by
attribute. It is stored in the run history and served (``GET /backup/runs``, the ``last_snapshot`` and
``last_drill`` of the status) as the JSON object its ``to_json`` makes: the same keys as ever, which the
dashboard and the scripts read over HTTP. ``from_json`` turns such an object back into the class; it
takes whatever it is given (a run of an older or newer release, a half-written one, nothing) and keeps
what it knows, so a reader never indexes a dict by string keys and no sentence is ever read back for data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

RunKind = Literal["snapshot", "drill", "restore"]
JobKind = Literal["snapshot", "drill"]  # what the offsite scheduler runs in turn (restores have their own line)
RunState = Literal["queued", "running", "ok", "failed"]
EndState = Literal["ok", "failed"]  # a run that finished

_KINDS: dict[str, RunKind] = {"snapshot": "snapshot", "drill": "drill", "restore": "restore"}
_JOBS: dict[str, JobKind] = {"snapshot": "snapshot", "drill": "drill"}
_STATES: dict[str, RunState] = {"queued": "queued", "running": "running", "ok": "ok", "failed": "failed"}


def run_kind(text: str) -> RunKind:
    """``text`` as a run kind. Raises ValueError naming the kinds there are."""
    try:
        return _KINDS[text]
    except KeyError:
        raise ValueError(f"{text[:40]!r} is not a kind of run; they are snapshot, drill and restore.") from None


def job_kind(text: str) -> JobKind:
    """``text`` as a kind of scheduled job. Raises ValueError naming the two there are."""
    try:
        return _JOBS[text]
    except KeyError:
        raise ValueError(f"{text[:40]!r} is not a kind of job; use snapshot or drill.") from None


def run_state(text: str) -> RunState:
    """``text`` as a run state. Raises ValueError naming the states there are."""
    try:
        return _STATES[text]
    except KeyError:
        raise ValueError(f"{text[:40]!r} is not a run state; they are queued, running, ok and failed.") from None


# --- reading JSON: what is there and of the right type, else None ----------------------------------------
def _object(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _int(d: Mapping[str, Any], key: str) -> int | None:
    value = d.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return int(value)


def _float(d: Mapping[str, Any], key: str) -> float | None:
    value = d.get(key)
    return None if isinstance(value, bool) or not isinstance(value, int | float) else float(value)


def _str(d: Mapping[str, Any], key: str) -> str | None:
    value = d.get(key)
    return value if isinstance(value, str) else None


def _bool(d: Mapping[str, Any], key: str) -> bool | None:
    value = d.get(key)
    return value if isinstance(value, bool) else None


def _list(d: Mapping[str, Any], key: str) -> list[Any] | None:
    value = d.get(key)
    return value if isinstance(value, list) else None


def _text(d: Mapping[str, Any], key: str) -> str:
    value = d.get(key)
    return "" if value is None else str(value)


def _present(**values: object) -> dict[str, Any]:
    """The keys whose value is known (not None): optional keys are left out, as they always were."""
    return {k: v for k, v in values.items() if v is not None}


# --- snapshots -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SnapshotSummary:
    """What a snapshot to an offsite copy did. ``snapshot_id`` is None when none was taken (``skipped``
    says why); the file counts are restic's, and absent then."""

    kind: ClassVar[RunKind] = "snapshot"

    snapshot_id: str | None
    manifest_entries: int = 0  # images the manifest in the snapshot lists
    studies: int = 0
    repository_created: bool = False  # this snapshot made the repository (the first one)
    forgot: bool = False  # retention was applied afterwards
    kept_for_retention: int | None = None  # snapshots the keep policy dropped but the retention rule kept
    files_new: int | None = None
    files_changed: int | None = None
    data_added: int | None = None  # bytes; the forecast sums them (RunLog.additions reads the stored JSON)
    total_files: int | None = None
    skipped: str | None = None  # a sentence for a person: why no snapshot was taken, though nothing failed
    drive: str | None = None  # the repository id of the backup drive written to
    manifest_s: float | None = None  # seconds writing the manifest (and its copy in the bucket)
    restic_s: float | None = None  # seconds restic's backup took, its start (key derivation, lock) included

    def to_json(self) -> dict[str, Any]:
        return {
            "snapshot_id": self.snapshot_id,
            **_present(
                files_new=self.files_new,
                files_changed=self.files_changed,
                data_added=self.data_added,
                total_files=self.total_files,
                skipped=self.skipped,
            ),
            "manifest_entries": self.manifest_entries,
            "studies": self.studies,
            "repository_created": self.repository_created,
            "forgot": self.forgot,
            **_present(drive=self.drive, kept_for_retention=self.kept_for_retention),
            **_present(manifest_s=self.manifest_s, restic_s=self.restic_s),
        }

    @classmethod
    def from_json(cls, value: object) -> SnapshotSummary:
        d = _object(value)
        return cls(
            snapshot_id=_str(d, "snapshot_id"),
            manifest_entries=_int(d, "manifest_entries") or 0,
            studies=_int(d, "studies") or 0,
            repository_created=bool(_bool(d, "repository_created")),
            forgot=bool(_bool(d, "forgot")),
            kept_for_retention=_int(d, "kept_for_retention"),
            files_new=_int(d, "files_new"),
            files_changed=_int(d, "files_changed"),
            data_added=_int(d, "data_added"),
            total_files=_int(d, "total_files"),
            skipped=_str(d, "skipped"),
            drive=_str(d, "drive"),
            manifest_s=_float(d, "manifest_s"),
            restic_s=_float(d, "restic_s"),
        )


# --- restore tests ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Mismatch:
    """One image a copy did not give back as it recorded it: which, whose, where, what, and what to do."""

    key: str
    study_uid: str
    patient: str  # "Garcia, Luna (id PID-LUNA)"
    copy: str  # "bucket pacs-backup", "snapshot 1a2b3c4d of offsite"
    problem: str  # in words: "missing from the bucket"
    advice: str  # a sentence for a person
    missing: bool = False  # the copy does not hold the image at all (else its bytes differ)

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "study_uid": self.study_uid,
            "patient": self.patient,
            "copy": self.copy,
            "problem": self.problem,
            "advice": self.advice,
            "missing": self.missing,
        }

    @classmethod
    def from_json(cls, value: object) -> Mismatch:
        d = _object(value)
        problem = _text(d, "problem")
        missing = _bool(d, "missing")
        if missing is None:  # recorded before ``missing`` was written: the words were fixed then
            missing = problem.startswith("missing from")
        return cls(
            _text(d, "key"),
            _text(d, "study_uid"),
            _text(d, "patient"),
            _text(d, "copy"),
            problem,
            _text(d, "advice"),
            missing,
        )


@dataclass(frozen=True)
class DrillSummary:
    """What a restore test did: images read back from a copy and compared with what the copy recorded.

    ``checked`` 0 proves nothing (``note`` says why). ``repaired`` is counted for the bucket only (its
    images can be put back from the PACS); the snapshot fields and the data check are an offsite copy's.
    """

    kind: ClassVar[RunKind] = "drill"

    checked: int = 0
    identical: int = 0
    mismatches: tuple[Mismatch, ...] = ()
    repaired: int | None = None
    snapshot_id: str | None = None
    snapshot_entries: int | None = None  # images the tested snapshot's manifest lists
    check: str | None = None  # the repository data check, in words (never read back)
    check_slice: int | None = None  # the slice that check read (1..check cycle): the next drill reads the next
    note: str | None = None  # a sentence for a person, e.g. why nothing was checked

    @property
    def ok(self) -> bool:
        """Every image read back was as recorded (a test that checked nothing is not a failure)."""
        return not self.mismatches

    @property
    def missing(self) -> int:
        return sum(m.missing for m in self.mismatches)

    @property
    def differing(self) -> int:
        """Images that came back different: those named, and any neither identical, repaired nor named
        (never hidden)."""
        named = len(self.mismatches) - self.missing
        return named + max(0, self.checked - self.identical - (self.repaired or 0) - len(self.mismatches))

    def to_json(self) -> dict[str, Any]:
        return {
            **_present(snapshot_id=self.snapshot_id),
            "checked": self.checked,
            "identical": self.identical,
            **_present(repaired=self.repaired),
            "mismatches": [m.to_json() for m in self.mismatches],
            **_present(
                snapshot_entries=self.snapshot_entries,
                check=self.check,
                check_slice=self.check_slice,
                note=self.note,
            ),
        }

    @classmethod
    def from_json(cls, value: object) -> DrillSummary:
        d = _object(value)
        return cls(
            checked=_int(d, "checked") or 0,
            identical=_int(d, "identical") or 0,
            mismatches=tuple(Mismatch.from_json(m) for m in _list(d, "mismatches") or []),
            repaired=_int(d, "repaired"),
            snapshot_id=_str(d, "snapshot_id"),
            snapshot_entries=_int(d, "snapshot_entries"),
            check=_str(d, "check"),
            check_slice=_int(d, "check_slice"),
            note=_str(d, "note"),
        )


# --- restores ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RestoreFailure:
    """An image that was not restored and verified, and why."""

    item: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"item": self.item, "reason": self.reason}

    @classmethod
    def from_json(cls, value: object) -> RestoreFailure:
        d = _object(value)
        return cls(_text(d, "item"), _text(d, "reason"))


@dataclass(frozen=True)
class SnapshotRef:
    """A snapshot a restore read from: its id and when it was taken (ISO 8601, UTC)."""

    id: str
    time: str

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "time": self.time}

    @classmethod
    def from_json(cls, value: object) -> SnapshotRef:
        d = _object(value)
        return cls(_text(d, "id"), _text(d, "time"))


@dataclass(frozen=True)
class TakenSnapshot:
    """A snapshot this appliance has just taken, as the job tells those who remember snapshots."""

    repository: str
    snapshot_id: str
    root: str  # the storage folder as the snapshot holds it
    manifest_file: Path  # the manifest the job wrote into it (still on disk, unchanged)


@dataclass(frozen=True)
class RestoreSummary:
    """A restore of a study: what was asked, how far it got and, once it ended with a report, its result.

    While it waits or runs only the first four fields are set (``total`` None: not known yet). ``source``
    is set once the restore gave its report; ``snapshots`` when it read snapshots of an offsite copy.
    """

    kind: ClassVar[RunKind] = "restore"

    study_uid: str = ""
    snapshot: str | None = None  # the snapshot asked for (None: the newest holding the study)
    done: int | None = None
    total: int | None = None
    source: str | None = None  # the copy it came from, in words
    verified: int | None = None
    ok: bool | None = None
    failures: tuple[RestoreFailure, ...] = ()
    studies: tuple[str, ...] | None = None  # None: every study
    snapshots: tuple[SnapshotRef, ...] | None = None
    bytes: int | None = None  # of the instances restored and verified (None: not recorded, an older release)

    @property
    def snapshot_id(self) -> str | None:
        """The one snapshot read from, if it was one."""
        return self.snapshots[0].id if self.snapshots and len(self.snapshots) == 1 else None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"study_uid": self.study_uid, "snapshot": self.snapshot}
        if self.source is not None:
            out |= {
                "source": self.source,
                "verified": self.verified,
                "ok": self.ok,
                "failures": [f.to_json() for f in self.failures],
                "studies": None if self.studies is None else list(self.studies),
            }
        if self.snapshots is not None:
            out |= {"snapshot_id": self.snapshot_id, "snapshots": [s.to_json() for s in self.snapshots]}
        return out | _present(done=self.done, total=self.total, bytes=self.bytes)

    @classmethod
    def from_json(cls, value: object) -> RestoreSummary:
        d = _object(value)
        studies, snapshots = _list(d, "studies"), _list(d, "snapshots")
        return cls(
            study_uid=_text(d, "study_uid"),
            snapshot=_str(d, "snapshot"),
            done=_int(d, "done"),
            total=_int(d, "total"),
            source=_str(d, "source"),
            verified=_int(d, "verified"),
            ok=_bool(d, "ok"),
            failures=tuple(RestoreFailure.from_json(f) for f in _list(d, "failures") or []),
            studies=None if studies is None else tuple(str(s) for s in studies),
            snapshots=None if snapshots is None else tuple(SnapshotRef.from_json(s) for s in snapshots),
            bytes=_int(d, "bytes"),
        )


RunSummary = SnapshotSummary | DrillSummary | RestoreSummary
_CLASSES: dict[RunKind, type[SnapshotSummary] | type[DrillSummary] | type[RestoreSummary]] = {
    "snapshot": SnapshotSummary,
    "drill": DrillSummary,
    "restore": RestoreSummary,
}


def parse_summary(kind: RunKind, value: object) -> RunSummary:
    """The summary of a run of ``kind`` from its JSON (served, or stored), whatever that holds."""
    return _CLASSES[kind].from_json(value)


def summary_from_json(kind: RunKind, value: object) -> RunSummary | None:
    """As :func:`parse_summary`, but None when the run recorded none (``{}``: it failed before it could
    say anything, or it has not started)."""
    return parse_summary(kind, value) if _object(value) else None


def summary_to_json(summary: RunSummary | None) -> dict[str, Any]:
    return {} if summary is None else summary.to_json()
