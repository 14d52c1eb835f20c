"""Sharing the clinic's internet: when an offsite copy may upload, and how fast (a pure module).

One setting per offsite copy (``RESTIC_UPLOAD_LIMIT``, ``<NAME>_RESTIC_UPLOAD_LIMIT``,
``CLOUD_PACS_UPLOAD_LIMIT``) holds a timetable in rclone's form: ``HH:MM,RATE`` entries separated by
spaces, each in force from its time until the next one (the last one runs past midnight until the
first), or one rate alone for the whole day. A rate is ``off`` (unlimited), ``0`` (no upload: outside
the copy's window) or a number with a unit: ``256`` or ``256K`` (KiB/s, as restic and rclone count),
``2M`` (MiB/s), ``1G``, or in bits as internet contracts say, ``2Mbit`` or ``512kbit``. For example
``08:00,2Mbit 18:00,off`` (2 Mbit/s during opening hours, unlimited at night) or ``06:00,0 20:00,off``
(snapshots only from 20:00 to 06:00). Times are the appliance's local time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from pacs_backup.contracts.errors import ConfigError

Rate = int | None  # bytes per second; None: unlimited; 0: no upload
DAY_MIN = 24 * 60
_ENTRY = re.compile(r"(?:(\d{1,2}):(\d{2}),)?(.+)")
_RATE = re.compile(r"(\d+(?:\.\d+)?)([a-z]*)")
_UNITS = {
    "": 1024,
    "b": 1,
    "k": 1024,
    "kib": 1024,
    "m": 1024**2,
    "mib": 1024**2,
    "g": 1024**3,
    "gib": 1024**3,
    "kbit": 125,
    "mbit": 125_000,
    "gbit": 125_000_000,
}


@dataclass(frozen=True)
class BandwidthSchedule:
    """A daily timetable of upload rates: ``(minute of the day, rate)`` sorted by minute."""

    entries: tuple[tuple[int, Rate], ...] = ((0, None),)

    @property
    def unlimited(self) -> bool:
        """True when nothing is ever limited (the default)."""
        return all(rate is None for _, rate in self.entries)

    @property
    def rule(self) -> str:
        """The timetable in its setting's form (``08:00,2Mbit 18:00,off``): what parse_schedule reads back."""
        return " ".join(f"{_hhmm(m)},{_rule_rate(r)}" for m, r in self.entries)

    @property
    def text(self) -> str:
        """The rule as a person reads it, e.g. ``08:00 2 Mbit/s, 18:00 unlimited``."""
        if len(self.entries) == 1:
            return shown_rate(self.entries[0][1])
        return ", ".join(f"{_hhmm(m)} {shown_rate(r)}" for m, r in self.entries)

    def limit_at(self, at: datetime) -> Rate:
        """The rate in force at ``at`` (bytes per second; None: unlimited; 0: no upload)."""
        minute = at.hour * 60 + at.minute
        rate = self.entries[-1][1]  # the last entry runs past midnight
        for start, r in self.entries:
            if start <= minute:
                rate = r
        return rate

    def allows(self, at: datetime) -> bool:
        """True when uploads are allowed at ``at`` (inside the copy's window)."""
        return self.limit_at(at) != 0

    def next_change(self, at: datetime) -> datetime | None:
        """When the rate next changes after ``at``; None when it never does."""
        if len({r for _, r in self.entries}) < 2:
            return None
        base = at.replace(second=0, microsecond=0)
        now_rate = self.limit_at(at)
        for day in (0, 1, 2):
            midnight = base.replace(hour=0, minute=0) + timedelta(days=day)
            for start, rate in self.entries:
                when = midnight + timedelta(minutes=start)
                if when > at and rate != now_rate:
                    return when
        return None  # not reached: two different rates change within two days

    def next_window(self, at: datetime) -> datetime | None:
        """When uploads are next allowed, if they are not at ``at``; None when they are allowed now."""
        when: datetime | None = at
        while when is not None and not self.allows(when):
            when = self.next_change(when)
        return None if when == at else when

    def window_close(self, at: datetime) -> datetime | None:
        """When the current window closes (uploads stop), if uploads are allowed at ``at`` and ever stop."""
        when = self.next_change(at) if self.allows(at) else None
        while when is not None and self.allows(when):
            when = self.next_change(when)
        return when

    def allowed_seconds(self, start: datetime, end: datetime) -> float:
        """Seconds from ``start`` to ``end`` during which uploads were allowed (the age a light judges)."""
        total, when = 0.0, start
        while when < end:
            change = self.next_change(when)
            stop = end if change is None or change > end else change
            if self.allows(when):
                total += (stop - when).total_seconds()
            when = stop
        return total

    def run_limit(self, at: datetime) -> Rate:
        """The rate of a snapshot started at ``at``: the rate in force, or, outside the window (a run a
        person asked for), the slowest rate the timetable allows."""
        rate = self.limit_at(at)
        return self.slowest() if rate == 0 else rate

    def slowest(self) -> Rate:
        """The slowest rate other than 0 (None when every other one is unlimited)."""
        rates = [r for _, r in self.entries if r]
        return min(rates) if rates else None

    def restic_kib(self, at: datetime) -> int | None:
        """restic's ``--limit-upload`` (KiB/s) for a run started at ``at``; None: unlimited."""
        rate = self.run_limit(at)
        return None if rate is None else max(1, rate // 1024)

    def rclone_timetable(self) -> str | None:
        """rclone's ``--bwlimit`` timetable limiting uploads only (``HH:MM,UP:off``); None when unlimited.

        A ``0`` entry becomes the slowest rate: a snapshot still running when the window closes finishes slowly.
        ``UP:off`` limits rclone's HTTP transport (cloud storage); rclone's sftp and ftp remotes are not limited.
        """
        if self.unlimited:
            return None

        def up(rate: Rate) -> str:
            rate = self.slowest() if rate == 0 else rate
            return "off" if rate is None else f"{max(1, rate // 1024)}k:off"

        return " ".join(f"{_hhmm(m)},{up(r)}" for m, r in self.entries)


UNLIMITED = BandwidthSchedule()  # the default: uploads at any time, at full speed


def shown_rate(rate: Rate) -> str:
    """``unlimited``, ``no upload``, ``2 Mbit/s`` or ``256 KiB/s``."""
    if rate is None:
        return "unlimited"
    if rate == 0:
        return "no upload"
    if rate % 125_000 == 0:
        return f"{rate // 125_000} Mbit/s"
    if rate % 1024 == 0:
        return f"{rate // 1024} KiB/s"
    return f"{rate * 8 / 1000:.0f} kbit/s"


def _rule_rate(rate: Rate) -> str:
    if rate is None:
        return "off"
    if rate == 0:
        return "0"
    if rate % 125_000 == 0:
        return f"{rate // 125_000}Mbit"
    if rate % 1024 == 0:
        return f"{rate // 1024}K"
    return f"{rate // 125}kbit" if rate % 125 == 0 else f"{rate}B"


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def parse_rate(name: str, text: str, value: str) -> Rate:
    """One rate of the timetable in ``name`` (its whole text ``value`` for the message)."""
    low = text.strip().lower().removesuffix("/s")
    if low == "off":
        return None
    match = _RATE.fullmatch(low)
    if match is None or match.group(2) not in _UNITS:
        raise ConfigError(
            f"{name}={value!r} has a rate {text!r} that is not understood; use off (unlimited), 0 (no upload), "
            "or a number with a unit: 256K (KiB/s), 2M (MiB/s), 2Mbit or 512kbit."
        )
    rate = int(float(match.group(1)) * _UNITS[match.group(2)])
    if 0 < rate < 1024 or (rate == 0 and float(match.group(1)) != 0):
        raise ConfigError(f"{name}={value!r} has a rate {text!r} below 1 KiB/s; use at least 1K (or 0: no upload).")
    return rate


def parse_schedule(name: str, value: str | None) -> BandwidthSchedule:
    """The timetable in ``name``; unlimited when unset. ConfigError naming ``name`` for bad text."""
    if value is None or not value.strip():
        return BandwidthSchedule()
    parts = value.split()
    entries: dict[int, Rate] = {}
    for part in parts:
        match = _ENTRY.fullmatch(part)
        assert match is not None  # noqa: S101 - (.+) matches any non-empty part
        hour, minute, rate = match.groups()
        if hour is None:
            if len(parts) > 1:
                raise ConfigError(
                    f"{name}={value!r} mixes a rate without a time ({part!r}) with a timetable; give each entry "
                    "as HH:MM,RATE, e.g. 08:00,2Mbit 18:00,off."
                )
            entries[0] = parse_rate(name, rate, value)
            continue
        if int(hour) > 23 or int(minute) > 59:
            raise ConfigError(f"{name}={value!r} has a time {hour}:{minute} that does not exist; use 00:00 to 23:59.")
        start = int(hour) * 60 + int(minute)
        if start in entries:
            raise ConfigError(f"{name}={value!r} gives {_hhmm(start)} twice; give each time once.")
        entries[start] = parse_rate(name, rate, value)
    if all(r == 0 for r in entries.values()):
        raise ConfigError(f"{name}={value!r} never allows an upload; give at least one time with a rate other than 0.")
    return BandwidthSchedule(tuple(sorted(entries.items())))
