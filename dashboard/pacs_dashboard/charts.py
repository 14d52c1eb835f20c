"""Small server-side SVG charts (no JavaScript library, readable when printed)."""

from __future__ import annotations

from html import escape


def line_chart(points: list[tuple[float, float]], title: str, unit: str, width: int = 520, height: int = 140) -> str:
    """An SVG line chart of ``(time, value)`` points."""
    if len(points) < 2:
        return (
            f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
            f'<text x="10" y="{height // 2}">{escape(title)}: not enough data yet</text></svg>'
        )
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1, top = min(xs), max(xs), max(ys) or 1.0
    pad = 30

    def sx(x: float) -> float:
        return pad + (x - x0) / ((x1 - x0) or 1) * (width - 2 * pad)

    def sy(y: float) -> float:
        return height - pad - y / top * (height - 2 * pad)

    path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in points)
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
        f'<text x="{pad}" y="16" class="t">{escape(title)} (max {top:.3g} {escape(unit)})</text>'
        f'<polyline fill="none" stroke="#2563eb" stroke-width="2" points="{path}"/>'
        f'<line x1="{pad}" y1="{height - pad}" x2="{width - pad}" y2="{height - pad}" stroke="#999"/></svg>'
    )


def bar_chart(bars: list[tuple[str, float, bool]], title: str, unit: str, width: int = 520, height: int = 140) -> str:
    """An SVG bar chart of ``(label, value, ok)``; failed bars are red."""
    if not bars:
        return (
            f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
            f'<text x="10" y="{height // 2}">{escape(title)}: none yet</text></svg>'
        )
    pad, top = 30, max(b[1] for b in bars) or 1.0
    w = (width - 2 * pad) / len(bars)
    rects = []
    for i, (label, value, ok) in enumerate(bars):
        h = max(2.0, value / top * (height - 2 * pad))
        rects.append(
            f'<rect x="{pad + i * w:.1f}" y="{height - pad - h:.1f}" width="{max(1.0, w - 2):.1f}" '
            f'height="{h:.1f}" fill="{"#16a34a" if ok else "#dc2626"}"><title>{escape(label)}: '
            f"{value:.3g} {escape(unit)}</title></rect>"
        )
    return (
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">'
        f'<text x="{pad}" y="16" class="t">{escape(title)} (max {top:.3g} {escape(unit)})</text>'
        + "".join(rects)
        + "</svg>"
    )
