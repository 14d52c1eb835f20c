"""The audit log in words: what each action means as a sentence staff can read, and each entry's detail with
the identifiers people cannot read (UIDs, run numbers, long ids) set apart as technical details.

Pure functions; the page and the CSV export are views/audit.py.
"""

from __future__ import annotations

import ast
import re
import threading
import time
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import tzinfo

from .timefmt import when

# What each action means, as a sentence staff can read; the CSV export keeps the action's own name.
ACTIONS = {
    "login": "Logged in",
    "login_failed": "Tried to log in: wrong username, password or code",
    "login_throttled": "Tried to log in too often: asked to wait",
    "login_refused": "Login refused",
    "logout": "Logged out",
    "setup_failed": "First setup refused: wrong setup token",
    "password_changed": "Changed their password",
    "password_change_failed": "Tried to change their password: the current password was wrong",
    "two_step_on": "Turned on 2-step login",
    "two_step_off": "Turned off 2-step login",
    "two_step_off_failed": "Tried to turn off 2-step login: wrong password",
    "two_step_replaced": "Moved 2-step login to a new phone",
    "two_step_change_failed": "Tried to change 2-step login: wrong password or code",
    "two_step_notice_failed": "The e-mail about a 2-step login change could not be sent",
    "user_created": "Added a user",
    "user_removed": "Removed a user",
    "user_role_changed": "Changed what a user may do",
    "user_password_set": "Set a new password for a user",
    "user_two_step_off": "Turned off 2-step login for a user",
    "settings_changed": "Changed the settings",
    "rclone_config_saved": "Saved the cloud storage configuration",
    "rclone_config_refused": "Cloud storage configuration refused",
    "upload_limit_saved": "Changed when an offsite copy may upload, and how fast",
    "upload_limit_refused": "Upload timetable refused",
    "restore_requested": "Asked to restore a study into the PACS",
    "restore_queued": "Asked to restore a study once the PACS answers again",
    "restore_refused": "A waiting restore was refused",
    "pacs_check_requested": "Asked to check a study in the PACS against the backup",
    "copy_viewed": "Opened a study from a backup copy (DICOMweb)",
    "study_exported": "Downloaded a study as a ZIP",
    "study_sent": "Sent a study to a referring clinic",
    "study_export_failed": "A study could not be downloaded: a copy of it is damaged",
    "drill_requested": "Started a restore test",
    "snapshot_requested": "Started an offsite copy",
    "drive_prepared": "Prepared a new backup drive",
    "drive_prepare_refused": "A backup drive could not be prepared",
    "drive_prepare_failed": "Preparing a backup drive failed",
    "audit_exported": "Downloaded the audit log",
    "alert_address_added": "Added an alert address",
    "alert_address_changed": "Changed an alert address",
    "alert_address_removed": "Removed an alert address",
    "alert_addresses_removed": "Removed all stored alert addresses",
    "alert_test": "Sent a test alert",
    "alert_raised": "An alert was sent",
    "alert_cleared": "An alert was cleared",
    "summary_changed": "Changed the summary e-mail",
    "summary_sent": "The summary e-mail was sent",
    "heartbeat_changed": "Set the heartbeat address",
    "heartbeat_removed": "Removed the heartbeat address",
    "heartbeat_failed": "The heartbeat call did not work",
}
# The settings page's fields, as its labels say them.
SETTING_WORDS = {
    "replication_minutes": "local copy within (minutes)",
    "offsite_hours": "offsite copy at most (hours old)",
    "drill_hours": "restore test at least every (hours)",
    "disk_warn_percent": "warn when the PACS disk is (% full)",
}
# Ids people cannot read: DICOM UIDs (1.2.840...), run numbers, long hexadecimal ids.
_IDS = re.compile(r"\b(?:study|series)? ?\d+(?:\.\d+){3,}\b|\bruns \[[\d, ]*\]|\b(?:snapshot|backup id) [0-9a-f]{8,}\b")


@dataclass(frozen=True)
class Entry:
    """One line of the audit log as the page shows it."""

    when: str
    user: str
    address: str
    action: str  # the action's own name, kept for technicians and the CSV
    what: str  # the action in words
    detail: str  # the detail with ids taken out
    technical: str  # the ids, shown under "Technical details"


def action_words(action: str) -> str:
    """The action as a sentence; an action this table does not know reads as its name in words."""
    return ACTIONS.get(action) or (action.replace("_", " ").strip().capitalize() or "Something happened")


def _settings_words(detail: str) -> str | None:
    """``{'drill_hours': 24.0}`` as ``restore test at least every (hours): 24``; None when not such a dict."""
    try:
        changed = ast.literal_eval(detail)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if not isinstance(changed, dict):
        return None
    if not changed:
        return "Nothing was changed."
    return "; ".join(f"{SETTING_WORDS.get(str(k), str(k).replace('_', ' '))}: {_plain(v)}" for k, v in changed.items())


def _plain(value: object) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def readable(action: str, detail: str) -> tuple[str, str]:
    """``(words, technical)``: the detail without the ids staff cannot read, and those ids."""
    detail = detail or ""
    if action == "settings_changed" and (words := _settings_words(detail)) is not None:
        return words, ""
    ids = [m.group(0).strip() for m in _IDS.finditer(detail)]
    words = _IDS.sub(lambda m: "a study" if m.group(0).startswith("study") else "", detail)
    words = re.sub(r"\bfrom minio\b", "from the local backup copy", words).replace("()", "")
    words = re.sub(r"\s{2,}", " ", words).strip(" :;,")
    return words, "; ".join(ids)


def entry(row: tuple[object, ...], tz: tzinfo) -> Entry:
    at, user, address, action, detail = row
    words, technical = readable(str(action), str(detail or ""))
    return Entry(
        when(float(str(at)), tz),
        str(user or ""),
        str(address or ""),
        str(action),
        action_words(str(action)),
        words,
        technical,
    )


class OncePer:
    """Which things were just audited: :meth:`first` is true for a key not seen within ``seconds`` (one audit
    line per user and study a viewer opens, not one per frame it asks). Thread-safe; forgets all past ``keep``."""

    def __init__(self, seconds: float, keep: int = 4096) -> None:
        self.seconds, self.keep = seconds, keep
        self._lock = threading.Lock()
        self._seen: dict[Hashable, float] = {}

    def first(self, key: Hashable) -> bool:
        now = time.monotonic()
        with self._lock:
            last = self._seen.get(key)
            if last is not None and now - last < self.seconds:
                return False
            if len(self._seen) > self.keep:
                self._seen.clear()
            self._seen[key] = now
            return True
