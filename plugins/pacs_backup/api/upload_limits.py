"""Routes for the offsite copies' upload timetables: each copy's rule (``GET /backup/upload-limits``) and a
rule set in the dashboard (``PUT /backup/upload-limits``), kept by :mod:`pacs_backup.settings.upload_overrides`.

A rule that does not parse is refused (400) with the sentence that says why; an empty rule goes back to
``.env``'s. The change applies from each copy's next run (restic, rclone) and at once for the cloud PACS.
"""

from __future__ import annotations

import re
from datetime import datetime

from pacs_backup.contracts.errors import BackupError, BadRequest, ConfigError
from pacs_backup.settings.upload_overrides import MAX_RULE_CHARS, UploadLimits

from . import http_input as check
from .answers import Answer, EngineParts, Request


def _limits(svc: EngineParts) -> UploadLimits:
    if svc.upload_limits is None:
        raise BackupError(svc.config_error or "Backup is disabled (BACKUP_ENABLED=false).")
    return svc.upload_limits


def upload_limits(svc: EngineParts, req: Request, m: re.Match[str]) -> Answer:
    """``{"copies": [UploadLimitDoc]}``: each offsite copy's .env rule, override, rule in force, next window."""
    return 200, {"copies": _limits(svc).docs(datetime.now())}


def set_upload_limit(svc: EngineParts, req: Request, m: re.Match[str]) -> Answer:
    """Set a copy's rule: ``{"copy": name, "rule": "08:00,2Mbit 18:00,off"}`` (an empty rule: .env's)."""
    payload = check.json_object(req.body)
    copy = check.name(check.text_field(payload, "copy", required=True, max_chars=64), "copy") or ""
    rule = check.text_field(payload, "rule", max_chars=MAX_RULE_CHARS) or ""
    limits = _limits(svc)
    try:
        limits.set(copy, rule)
    except ConfigError as exc:
        raise BadRequest(str(exc)) from exc
    except OSError as exc:
        raise BackupError(f"The upload timetable could not be saved in {limits.path.parent}: {exc.strerror}.") from exc
    doc = next(d for d in limits.docs(datetime.now()) if d["copy"] == copy)
    return 200, doc
