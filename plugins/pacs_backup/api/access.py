"""Who may call the plugin's routes, and from where.

Orthanc checks the password (HTTP basic authentication) before a request reaches the plugin; the plugin
then reads the user name from the ``Authorization`` header and gives it a role from ``BACKUP_ROLES``
(``user:role,user:role``). Each route names the least role it needs (see ``routes.ROUTES``):

- ``monitor``: health and run history, no patient data (a monitoring tool);
- ``staff``: also find, open and restore studies, start snapshots and restore tests;
- ``service``: the dashboard's own Orthanc account: also what the dashboard's administrators do through
  it (prepare drives, the cloud storage settings); the dashboard checks its own users' roles;
- ``admin``: everything (the technician scripts): also the quarantine.

An Orthanc user ``BACKUP_ROLES`` does not name has no role and may call no route: an Orthanc account made
for a viewer, a modality or a DICOMweb client must not list every patient or start restores. Without
``BACKUP_ROLES``, an Orthanc with exactly one registered user (make run, Compose and the tests set it up
so) gives that user ``admin``; with several users nobody has a role until the installer says who does.

A POST or PUT must also be JSON (``Content-Type: application/json``, 415 otherwise) and come from no web
page of another site: a browser that remembers the Orthanc password would otherwise send a cross-site
form (``text/plain``) with it. ``Sec-Fetch-Site`` (sent by browsers, not settable by a page) must be
``same-origin`` or ``none``; without it, an ``Origin`` header must name the request's own host.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from urllib.parse import urlsplit

from pacs_backup.contracts.errors import ConfigError

log = logging.getLogger(__name__)


class Role(IntEnum):
    """The roles, least first: each may do what the ones before it may."""

    MONITOR = 1
    STAFF = 2
    SERVICE = 3
    ADMIN = 4

    @property
    def word(self) -> str:
        return self.name.lower()


ROLE_WORDS = {r.word: r for r in Role}
WRITE_METHODS = frozenset({"POST", "PUT", "DELETE", "PATCH"})
EXAMPLE = "BACKUP_ROLES=clinic:admin,dashboard:service,reception:staff,nagios:monitor"


@dataclass(frozen=True)
class Access:
    """The user -> role map, or why nobody can be given a role."""

    roles: Mapping[str, Role] = field(default_factory=dict)
    problem: str | None = None  # a sentence: BACKUP_ROLES is wrong, or Orthanc does not check passwords
    # Orthanc answers this machine only and asks no password (Debian's own default): whoever reaches it
    # already reads every patient through Orthanc itself, so the backup's routes give them the admin role.
    local_only: bool = False

    def role_of(self, user: str | None) -> Role | None:
        if self.problem:
            return None
        if self.local_only:
            return Role.ADMIN
        return None if user is None else self.roles.get(user)


def parse_roles(raw: str) -> dict[str, Role]:
    """``user:role,user:role`` -> {user: Role}; ConfigError naming BACKUP_ROLES otherwise."""
    roles: dict[str, Role] = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        user, colon, word = part.rpartition(":")
        role = ROLE_WORDS.get(word.strip().lower())
        user = user.strip()
        if not colon or not user or role is None:
            raise ConfigError(
                f"BACKUP_ROLES has {part[:60]!r}; write user:role pairs separated by commas, each role one of "
                f"{', '.join(ROLE_WORDS)} (e.g. {EXAMPLE})."
            )
        if roles.get(user, role) != role:
            raise ConfigError(f"BACKUP_ROLES gives {user!r} two roles; give each Orthanc user one role.")
        roles[user] = role
    return roles


def orthanc_checks_passwords(config: Mapping[str, object]) -> bool:
    """Whether Orthanc authenticates every request (so the user in ``Authorization`` is who called).

    Orthanc's rule: AuthenticationEnabled when set; unset, it is on only when RemoteAccessAllowed is."""
    enabled = config.get("AuthenticationEnabled")
    if isinstance(enabled, bool):
        return enabled
    return config.get("RemoteAccessAllowed") is True


