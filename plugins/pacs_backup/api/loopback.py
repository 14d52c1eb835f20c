"""Where the plugin's restores send images: Orthanc's own HTTP port on this machine when it can, else the SDK.

Orthanc's Python plugin (4.0, Debian 12) calls the SDK's REST functions without releasing Python's lock, so
uploads made in process (``orthanc.RestApiPost``) run one at a time whatever the number of threads: a 600-image
CT came back at 180 images/s with 1 and with 8 upload threads, against 550/s of raw ingest over HTTP
(docs/performance.md). Over Orthanc's HTTP port they run side by side, as the technician scripts' do.

The port is used only when Orthanc's configuration names it (``HttpPort``), serves plain HTTP there and either
asks no password or has a registered account the backup may use: the one ``BACKUP_ROLES`` makes ``admin`` or
``service``, or the only registered user. Otherwise, and whenever that port does not answer or refuses the
account, the in-process path is taken (checked again a minute later): nothing is refused that the SDK accepts.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from pacs_backup.clients.orthanc_http import ErrorAnswer, OrthancHttp
from pacs_backup.contracts.errors import SourceError
from pacs_backup.restore.uploads import OrthancTarget

from .access import Role, orthanc_checks_passwords

log = logging.getLogger(__name__)

RECHECK_S = 60.0  # after the port failed, the in-process path for this long before trying it again


def loopback_client(config_json: str, roles: Mapping[str, Role]) -> OrthancHttp | None:
    """A client of this Orthanc's HTTP port on 127.0.0.1 with an account it accepts, or None when there is none.
    ``roles``: the backup's role map (``Access.roles``: BACKUP_ROLES, or the only registered user as admin)."""
    try:
        config = json.loads(config_json or "{}")
    except ValueError:
        return None
    if not isinstance(config, dict) or config.get("SslEnabled") is True or config.get("HttpServerEnabled") is False:
        return None
    port = config.get("HttpPort")
    if isinstance(port, bool) or not isinstance(port, int | str) or not str(port).isdigit():
        return None
    url = f"http://127.0.0.1:{int(port)}"
    if not orthanc_checks_passwords(config):
        return OrthancHttp(url)
    users = config.get("RegisteredUsers")
    users = {str(k): v for k, v in users.items() if isinstance(v, str)} if isinstance(users, dict) else {}
    chosen = [u for u, r in roles.items() if r in (Role.ADMIN, Role.SERVICE) and u in users]
    if not chosen and len(users) == 1:
        chosen = list(users)
    return OrthancHttp(url, chosen[0], users[chosen[0]]) if chosen else None


class LoopbackFirst:
    """Sends through ``http`` (Orthanc's port) while it works, through ``in_process`` otherwise."""

    def __init__(
        self, http: OrthancHttp | None, in_process: OrthancTarget, clock: Callable[[], float] = time.monotonic
    ):
        self._http, self._in_process, self._clock = http, in_process, clock
        self._lock = threading.Lock()
        self._down_until = 0.0

    def _port(self) -> OrthancHttp | None:
        with self._lock:
            return self._http if self._http is not None and self._clock() >= self._down_until else None

    def _failed(self, exc: SourceError) -> None:
        with self._lock:
            first = self._clock() >= self._down_until
            self._down_until = self._clock() + RECHECK_S
        if first:
            log.warning("restores go through the plugin interface for a minute: Orthanc's own port: %s", exc)

    def _through(self, call: Callable[[OrthancTarget], Any]) -> Any:
        port = self._port()
        if port is not None:
            try:
                return call(port)
            except ErrorAnswer as exc:
                if exc.status not in (401, 403):  # Orthanc's own answer (a file it refuses): the same in process
                    raise
                self._failed(exc)
            except SourceError as exc:  # the port does not answer
                self._failed(exc)
        return call(self._in_process)

    def upload(self, dicom: bytes) -> dict[str, Any]:
        answer: dict[str, Any] = self._through(lambda t: t.upload(dicom))
        return answer

    def get_json(self, uri: str) -> Any:
        return self._through(lambda t: t.get_json(uri))
