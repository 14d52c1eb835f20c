"""Every staff page on a desk and on a phone, in a real browser: it fits the screen's width (no sideways
scrolling), has one main heading, and axe-core finds no serious or critical accessibility problem.
A screenshot of each is kept (docs/screenshots with UPDATE_SCREENSHOTS=1, else test-artifacts)."""

from __future__ import annotations

from playwright.sync_api import Page, sync_playwright

from tests.support.browser import ARGS, CHROMIUM, SHOTS, axe_problems, backed_up_study, log_in, page_width_problem

ALERTS_ON = {"APPRISE_URLS": "json://127.0.0.1:9/"}
SIZES = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}

# One line per page: (screenshot name, address, logged in, button pressed there first or None).
# {study} is the test study's address, {user} the logged-in user. A new page is one more line here.
PAGES = [
    ("login", "/login", False, None),
    ("health", "/", True, None),
    ("search", "/studies?q=BELLA", True, None),
    ("study", "/studies/{study}", True, None),
    ("restore-confirm", "/studies/{study}/restore?source=minio", True, None),
    ("restore-tests", "/drills", True, None),
    ("drives", "/drives", True, None),
    ("audit", "/audit", True, None),
    ("settings", "/settings", True, None),
    ("password", "/account/password", True, None),
    ("account", "/account", True, None),
    ("users", "/users", True, None),
    ("user-edit", "/users/edit?name={user}", True, None),
    ("alerts", "/alerts", True, None),
    ("guide", "/guide", True, None),
    ("monthly-report", "/reports/restore-tests", True, None),
    # Pages reached by pressing a button: the 2-step setup, a check's result, a restore's progress.
    ("two-step-setup", "/account", True, "text=Turn on 2-step login"),
    ("check-result", "/studies/{study}", True, "#check-pacs"),
    ("restore-progress", "/studies/{study}/restore?source=minio", True, "#confirm-restore"),
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
            for name, path, logged_in, press in PAGES:
                page = (staff if logged_in else anonymous).new_page()
                response = page.goto(d.url + path.format(study=uid, user=d.username))
                assert response is not None and response.ok, f"{name}: {path} answered {response and response.status}"
                if press is not None:
                    if name == "two-step-setup":  # turning 2-step login on asks for the password first
                        page.fill("#two-step-start input[name=password]", d.password)
                    with page.expect_navigation():
                        page.click(press)
                    assert page.url != d.url + path.format(study=uid, user=d.username), f"{name}: {press} led nowhere"
                page.wait_for_load_state("load")
                problems += problems_of(page, name, size)
                page.close()
            staff.close()
            anonymous.close()
        browser.close()
    assert not problems, "\n".join(problems)
