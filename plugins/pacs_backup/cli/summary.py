"""A finished snapshot or restore test in sentences and short tables, instead of its raw summary
(``forgot: False``, JSON mismatch lists); ``--json`` keeps the raw run for machines."""

from __future__ import annotations

from typing import Any

from pacs_backup.contracts.documents import RunDoc

from .text import duration, pairs, plural, size, table

KIND_TITLES = {"snapshot": "Snapshot", "drill": "Restore test", "restore": "Restore"}


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


def running_detail(summary: dict[str, Any]) -> str:
    """What a running run reports so far (``, 12 of 40 files``), if anything."""
    done, total = summary.get("done"), summary.get("total")
    if isinstance(done, int) and isinstance(total, int) and total:
        return f", {done} of {total} files"
    parts = []
    if isinstance(summary.get("files_done"), int):
        parts.append(plural(summary["files_done"], "file"))
    if isinstance(summary.get("bytes_done"), int):
        parts.append(size(summary["bytes_done"]))
    return ", " + ", ".join(parts) if parts else ""


def _snapshot_rows(s: dict[str, Any]) -> list[tuple[str, str]]:
    if s.get("skipped"):
        return [("note", str(s["skipped"]))]
    rows = []
    if s.get("snapshot_id"):
        rows.append(("snapshot", str(s["snapshot_id"])[:8]))
    if "total_files" in s:
        new, changed = s.get("files_new", 0), s.get("files_changed", 0)
        rows.append(("files", f"{s['total_files']} in the snapshot ({new} new, {changed} changed)"))
    if "data_added" in s:
        rows.append(("data added", size(s["data_added"])))
    if "manifest_entries" in s:
        rows.append(
            ("images", f"{plural(s['manifest_entries'], 'image')} of {plural(s.get('studies', 0), 'study', 'studies')}")
        )
    if s.get("repository_created"):
        rows.append(("repository", "created by this snapshot (the first one)"))
    if s.get("forgot"):
        rows.append(("retention", "applied: snapshots past the keep policy were forgotten"))
    if s.get("drive"):
        rows.append(("drive", str(s["drive"])[:8]))
    return rows


def _drill_rows(s: dict[str, Any]) -> list[tuple[str, str]]:
    checked, identical = int(s.get("checked", 0)), int(s.get("identical", 0))
    verdict = f"{plural(checked, 'image')} read back, {identical} identical"
    if s.get("repaired"):
        verdict += f", {s['repaired']} repaired from the PACS"
    if s.get("mismatches"):
        verdict += f", {len(s['mismatches'])} NOT as recorded"
    rows = [("checked", verdict)]
    if s.get("snapshot_id"):
        rows.append(("snapshot", f"{str(s['snapshot_id'])[:8]} ({plural(s.get('snapshot_entries', 0), 'image')})"))
    if s.get("check"):
        rows.append(("data check", str(s["check"])))
    if s.get("note"):
        rows.append(("note", str(s["note"])))
    return rows


def detail_lines(run: RunDoc) -> list[str]:
    """The lines under a finished run's end line."""
    s = run["summary"] or {}
    if run["kind"] == "snapshot":
        lines = pairs(_snapshot_rows(s))
    elif run["kind"] == "drill":
        lines = pairs(_drill_rows(s))
        mismatches = s.get("mismatches") or []
        if mismatches:
            lines.append("  Not as recorded:")
            lines += table(
                ("study", "patient", "copy", "problem"),
                [(m["study_uid"], m["patient"], m["copy"], m["problem"]) for m in mismatches],
                indent="    ",
            )
            lines += [f"  What to do: {advice}" for advice in dict.fromkeys(m["advice"] for m in mismatches)]
    else:
        lines = pairs([(k.replace("_", " "), str(v)) for k, v in s.items() if not isinstance(v, list | dict)])
    return lines


def closing_line(runs: list[RunDoc], kind: str) -> str:
    """One sentence over every run the script waited for."""
    what = KIND_TITLES.get(kind, kind).lower() + "s"
    failed = [r for r in runs if r["state"] != "ok"]
    if not failed:
        return f"All {len(runs)} {what} finished OK." if len(runs) > 1 else ""
    return f"{len(failed)} of {len(runs)} {what} did not finish OK; see above."
