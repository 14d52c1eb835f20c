"""How long every copy keeps a study: one rule, in years from the study date.

``BACKUP_RETENTION_YEARS`` is the clinic's own number and always wins. ``BACKUP_RETENTION_PRESET`` names a
jurisdiction from :data:`PRESETS`, each with its years and where the number comes from; a preset whose
number we cannot source asks the clinic for its own. With neither set, :data:`DEFAULT_YEARS` applies.
No prune removes a study's last copy before :meth:`RetentionRule.keep_until` of its date.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

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
    """The rule for the status, with a sentence when the bucket's object lock does not cover it."""
    doc = RetentionDoc(years=rule.years, preset=rule.preset, rule=rule.sentence)
    needed = rule.years * 365 + (rule.years + 3) // 4  # those years with the most leap days they can hold
    if lock_mode == "OFF" or lock_days < needed:
        lock = "no object lock" if lock_mode == "OFF" else f"an object lock of {lock_days} days"
        doc["lock_note"] = (
            f"The bucket has {lock}, shorter than the {rule.years} years of the retention rule: after that, its "
            "copies are kept because the plugin's account may not delete them, not by the lock. To lock them "
            f"for the whole period, set BACKUP_LOCK_DAYS={needed} and run the store set-up again."
        )
    return doc
