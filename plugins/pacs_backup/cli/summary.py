"""A finished snapshot or restore test in sentences and short tables, instead of its raw summary
(``forgot: False``, JSON mismatch lists); ``--json`` keeps the raw run for machines."""

from __future__ import annotations

from pacs_backup.contracts.documents import RunDoc
from pacs_backup.contracts.runs import DrillSummary, RestoreSummary, RunKind, SnapshotSummary

from .text import duration, pairs, plural, size, table

KIND_TITLES: dict[RunKind, str] = {"snapshot": "Snapshot", "drill": "Restore test", "restore": "Restore"}


def title(run: RunDoc) -> str:
    """``Snapshot of offsite``, ``Restore test of minio``."""
    what = KIND_TITLES.get(run["kind"], run["kind"].capitalize())
    copy = "the bucket" if run["target"] == "minio" else run["target"]
    return f"{what} of {copy}"


def end_line(run: RunDoc) -> str:
    took = f" in {duration(run['duration_s'])}" if run["duration_s"] is not None else ""
    if run["state"] == "ok":
        return f"{title(run)} finished OK{took} (run {run['id']})."
    return f"{title(run)} FAILED{took} (run {run['id']}): {run['error'] or 'no reason was recorded.'}"


def running_detail(run: RunDoc) -> str:
    """What a running run reports so far (``, 12 of 40 files``), if anything: restores count their files."""
    if run["kind"] != "restore":
        return ""
    s = RestoreSummary.from_json(run["summary"])
    return f", {s.done or 0} of {s.total} files" if s.total else ""


def _snapshot_rows(s: SnapshotSummary) -> list[tuple[str, str]]:
    if s.skipped:
        return [("note", s.skipped)]
    rows = []
    if s.snapshot_id:
        rows.append(("snapshot", s.snapshot_id[:8]))
    if s.total_files is not None:
        new, changed = s.files_new or 0, s.files_changed or 0
        rows.append(("files", f"{s.total_files} in the snapshot ({new} new, {changed} changed)"))
    if s.data_added is not None:
        rows.append(("data added", size(s.data_added)))
    rows.append(("images", f"{plural(s.manifest_entries, 'image')} of {plural(s.studies, 'study', 'studies')}"))
    if s.repository_created:
        rows.append(("repository", "created by this snapshot (the first one)"))
    if s.forgot:
        rows.append(("retention", "applied: snapshots past the keep policy were forgotten"))
    if s.kept_for_retention:
        kept = plural(s.kept_for_retention, "snapshot")
        rows.append(("kept", f"{kept} for studies still within the retention period"))
    if s.drive:
        rows.append(("drive", s.drive[:8]))
    return rows


def _drill_rows(s: DrillSummary) -> list[tuple[str, str]]:
    verdict = f"{plural(s.checked, 'image')} read back, {s.identical} identical"
    if s.repaired:
        verdict += f", {s.repaired} repaired from the PACS"
    if s.mismatches:
        verdict += f", {len(s.mismatches)} NOT as recorded"
    rows = [("checked", verdict)]
    if s.snapshot_id:
        rows.append(("snapshot", f"{s.snapshot_id[:8]} ({plural(s.snapshot_entries or 0, 'image')})"))
    if s.check:
        rows.append(("data check", s.check))
    if s.note:
        rows.append(("note", s.note))
    return rows


def _restore_rows(s: RestoreSummary) -> list[tuple[str, str]]:
    rows = [("study", s.study_uid)]
    if s.source is not None:
        rows.append(("from", s.source))
        rows.append(("images", f"{s.verified or 0} of {s.total or 0} restored and verified"))
    if s.failures:
        rows.append(("not verified", plural(len(s.failures), "image")))
    return rows


def detail_lines(run: RunDoc) -> list[str]:
    """The lines under a finished run's end line (none when the run recorded nothing)."""
    if not run["summary"]:
        return []
    if run["kind"] == "snapshot":
        return pairs(_snapshot_rows(SnapshotSummary.from_json(run["summary"])))
    if run["kind"] == "restore":
        return pairs(_restore_rows(RestoreSummary.from_json(run["summary"])))
    drill = DrillSummary.from_json(run["summary"])
    lines = pairs(_drill_rows(drill))
    if drill.mismatches:
        lines.append("  Not as recorded:")
        lines += table(
            ("study", "patient", "copy", "problem"),
            [(m.study_uid, m.patient, m.copy, m.problem) for m in drill.mismatches],
            indent="    ",
        )
        lines += [f"  What to do: {advice}" for advice in dict.fromkeys(m.advice for m in drill.mismatches)]
    return lines


def closing_line(runs: list[RunDoc], kind: RunKind) -> str:
    """One sentence over every run the script waited for."""
    what = KIND_TITLES.get(kind, kind).lower() + "s"
    failed = [r for r in runs if r["state"] != "ok"]
    if not failed:
        return f"All {len(runs)} {what} finished OK." if len(runs) > 1 else ""
    return f"{len(failed)} of {len(runs)} {what} did not finish OK; see above."
