"""Background monitor: samples the status for the charts and sends one alert per problem (and one
when it clears) through Apprise."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from .backend import Backend
from .db import Database
from .health import GREEN, RED, Light, lights

log = logging.getLogger(__name__)

Notifier = Callable[[list[str], str, str], bool]


def apprise_notify(urls: list[str], title: str, body: str) -> bool:
    """Send through Apprise to every URL; True when at least one accepted it."""
    import apprise

    if not urls:
        return False
    app = apprise.Apprise()
    for u in urls:
        app.add(u)
    return bool(app.notify(title=title, body=body))


def alert_urls(db: Database, env_urls: tuple[str, ...]) -> list[str]:
    return list(env_urls) + [u for u in db.setting("alert_urls", []) if u not in env_urls]


class Monitor:
    def __init__(self, backend: Backend, db: Database, env_urls: tuple[str, ...], interval_s: float,
                 notify: Notifier = apprise_notify) -> None:
        self.backend, self.db, self.env_urls = backend, db, env_urls
        self.interval_s, self.notify = interval_s, notify
        self._stop = threading.Event()
        self._last_sample = 0.0

    def start(self) -> None:
        threading.Thread(target=self._loop, name="dashboard-monitor", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.tick()
            except Exception:  # the monitor must keep running; the traceback goes to the log
                log.exception("monitor tick failed")

    def tick(self, now: float | None = None) -> list[Light]:
        """One round: read status, store a sample, raise and clear alerts. Returns the lights."""
        now = time.time() if now is None else now
        status, error = self.backend.status()
        ls = lights(status, error, now, self.db.setting("targets", {}))
        if status is not None and now - self._last_sample >= 60:
            self._last_sample = now
            self.db.add_sample(now, _sample(status))
        self.evaluate(ls, now)
        return ls

    def evaluate(self, ls: list[Light], now: float) -> None:
        """Alert once when a part turns red (amber for disk), and once when it is fine again."""
        raised = {row[0]: row[2] for row in self.db.query("SELECT problem, raised_at, message FROM alerts")}
        problems = {light.key: light for light in ls
                    if light.state == RED or (light.key == "disk" and light.state != GREEN)}
        urls = alert_urls(self.db, self.env_urls)
        for key, light in problems.items():
            if key not in raised:
                message = f"{light.label}: {light.value}. {light.advice}"
                sent = self.notify(urls, f"PACS backup problem: {light.label}", message)
                self.db.execute("INSERT INTO alerts VALUES (?, ?, ?)", (key, now, message))
                self.db.audit("alert_raised", None, None, f"{message} (sent: {sent})")
        for key in set(raised) - set(problems):
            label = next((light.label for light in ls if light.key == key), key)
            sent = self.notify(urls, f"PACS backup resolved: {label}", f"{label} is fine again.")
            self.db.execute("DELETE FROM alerts WHERE problem=?", (key,))
            self.db.audit("alert_cleared", None, None, f"{label} (sent: {sent})")


def _sample(status: dict[str, Any]) -> dict[str, Any]:
    lag = status.get("lag_s") or {}
    return {"replicated": status.get("replicated"), "bytes": status.get("replicated_bytes"),
            "depth": status.get("outbox_depth"), "lag_p50": lag.get("p50"), "lag_p99": lag.get("p99")}
