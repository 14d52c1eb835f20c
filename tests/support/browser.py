"""Driving Debian's Chromium with Playwright (headless): the launch arguments, where screenshots go, logging in."""

from __future__ import annotations

import os
import shutil

from playwright.sync_api import Page, expect

from tests.support.common import ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# UPDATE_SCREENSHOTS=1 refreshes the README's pictures; ordinary runs keep theirs in test-artifacts/.
SHOTS = ROOT / "docs" / "screenshots" if os.environ.get("UPDATE_SCREENSHOTS") else ROOT / "test-artifacts"


def log_in(page: Page, dashboard) -> None:
    """Open the dashboard and log in as its user; ends on the health page."""
    page.goto(dashboard.url + "/")
    expect(page).to_have_url(dashboard.url + "/login?next=/")
    page.fill("input[name=username]", dashboard.username)
    page.fill("input[name=password]", dashboard.password)
    page.click("button[type=submit]")
    expect(page.locator("#banner")).to_be_visible()


# axe-core, installed by dev/setup (npm, pinned) into .tools/npm: the accessibility rules run in each page.
AXE = ROOT / ".tools" / "npm" / "node_modules" / "axe-core" / "axe.min.js"
SERIOUS = ("serious", "critical")


def axe_problems(page: Page) -> list[str]:
    """The page's accessibility violations of impact serious or critical, one line each.

    axe is given to the page through the DevTools protocol (page.evaluate), which the page's
    Content-Security-Policy does not govern, so the page is checked exactly as it is served."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        if not AXE.exists():
            raise AssertionError(f"{AXE} is missing: run dev/setup npm")
        page.evaluate(AXE.read_text(encoding="utf-8"))
    found = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations.map(v => ({
             id: v.id, impact: v.impact, help: v.help, where: v.nodes.slice(0, 3).map(n => n.target.join(" "))}))"""
    )
    return [f"{v['id']} ({v['impact']}): {v['help']} at {v['where']}" for v in found if v["impact"] in SERIOUS]


def page_width_problem(page: Page) -> str | None:
    """None when the page fits its viewport's width; else how wide it is and the widest elements."""
    width, view = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    if width <= view:
        return None
    wide = page.evaluate(
        """(view) => [...document.querySelectorAll("body *")].filter(e => e.getBoundingClientRect().right > view)
             .slice(0, 5).map(e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.className && typeof
             e.className === "string" ? "." + e.className.split(" ").join(".") : ""))""",
        view,
    )
    return f"{width} px wide in a {view} px window; too wide: {wide}"


def backed_up_study(orthanc, n: int, **kw: object) -> tuple[str, list[bytes]]:
    """A study of ``n`` images sent to the PACS, copied, in an offsite snapshot and restore-tested."""
    from tests.support.dicomgen import make_study  # pydicom only where a study is made

    uid, files = make_study(n, **kw)
    http = orthanc.http()
    for f in files:
        http.upload(f)
    orthanc.wait_replicated(n)
    assert all(r["state"] == "ok" for r in orthanc.run_job("snapshots"))
    assert all(r["state"] == "ok" for r in orthanc.run_job("drills"))
    return uid, files
