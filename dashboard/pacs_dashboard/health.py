"""Traffic lights: turns the plugin's status into one light per part, with the number and advice.

Pure functions (no Flask, no I/O) so that every rule is unit-tested.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

GREEN, AMBER, RED = "green", "amber", "red"

DEFAULT_TARGETS = {"replication_minutes": 5.0, "offsite_hours": 3.0, "drill_hours": 48.0, "disk_warn_percent": 90.0}


@dataclass(frozen=True)
class Light:
    key: str
    label: str
    state: str
    value: str
    advice: str


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    if seconds < 120:
        return f"{seconds:.0f} seconds ago"
    if seconds < 7200:
        return f"{seconds / 60:.0f} minutes ago"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} hours ago"
    return f"{seconds / 86400:.1f} days ago"


def _run_age(run: dict[str, Any] | None, now: float) -> float | None:
    if not run or not run.get("finished_at"):
        return None
    return max(0.0, now - float(run["finished_at"]))


def lights(status: dict[str, Any] | None, error: str | None, now: float,
           targets: dict[str, float] | None = None) -> list[Light]:
    """Evaluate every part.

    Args:
        status: ``GET /backup/status`` from the plugin, or None when Orthanc did not answer.
        error: why the status could not be read (shown on the PACS light).
        now: current time (epoch seconds).
        targets: the clinic's targets (see DEFAULT_TARGETS).
    """
    t = {**DEFAULT_TARGETS, **(targets or {})}
    if status is None:
        return [Light("pacs", "PACS (Orthanc)", RED, "not answering",
                      f"The PACS server does not answer ({error}). Check that the box is on and call your technician.")]
    out = [Light("pacs", "PACS (Orthanc)", GREEN, "answering", "Nothing to do.")]
    if status.get("config_error") or not status.get("enabled", False):
        msg = (status.get("last_error") or {}).get("message", "Backup is not running.")
        out.append(Light("backup", "Backup", RED, "not running", f"{msg} Ask your technician to fix the setting."))
        return out

    store = status.get("store") or {}
    out.append(Light("store", "Local backup copy (object store)", GREEN if store.get("reachable") else RED,
                     "reachable" if store.get("reachable") else "unreachable",
                     "Nothing to do." if store.get("reachable") else
                     "New images are kept safely in a queue but not copied. Check the object store is running."))

    depth, oldest = int(status.get("outbox_depth") or 0), status.get("oldest_pending_age_s")
    limit = t["replication_minutes"] * 60
    if oldest is not None and oldest > limit:
        state, advice = RED, (f"Images wait longer than the {t['replication_minutes']:.0f}-minute target. "
                              "They are not lost; check the object store and the last error.")
    elif status.get("failed") or status.get("quarantined"):
        state, advice = AMBER, (f"{status.get('failed', 0)} copies are retrying, {status.get('quarantined', 0)} "
                                "were set aside (see the technician page).")
    else:
        state, advice = GREEN, "Nothing to do."
    value = f"{depth} waiting" + (f", oldest {_age(oldest)}" if oldest is not None else "")
    out.append(Light("queue", "Copy queue", state, value, advice))

    offsite = status.get("offsite") or {}
    targets_cfg = {k: v for k, v in offsite.items() if k != "minio"}
    if not targets_cfg:
        out.append(Light("offsite", "Offsite copy", RED, "not configured",
                         "There is no offsite copy: a fire or flood would lose everything. Set RESTIC_REPOSITORY."))
    for name, info in targets_cfg.items():
        good_age = info.get("last_good_snapshot_age_s")
        last = info.get("last_snapshot") or {}
        if good_age is None or good_age > t["offsite_hours"] * 3600:
            state = RED
            advice = (f"The newest offsite copy is older than the {t['offsite_hours']:.0f}-hour target. "
                      + (f"Last attempt: {last.get('error')}" if last.get("state") == "failed" else
                         "Check the internet connection and the offsite server."))
        elif last.get("state") == "failed":
            state, advice = AMBER, f"The last snapshot failed and will be retried: {last.get('error')}"
        else:
            state, advice = GREEN, "Nothing to do."
        out.append(Light(f"offsite-{name}", f"Offsite copy ({name})", state, f"newest {_age(good_age)}", advice))

    drills = [info.get("last_drill") for info in offsite.values() if info.get("last_drill")]
    if not drills:
        out.append(Light("drill", "Restore test", AMBER, "never run",
                         "No restore test has run yet; press 'Run a restore test now' on the Drills page."))
    else:
        failed = [d for d in drills if d.get("state") == "failed"]
        ages = [a for a in (_run_age(d, now) for d in drills) if a is not None]
        newest = min(ages) if ages else None
        if failed:
            out.append(Light("drill", "Restore test", RED, f"{len(failed)} failed",
                             "A restore test found a problem: " + str(failed[0].get("error")) +
                             " Call your technician."))
        elif newest is None or newest > t["drill_hours"] * 3600:
            out.append(Light("drill", "Restore test", AMBER, f"last {_age(newest)}", "Run a restore test."))
        else:
            out.append(Light("drill", "Restore test", GREEN, f"passed {_age(newest)}", "Nothing to do."))

    disk = status.get("disk")
    if disk and disk.get("total_bytes"):
        used = 100.0 * (1 - disk["free_bytes"] / disk["total_bytes"])
        state = RED if used >= 97 else AMBER if used >= t["disk_warn_percent"] else GREEN
        advice = "Nothing to do." if state == GREEN else "The PACS disk is nearly full: free space or add a disk."
        out.append(Light("disk", "PACS disk space", state, f"{used:.0f}% used, "
                         f"{disk['free_bytes'] / 1e9:.1f} GB free", advice))
    return out


def overall(ls: list[Light]) -> str:
    """The worst state of all lights."""
    states = {light.state for light in ls}
    return RED if RED in states else AMBER if AMBER in states else GREEN


def as_json(ls: list[Light]) -> list[dict[str, str]]:
    return [asdict(light) for light in ls]
