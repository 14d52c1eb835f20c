"""Small server-side SVG charts people can read without hovering (phones have no hover) and on paper.

Each chart is a ``<figure>`` whose caption says what is shown; the SVG has a date axis ("21 Nov"), a value
axis with its unit, and the last, lowest and highest values written on it. The SVG scales with its
``viewBox`` to the width of its box, so one chart fits a phone and a desk alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo
from html import escape

from .timefmt import local

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Drawing area in viewBox units: narrow enough that the 12-13 unit text stays readable on a 390 px phone.
WIDTH, HEIGHT = 420, 210
LEFT, RIGHT, TOP, BOTTOM = 44, 16, 36, 34


@dataclass(frozen=True)
class Bar:
    """One bar: ``value`` tall, ``part`` of it green (e.g. images identical of images checked)."""

    at: float  # epoch seconds, placed on the date axis
    value: float
    part: float
    ok: bool  # False draws the bar red
    text: str  # the value in words, written on the chart for the newest bar and in its tooltip


def day(ts: float, tz: tzinfo) -> str:
    """``21 Nov`` in the clinic's time zone."""
    d = local(ts, tz)
    return f"{d.day} {_MONTHS[d.month - 1]}"


def number(value: float, unit: str) -> str:
    """``12.3 GB``, ``4 minutes``: at most three figures, the unit always written."""
    text = f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return f"{text} {unit}"


def _figure(title: str, summary: str, body: str, key: str = "") -> str:
    label = escape(f"{title}. {summary}")
    return (
        f'<figure class="chart-box"><figcaption>{escape(title)}</figcaption>'
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{label}">{body}</svg>'
        + (f'<p class="muted">{escape(key)}</p>' if key else "")
        + "</figure>"
    )


def _empty(title: str, words: str) -> str:
    caption = f"<figcaption>{escape(title)}</figcaption>"
    return f'<figure class="chart-box">{caption}<p class="muted">{escape(words)}</p></figure>'


def _value_axis(top: float, unit: str) -> str:
    """The base line and three levels (0, half, top) with their numbers; the unit written above them."""
    base = HEIGHT - BOTTOM
    parts = [
        f'<line x1="{LEFT}" y1="{base}" x2="{WIDTH - RIGHT}" y2="{base}" stroke="#64748b"/>',
        f'<text x="4" y="{TOP - 14}" class="axis">{escape(unit)}</text>',
    ]
    for frac in (0.5, 1.0):
        y = base - frac * (base - TOP)
        parts.append(f'<line x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#e2e8f0"/>')
    for frac in (0.0, 0.5, 1.0):
        y = base - frac * (base - TOP)
        text = escape(number(top * frac, "").strip())
        parts.append(f'<text x="{LEFT - 4}" y="{y + 4:.1f}" text-anchor="end" class="axis">{text}</text>')
    return "".join(parts)


def _date_axis(places: list[tuple[float, float]], tz: tzinfo) -> str:
    """Days under the drawing at ``(x, time)`` places: the first, the last and one between."""
    if len(places) > 2:
        places = [places[0], places[len(places) // 2], places[-1]]
    out = []
    for i, (x, ts) in enumerate(places):
        anchor = "middle" if len(places) == 1 else "start" if i == 0 else "end" if i == len(places) - 1 else "middle"
        out.append(
            f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 18}" text-anchor="{anchor}" class="axis">{day(ts, tz)}</text>'
        )
    return "".join(out)


def _mark(x: float, y: float, text: str, colour: str) -> str:
    """A dot with its value written beside it, kept inside the drawing."""
    anchor = "end" if x > WIDTH - 100 else "start" if x < LEFT + 60 else "middle"
    ty = y - 7 if y > TOP + 14 else y + 16
    return (
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}"/>'
        f'<text x="{x:.1f}" y="{ty:.1f}" text-anchor="{anchor}" class="v">{escape(text)}</text>'
    )


