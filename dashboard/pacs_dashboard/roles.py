"""Who may open what: the three roles and, for every page and API, the roles allowed to use it.

Checked for every request in one place (security.install, right after login). An endpoint missing
from ALLOWED is for administrators only, so a page added later is safe until someone decides who
else may see it.
"""

from __future__ import annotations

from typing import Final, Literal

Role = Literal["admin", "staff", "monitor"]
ADMIN: Final = "admin"
STAFF: Final = "staff"
MONITOR: Final = "monitor"
ROLES: Final[tuple[Role, ...]] = (ADMIN, STAFF, MONITOR)

# Shown on the Users page next to each choice.
ROLE_WORDS: Final[dict[Role, str]] = {
    ADMIN: "Administrator: everything, including users, settings and the audit log",
    STAFF: "Staff: find, open and restore studies, run restore tests, see health and backup drives",
    MONITOR: "Monitor: read-only health, restore-test history and reports; for monitoring tools",
}

_EVERYONE: frozenset[Role] = frozenset(ROLES)
_STAFF_AND_ADMIN: frozenset[Role] = frozenset({ADMIN, STAFF})

# Endpoint -> roles allowed besides administrators (who may open everything).
ALLOWED: Final[dict[str, frozenset[Role]]] = {
    # one's own account: log out, change one's password, turn one's own 2-step login on or off
    "auth.logout": _EVERYONE,
    "auth.change_password": _EVERYONE,
    "accounts.account": _EVERYONE,
    "accounts.two_step_start": _EVERYONE,
    "accounts.two_step": _EVERYONE,
    "accounts.two_step_self_off": _EVERYONE,
    # read-only: health, status for monitoring tools, restore-test history, reports
    "status.index": _EVERYONE,
    "status.api_status": _EVERYONE,
    "status.metrics": _EVERYONE,
    "drills.history": _EVERYONE,
    "reports.staff_guide": _EVERYONE,
    "reports.restore_test_report": _EVERYONE,
    # studies (patient data) and restores
    "studies.search": _STAFF_AND_ADMIN,
    "studies.detail": _STAFF_AND_ADMIN,
    "studies.preview": _STAFF_AND_ADMIN,
    "studies.backup_picture": _STAFF_AND_ADMIN,
    "studies.restore": _STAFF_AND_ADMIN,
    "studies.job": _STAFF_AND_ADMIN,
    "studies.api_run": _STAFF_AND_ADMIN,
    "restores.waiting": _STAFF_AND_ADMIN,
    "restores.api_waiting": _STAFF_AND_ADMIN,
    "restores.check": _STAFF_AND_ADMIN,
    "restores.check_page": _STAFF_AND_ADMIN,
    "restores.api_check": _STAFF_AND_ADMIN,
    "drills.run_now": _STAFF_AND_ADMIN,
    "drives.view": _STAFF_AND_ADMIN,
    # every copy as a read-only DICOMweb service (also by HTTP basic authentication, for a technician's viewer)
    "copies.sources": _STAFF_AND_ADMIN,
    "copies.dicomweb": _STAFF_AND_ADMIN,
    # a study from any copy as a ZIP (DICOM files with a DICOMDIR, pictures, a README)
    "exports.export": _STAFF_AND_ADMIN,
    "referrals.send": _STAFF_AND_ADMIN,  # with "may share studies", as exports (views/referrals.py checks it)
    # the study viewer (its files, npm's viewer, are public: security.PUBLIC_ENDPOINTS)
    "viewer.page": _STAFF_AND_ADMIN,
    # share links: staff whose account also has "may share studies" (views/shares.py checks it)
    "shares.make": _STAFF_AND_ADMIN,
    "shares.listing": _STAFF_AND_ADMIN,
    "shares.revoke": _STAFF_AND_ADMIN,
    # group mode (views/group_pages.py): each page shows only the clinics granted to the account (group/grants.py)
    "group_pages.overview": _EVERYONE,
    "group_pages.api_overview": _EVERYONE,
    "group_pages.studies": _STAFF_AND_ADMIN,
    "group_pages.view": _STAFF_AND_ADMIN,
    "group_pages.dicomweb": _STAFF_AND_ADMIN,
    "group_pages.delivery_list": _STAFF_AND_ADMIN,
}

# What a refused user tried to do, for the refusal's sentence: by endpoint, else by blueprint.
_DOING: Final = {
    "drills.run_now": "run restore tests",
    "drives.prepare": "prepare backup drives",
    "drives": "see the backup drives",
    "settings": "change settings",
    "alerts": "change alerts",
    "accounts": "manage users",
    "audit": "see the audit log",
    "studies": "open or restore studies",
    "copies": "open studies from the backup copies",
    "viewer": "view studies",
    "restores": "open or restore studies",
    "exports": "download studies",
    "referrals": "send studies to referring clinics",
    "shares": "share studies",
    "group_pages.set_clinics": "choose which clinics an account may see",
    "group_pages": "search, view or bring studies of the group's clinics",
}


def role_of(text: str | None) -> Role | None:
    """``text`` as a role, or None when it names none (a form's value, a column's)."""
    for role in ROLES:
        if text == role:
            return role
    return None


def allowed(role: str | None, endpoint: str) -> bool:
    """Whether a user with ``role`` may use ``endpoint`` (an unknown role may use nothing)."""
    if role == ADMIN:
        return True
    return role is not None and role in ALLOWED.get(endpoint, frozenset())


def refusal(role: str | None, endpoint: str) -> str:
    """The sentence a refused user reads."""
    doing = _DOING.get(endpoint) or _DOING.get(endpoint.split(".", 1)[0]) or "open this page"
    return f"Your account ({role or 'no role'}) cannot {doing}. Ask the clinic's administrator."
