"""What a route handler takes and gives: the checked request, the kinds of answer, and the parts of the running
engine the handlers of other modules use (a Protocol the engine satisfies, so those modules need not import it).

The route table (:mod:`.routes`) and the engine (:mod:`.service`) import this module; it imports neither.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from pacs_backup.replication.referrals import Referral
from pacs_backup.settings.upload_overrides import UploadLimits
from pacs_backup.sources.registry import SourceRegistry

from .access import Role


@dataclass(frozen=True)
class Request:
    """One checked request: method, path under /backup/ (no slashes around), query, raw body, and the
    caller's role (None for a call made inside the plugin, which passes no HTTP headers)."""

    method: str
    path: str
    query: Mapping[str, str]
    body: bytes
    role: Role | None = None


@dataclass(frozen=True)
class Binary:
    """An answer that is not JSON (a preview picture, an instance's bytes)."""

    data: bytes
    mime: str


@dataclass(frozen=True)
class WithHeaders:
    """A JSON answer that also sets HTTP headers (a busy preview's Retry-After)."""

    payload: Any
    headers: Mapping[str, str]


Answer = tuple[int, Any]


class EngineParts(Protocol):
    """The parts of the running engine (api.service.BackupService) that the copies', referrals' and upload
    timetables' routes use."""

    config_error: str | None
    copies: SourceRegistry | None
    referrals: dict[str, Referral]
    upload_limits: UploadLimits | None


PartsHandler = Callable[[EngineParts, Request, "re.Match[str]"], Answer]
