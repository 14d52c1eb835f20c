"""Small server-side SVG charts people can read without hovering (phones have no hover) and on paper.

Each chart is a ``<figure>`` whose caption says what is shown; the SVG has a date axis ("21 Nov", or
"21 Nov 14:02" where one day holds several bars), a value axis with its unit, and the last, lowest and
highest values written on it. The SVG scales with its ``viewBox`` to the width of its box, fonts and all, so
a label that fits the viewBox fits a phone and a desk alike: every label is measured (``text_width``) and
placed inside it. Numbers are plain (``0.0454``, ``120000``: never ``4.54e-05``); the value axis runs to a
round number, and sizes are written in the unit they need (:func:`size_chart`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import tzinfo
from html import escape

from .timefmt import local, size, size_unit

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# Drawing area in viewBox units: narrow enough that the 12-13 unit text stays readable on a 390 px phone.
WIDTH, HEIGHT = 420, 210
RIGHT, TOP, BOTTOM = 16, 36, 34
EDGE, GAP = 2.0, 10.0  # no label nearer the chart's edge than EDGE, nor nearer another label than GAP
AXIS_PX, VALUE_PX = 13, 14  # the font sizes of .chart .axis and .chart .v (bold) in dashboard.css
# The value axis ends at one of these times a power of ten; its half is then a plain number too.
_ROUND = ("1", "1.2", "1.5", "2", "2.5", "3", "4", "5", "6", "8")
_NARROW = frozenset(" .,:;'!|()[]ijlrtf-")


@dataclass(frozen=True)
class Bar:
    """One bar: ``value`` tall, ``part`` of it green (e.g. images identical of images checked)."""

    at: float  # epoch seconds, placed on the date axis
    value: float
    part: float
    ok: bool  # False draws the bar red
    text: str  # the value in words, written on the chart for the newest bar and in its tooltip
    who: str = ""  # what it is of, in words ("the offsite copy"): in its tooltip and the chart's summary


def day(ts: float, tz: tzinfo) -> str:
    """``21 Nov`` in the clinic's time zone."""
    d = local(ts, tz)
    return f"{d.day} {_MONTHS[d.month - 1]}"


def moment(ts: float, tz: tzinfo) -> str:
    """``21 Nov 14:02`` in the clinic's time zone: tells apart two events of one day."""
    return f"{day(ts, tz)} {local(ts, tz).strftime('%H:%M')}"


def plain(value: float) -> str:
    """``12.3``, ``0.5``, ``0.0000454``, ``120000``: three figures at most (every figure of a number from 100
    up), never ``1.2e+05``."""
    if value == 0 or not math.isfinite(value):
        return "0"
    if abs(value) >= 100:
        return f"{value:.0f}"
    text = f"{value:.{2 - math.floor(math.log10(abs(value)))}f}"
    return text.rstrip("0").rstrip(".")


def number(value: float, unit: str) -> str:
    """``12.3 GB``, ``4 minutes``: a :func:`plain` number, the unit always written."""
    return f"{plain(value)} {unit}"


def text_width(text: str, px: float, bold: bool = False) -> float:
    """How wide ``text`` is drawn at ``px``, in viewBox units: on the wide side, as DejaVu Sans draws it (the
    widest common system-ui font; digits 0.64 em, bold 9% wider), so it fits in any other font too."""
    em = sum(
        0.36 if c in _NARROW else 1.0 if c in "mwMW" else 0.72 if c.isupper() else 0.62 if c.islower() else 0.65
        for c in text
    )
    return em * px * (1.1 if bold else 1.0)


def round_top(top: float, whole: bool = False) -> float:
    """The top of the value axis: the smallest round number (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a
    power of ten) at or above ``top``. With ``whole`` (images, bytes) it and its half are whole numbers."""
    if not math.isfinite(top) or top <= 0:
        return 2.0 if whole else 1.0
    power = math.floor(math.log10(top))
    for exponent in (power, power + 1):
        for m in _ROUND:
            candidate = float(f"{m}e{exponent}")  # exact: no 1.2000000000000002
            if candidate >= top and (not whole or (candidate >= 2 and (candidate / 2).is_integer())):
                return candidate
    return top  # not reached: 10 ** (power + 1) is above top


def _whole(values: list[float]) -> bool:
    return all(float(v).is_integer() for v in values)


def _figure(title: str, summary: str, body: str, key: str = "", words: str = "") -> str:
    label = escape(f"{title}. {summary}")
    return (
        f'<figure class="chart-box"><figcaption>{escape(title)}</figcaption>'
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{label}">{body}</svg>'
        + (f'<p class="chart-words">{escape(words)}</p>' if words else "")
        + (f'<p class="muted">{escape(key)}</p>' if key else "")
        + "</figure>"
    )


