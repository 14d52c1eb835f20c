"""How long every copy keeps a study: one rule, in years from the study date.

``BACKUP_RETENTION_YEARS`` is the clinic's own number and always wins. ``BACKUP_RETENTION_PRESET`` names a
jurisdiction from :data:`PRESETS`, each with its years and where the number comes from; a preset whose
number we cannot source asks the clinic for its own. With neither set, :data:`DEFAULT_YEARS` applies.
No prune removes a study's last copy before :meth:`RetentionRule.keep_until` of its date.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from pacs_backup.contracts.documents import RetentionDoc
from pacs_backup.contracts.errors import ConfigError

from .env_values import parse_number, raw

DEFAULT_YEARS = 7  # the long end of what veterinary record rules commonly ask (3 to 7 years)
ASK = "check with your professional body (veterinary board or chamber) and set BACKUP_RETENTION_YEARS"


@dataclass(frozen=True)
class Preset:
    """One jurisdiction: its years (None: we know of no single number) and where that comes from."""

    years: int | None
    source: str


PRESETS: dict[str, Preset] = {
    "california": Preset(
        3,
        "California Code of Regulations, title 16, section 2032.3: veterinary records are kept at least three "
        "years after the animal's last visit (a later visit makes that later: add a margin or set your own)",
    ),
    "england-wales": Preset(
        6,
        "Limitation Act 1980, sections 2 and 5: six years to bring a claim in tort or contract; the RCVS sets "
        "no fixed period, so " + ASK + " if you need longer",
    ),
    "us-other": Preset(None, "the period differs from state to state; " + ASK),
    "other": Preset(None, ASK),
}


@dataclass(frozen=True)
class RetentionRule:
    """Keep every study's copies for ``years`` from its study date."""

    years: int
    preset: str | None = None
    source: str = ""  # where the number comes from, for the settings page and the docs

    def keep_until(self, study_date: date) -> date:
        """The first day a study of ``study_date`` may be deleted (29 February counts on to 1 March)."""
        try:
            return study_date.replace(year=study_date.year + self.years)
        except ValueError:  # 29 February into a year without one: the later day, never the earlier
            return date(study_date.year + self.years, 3, 1)

    def keeps(self, study_date: date, today: date) -> bool:
        """Whether a study of ``study_date`` must still be kept on ``today``."""
        return today < self.keep_until(study_date)

    @property
    def sentence(self) -> str:
        """The rule as staff read it."""
        where = f" ({self.preset}: {self.source})" if self.preset else f" ({self.source})" if self.source else ""
        return f"Every copy keeps each study for {self.years} years from its study date{where}."


def study_day(study_date: str, fallback: date) -> date:
    """A DICOM StudyDate (``YYYYMMDD``) as a date; ``fallback`` (when the copy was made, never earlier than
    the study) when it is missing or not a real date."""
    text = study_date.strip().replace("-", "")
    if len(text) == 8 and text.isdigit():
        try:
            return date(int(text[:4]), int(text[4:6]), int(text[6:]))
        except ValueError:
            pass
    return fallback


def lock_until(now: datetime, lock_days: int, rule: RetentionRule | None = None, study_date: str = "") -> datetime:
    """Until when the store must refuse to delete a copy written at ``now`` (UTC): the later of ``now`` +
    ``lock_days`` (BACKUP_LOCK_DAYS) and the first day the retention rule lets the study go, when its
    ``study_date`` (DICOM ``YYYYMMDD``) is known. A study date in the future counts as today, so a wrong
    date never locks a copy for longer than the rule from now."""
    until = now.astimezone(UTC).replace(microsecond=0) + timedelta(days=lock_days)
    if rule is None:
        return until
    day = study_day(study_date, date.min)
    if day == date.min:  # not known: the lock of BACKUP_LOCK_DAYS only
        return until
    law = datetime.combine(rule.keep_until(min(day, now.astimezone(UTC).date())), time(), UTC)
    return max(until, law)


def load_retention(env: Mapping[str, str]) -> RetentionRule:
    """Read the rule. Raises ConfigError naming the variable (an unknown preset, or one without a number
    when the clinic has not given its own)."""
    name = raw(env, "BACKUP_RETENTION_PRESET")
    own = raw(env, "BACKUP_RETENTION_YEARS")
    preset = None
    if name is not None:
        preset = PRESETS.get(name.lower())
        if preset is None:
            raise ConfigError(
                f"BACKUP_RETENTION_PRESET={name!r} is not a known preset; use one of {', '.join(PRESETS)}, "
                "or set BACKUP_RETENTION_YEARS to your own number."
            )
    if own is not None:
        years = parse_number("BACKUP_RETENTION_YEARS", own, int, 1, 100)
        instead = f", instead of the preset's {preset.years}" if preset and preset.years else ""
        source = "the clinic's own number" + instead
        return RetentionRule(years, name.lower() if name and preset else None, source)
    if preset is not None:
        if preset.years is None:
            raise ConfigError(f"BACKUP_RETENTION_PRESET={name} has no single number: {preset.source}.")
        return RetentionRule(preset.years, (name or "").lower(), preset.source)
    return RetentionRule(DEFAULT_YEARS, None, f"the default of {DEFAULT_YEARS} years; set BACKUP_RETENTION_YEARS")


def retention_doc(rule: RetentionRule, lock_mode: str, lock_days: int) -> RetentionDoc:
    """The rule for the status: with object lock, saying that the store itself enforces it (each copy is
    written locked until its study may go, see :func:`lock_until`); without, a note saying what that means."""
    doc = RetentionDoc(years=rule.years, preset=rule.preset, rule=rule.sentence)
    if lock_mode == "OFF":
        doc["lock_note"] = (
            "The copies have no object lock (BACKUP_LOCK_MODE=OFF): they are kept because the plugin's account "
            "may not delete them, but the object store's root account can. Set BACKUP_LOCK_MODE=GOVERNANCE or "
            "COMPLIANCE for the store itself to refuse to delete a study's copies before its date."
        )
    else:
        doc["rule"] = (
            f"{rule.sentence} The object store itself refuses to delete a copy before then: each is written "
            f"with an object lock ({lock_mode}) until that day, and for at least {lock_days} days."
        )
    return doc
