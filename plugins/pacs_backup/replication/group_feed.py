"""The feed to the group service: the catalog rows verified in the group store, and a heartbeat.

Rows wait in ``group_feed`` (the plugin's database, filled by :class:`~.group_queue.GroupQueue`) until the
group service acknowledges them: ``POST <GROUP_SERVICE_URL>/group/api/catalog`` with the clinic's token
(``Authorization: Bearer``) and ``{"clinic": id, "entries": [...]}``, answered 200 ``{"accepted": n}``.
An outage, or a refusal of the clinic's token, is tried again with backoff, forever; nothing is dropped. A
batch refused for what it holds (another 4xx) is split until the row refused is alone: the others are delivered,
that row is held (kept, said in the status, tried again a day later). Every
GROUP_HEARTBEAT_SECONDS the clinic's ``/backup/status`` document (no patient data in it) goes to
``POST /group/api/heartbeat``, from which the group's dashboard shows each clinic's lights.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pacs_backup.contracts.documents import ErrorDoc, GroupFeedDoc
from pacs_backup.contracts.errors import BackupError, CloudRefused, CloudUnavailable
from pacs_backup.contracts.retry import RetryPolicy
from pacs_backup.settings.group import GroupSettings
from pacs_backup.state.schema import open_plugin_db

log = logging.getLogger(__name__)

FEED_BATCH = 500
HELD_RETRY_S = 24 * 3600.0  # a row the group service refused on its own is tried again this much later


class TokenRefused(CloudRefused):
    """The group service refused this clinic's token: every row waits until it is fixed."""


class RowsRefused(CloudRefused):
    """The group service refused the rows sent (a 4xx other than the token's): one of them, or their size."""


CATALOG_PATH = "/group/api/catalog"
HEARTBEAT_PATH = "/group/api/heartbeat"


