"""Numbers staff can read (issue 29, item 5): the size chart writes its sizes in the unit the data needs
(bytes, kB, MB, GB, TB: decimal, as every size on the dashboard), ticks in plain numbers, every label inside
the chart; a restore test's figures come from one place, so the light and the chart beside it say the same,
name the copy, and two tests on one day are told apart."""

from __future__ import annotations

import html as htmllib
import re
import time
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pacs_dashboard.charts import Bar, bar_chart, line_chart
from pacs_dashboard.light import GREEN
from tests.support.dashboard_fakes import drill_run, healthy_status

BERLIN = ZoneInfo("Europe/Berlin")
SIZE = "Size of the backed-up images"
DRILLS = "Restore tests: images checked in each test"

# Text widths in em as DejaVu Sans draws them (the widest common system-ui font, Debian's Chromium's), measured
# there and rounded up: digits 0.64 em, lower case about 0.6, bold 9% wider. Narrower in every other font.
_NARROW = set(" .,:;'!|()[]ijlrtf-")


def width(text: str, px: float, bold: bool) -> float:
    em = sum(
        0.36 if c in _NARROW else 1.0 if c in "mwMW" else 0.72 if c.isupper() else 0.62 if c.islower() else 0.65
        for c in htmllib.unescape(text)
    )
    return em * px * (1.1 if bold else 1.0)


def figure(page: str, caption: str) -> str:
    """The ``<figure>`` of the chart with that caption."""
    for part in page.split("<figure")[1:]:
        if f"<figcaption>{caption}</figcaption>" in part:
            return part.split("</figure>")[0]
    raise AssertionError(f"no chart {caption!r} on the page")


def labels(svg: str) -> list[tuple[float, str, str, str]]:
    """Each ``<text>`` of a chart: x, anchor, class and words."""
    out = []
    for attrs, words in re.findall(r"<text([^>]*)>([^<]*)</text>", svg):
        x = float(re.search(r' x="([-\d.]+)"', attrs)[1])
        anchor = (re.search(r'text-anchor="(\w+)"', attrs) or [None, "start"])[1]
        cls = re.search(r'class="(\w+)"', attrs)[1]
        out.append((x, anchor, cls, htmllib.unescape(words)))
    return out


def cut_off(svg: str) -> list[str]:
    """Labels that do not fit inside the chart. The SVG scales with its viewBox to the width of its box, so a
    label that fits the viewBox fits a 390 px phone and a desk alike (its font scales with the drawing)."""
    view = float(re.search(r'viewBox="0 0 ([\d.]+) [\d.]+"', svg)[1])
    out = []
    for x, anchor, cls, words in labels(svg):
        w = width(words, 14 if cls == "v" else 13, bold=cls == "v")  # .chart .v and .axis in dashboard.css
        left = x - w if anchor == "end" else x - w / 2 if anchor == "middle" else x
        if left < 0 or left + w > view:
            out.append(f"{words!r} from {left:.0f} to {left + w:.0f} (the chart is 0 to {view:.0f})")
    return out


def words_of(svg: str) -> str:
    return " ".join(w for *_, w in labels(svg))


def axis_numbers(svg: str) -> list[str]:
    return [w for _, anchor, cls, w in labels(svg) if cls == "axis" and anchor == "end"]


def size_chart_for(app, logged_in, sizes: list[float]) -> str:
    db = app.extensions["db"]
    now = time.time()
    for i, n in enumerate(sizes):
        db.add_sample(now - (len(sizes) - i) * 86400, {"bytes": n, "lag_p99": 60})
    return figure(logged_in.get("/").get_data(as_text=True), SIZE)


def scientific(html: str) -> bool:
    """A number like 4.54e-05 in what is read: the words, and the chart's summary read aloud."""
    read = re.sub(r"<[^>]+>", " ", html) + " ".join(re.findall(r'aria-label="([^"]*)"', html))
    return re.search(r"\d[eE][+-]?\d", read) is not None


def plain(numbers: list[str]) -> bool:
    return all(re.fullmatch(r"\d+(\.\d+)?", n) for n in numbers)


# --- the size chart -------------------------------------------------------------------------------------
def test_numbers_size_chart_of_a_few_kilobytes_says_kb_in_plain_numbers_that_fit(app, logged_in):
    svg = size_chart_for(app, logged_in, [2_000, 3_500, 4_540])
    words = words_of(svg)
    assert not scientific(svg) and "GB" not in words
    assert "kB" in words and "4.5 kB on" in words  # the axis's unit, and the newest size written
    assert plain(axis_numbers(svg)) and axis_numbers(svg)[0] == "0"
    assert cut_off(svg) == []


def test_numbers_size_chart_of_several_terabytes_says_tb(app, logged_in):
    svg = size_chart_for(app, logged_in, [2.5e12, 4e12, 7.3e12])
    words = words_of(svg)
    assert "TB" in words and "7.3 TB on" in words and "GB" not in words and not scientific(svg)
    assert plain(axis_numbers(svg)) and all(float(n) < 1000 for n in axis_numbers(svg))
    assert cut_off(svg) == []


def test_numbers_size_chart_of_nothing_backed_up_yet_says_zero(app, logged_in):
    svg = size_chart_for(app, logged_in, [0, 0, 0])
    words = words_of(svg)
    assert "0 bytes on" in words and "nan" not in svg.lower() and not scientific(svg)
    assert plain(axis_numbers(svg)) and len(set(axis_numbers(svg))) == len(axis_numbers(svg))  # 0, 1, 2: not 0, 0, 0
    assert cut_off(svg) == []


