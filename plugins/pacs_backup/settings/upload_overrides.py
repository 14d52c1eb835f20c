"""Upload timetables changed in the dashboard: overrides of ``*_UPLOAD_LIMIT`` kept in the plugin's state.

The file ``pacs-backup-upload-limits.json`` beside the outbox holds ``{"<copy name>": "<rule>"}`` (rules in
rclone's timetable form, see :mod:`pacs_backup.settings.bandwidth`), owner-only and written atomically.
:class:`UploadLimits` answers the rule in force for a copy (its override, else its ``.env`` rule): restic,
rclone and the cloud PACS sender ask it, so a change applies from their next run without a restart.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import TypedDict

from pacs_backup.contracts.errors import ConfigError, NotFound

from .bandwidth import UNLIMITED, BandwidthSchedule, parse_schedule
from .config import CLOUD_PACS_COPY, Settings

log = logging.getLogger(__name__)

OVERRIDES_FILENAME = "pacs-backup-upload-limits.json"
RULE_NAME = "rule"  # how a refused rule is named in parse_schedule's sentence
MAX_RULE_CHARS = 400


class UploadLimitDoc(TypedDict):
    """One copy's upload timetable in ``GET /backup/upload-limits``."""

    copy: str
    env_rule: str  # from .env ('' when unset: unlimited)
    override: str | None  # set in the dashboard; None when .env's rule holds
    rule: str  # the rule in force ('' when unlimited)
    text: str  # the rule in force as a person reads it
    next_window: float | None  # when uploads are next allowed, if they are not now


def check_rule(rule: str) -> BandwidthSchedule:
    """The timetable in ``rule``; ConfigError with parse_schedule's sentence when it does not parse."""
    if len(rule) > MAX_RULE_CHARS:
        raise ConfigError(f"The rule is longer than {MAX_RULE_CHARS} characters; give fewer entries.")
    return parse_schedule(RULE_NAME, rule)


def read_overrides(path: Path) -> dict[str, str]:
    """The overrides in ``path`` ({} when there is none); entries that do not parse are left out, logged."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        log.error("ignoring the upload timetables set in the dashboard (%s): %s", path, exc)
        return {}
    found: dict[str, str] = {}
    for copy, rule in data.items() if isinstance(data, dict) else ():
        try:
            if isinstance(copy, str) and isinstance(rule, str) and rule.strip():
                check_rule(rule)
                found[copy] = rule.strip()
        except ConfigError as exc:
            log.error("ignoring the upload timetable of %s set in the dashboard: %s", copy, exc)
    return found


def write_overrides(path: Path, overrides: Mapping[str, str]) -> None:
    """Write ``overrides`` to ``path`` atomically, readable by the owner only (0600)."""
    fd, tmp = tempfile.mkstemp(prefix=".upload-limits-", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(dict(sorted(overrides.items())), out, indent=1)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class UploadLimits:
    """The rule in force for each offsite copy: the dashboard's override, else ``.env``'s. Thread-safe."""

    def __init__(self, path: Path, env_rules: Mapping[str, BandwidthSchedule]) -> None:
        self.path = path
        self._env = dict(env_rules)
        self._lock = threading.Lock()
        self._overrides = {c: check_rule(r) for c, r in read_overrides(path).items() if c in self._env}

    def schedule(self, copy: str) -> BandwidthSchedule:
        """The timetable in force for ``copy`` (unlimited for a copy without one)."""
        with self._lock:
            return self._overrides.get(copy) or self._env.get(copy, UNLIMITED)

    def set(self, copy: str, rule: str) -> BandwidthSchedule:
        """Override ``copy``'s rule (an empty rule removes the override); returns the rule now in force.

        NotFound for an unknown copy, ConfigError (parse_schedule's sentence) for a rule that does not parse.
        """
        if copy not in self._env:
            known = ", ".join(self._env) or "none"
            raise NotFound(f"There is no offsite copy {copy!r} with an upload timetable; known: {known}.")
        rule = " ".join(rule.split())
        schedule = check_rule(rule) if rule else None
        with self._lock:
            overrides = {c: s.rule for c, s in self._overrides.items() if c != copy}
            if schedule is not None:
                overrides[copy] = rule
            write_overrides(self.path, overrides)
            if schedule is None:
                self._overrides.pop(copy, None)
            else:
                self._overrides[copy] = schedule
        log.warning("upload timetable of %s set to %r", copy, rule or "the .env rule")
        return self.schedule(copy)

    def docs(self, now: datetime) -> list[UploadLimitDoc]:
        """Each copy's .env rule, override, rule in force and next window."""
        docs: list[UploadLimitDoc] = []
        with self._lock:
            items = [(c, e, self._overrides.get(c)) for c, e in self._env.items()]
        for copy, env, override in items:
            force = override or env
            opens = force.next_window(now)
            docs.append(
                {
                    "copy": copy,
                    "env_rule": "" if env.unlimited else env.rule,
                    "override": None if override is None else override.rule,
                    "rule": "" if force.unlimited else force.rule,
                    "text": force.text,
                    "next_window": None if opens is None else opens.timestamp(),
                }
            )
        return docs


def upload_limits_of(s: Settings) -> UploadLimits:
    """The offsite copies' timetables (restic targets, the cloud PACS): .env's, overridden by the dashboard's."""
    rules = {t.name: t.upload for t in s.targets if not t.drive or not t.upload.unlimited}
    if s.cloud_pacs is not None:
        rules[CLOUD_PACS_COPY] = s.cloud_pacs.upload
    return UploadLimits(s.outbox_path.with_name(OVERRIDES_FILENAME), rules)
