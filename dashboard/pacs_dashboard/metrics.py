"""The dashboard's Prometheus metrics (``GET /metrics``): Prometheus' text format 0.0.4, each family once with
its HELP and TYPE lines, label values escaped. Who may read them (a monitor account, HTTP basic
authentication), what each family means, a scrape configuration and alert rules: docs/daily-use.md,
"Monitoring".

The families are per copy (label ``copy``: ``minio`` is the local backup copy, then each offsite target by
name, ``cloud-pacs`` for the cloud PACS): how many images wait (queue depth), how long copying takes (lag),
when each copy last succeeded, what its last restore test found, how long restores from it took, and how
many bytes it holds. Times are Unix timestamps in seconds (``..._timestamp_seconds``), so an alert compares
them with ``time()``.

Pure (no Flask, no I/O): built from the status, the lights and the run list the pages already read.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pacs_backup.contracts.documents import Forecast, LagDoc, RunDoc, StatusDoc, TargetDoc

from .drill_figures import figures
from .light import MINIO, Light

CLOUD_PACS = "cloud-pacs"  # the cloud PACS as a copy (its name in the plugin's status and lights)
RESTORE_WINDOW_S = 30 * 86400  # the longest restore is over this many seconds
STATE_CODE = {"green": 0, "amber": 1, "red": 2}

# name: (type, help). The order is the order of the families in the answer.
FAMILIES: dict[str, tuple[str, str]] = {
    "pacs_backup_pacs_up": ("gauge", "1 while the PACS (Orthanc with the backup plugin) answers, else 0."),
    "pacs_backup_part_state": ("gauge", "Each light of the health page: 0 green, 1 amber, 2 red."),
    "pacs_backup_part_last_known": (
        "gauge",
        "1 while a light shows its last known state (the PACS does not answer), else 0.",
    ),
    "pacs_backup_info": ("gauge", "The backup plugin's version (label version); always 1."),
    "pacs_backup_enabled": ("gauge", "1 while backup runs; 0 when a setting is wrong or BACKUP_ENABLED=false."),
    # --- copying new images (the local backup copy, the cloud PACS) ---
    "pacs_backup_queue_depth": ("gauge", "Images waiting to be copied to the copy."),
    "pacs_backup_queue_oldest_age_seconds": (
        "gauge",
        "Seconds the oldest image waiting for the copy has waited (0 when none waits).",
    ),
    "pacs_backup_copy_lag_seconds": (
        "gauge",
        "Seconds from arrival in the PACS to a verified copy, over the recent copies (label percentile: 50, 99).",
    ),
    "pacs_backup_queue_failing": ("gauge", "Images waiting for the copy whose copying failed at least once."),
    # --- every copy ---
    "pacs_backup_last_success_timestamp_seconds": (
        "gauge",
        "When the copy last succeeded: the last image copied (minio), the last good snapshot (offsite copies).",
    ),
    "pacs_backup_copy_bytes": (
        "gauge",
        "Bytes the copy holds: images copied and verified (minio), data its snapshots added (offsite copies).",
    ),
    "pacs_backup_copy_growth_bytes_per_month": ("gauge", "How fast the copy grows, over the last 30 days."),
    "pacs_backup_copy_quota_bytes": ("gauge", "The space set aside for the copy (only copies with a quota)."),
    "pacs_backup_copy_same_box": (
        "gauge",
        "1 when the copy is on this box (protects against mistakes, not against fire or theft), else 0.",
    ),
    # --- offsite snapshots ---
    "pacs_backup_snapshot_last_ok": ("gauge", "1 when the copy's newest finished snapshot succeeded, else 0."),
    "pacs_backup_snapshot_last_duration_seconds": ("gauge", "How long the copy's newest finished snapshot took."),
    # --- restore tests (drills) ---
    "pacs_backup_drill_last_ok": (
        "gauge",
        "1 when the copy's newest finished restore test gave back every image it checked identical, else 0.",
    ),
    "pacs_backup_drill_last_timestamp_seconds": ("gauge", "When the copy's newest restore test finished."),
    "pacs_backup_drill_last_success_timestamp_seconds": (
        "gauge",
        "When a restore test of the copy last succeeded.",
    ),
    "pacs_backup_drill_images_checked": ("gauge", "Images the copy's newest restore test read back."),
    "pacs_backup_drill_images_identical": (
        "gauge",
        "Images the copy's newest restore test found identical to the originals.",
    ),
    "pacs_backup_drill_images_mismatched": (
        "gauge",
        "Images the copy's newest restore test found missing or different.",
    ),
    # --- restores of studies ---
    "pacs_backup_restore_last_duration_seconds": ("gauge", "How long the newest finished restore from the copy took."),
    "pacs_backup_restore_last_ok": ("gauge", "1 when the newest finished restore from the copy succeeded, else 0."),
    "pacs_backup_restore_last_timestamp_seconds": ("gauge", "When the newest restore from the copy finished."),
    "pacs_backup_restore_longest_duration_seconds": (
        "gauge",
        "The longest restore from the copy that finished in the last 30 days.",
    ),
    # --- the PACS's disk ---
    "pacs_backup_disk_free_bytes": ("gauge", "Free bytes on the disk holding the PACS's images."),
    "pacs_backup_disk_total_bytes": ("gauge", "Size in bytes of the disk holding the PACS's images."),
    # --- the first names, kept for existing dashboards and alerts (the local backup copy's figures) ---
    "pacs_backup_outbox_depth": ("gauge", "Images waiting to be copied to the bucket (queue depth of minio)."),
    "pacs_backup_replicated_total": ("gauge", "Images copied to the bucket and verified."),
    "pacs_backup_replicated_bytes": ("gauge", "Bytes of the images copied to the bucket and verified."),
    "pacs_backup_failing": ("gauge", "Images waiting for the bucket whose copying failed at least once."),
    "pacs_backup_quarantined": ("gauge", "Images set aside after failing again and again (the quarantine)."),
    "pacs_backup_oldest_pending_age_seconds": ("gauge", "Seconds the oldest image waiting for the bucket has waited."),
    "pacs_backup_last_good_snapshot_age_seconds": ("gauge", "Seconds since the target's last good snapshot."),
    "pacs_backup_last_drill_ok": ("gauge", "1 when the target's last restore test succeeded, else 0."),
}


def escape_label(value: str) -> str:
    """A label value as the text format writes it between double quotes."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def number(value: float | int | bool) -> str:
    """A sample value: integers as they are, floats as Python writes them (Go's ParseFloat reads both)."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


@dataclass
class Exposition:
    """Samples grouped by family, written with each family's HELP and TYPE lines once."""

    samples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, name: str, value: object, **labels: str) -> None:
        """One sample; a value that is not a number (None, a word from a newer plugin) is left out."""
        if name not in FAMILIES:
            raise KeyError(f"{name} is not a declared metric family")
        if not isinstance(value, bool | int | float):
            return
        inner = ",".join(f'{k}="{escape_label(v)}"' for k, v in labels.items())
        sample = f"{name}{{{inner}}}" if inner else name
        self.samples.setdefault(name, []).append(f"{sample} {number(value)}")

    def text(self) -> str:
        lines: list[str] = []
        for name, (kind, help_text) in FAMILIES.items():
            if name in self.samples:
                lines += [f"# HELP {name} {escape_help(help_text)}", f"# TYPE {name} {kind}", *self.samples[name]]
        return "\n".join(lines) + "\n"


