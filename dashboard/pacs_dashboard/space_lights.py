"""The space lights: each copy's space against its quota at the pace it grows (the plugin's forecast), and
the disk holding the PACS's own images.

Pure functions (no Flask, no I/O).
"""

from __future__ import annotations

from pacs_backup.contracts.documents import DiskDoc, Forecast, LightColour

from .light import AMBER, GREEN, RANK, RED, Light, colour
from .timefmt import months, size


def space_light(key: str, who: str, fc: Forecast) -> Light:
    growth = int(fc.get("growth_bytes_per_month") or 0)
    value = f"{size(fc.get('size_bytes'))} of {size(fc.get('quota_bytes'))}, +{size(growth)} a month"
    when_full = months(fc.get("months_until_full"))
    state = colour(fc.get("light"), GREEN)
    advice = str(fc.get("advice") or "")
    if state == GREEN:
        advice = (
            f"At this pace it is {when_full}. "
            if when_full
            else "At this pace it is not full within 10 years. "
            if growth
            else "It does not grow at the moment. "
        ) + "Nothing to do."
    elif when_full and when_full not in advice:
        advice = f"At this pace it is {when_full}. {advice}"
    return Light(f"space-{key}", f"Space for {who}", state, value, advice.strip())


def disk_light(disk: DiskDoc, t: dict[str, float]) -> Light:
    used = 100.0 * (1 - disk["free_bytes"] / disk["total_bytes"])
    state: LightColour = RED if used >= 97 else AMBER if used >= t["disk_warn_percent"] else GREEN
    advice = "Nothing to do." if state == GREEN else "The PACS disk is nearly full: free space or add a disk."
    fc = disk.get("forecast") or {}
    if fc:
        growth = int(fc.get("growth_bytes_per_month") or 0)
        when_full = months(fc.get("months_until_full"))
        pace = (
            (f"It grows about {size(growth)} a month" + (f"; {when_full}." if when_full else "."))
            if growth
            else "It does not grow at the moment."
        )
        if RANK[colour(fc.get("light"), GREEN)] > RANK[state]:
            state = colour(fc.get("light"), GREEN)
            advice = str(fc.get("advice") or "Order a larger disk.")
        advice = f"{pace} {advice}"
    return Light("disk", "PACS disk space", state, f"{used:.0f}% used, {size(disk['free_bytes'])} free", advice)