class GroupService:
    """The group service's API as this clinic calls it (JSON over HTTP(S), the clinic's bearer token)."""

    def __init__(self, url: str, token: str, clinic: str, timeout_s: float = 30.0) -> None:
        self.url, self._token, self.clinic, self.timeout_s = url.rstrip("/"), token, clinic, timeout_s

    def _send(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> bytes:
        """One request; the answer's bytes.

        Raises:
            CloudUnavailable: the service cannot be reached or answered 5xx (try again later).
            CloudRefused: it refused (4xx: the token, the clinic id, the request).
        """
        headers = {"Authorization": f"Bearer {self._token}"}
        data = None
        if body is not None:
            data, headers["Content-Type"] = json.dumps(body, ensure_ascii=False).encode("utf-8"), "application/json"
        request = urllib.request.Request(  # noqa: S310 - GROUP_SERVICE_URL is checked to be http(s)
            self.url + path, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as resp:  # noqa: S310
                return bytes(resp.read())
        except urllib.error.HTTPError as exc:
            if exc.code >= 500:
                raise CloudUnavailable(f"The group service is not ready (HTTP {exc.code}); trying again.") from None
            if exc.code in (401, 403):
                raise TokenRefused(
                    f"The group service refused clinic {self.clinic}'s token (HTTP {exc.code}); check "
                    "GROUP_SERVICE_TOKEN with the group's admin."
                ) from None
            refused = RowsRefused if path == CATALOG_PATH else CloudRefused
            raise refused(f"The group service refused {path.split('?')[0]} (HTTP {exc.code}).") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise CloudUnavailable(f"The group service at {self.url} cannot be reached ({reason}).") from None

    def _object(self, path: str, raw: bytes) -> dict[str, Any]:
        try:
            answer = json.loads(raw or b"{}")
        except ValueError:
            raise CloudRefused(f"The group service answered {path} with something else than JSON.") from None
        if not isinstance(answer, dict):
            raise CloudRefused(f"The group service answered {path} with something else than a JSON object.")
        return answer

    def post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST ``body`` as JSON and return the JSON answer (errors as :meth:`_send`'s, or CloudRefused for an
        answer that is not a JSON object)."""
        return self._object(path, self._send("POST", path, body))

    def get(self, path: str) -> bytes:
        """GET ``path``; the answer's bytes (errors as :meth:`_send`'s)."""
        return self._send("GET", path)

    def get_json(self, path: str) -> dict[str, Any]:
        """GET ``path`` as a JSON object."""
        return self._object(path, self.get(path))


class GroupFeed:
    """The thread that delivers ``group_feed`` to the group service and sends the heartbeat."""

    def __init__(
        self,
        path: Path,
        settings: GroupSettings,
        status: Callable[[], Mapping[str, Any]],
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        assert settings.service_url is not None and settings.service_token is not None  # noqa: S101 - caller's check
        self.service = GroupService(settings.service_url, settings.service_token, settings.clinic_id)
        self.settings, self._status, self._clock = settings, status, clock
        self.retry = retry or RetryPolicy(1.0, 300.0)
        self._lock = threading.Lock()
        self._db = open_plugin_db(path)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_sent_at: float | None = None
        self.last_heartbeat_at: float | None = None
        self.last_error: ErrorDoc | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="pacs-backup-group-feed", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout_s)

    def _loop(self) -> None:
        next_beat = 0.0
        while not self._stop.is_set():
            try:
                now = self._clock()
                if now >= next_beat:
                    next_beat = now + self.settings.heartbeat_s
                    self.heartbeat()
                sent = self.send_due(now)
                self._stop.wait(0.05 if sent else 1.0)
            except Exception as exc:  # keep the thread alive; the traceback goes to the log
                log.exception("feed to the group service failed; retrying")
                self.last_error = {"message": f"Internal error feeding the group service: {exc}", "at": self._clock()}
                self._stop.wait(2.0)

    def send_due(self, now: float) -> int:
        """Send one batch of due rows; returns how many the group service acknowledged (0: none due or failed)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, entry, attempts FROM group_feed WHERE next_attempt_at <= ? ORDER BY id LIMIT ?",
                (now, FEED_BATCH),
            ).fetchall()
        if not rows:
            return 0
        try:
            delivered, held = self._deliver(rows)
        except BackupError as exc:  # an outage, the token, an answer that is not one: the whole batch waits
            attempts = max(r[2] for r in rows) + 1
            retry_at = now + self.retry.delay(attempts)
            with self._lock:
                self._db.executemany(
                    "UPDATE group_feed SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id = ?",
                    [(str(exc), retry_at, r[0]) for r in rows],
                )
            if self.last_error is None or self.last_error["message"] != str(exc):
                log.warning("catalog rows not delivered to the group service (kept, tried again): %s", exc)
            self.last_error = {"message": str(exc), "at": now}
            return 0
        with self._lock:  # (the rows acknowledged have left already, batch by batch)
            self._db.executemany(
                "UPDATE group_feed SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, refused_at = ? "
                "WHERE id = ?",
                [(str(exc), now + HELD_RETRY_S, now, i) for i, exc in held],
            )
        self.last_sent_at = self._clock()
        if held:
            sentence = (
                f"The group service refused {len(held)} catalog row{'s' if len(held) > 1 else ''} on their own "
                f"({held[0][1]}); they are kept and sent again a day later. The group's admin sees why in its log."
            )
            log.warning("%s", sentence)
            self.last_error = {"message": sentence, "at": now}
        else:
            self.last_error = None
        return len(delivered)

    def _deliver(self, rows: list[Any]) -> tuple[list[int], list[tuple[int, RowsRefused]]]:
        """``(ids acknowledged, [(id, why) refused alone])``: a batch refused for what it holds is sent in halves
        until each refused row is alone (a batch of 500 with one such row: about 18 requests)."""
        body = {"clinic": self.settings.clinic_id, "entries": [json.loads(r[1]) for r in rows]}
        try:
            answer = self.service.post(CATALOG_PATH, body)
        except RowsRefused as exc:
            if len(rows) == 1:
                return [], [(rows[0][0], exc)]
            half = len(rows) // 2
            first, second = self._deliver(rows[:half]), self._deliver(rows[half:])
            return first[0] + second[0], first[1] + second[1]
        if not isinstance(answer.get("accepted"), int):
            raise CloudRefused("The group service did not say how many catalog rows it accepted.")
        with self._lock:  # rows taken by the group service leave at once: a later half failing does not resend them
            self._db.executemany("DELETE FROM group_feed WHERE id = ?", [(r[0],) for r in rows])
        return [r[0] for r in rows], []

    def heartbeat(self) -> None:
        """Send the clinic's status to the group service (a failure waits for the next beat)."""
        try:
            self.service.post(HEARTBEAT_PATH, {"clinic": self.settings.clinic_id, "status": dict(self._status())})
        except BackupError as exc:
            self.last_error = {"message": str(exc), "at": self._clock()}
            return
        self.last_heartbeat_at = self._clock()

    def depth(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM group_feed").fetchone()[0])

    def held(self) -> int:
        """Rows the group service refused on their own, kept and tried again daily."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM group_feed WHERE refused_at IS NOT NULL").fetchone()[0])

    def status(self) -> GroupFeedDoc:
        return {
            "url": self.service.url,
            "depth": self.depth(),
            "held": self.held(),
            "last_sent_at": self.last_sent_at,
            "last_heartbeat_at": self.last_heartbeat_at,
            "last_error": self.last_error,
        }
