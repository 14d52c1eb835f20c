"""The health page's charts in a real browser at a phone's and a desk's width (issue 29, item 5): every label
is drawn inside its chart and none on another, for sizes from a few kB to several TB, nothing backed up yet,
big counts of images, many restore tests and two on one day. charts.py draws them with the dashboard's own
style sheet; no PACS is needed. A screenshot of each width is kept (test-artifacts/charts-<size>.png)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from playwright.sync_api import sync_playwright

from pacs_dashboard.charts import Bar, bar_chart, line_chart, size_chart
from tests.support.browser import ARGS, CHROMIUM, SHOTS
from tests.support.common import ROOT

BERLIN = ZoneInfo("Europe/Berlin")
DEC_6 = datetime(2026, 12, 6, 3, 0, tzinfo=BERLIN).timestamp()
DAY = 86400.0
SIZES = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
SIZE = "Size of the backed-up images"
DRILLS = "Restore tests: images checked in each test"


def drills(n: int, checked: int, apart: float) -> list[Bar]:
    return [
        Bar(
            DEC_6 - (n - i) * apart,
            checked,
            checked - (i % 3 == 0),
            True,
            f"{checked - (i % 3 == 0)} of {checked} images identical",
            "the local backup copy" if i % 2 else "the offsite copy (nas)",
        )
        for i in range(n)
    ]


def charts() -> list[str]:
    days = [DEC_6 - (4 - i) * DAY for i in range(5)]
    return [
        size_chart(list(zip(days, [2_000, 3_500, 3_900, 4_100, 4_540], strict=True)), SIZE, BERLIN),
        size_chart(list(zip(days, [2.5e12, 4e12, 5e12, 6.1e12, 7.3e12], strict=True)), SIZE, BERLIN),
        size_chart(list(zip(days, [0, 0, 0, 0, 0], strict=True)), SIZE, BERLIN),
        size_chart([(DEC_6 - 3600, 999_000_000_000), (DEC_6, 1_001_000_000_000)], SIZE, BERLIN),  # within a day
        line_chart([(DEC_6 - 8 * DAY, 0.004), (DEC_6, 99_999.0)], "Copying new images", "minutes", BERLIN),
        bar_chart(drills(2, 5, 20 * 60), DRILLS, "images", BERLIN, words="Last tests: two on one day."),
        bar_chart(drills(3, 120_000, DAY / 2), DRILLS, "images", BERLIN),
        bar_chart(drills(60, 12_345, DAY / 2), DRILLS, "images", BERLIN),
        bar_chart([Bar(DEC_6, 20, 0, False, "failed", "the backup drive (usb)")], DRILLS, "images", BERLIN),
    ]


# Each chart's labels that reach outside its drawing or onto another label, as the browser lays them out.
PROBLEMS = """() => [...document.querySelectorAll("svg.chart")].flatMap((svg, i) => {
  const frame = svg.getBoundingClientRect();
  const boxes = [...svg.querySelectorAll("text")].map(t => [t.textContent, t.getBoundingClientRect()]);
  const out = [];
  const outside = b => b.left < frame.left - 0.5 || b.right > frame.right + 0.5
    || b.top < frame.top - 0.5 || b.bottom > frame.bottom + 0.5;
  const px = n => n.toFixed(0);
  for (const [words, b] of boxes) {
    if (outside(b))
      out.push(`chart ${i + 1}: '${words}' is cut off (${px(b.left)}-${px(b.right)}, ${px(b.top)}-${px(b.bottom)})`);
  }
  boxes.forEach(([a, p], j) => boxes.slice(j + 1).forEach(([c, q]) => {
    if (p.left < q.right && q.left < p.right && p.top < q.bottom && q.top < p.bottom)
      out.push(`chart ${i + 1}: '${a}' is drawn on '${c}'`);
  }));
  return out;
})"""


def test_every_chart_label_fits_inside_its_chart_on_a_phone_and_a_desk():
    css = (ROOT / "dashboard" / "pacs_dashboard" / "static" / "dashboard.css").read_text(encoding="utf-8")
    page_html = f'<style>{css}</style><main><div class="charts">{"".join(charts())}</div></main>'
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for size, viewport in SIZES.items():
            page = browser.new_page(viewport=viewport)
            page.set_content(page_html)
            problems += [f"{size}: {problem}" for problem in page.evaluate(PROBLEMS)]
            if not page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1"):
                problems.append(f"{size}: the charts are wider than the screen")
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / f"charts-{size}.png"), full_page=True)
            page.close()
        browser.close()
    assert problems == []
