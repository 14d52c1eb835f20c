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