def _finished(runs: Iterable[RunDoc | None]) -> dict[tuple[str, str], RunDoc]:
    """The newest finished run of each (kind, copy)."""
    newest: dict[tuple[str, str], RunDoc] = {}
    for run in runs:
        if not run or run.get("state") not in ("ok", "failed"):
            continue
        key = (str(run.get("kind")), str(run.get("target") or ""))
        if key not in newest or float(run.get("finished_at") or 0) > float(newest[key].get("finished_at") or 0):
            newest[key] = run
    return newest


def _forecast(e: Exposition, copy: str, fc: Forecast | Mapping[str, Any] | None) -> None:
    if not fc:
        return
    e.add("pacs_backup_copy_bytes", fc.get("size_bytes"), copy=copy)
    e.add("pacs_backup_copy_growth_bytes_per_month", fc.get("growth_bytes_per_month"), copy=copy)
    e.add("pacs_backup_copy_quota_bytes", fc.get("quota_bytes"), copy=copy)


def _same_box(e: Exposition, copy: str, info: Mapping[str, Any]) -> None:
    if "same_box" in info:  # as the copy's light says it (copy_lights.same_box)
        here = info.get("same_box") is True and not info.get("treated_as_offsite")
        e.add("pacs_backup_copy_same_box", here, copy=copy)