def _empty(title: str, words: str) -> str:
    caption = f"<figcaption>{escape(title)}</figcaption>"
    return f'<figure class="chart-box">{caption}<p class="muted">{escape(words)}</p></figure>'


def _ticks(top: float) -> list[tuple[float, str]]:
    return [(frac, plain(top * frac)) for frac in (0.0, 0.5, 1.0)]


def _left(top: float) -> float:
    """Where the drawing starts: right of the widest number of the value axis."""
    return max(28.0, EDGE + max(text_width(t, AXIS_PX) for _, t in _ticks(top)) + 6)


def _value_axis(top: float, unit: str, left: float) -> str:
    """The base line and three levels (0, half, top) with their numbers; the unit written above them."""
    base = HEIGHT - BOTTOM
    parts = [
        f'<line x1="{left:.1f}" y1="{base}" x2="{WIDTH - RIGHT}" y2="{base}" stroke="#64748b"/>',
        f'<text x="{EDGE + 2:.0f}" y="{TOP - 14}" class="axis">{escape(unit)}</text>',
    ]
    for frac in (0.5, 1.0):
        y = base - frac * (base - TOP)
        parts.append(f'<line x1="{left:.1f}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}" stroke="#e2e8f0"/>')
    for frac, text in _ticks(top):
        y = base - frac * (base - TOP)
        parts.append(f'<text x="{left - 4:.1f}" y="{y + 4:.1f}" text-anchor="end" class="axis">{text}</text>')
    return "".join(parts)


def _inside(x: float, w: float, low: float) -> float:
    """The left end of a label ``w`` wide centred on ``x``, moved right of ``low`` (the value axis's numbers)
    and inside the chart."""
    return max(min(max(x - w / 2, low), WIDTH - EDGE - w), EDGE)


def _date_axis(places: list[tuple[float, str]], left: float) -> str:
    """Words under the drawing at ``(x, words)`` places, each centred under its place and kept inside the
    drawing's width; one that would touch the one before is left out (the newest is always written)."""
    boxes = [(_inside(x, w, left), w, words) for x, words in places for w in [text_width(words, AXIS_PX)]]
    kept: list[tuple[float, float, str]] = []

    def clash(box: tuple[float, float, str]) -> bool:
        return bool(kept) and box[0] < kept[-1][0] + kept[-1][1] + GAP

    for i, box in enumerate(boxes):
        while i == len(boxes) - 1 and clash(box):
            kept.pop()
        if not clash(box):
            kept.append(box)
    return "".join(
        f'<text x="{x:.1f}" y="{HEIGHT - BOTTOM + 18}" class="axis">{escape(words)}</text>' for x, _, words in kept
    )


def _mark(x: float, y: float, text: str, colour: str, left: float) -> str:
    """A dot with its value written above it (below, near the top), kept inside the drawing's width."""
    ty = y - 7 if y > TOP + 14 else y + 16
    tx = _inside(x, text_width(text, VALUE_PX, bold=True), left)
    return (
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{colour}"/>'
        f'<text x="{tx:.1f}" y="{ty:.1f}" class="v">{escape(text)}</text>'
    )


def _fitting(choices: list[str], room: float) -> str:
    """The first of ``choices`` that fits ``room`` in the values' font, else the shortest."""
    for text in choices:
        if text_width(text, VALUE_PX, bold=True) <= room:
            return text
    return min(choices, key=len)


def line_chart(
    points: list[tuple[float, float]],
    title: str,
    unit: str,
    tz: tzinfo,
    words: Callable[[float], str] | None = None,
) -> str:
    """A line of ``(time, value)`` points, with the newest, lowest and highest values written on it as
    ``words`` writes a value (default: the number and ``unit``)."""
    say = words or (lambda v: number(v, unit))
    if len(points) < 2:
        now = f"Now {say(points[0][1])} ({moment(points[0][0], tz)}). " if points else ""
        return _empty(title, now + "Not enough data yet: this chart fills in over the coming days.")
    points = sorted(points)
    x0, x1 = points[0][0], points[-1][0]
    top = round_top(max(p[1] for p in points), _whole([p[1] for p in points]))
    base, left = HEIGHT - BOTTOM, _left(top)

    def at(x: float, y: float) -> tuple[float, float]:
        return left + (x - x0) / ((x1 - x0) or 1) * (WIDTH - left - RIGHT), base - y / top * (base - TOP)

    path = " ".join("{:.1f},{:.1f}".format(*at(x, y)) for x, y in points)
    last = points[-1]
    low = min(points, key=lambda p: p[1])
    high = max(points, key=lambda p: p[1])
    marks = [_mark(*at(*last), f"{say(last[1])} on {day(last[0], tz)}", "#1d4ed8", left)]
    for p, word in ((high, "highest"), (low, "lowest")):
        if p != last and abs(p[1] - last[1]) > 0.05 * top:  # written once, not on top of the newest value
            marks.append(_mark(*at(*p), f"{word} {say(p[1])}", "#475569", left))
    summary = (
        f"Now {say(last[1])} ({day(last[0], tz)}); lowest {say(low[1])} on {day(low[0], tz)}, "
        f"highest {say(high[1])} on {day(high[0], tz)}."
    )
    if x1 - x0 >= 2 * 86400:
        days = [(at(x, 0)[0], day(x, tz)) for x in (x0, (x0 + x1) / 2, x1)]
    else:  # within a day or two: the time tells the ends apart
        days = [(at(x, 0)[0], moment(x, tz) if day(x0, tz) == day(x1, tz) else day(x, tz)) for x in (x0, x1)]
    body = (
        _value_axis(top, unit, left)
        + _date_axis(days, left)
        + f'<polyline fill="none" stroke="#2563eb" stroke-width="2.5" points="{path}"/>'
        + "".join(marks)
    )
    return _figure(title, summary, body)


