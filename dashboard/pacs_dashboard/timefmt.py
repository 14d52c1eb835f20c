"""Times, dates and sizes as people write them, in the clinic's time zone ("14:02", "26 Nov 2026", "1.2 GB").

Pure functions (the Jinja filters of :func:`install` call them), so every form is unit-tested.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from typing import Any

from flask import Flask

from pacs_backup.state.search import display_name

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:?\d{2})?")


def local(ts: float, tz: tzinfo) -> datetime:
    return datetime.fromtimestamp(ts, tz)


def _day(d: datetime, with_year: bool = True) -> str:
    return f"{d.day} {_MONTHS[d.month - 1]}" + (f" {d.year}" if with_year else "")


def clock(ts: float | None, tz: tzinfo, now: float | None = None) -> str:
    """``14:02`` today, ``yesterday 14:02``, ``27 Nov 14:02`` this year, ``27 Nov 2025 14:02`` before."""
    if ts is None:
        return "never"
    d = local(ts, tz)
    today = local(datetime.now(UTC).timestamp() if now is None else now, tz)
    hm = d.strftime("%H:%M")
    if d.date() == today.date():
        return hm
    if (today.date() - d.date()).days == 1:
        return f"yesterday {hm}"
    if (d.date() - today.date()).days == 1:
        return f"tomorrow {hm}"
    return f"{_day(d, d.year != today.year)} {hm}"


def when(ts: float | None, tz: tzinfo) -> str:
    """``27 Nov 2026 14:02`` (a date and time that stands on its own, e.g. in a table)."""
    if ts is None:
        return ""
    d = local(ts, tz)
    return f"{_day(d)} {d.strftime('%H:%M')}"


def parse_iso(text: str | None) -> float | None:
    """Epoch seconds of an ISO 8601 time as restic writes it (nanoseconds, ``Z`` or an offset)."""
    if not text:
        return None
    m = _ISO.match(text.strip())
    if m is None:
        return None
    frac = (m[7] or "0")[:6].ljust(6, "0")
    zone = m[8] or "Z"
    offset = "+00:00" if zone == "Z" else (zone if ":" in zone else zone[:3] + ":" + zone[3:])
    try:
        d = datetime.fromisoformat(f"{m[1]}-{m[2]}-{m[3]}T{m[4]}:{m[5]}:{m[6]}.{frac}{offset}")
    except ValueError:
        return None
    return d.timestamp()


def study_date(value: str | None) -> str:
    """A DICOM date ``20261126`` as ``26 Nov 2026``; anything else as it is ('' -> 'no date')."""
    value = (value or "").strip()
    if len(value) == 8 and value.isdigit():
        try:
            return _day(datetime(int(value[:4]), int(value[4:6]), int(value[6:])))
        except ValueError:
            return value
    return value or "no date"


# Decimal, as disks and cloud plans are sold: 1 kB is 1000 bytes, 1 TB 10^12.
SIZE_UNITS = (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3))


def size_unit(n: float) -> tuple[str, float]:
    """The unit :func:`size` writes ``n`` bytes in, and its bytes: ``("GB", 1e9)``; ``("bytes", 1.0)`` under 1 kB."""
    for unit, scale in SIZE_UNITS:
        if abs(n) >= scale:
            return unit, scale
    return "bytes", 1.0


def size(n: float | None) -> str:
    """``950 MB``, ``1.2 GB``, ``3.4 TB``."""
    if n is None:
        return "unknown"
    unit, scale = size_unit(n)
    if scale == 1:
        return "1 byte" if round(n) == 1 else f"{n:.0f} bytes"
    value = n / scale
    return f"{value:.1f} {unit}" if value < 100 else f"{value:.0f} {unit}"


def months(m: float | None) -> str:
    """``full in about 14 months`` / ``full within a month`` / '' when it does not fill within 10 years."""
    if m is None:
        return ""
    if m <= 0:
        return "full now"
    if m < 1:
        return "full within a month"
    if m >= 120:  # not within any horizon worth planning for
        return ""
    if m >= 24:
        return f"full in about {m / 12:.0f} years"
    return f"full in about {m:.0f} months"


def images(n: int | None) -> str:
    return "1 image" if n == 1 else f"{n or 0} images"


def install(app: Flask, tz: tzinfo) -> None:
    """The Jinja filters: ``localtime`` (date and time), ``clock``, ``isotime`` (restic's ISO times),
    ``studydate``, ``size``, ``images`` and ``person`` (a DICOM name ``Smith^John`` as ``Smith, John``)."""
    filters: dict[str, Any] = {
        "localtime": lambda ts: when(None if ts is None else float(ts), tz),
        "clock": lambda ts: clock(None if ts is None else float(ts), tz),
        "isotime": lambda text: when(parse_iso(text), tz) or (text or ""),
        "studydate": study_date,
        "size": size,
        "images": images,
        "person": lambda name: display_name(str(name or "")) if name else "",
    }
    app.jinja_env.filters.update(filters)
    app.jinja_env.globals["clinic_tz"] = getattr(tz, "key", str(tz))
