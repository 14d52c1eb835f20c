"""What pages use to tell the truth when the PACS is down: the newest status known and whether the PACS was
found down moments ago (the status keeper), the run list and study summaries the dashboard kept (the
mirror), and the sentences that say so."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import tzinfo

from pacs_backup.contracts.documents import RunDoc, StatusDoc
from pacs_backup.contracts.errors import BackupError
from pacs_backup.state.catalog import StudySummary
from pacs_backup.state.manifest import ManifestEntry
from pacs_backup.state.search import display_name

from . import deps
from .destinations import alerts_lights
from .health import lights
from .light import Light
from .pacs_state import Reading
from .timefmt import clock


def known_status() -> StatusDoc | None:
    """The newest status known: the live one, else the last the PACS gave (read now if none was yet)."""
    keeper = deps.keeper()
    reading = keeper.latest() or keeper.read()
    return reading.status or reading.last_good


def known_down() -> Reading | None:
    """The PACS was found down moments ago (by the monitor or a page): pages use their own copies at once
    instead of waiting for it again."""
    interval = float(deps.settings().monitor_interval_s)
    return deps.keeper().known_down(2 * interval + 5)


def evaluate(reading: Reading, targets: dict[str, float], zone: tzinfo, now: float | None = None) -> list[Light]:
    """The lights for one reading: live, or (PACS down) the last known state of each part, marked;
    and an amber light when alerts are off."""
    return lights(
        reading.status,
        reading.error,
        time.time() if now is None else now,
        targets,
        zone,
        down_since=reading.down_since,
        last_known=reading.last_good,
        last_known_at=reading.last_good_at,
    ) + alerts_lights(deps.db(), deps.settings())


def down_sentence(reading: Reading) -> str:
    since = f" since {clock(reading.down_since, deps.tz())}" if reading.down_since else ""
    return f"The PACS is not answering{since}."


def mirror_age_sentence() -> str:
    synced = deps.mirror().get("synced_at")
    if synced is None:
        return "The dashboard has no list of the backups yet: it makes one while the PACS answers."
    return (
        f"These results come from the dashboard's own list of the backups, last brought up to date at "
        f"{clock(float(synced), deps.tz())}; images backed up after that are not listed yet."
    )


def kept_runs() -> tuple[list[RunDoc], float] | None:
    """The last run list the monitor kept while the PACS answered, and when; None before the first."""
    kept = deps.mirror().get("runs")
    if not kept:
        return None
    return list(kept.get("runs") or []), float(kept["at"])


def recent_runs(limit: int = 500, down: bool = False) -> tuple[list[RunDoc], float | None]:
    """The plugin's runs, or (PACS down) the last list the monitor kept, with its time."""
    if not down:
        try:
            return deps.backend().runs(limit=limit), None
        except BackupError:
            pass
    kept = kept_runs()
    if kept is None:
        return [], None
    return kept[0][:limit], kept[1]


def summary_from_instances(uid: str, instances: list[ManifestEntry]) -> StudySummary:
    """A study's summary (as the search gives it) from its catalogued images."""
    first: Mapping[str, object] = instances[0] if instances else {}

    def text(name: str) -> str:
        return str(first.get(name) or "")

    name = text("patient_name")
    return StudySummary(
        study_uid=uid,
        patient_id=text("patient_id"),
        patient_name=name,
        display_name=display_name(name) if name else "",
        owner=text("owner"),
        species=text("species"),
        breed=text("breed"),
        accession=text("accession"),
        study_date=text("study_date"),
        description=text("description"),
        modalities=",".join(sorted({str(i.get("modality") or "") for i in instances} - {""})),
        series=len({i.get("series_uid") for i in instances}),
        instances=len(instances),
        last_copied_at=0.0,  # not in the images' rows (the search's and the mirror's rows have it)
    )


def study_summary(uid: str) -> StudySummary | None:
    """Name, date, description and image count of a study: the mirror first (no request), else the plugin."""
    row = deps.mirror().study(uid)
    if row is not None:
        return row
    if known_down():
        return None
    try:
        instances = deps.backend().study(uid).get("instances") or []
    except Exception:  # noqa: BLE001 - the page works without it
        return None
    return summary_from_instances(uid, instances) if instances else None
