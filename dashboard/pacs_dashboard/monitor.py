"""Background monitor: samples the status for the charts and sends one alert per problem (and one
when it clears) to every alert destination (e-mail or Apprise). It pings the heartbeat address (the
dead-man's switch) and sends the optional summary e-mail. While the PACS answers it also keeps the
dashboard's own copies up to date (the catalog mirror, the run list) and hands over restores that waited
for the PACS."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, tzinfo
from typing import Any

from pacs_backup.contracts.documents import StatusDoc

from . import heartbeat, summary
from .backend_api import BackendApi
from .db import Database
from .destinations import Delivery, Destination, deliver_all, usable
from .health import lights
from .heartbeat import HeartbeatSettings
from .light import GREEN, RED, Light
from .mailer import SmtpSettings
from .mirror import Mirror
from .pacs_state import StatusKeeper
from .waiting_restores import submit_waiting

log = logging.getLogger(__name__)

# (addresses, title, body) -> whether at least one destination accepted it; tests pass their own.
Notifier = Callable[[list[str], str, str], bool]


class Monitor:
    def __init__(
        self,
        backend: BackendApi,
        db: Database,
        env_urls: tuple[str, ...],
        interval_s: float,
        notify: Notifier | None = None,
        webhook_hosts: tuple[str, ...] = (),
        *,
        keeper: StatusKeeper | None = None,
        mirror: Mirror | None = None,
        tz: tzinfo | None = None,
        smtp: SmtpSettings | None = None,
        heartbeat: HeartbeatSettings | None = None,
    ) -> None:
        self.backend, self.db, self.env_urls, self.webhook_hosts = backend, db, env_urls, webhook_hosts
        self.interval_s, self.notify = interval_s, notify or self._send
        self.smtp, self.heartbeat = smtp, heartbeat or HeartbeatSettings()
        self.keeper = keeper or StatusKeeper(backend, mirror)
        self.mirror, self.tz = mirror, tz
        self._stop = threading.Event()
        self._last_sample = 0.0

    def start(self) -> None:
        threading.Thread(target=self._loop, name="dashboard-monitor", daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while True:  # a first round at once, so /healthz knows each part's state from the start
            try:
                self.tick()
            except Exception:  # the monitor must keep running; the traceback goes to the log
                log.exception("monitor tick failed")
            if self._stop.wait(self.interval_s):
                return

    def tick(self, now: float | None = None) -> list[Light]:
        """One round: read status, store a sample, keep the dashboard's copies, raise and clear alerts.
        Returns the lights."""
        now = time.time() if now is None else now
        reading = self.keeper.read()
        status = reading.status
        ls = lights(
            status,
            reading.error,
            now,
            self.db.setting("targets", {}),
            self.tz,
            down_since=reading.down_since,
            last_known=reading.last_good,
            last_known_at=reading.last_good_at,
        )
        if status is not None:
            if now - self._last_sample >= 60:
                self._last_sample = now
                self.db.add_sample(now, _sample(status))
            self.keep_copies(now)
        self.evaluate(ls, now)
        self.outside(ls, status, now)
        return ls

    def destinations(self) -> list[Destination]:
        return usable(self.db, self.env_urls, self.webhook_hosts, self.smtp)

    def _send(self, addresses: list[str], title: str, body: str) -> bool:
        chosen = [d for d in self.destinations() if d.address in addresses]
        return any(r.ok for r in deliver_all(chosen, title, body, self.smtp))

    def _deliver(self, dests: list[Destination], title: str, body: str) -> list[Delivery]:
        return deliver_all(dests, title, body, self.smtp)

    def outside(self, ls: list[Light], status: StatusDoc | None, now: float) -> None:
        """The heartbeat ping and the summary e-mail; one failing does not stop the other."""
        try:
            heartbeat.beat(self.db, self.heartbeat, any(light.state == RED for light in ls), now)
        except Exception as exc:  # noqa: BLE001 - tried again next round
            log.warning("heartbeat failed: %s", type(exc).__name__)  # not the message: it may hold the address
        try:
            summary.maybe_send(self.db, ls, status, now, self.tz or UTC, self.destinations(), self._deliver)
        except Exception:  # the monitor must keep running; the traceback goes to the log
            log.exception("summary e-mail failed")

    def keep_copies(self, now: float) -> None:
        """While the PACS answers: catch the catalog mirror up, keep the run list, hand over waiting restores.
        Each step on its own: one failing does not stop the others (or the alerts)."""
        mirror = self.mirror
        if mirror is None:
            return
        steps: tuple[tuple[str, Callable[[], object]], ...] = (
            ("catalog mirror", lambda: mirror.sync(self.backend.changed_studies, now)),
            ("run list", lambda: mirror.put("runs", {"at": now, "runs": self.backend.runs(limit=500)})),
            ("waiting restores", lambda: submit_waiting(self.backend, self.db, mirror, now, self.tz or UTC)),
        )
        for what, step in steps:
            try:
                step()
            except Exception as exc:  # noqa: BLE001 - logged; tried again next round
                log.warning("monitor could not update the %s: %s", what, exc)

    def evaluate(self, ls: list[Light], now: float) -> None:
        """Alert once when a part turns red (amber for disk), and once when it is fine again."""
        raised = {row[0]: row[2] for row in self.db.query("SELECT problem, raised_at, message FROM alerts")}
        problems = {
            light.key: light for light in ls if light.state == RED or (light.key == "disk" and light.state != GREEN)
        }
        urls = [d.address for d in self.destinations()]
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


def _sample(status: StatusDoc) -> dict[str, Any]:
    lag = status.get("lag_s")
    return {
        "replicated": status.get("replicated"),
        "bytes": status.get("replicated_bytes"),
        "depth": status.get("outbox_depth"),
        "lag_p50": lag["p50"] if lag else None,
        "lag_p99": lag["p99"] if lag else None,
    }
