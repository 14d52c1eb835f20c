"""What pages use to tell the truth when the PACS is down: the status keeper, the mirror of the catalog,
the read-only bucket, and the clinic's time zone (all set up by :func:`install`)."""

from __future__ import annotations

import time
from datetime import tzinfo
from typing import Any

from flask import Flask, current_app

from pacs_backup.contracts.documents import StatusDoc
from pacs_backup.state.search import display_name

from .bucket import BucketReader
from .clinic import ClinicSettings
from .health import Light, lights
from .mirror import Mirror
from .pacs_state import Reading, StatusKeeper
from .timefmt import clock


def install(app: Flask, clinic: ClinicSettings, backend: Any, data_dir: Any) -> None:
    """Open the mirror file and the bucket reader, and put them (and the status keeper) on the app."""
    mirror = Mirror(data_dir / "mirror.sqlite")
    app.extensions["mirror"] = mirror
    app.extensions["keeper"] = StatusKeeper(backend, mirror)
    app.extensions["bucket"] = BucketReader(clinic.store) if clinic.store else None
    app.extensions["clinic"] = clinic


def keeper() -> StatusKeeper:
    return current_app.extensions["keeper"]  # type: ignore[no-any-return]


def mirror() -> Mirror:
    return current_app.extensions["mirror"]  # type: ignore[no-any-return]


def bucket() -> BucketReader | None:
    return current_app.extensions.get("bucket")


def known_status() -> StatusDoc | None:
    """The newest status known: the live one, else the last the PACS gave (read now if none was yet)."""
    reading = keeper().latest() or keeper().read()
    return reading.status or reading.last_good


def tz() -> tzinfo:
    return current_app.extensions["clinic"].tz  # type: ignore[no-any-return]


def known_down() -> Reading | None:
    """The PACS was found down moments ago (by the monitor or a page): pages use their own copies at once
    instead of waiting for it again."""
    interval = float(current_app.extensions["settings"].monitor_interval_s)
    return keeper().known_down(2 * interval + 5)


def evaluate(reading: Reading, targets: dict[str, float], zone: tzinfo, now: float | None = None) -> list[Light]:
    """The lights for one reading: live, or (PACS down) the last known state of each part, marked;
    and an amber light when alerts are off."""
    from .destinations import alerts_lights

    return lights(
        reading.status,
        reading.error,
        time.time() if now is None else now,
        targets,
        zone,
        down_since=reading.down_since,
        last_known=reading.last_good,
        last_known_at=reading.last_good_at,
    ) + alerts_lights(current_app.extensions["db"], current_app.extensions["settings"])


def down_sentence(reading: Reading) -> str:
    since = f" since {clock(reading.down_since, tz())}" if reading.down_since else ""
    return f"The PACS is not answering{since}."


def mirror_age_sentence() -> str:
    synced = mirror().get("synced_at")
    if synced is None:
        return "The dashboard has no list of the backups yet: it makes one while the PACS answers."
    return (
        f"These results come from the dashboard's own list of the backups, last brought up to date at "
        f"{clock(float(synced), tz())}; images backed up after that are not listed yet."
    )


def summary_from_instances(uid: str, instances: list[dict[str, Any]]) -> dict[str, Any]:
    """A study's summary (as the search gives it) from its catalogued images."""
    first = instances[0] if instances else {}
    name = str(first.get("patient_name") or "")
    return {
        "study_uid": uid,
        "patient_id": first.get("patient_id", ""),
        "patient_name": name,
        "display_name": display_name(name) if name else "",
        "owner": first.get("owner", ""),
        "species": first.get("species", ""),
        "breed": first.get("breed", ""),
        "accession": first.get("accession", ""),
        "study_date": first.get("study_date", ""),
        "description": first.get("description", ""),
        "modalities": ",".join(sorted({str(i.get("modality") or "") for i in instances} - {""})),
        "series": len({i.get("series_uid") for i in instances}),
        "instances": len(instances),
    }


def study_summary(uid: str) -> dict[str, Any] | None:
    """Name, date, description and image count of a study: the mirror first (no request), else the plugin."""
    row = mirror().study(uid)
    if row is not None:
        return row
    if known_down():
        return None
    try:
        instances = current_app.extensions["backend"].study(uid).get("instances") or []
    except Exception:  # noqa: BLE001 - the page works without it
        return None
    return summary_from_instances(uid, instances) if instances else None
