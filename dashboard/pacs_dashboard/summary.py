"""The optional daily or weekly summary e-mail: what staff care about, in plain words.

Sent by the monitor once per period (a day, or a week from Monday), after SEND_HOUR in the clinic's time
zone. The period last sent is kept in the dashboard's settings, so a restart does not send it again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any

from pacs_backup.contracts.documents import StatusDoc

from .db import Database
from .destinations import Delivery, Destination
from .light import AMBER, GREEN, RED, Light, overall
from .timefmt import size

SETTING = "alert_summary"  # {"every": "off" | "daily" | "weekly", "to": [destination keys]}
SENT = "alert_summary_sent"  # {"period": "2026-11-28" | "2026-W48", "at": epoch seconds}
EVERY = {"off": "Off", "daily": "Every morning", "weekly": "Every Monday morning"}
SEND_HOUR = 7
_OVERALL = {
    GREEN: "All is well: every part of the backup is fine.",
    AMBER: "Backups work, but something needs attention (see below).",
    RED: "Action needed: something is broken (see below).",
}

Sender = Callable[[list[Destination], str, str], list[Delivery]]


@dataclass(frozen=True)
class SummaryChoice:
    every: str
    to: tuple[str, ...]  # destination keys


def choice(db: Database) -> SummaryChoice:
    raw: Any = db.setting(SETTING, {})
    every = raw.get("every") if isinstance(raw, dict) else None
    to = raw.get("to") if isinstance(raw, dict) else None
    return SummaryChoice(every if every in EVERY else "off", tuple(str(k) for k in to or ()))


def period(every: str, now: float, tz: tzinfo) -> str | None:
    """The period a summary is due for at ``now``, or None (off, or too early in the day)."""
    local = datetime.fromtimestamp(now, tz)
    if every == "off" or local.hour < SEND_HOUR:
        return None
    if every == "weekly":
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    return local.date().isoformat()


def text(ls: list[Light], status: StatusDoc | None, every: str, now: float, tz: tzinfo) -> tuple[str, str]:
    """Subject and plain-text body."""
    day = datetime.fromtimestamp(now, tz).strftime("%A %d %B %Y")
    word = "weekly" if every == "weekly" else "daily"
    state = overall(ls)
    subject = f"PACS backup {word} summary, {day}: " + {GREEN: "all is well", AMBER: "needs attention"}.get(
        state, "action needed"
    )
    lines = [f"PACS backup {word} summary for {day}.", "", _OVERALL[state], "", "Each part:"]
    for light in ls:
        lines.append(f"- {light.label}: {light.value} ({_word(light.state)}).")
        if light.state != GREEN:
            lines.append(f"  {light.advice}")
        if light.note:
            lines.append(f"  {light.note}")
    lines.append("")
    if status is not None and status.get("replicated") is not None:
        lines.append(
            f"Images backed up: {int(status.get('replicated') or 0):,} ({size(status.get('replicated_bytes'))})."
        )
    by_key = {light.key: light for light in ls}
    if "drill" in by_key:
        lines.append(f"Last restore test: {by_key['drill'].value}.")
    if "disk" in by_key:
        lines.append(f"PACS disk: {by_key['disk'].value}.")
    lines += [
        "",
        "Open the backup dashboard for details. You get this e-mail because it was chosen on its Alerts page.",
    ]
    return subject, "\n".join(lines) + "\n"


def _word(state: str) -> str:
    return {GREEN: "fine", AMBER: "needs attention", RED: "broken"}.get(state, state)


def maybe_send(
    db: Database,
    ls: list[Light],
    status: StatusDoc | None,
    now: float,
    tz: tzinfo,
    usable: list[Destination],
    send: Sender,
) -> list[Delivery] | None:
    """Send the summary when one is due and not sent yet for this period; None when nothing was due."""
    chosen = choice(db)
    due = period(chosen.every, now, tz)
    last: Any = db.setting(SENT, {})
    if due is None or (isinstance(last, dict) and last.get("period") == due):
        return None
    to = [d for d in usable if d.key in chosen.to]
    db.set_setting(SENT, {"period": due, "at": now})  # before sending: a crash mid-way must not resend
    if not to:
        return []
    subject, body = text(ls, status, chosen.every, now, tz)
    results = send(to, subject, body)
    db.audit("summary_sent", None, None, "; ".join(f"{r.shown}: {r.sentence}" for r in results))
    return results