def line_chart(points: list[tuple[float, float]], title: str, unit: str, tz: tzinfo) -> str:
    """A line of ``(time, value)`` points, with the newest, lowest and highest values written on it."""
    if len(points) < 2:
        return _empty(title, "Not enough data yet: this chart fills in over the coming days.")
    points = sorted(points)
    x0, x1 = points[0][0], points[-1][0]
    top = max(p[1] for p in points) or 1.0
    base = HEIGHT - BOTTOM

    def at(x: float, y: float) -> tuple[float, float]:
        return LEFT + (x - x0) / ((x1 - x0) or 1) * (WIDTH - LEFT - RIGHT), base - y / top * (base - TOP)

    path = " ".join("{:.1f},{:.1f}".format(*at(x, y)) for x, y in points)
    last = points[-1]
    low = min(points, key=lambda p: p[1])
    high = max(points, key=lambda p: p[1])
    marks = [_mark(*at(*last), f"{number(last[1], unit)} on {day(last[0], tz)}", "#1d4ed8")]
    for p, word in ((high, "highest"), (low, "lowest")):
        if p != last and abs(p[1] - last[1]) > 0.05 * top:  # written once, not on top of the newest value
            marks.append(_mark(*at(*p), f"{word} {number(p[1], unit)}", "#475569"))
    summary = (
        f"Now {number(last[1], unit)} ({day(last[0], tz)}); lowest {number(low[1], unit)} on {day(low[0], tz)}, "
        f"highest {number(high[1], unit)} on {day(high[0], tz)}."
    )
    days = (
        [(at(x, 0)[0], x) for x in (x0, (x0 + x1) / 2, x1)]
        if x1 - x0 >= 2 * 86400
        else [(at(x0, 0)[0], x0), (at(x1, 0)[0], x1)]
    )
    body = (
        _value_axis(top, unit)
        + _date_axis(days, tz)
        + f'<polyline fill="none" stroke="#2563eb" stroke-width="2.5" points="{path}"/>'
        + "".join(marks)
    )
    return _figure(title, summary, body)


def bar_chart(bars: list[Bar], title: str, unit: str, tz: tzinfo, key: str = "", empty: str = "None yet.") -> str:
    """One bar per event, oldest first: green up to its ``part``, red above it or when it failed."""
    if not bars:
        return _empty(title, empty)
    bars = sorted(bars, key=lambda b: b.at)
    top = max(b.value for b in bars) or 1.0
    base = HEIGHT - BOTTOM
    slot = (WIDTH - LEFT - RIGHT) / len(bars)
    width = max(2.0, min(40.0, slot * 0.7))

    def rect(x: float, height: float, colour: str, tip: str) -> str:
        return (
            f'<rect x="{x:.1f}" y="{base - height:.1f}" width="{width:.1f}" height="{height:.1f}" '
            f'fill="{colour}">{tip}</rect>'
        )

    shapes = []
    for i, b in enumerate(bars):
        x = LEFT + i * slot + (slot - width) / 2
        tip = f"<title>{escape(day(b.at, tz))}: {escape(b.text)}</title>"
        whole = max(2.0, b.value / top * (base - TOP))
        colour = "#dc2626" if not b.ok or b.part < b.value else "#16a34a" if b.value else "#94a3b8"
        shapes.append(rect(x, whole, colour, tip))
        if 0 < b.part < b.value:
            shapes.append(rect(x, b.part / top * (base - TOP), "#16a34a", tip))
    newest = bars[-1]
    centre = [LEFT + i * slot + slot / 2 for i in range(len(bars))]
    # The newest result above the drawing, where no bar can hide it.
    shapes.append(
        f'<text x="{WIDTH - RIGHT}" y="{TOP - 14}" text-anchor="end" class="v">'
        f"Newest, {day(newest.at, tz)}: {escape(newest.text)}</text>"
    )
    failed = sum(1 for b in bars if not b.ok)
    summary = f"{len(bars)} shown, {failed} failed. Newest, {day(newest.at, tz)}: {newest.text}."
    days = _date_axis([(c, b.at) for c, b in zip(centre, bars, strict=True)], tz)
    return _figure(title, summary, _value_axis(top, unit) + days + "".join(shapes), key)
