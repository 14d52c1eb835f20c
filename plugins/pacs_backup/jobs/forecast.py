"""How fast each copy grows, and when it will be full: the clinic's worry is a bill or a disk that
grows with every image.

Growth is measured, not guessed: from what each snapshot added to its repository (restic's
``data_added``, after deduplication and compression) and from the sizes of the copies made in the
bucket, over the last 30 days (or since the first one, when the copy is younger). With a quota (a
2 TB cloud plan, a disk) the forecast says when it will be full, and is amber some months before.
"""

from __future__ import annotations

from collections.abc import Iterable

from pacs_backup.contracts.documents import Forecast, LightColour

DAY = 86400.0
MONTH = 30 * DAY


def forecast(
    additions: Iterable[tuple[float, int]],
    now: float,
    quota_bytes: int | None = None,
    warn_months: float = 3.0,
    size_bytes: int | None = None,
) -> Forecast:
    """Forecast from ``(when, bytes added)`` pairs (``size_bytes`` overrides their sum as the size now)."""
    points = sorted(additions)
    total = sum(b for _, b in points)
    recent = sum(b for t, b in points if t >= now - MONTH)
    return forecast_from_totals(
        total if size_bytes is None else size_bytes,
        recent,
        points[0][0] if points else None,
        now,
        quota_bytes,
        warn_months,
    )


def forecast_from_totals(
    size: int,
    added_last_month: int,
    first_at: float | None,
    now: float,
    quota_bytes: int | None = None,
    warn_months: float = 3.0,
) -> Forecast:
    """Forecast from the size now, what was added in the last 30 days, and when the first addition was."""
    first = now if first_at is None else first_at
    span = max(min(now - first, MONTH), DAY)  # a young copy: its age; never less than a day
    growth = int(added_last_month * MONTH / span)
    months = None
    light: LightColour = "green"
    advice: str | None = None
    if quota_bytes:
        left = quota_bytes - size
        months = 0.0 if left <= 0 else (round(left / growth, 1) if growth else None)
        if months is not None and months < 1:
            light, advice = "red", "The space is full or will be within a month: add space or a larger plan now."
        elif months is not None and months < warn_months:
            light, advice = (
                "amber",
                (f"At this pace the space is full in about {months:g} months: order a larger plan or disk."),
            )
    return Forecast(
        size_bytes=size,
        growth_bytes_per_month=growth,
        in_12_months_bytes=size + 12 * growth,
        quota_bytes=quota_bytes,
        months_until_full=months,
        light=light,
        advice=advice,
    )