def size_chart(points: list[tuple[float, float]], title: str, tz: tzinfo) -> str:
    """A line of ``(time, bytes)`` points. The axis is in the unit of the largest (bytes, kB, MB, GB or TB:
    decimal, as every size on the dashboard), each value written as :func:`timefmt.size` writes it."""
    unit, scale = size_unit(max((abs(b) for _, b in points), default=0.0))
    scaled = [(t, b / scale) for t, b in points]
    return line_chart(scaled, title, unit, tz, words=lambda v: size(v * scale))


def bar_chart(
    bars: list[Bar], title: str, unit: str, tz: tzinfo, key: str = "", empty: str = "None yet.", words: str = ""
) -> str:
    """One bar per event, oldest first: green up to its ``part``, red above it or when it failed. Under the
    bars their date and time; ``words`` (a sentence) and ``key`` are written below the chart."""
    if not bars:
        return _empty(title, empty)
    bars = sorted(bars, key=lambda b: b.at)
    top = round_top(max(b.value for b in bars), _whole([b.value for b in bars]))
    base, left = HEIGHT - BOTTOM, _left(top)
    slot = (WIDTH - left - RIGHT) / len(bars)
    width = max(2.0, min(40.0, slot * 0.7))

    def rect(x: float, height: float, colour: str, tip: str) -> str:
        return (
            f'<rect x="{x:.1f}" y="{base - height:.1f}" width="{width:.1f}" height="{height:.1f}" '
            f'fill="{colour}">{tip}</rect>'
        )

    def told(b: Bar) -> str:
        return f"{moment(b.at, tz)}, {b.who}: {b.text}" if b.who else f"{moment(b.at, tz)}: {b.text}"

    shapes = []
    for i, b in enumerate(bars):
        x = left + i * slot + (slot - width) / 2
        tip = f"<title>{escape(told(b))}</title>"
        whole = max(2.0, b.value / top * (base - TOP))
        colour = "#dc2626" if not b.ok or b.part < b.value else "#16a34a" if b.value else "#94a3b8"
        shapes.append(rect(x, whole, colour, tip))
        if 0 < b.part < b.value:
            shapes.append(rect(x, b.part / top * (base - TOP), "#16a34a", tip))
    newest = bars[-1]
    centre = [left + i * slot + slot / 2 for i in range(len(bars))]
    # The newest result above the drawing, where no bar can hide it, right of the unit.
    room = WIDTH - RIGHT - (EDGE + 2 + text_width(unit, AXIS_PX) + GAP)
    said = _fitting(  # its time is under its bar too
        [f"Newest, {when}: {newest.text}" for when in (moment(newest.at, tz), day(newest.at, tz))]
        + [f"Newest: {newest.text}", newest.text],
        room,
    )
    shapes.append(f'<text x="{WIDTH - RIGHT}" y="{TOP - 14}" text-anchor="end" class="v">{escape(said)}</text>')
    failed = sum(1 for b in bars if not b.ok)
    summary = f"{len(bars)} shown, {failed} failed. Newest, {told(newest)}."
    # Under every bar when there is room for all, else under the first, the middle and the newest.
    everyone = all(text_width(moment(b.at, tz), AXIS_PX) + GAP <= slot for b in bars)
    under = list(range(len(bars))) if everyone else sorted({0, len(bars) // 2, len(bars) - 1})
    days = _date_axis([(centre[i], moment(bars[i].at, tz)) for i in under], left)
    return _figure(title, summary, _value_axis(top, unit, left) + days + "".join(shapes), key, words)