def render(status: StatusDoc | None, lights: list[Light], runs: list[RunDoc], now: float) -> str:
    """``GET /metrics``: the lights always; the copies' figures while the PACS answers."""
    e = Exposition()
    e.add("pacs_backup_pacs_up", status is not None)
    for light in lights:
        e.add("pacs_backup_part_state", STATE_CODE.get(light.state, 2), part=light.key)
        e.add("pacs_backup_part_last_known", bool(light.note), part=light.key)
    if status is None:
        return e.text()
    if status.get("version"):
        e.add("pacs_backup_info", 1, version=str(status["version"]))
    e.add("pacs_backup_enabled", bool(status.get("enabled")))
    if not status.get("enabled"):
        return e.text()
    _replication(e, status)
    offsite: dict[str, TargetDoc] = status.get("offsite") or {}
    at = float(status.get("time") or now)
    known = [
        RunDoc(**{**run, "target": name})  # named by the copy it is the status entry of
        for name, info in offsite.items()
        for run in (info.get("last_snapshot"), info.get("last_drill"))
        if run
    ]
    newest = _finished([*runs, *known])
    for name, info in offsite.items():
        if name != MINIO:
            _same_box(e, name, info)
            _forecast(e, name, info.get("forecast"))
            age = info.get("last_good_snapshot_age_s")
            if age is not None:
                e.add("pacs_backup_last_success_timestamp_seconds", round(at - float(age), 3), copy=name)
                e.add("pacs_backup_last_good_snapshot_age_seconds", age, target=name)
            snap = newest.get(("snapshot", name))
            if snap is not None:
                e.add("pacs_backup_snapshot_last_ok", snap["state"] == "ok", copy=name)
                e.add("pacs_backup_snapshot_last_duration_seconds", snap.get("duration_s"), copy=name)
        drill = newest.get(("drill", name))  # finished: a test that is running has no result yet
        if drill is not None:
            e.add("pacs_backup_last_drill_ok", drill["state"] == "ok", target=name)
        good_age = info.get("last_good_drill_age_s")
        if good_age is not None:
            e.add("pacs_backup_drill_last_success_timestamp_seconds", round(at - float(good_age), 3), copy=name)
    for (kind, name), run in sorted(newest.items()):
        if kind == "drill":
            _drill(e, name, run)
    _restores(e, runs, now)
    disk = status.get("disk")
    if disk:
        e.add("pacs_backup_disk_free_bytes", disk.get("free_bytes"))
        e.add("pacs_backup_disk_total_bytes", disk.get("total_bytes"))
    return e.text()