def load_access(env: Mapping[str, str], config_json: str) -> Access:
    """The role map from BACKUP_ROLES and Orthanc's configuration (its registered users). Never raises:
    a problem is kept as a sentence that every refused request answers (and is logged once here)."""
    try:
        config = json.loads(config_json or "{}")
    except ValueError:
        config = {}
    config = config if isinstance(config, dict) else {}
    users = config.get("RegisteredUsers")
    registered = sorted(users) if isinstance(users, dict) else []
    if not orthanc_checks_passwords(config):
        if config.get("RemoteAccessAllowed") is not True:
            log.warning(
                "Orthanc asks no password and answers this machine only: every caller of the backup's routes "
                "has the admin role; set AuthenticationEnabled and BACKUP_ROLES to give roles"
            )
            return Access(local_only=True)
        problem = (
            "Orthanc does not check passwords (AuthenticationEnabled is off), so the backup cannot tell who "
            "is calling and answers nobody; set AuthenticationEnabled to true in Orthanc's configuration."
        )
        log.error("%s", problem)
        return Access(problem=problem)
    raw = (env.get("BACKUP_ROLES") or "").strip()
    try:
        roles = parse_roles(raw)
    except ConfigError as exc:
        log.error("nobody may use the backup's routes: %s", exc)
        return Access(problem=str(exc))
    if not raw and len(registered) == 1:
        roles = {registered[0]: Role.ADMIN}  # the appliance's single account (make run, Compose)
    unknown = sorted(u for u in roles if registered and u not in registered)
    if unknown:
        log.warning("BACKUP_ROLES names %s, not among Orthanc's RegisteredUsers", ", ".join(unknown))
    return Access(roles=roles)


def user_of(headers: Mapping[str, str]) -> str | None:
    """The user name of a basic ``Authorization`` header (Orthanc has checked its password), or None."""
    value = headers.get("authorization", "").strip()
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, colon, _ = decoded.partition(":")
    return user if colon and user else None


def _needs(role: Role) -> str:
    return {
        Role.MONITOR: "any backup role",
        Role.STAFF: "the staff role (or higher)",
        Role.SERVICE: "the dashboard's service role or admin",
        Role.ADMIN: "the admin role",
    }[role]


def role_refusal(access: Access, user: str | None, needed: Role) -> str | None:
    """Why ``user`` may not call a route that needs ``needed`` (a 403 sentence), or None."""
    if access.problem:
        return f"The backup answers nobody: {access.problem}"
    role = access.role_of(user)
    if role is not None and role >= needed:
        return None
    if user is None:
        return "Log in to Orthanc with a user name and password (basic authentication) to use the backup."
    if role is None:
        return (
            f"Orthanc user {user!r} has no role for the backup; the installer gives roles in BACKUP_ROLES "
            f"(e.g. {EXAMPLE})."
        )
    return f"Orthanc user {user!r} has the {role.word} role; this needs {_needs(needed)}."


def _media_type(headers: Mapping[str, str]) -> str:
    return headers.get("content-type", "").split(";", 1)[0].strip().lower()


def cross_site_refusal(headers: Mapping[str, str]) -> str | None:
    """Why a POST/PUT looks sent by a page of another site (a 403 sentence), or None."""
    fetch_site = headers.get("sec-fetch-site", "").strip().lower()
    if fetch_site:
        if fetch_site in ("same-origin", "none"):
            return None
        return f"Refused: the browser says this request came from another site ({fetch_site[:20]})."
    origin = headers.get("origin", "").strip()
    if not origin:
        return None  # not a browser's cross-site request (scripts, the dashboard's server)
    host = headers.get("host", "").strip().lower()
    try:
        origin_host = urlsplit(origin).netloc.lower()
    except ValueError:
        origin_host = ""
    if host and origin_host == host:
        return None
    return f"Refused: this request came from a page of another site ({origin[:80]!r}), not from {host[:80] or 'here'}."


def body_refusal(headers: Mapping[str, str]) -> str | None:
    """Why a POST/PUT's body is not accepted (a 415 sentence), or None."""
    media = _media_type(headers)
    if media == "application/json":
        return None
    return f"Send JSON with Content-Type: application/json (this request said {media[:60] or 'nothing'!r})."