def test_numbers_size_chart_with_one_sample_writes_that_size(app, logged_in):
    box = size_chart_for(app, logged_in, [45_400])
    assert "Not enough data yet" in box and "45.4 kB" in box and not scientific(box)


def test_numbers_ticks_are_nice_plain_and_fit_for_any_size():
    # From one byte to a petabyte, and minutes from seconds to weeks: no 1.23e+04, no label cut off.
    from pacs_dashboard.charts import size_chart

    for top in (1, 999, 1_001, 45_400, 9.99e8, 1e9, 3.3e10, 7.3e12, 2.2e15):
        svg = size_chart([(0.0, top // 3), (86400.0, top)], SIZE, BERLIN)
        assert not scientific(svg) and plain(axis_numbers(svg)), (top, axis_numbers(svg))
        assert cut_off(svg) == [], top
    for minutes in (0.004, 0.5, 7.25, 99_999.0):
        svg = line_chart([(0.0, 0.0), (86400.0, minutes)], "Copying", "minutes", BERLIN)
        assert not scientific(svg) and plain(axis_numbers(svg)), (minutes, axis_numbers(svg))
        assert cut_off(svg) == [], minutes


# --- restore tests: one set of figures, each copy named, each test told apart ---------------------------------
def yesterday(hour: int, minute: int) -> float:
    day = datetime.now(BERLIN).date() - timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=BERLIN).timestamp()


def two_copies_tested(backend, bucket: int, offsite: int) -> tuple[Any, Any]:
    """The local backup copy tested at 13:00 and the offsite copy at 13:20 yesterday: in the status (the
    light) and in the run list (the chart)."""
    now = time.time()
    local = drill_run(now, bucket, id=11, target="minio", finished_at=yesterday(13, 0))
    away = drill_run(now, offsite, id=12, target="offsite", finished_at=yesterday(13, 20))
    backend.status_value = healthy_status()
    backend.status_value["offsite"]["minio"]["last_drill"] = local
    backend.status_value["offsite"]["offsite"]["last_drill"] = away
    backend.run_list = [away, local]  # newest first, as the plugin lists them
    return local, away


def drill_light_of(page: str) -> str:
    section = re.search(r'<section class="light (\w+)[^"]*" data-key="drill">(.*?)</section>', page, re.S)
    assert section is not None
    return section[1] + ": " + htmllib.unescape(" ".join(re.sub(r"<[^>]+>", " ", section[2]).split()))


def test_numbers_the_restore_test_light_and_chart_say_the_same_figures_for_each_copy(logged_in, backend):
    two_copies_tested(backend, bucket=5, offsite=3)
    page = logged_in.get("/").get_data(as_text=True)
    light, chart = drill_light_of(page), htmllib.unescape(figure(page, DRILLS))
    assert light.startswith(GREEN)
    for said in ("5 of 5 images identical in the local backup copy", "3 of 3 images identical in the offsite copy"):
        assert said in light and said in chart, said
    sentence = re.search(r"Last tests?: [^.]*\.", light)
    assert sentence is not None and sentence[0] in chart  # word for word
    assert "8 of 8" not in page  # never a sum over two copies


def test_numbers_the_light_and_the_chart_read_each_test_from_one_place():
    from pacs_dashboard.drill_figures import figures
    from pacs_dashboard.drill_light import drill_light
    from pacs_dashboard.light import DEFAULT_TARGETS
    from pacs_dashboard.views.status import _drill_bar

    now = time.time()
    summary = {"checked": 20, "identical": 19, "repaired": 1, "mismatches": []}
    run = drill_run(now, 20, target="minio", summary=summary)
    bar = _drill_bar(figures(run))
    light = drill_light({"minio": {"last_drill": run}}, now, DEFAULT_TARGETS, BERLIN)
    assert bar.text == "19 of 20 images identical, 1 repaired" == figures(run).words  # as the Restore tests page
    assert bar.text + " in the local backup copy" in light.advice
    assert (bar.value, bar.part) == (20, 19)  # the repaired image is not drawn as identical


def test_numbers_two_restore_tests_on_one_day_are_told_apart(logged_in, backend):
    two_copies_tested(backend, bucket=5, offsite=5)
    svg = figure(logged_in.get("/").get_data(as_text=True), DRILLS)
    tips = [htmllib.unescape(t) for t in re.findall(r"<title>([^<]*)</title>", svg)]
    assert len(set(tips)) == 2, tips  # one bar each, not two alike
    assert "13:00, the local backup copy: 5 of 5 images identical" in tips[0]
    assert "13:20, the offsite copy: 5 of 5 images identical" in tips[1]
    under = [w for _, anchor, cls, w in labels(svg) if cls == "axis" and anchor != "end" and ":" in w]
    assert len(under) == 2 and under[0] != under[1] and under[0].endswith("13:00"), under  # the time under each bar
    assert cut_off(svg) == []


def test_numbers_restore_test_chart_labels_fit_with_big_counts_and_many_tests():
    day = 86400.0
    for n, checked in ((1, 1), (2, 120_000), (3, 5), (30, 12_345), (60, 20)):
        bars = [Bar(i * day / 2, checked, checked, True, f"{checked} of {checked} images identical") for i in range(n)]
        svg = bar_chart(bars, DRILLS, "images", BERLIN)
        assert plain(axis_numbers(svg)) and cut_off(svg) == [], (n, checked, cut_off(svg))
        assert all(float(t).is_integer() for t in axis_numbers(svg)), axis_numbers(svg)  # no half an image