def _replication(e: Exposition, status: StatusDoc) -> None:
    depth, oldest = status.get("outbox_depth"), status.get("oldest_pending_age_s")
    e.add("pacs_backup_queue_depth", depth, copy=MINIO)
    e.add("pacs_backup_queue_oldest_age_seconds", oldest or 0, copy=MINIO)
    e.add("pacs_backup_queue_failing", status.get("failed"), copy=MINIO)
    _lag(e, MINIO, status.get("lag_s"))
    e.add("pacs_backup_last_success_timestamp_seconds", status.get("last_replicated_at"), copy=MINIO)
    store = status.get("store")
    fc = store.get("forecast") if store else None
    # The outbox's total is live; the store's forecast is recomputed every few minutes.
    e.add("pacs_backup_copy_bytes", status.get("replicated_bytes"), copy=MINIO)
    if fc:
        e.add("pacs_backup_copy_growth_bytes_per_month", fc.get("growth_bytes_per_month"), copy=MINIO)
        e.add("pacs_backup_copy_quota_bytes", fc.get("quota_bytes"), copy=MINIO)
    minio = (status.get("offsite") or {}).get(MINIO)
    if minio:
        _same_box(e, MINIO, minio)
    cloud = status.get("cloud_pacs")
    if cloud:
        e.add("pacs_backup_queue_depth", cloud.get("depth"), copy=CLOUD_PACS)
        e.add("pacs_backup_queue_oldest_age_seconds", cloud.get("oldest_pending_age_s") or 0, copy=CLOUD_PACS)
        e.add("pacs_backup_queue_failing", cloud.get("failing"), copy=CLOUD_PACS)
        _lag(e, CLOUD_PACS, cloud.get("lag_s"))
        _same_box(e, CLOUD_PACS, cloud)
    # The first names (unlabelled: the local backup copy's).
    e.add("pacs_backup_outbox_depth", depth or 0)
    e.add("pacs_backup_replicated_total", status.get("replicated") or 0)
    e.add("pacs_backup_replicated_bytes", status.get("replicated_bytes") or 0)
    e.add("pacs_backup_failing", status.get("failed") or 0)
    e.add("pacs_backup_quarantined", status.get("quarantined") or 0)
    e.add("pacs_backup_oldest_pending_age_seconds", oldest or 0)


def _lag(e: Exposition, copy: str, lag: LagDoc | None) -> None:
    if lag:
        e.add("pacs_backup_copy_lag_seconds", lag.get("p50"), copy=copy, percentile="50")
        e.add("pacs_backup_copy_lag_seconds", lag.get("p99"), copy=copy, percentile="99")


def _drill(e: Exposition, copy: str, run: RunDoc) -> None:
    found = figures(run, copy)  # as the restore-test light and chart read it: finished, nothing different
    e.add("pacs_backup_drill_last_ok", found.ok, copy=copy)
    e.add("pacs_backup_drill_last_timestamp_seconds", run.get("finished_at"), copy=copy)
    e.add("pacs_backup_drill_images_checked", found.checked, copy=copy)
    e.add("pacs_backup_drill_images_identical", found.identical, copy=copy)
    e.add("pacs_backup_drill_images_mismatched", found.mismatches, copy=copy)


def _restores(e: Exposition, runs: list[RunDoc], now: float) -> None:
    done = [r for r in runs if r.get("kind") == "restore" and r.get("state") in ("ok", "failed")]
    for (_, copy), run in sorted(_finished(done).items()):
        e.add("pacs_backup_restore_last_duration_seconds", run.get("duration_s"), copy=copy)
        e.add("pacs_backup_restore_last_ok", run["state"] == "ok", copy=copy)
        e.add("pacs_backup_restore_last_timestamp_seconds", run.get("finished_at"), copy=copy)
    longest: dict[str, float] = {}
    for r in done:
        took, copy = r.get("duration_s"), str(r.get("target") or "")
        if took is not None and float(r.get("finished_at") or 0) >= now - RESTORE_WINDOW_S:
            longest[copy] = max(longest.get(copy, 0.0), float(took))
    for copy, took in sorted(longest.items()):
        e.add("pacs_backup_restore_longest_duration_seconds", took, copy=copy)
