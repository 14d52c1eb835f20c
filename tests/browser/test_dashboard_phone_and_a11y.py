"""Every staff page on a desk and on a phone, in a real browser: it fits the screen's width (no sideways
scrolling), has one main heading, and axe-core finds no serious or critical accessibility problem.
A screenshot of each is kept (docs/screenshots with UPDATE_SCREENSHOTS=1, else test-artifacts)."""

from __future__ import annotations

from playwright.sync_api import Page, sync_playwright

from tests.support.browser import ARGS, CHROMIUM, SHOTS, axe_problems, backed_up_study, log_in, page_width_problem

ALERTS_ON = {"APPRISE_URLS": "json://127.0.0.1:9/"}
SIZES = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}

# One line per page: (screenshot name, address, logged in). {study} is the test study's address.
# A new page is one more line here.
PAGES = [
    ("login", "/login", False),
    ("health", "/", True),
    ("search", "/studies?q=BELLA", True),
    ("study", "/studies/{study}", True),
    ("restore-confirm", "/studies/{study}/restore?source=minio", True),
    ("restore-tests", "/drills", True),
    ("drives", "/drives", True),
    ("audit", "/audit", True),
    ("settings", "/settings", True),
    ("password", "/account/password", True),
    ("account", "/account", True),
    ("users", "/users", True),
    ("alerts", "/alerts", True),
    ("guide", "/guide", True),
    ("monthly-report", "/reports/restore-tests", True),
]


def problems_of(page: Page, name: str, size: str) -> list[str]:
    out = []
    if (wide := page_width_problem(page)) is not None:
        out.append(f"{name} ({size}): {wide}")
    headings = page.locator("h1").count()
    if headings != 1:
        out.append(f"{name} ({size}): {headings} <h1> headings, not 1")
    out += [f"{name} ({size}): {p}" for p in axe_problems(page)]
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}-{size}.png"))  # the viewport: small files
    return out


def test_every_staff_page_fits_a_phone_and_passes_axe(orthanc, dashboard_factory):
    uid, _ = backed_up_study(
        orthanc, 3, rows=64, cols=64, patient_name="BELLA^DOG", patient_id="VET-1042", accession="XR-2231"
    )
    d = dashboard_factory(orthanc, ALERTS_ON)

    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for size, viewport in SIZES.items():
            anonymous = browser.new_context(viewport=viewport)
            staff = browser.new_context(viewport=viewport)
            log_in(staff.new_page(), d)
            for name, path, logged_in in PAGES:
                page = (staff if logged_in else anonymous).new_page()
                response = page.goto(d.url + path.format(study=uid))
                assert response is not None and response.ok, f"{name}: {path} answered {response and response.status}"
                page.wait_for_load_state("load")
                problems += problems_of(page, name, size)
                page.close()
            staff.close()
            anonymous.close()
        browser.close()
    assert not problems, "\n".join(problems)
