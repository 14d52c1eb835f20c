"""A clinic pulling the studies brought to it from the group, against a loopback stand-in of the group service's
delivery routes and an in-memory PACS: each image verified before it is added, a restore run recorded, the
report sent back (again, and without restoring twice, when the first report was not acknowledged)."""

from __future__ import annotations

import hashlib
import json
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pacs_backup.contracts.errors import CloudUnavailable
from pacs_backup.replication.group_deliveries import GroupDeliveries
from pacs_backup.settings.group import GroupSettings, load_group_store
from pacs_backup.state.history import RunLog

TOKEN = "clinic-token-" + "y" * 30
FILES = {f"riverside/dicom/1.2.3/1.2.3.1/1.2.3.1.{n}.dcm": f"image {n}".encode() * 50 for n in range(3)}


class StandIn(ThreadingHTTPServer):
    """The group service's delivery routes for one delivery (id 5) of three objects."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.pending = True
        self.damaged: set[str] = set()
        self.fail_done = 0
        self.reports: list[dict[str, Any]] = []
        self.fetched = 0


class Handler(BaseHTTPRequestHandler):
    server: StandIn

    def _answer(self, status: int, body: Any, raw: bytes | None = None) -> None:
        data = raw if raw is not None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._answer(401, {"error": "token"})
        url = urllib.parse.urlparse(self.path)
        if url.path == "/group/api/deliveries":
            listed = [{"id": 5, "source_clinic": "riverside", "study_uid": "1.2.3"}] if self.server.pending else []
            return self._answer(200, {"deliveries": listed})
        if url.path == "/group/api/deliveries/5/instances":
            rows = [{"key": k, "sha256": hashlib.sha256(v).hexdigest(), "size": len(v)} for k, v in FILES.items()]
            return self._answer(200, {"instances": rows})
        if url.path == "/group/api/deliveries/5/files":
            key = urllib.parse.parse_qs(url.query)["key"][0]
            self.server.fetched += 1
            data = b"bad" if key in self.server.damaged else FILES[key]
            return self._answer(200, None, data)
        return self._answer(404, {"error": "no"})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if self.server.fail_done > 0:
            self.server.fail_done -= 1
            return self._answer(503, {"error": "starting"})
        self.server.reports.append(body)
        self.server.pending = False
        return self._answer(200, {"delivery": {"state": "delivered"}})

    def log_message(self, *args: object) -> None:
        pass


class Pacs:
    """Orthanc as a restore sees it: stores what it is given, reports the MD5 of what it stored."""

    def __init__(self) -> None:
        self.stored: dict[str, bytes] = {}

    def upload(self, dicom: bytes) -> dict[str, Any]:
        oid = hashlib.sha1(dicom).hexdigest()  # noqa: S324 - an id
        self.stored[oid] = dicom
        return {"ID": oid}

    def get_json(self, uri: str) -> Any:
        oid = uri.split("/")[2]
        return {"UncompressedMD5": hashlib.md5(self.stored[oid]).hexdigest()}  # noqa: S324 - Orthanc's checksum


@pytest.fixture
def service() -> Iterator[StandIn]:
    server = StandIn()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def deliveries(service: StandIn, tmp_path: Path, pacs: Pacs) -> GroupDeliveries:
    env = {"GROUP_STORE_ENDPOINT": "127.0.0.1:9", "GROUP_STORE_BUCKET": "group-pacs"}
    settings = GroupSettings(
        clinic_id="north",
        store=load_group_store(env, "north", "k", "s"),
        service_url=f"http://127.0.0.1:{service.server_port}",
        service_token=TOKEN,
        heartbeat_s=1,
    )
    return GroupDeliveries(settings, RunLog(tmp_path / "plugin.sqlite"), pacs)


def test_group_delivery_is_restored_verified_recorded_and_reported_once(service: StandIn, tmp_path: Path) -> None:
    pacs = Pacs()
    puller = deliveries(service, tmp_path, pacs)
    service.fail_done = 1  # the first report is not acknowledged: kept, sent again, nothing restored twice
    with pytest.raises(CloudUnavailable, match="not ready"):
        puller.poll()
    assert sorted(pacs.stored.values()) == sorted(FILES.values()) and service.fetched == 3
    assert puller.poll() == 0 and service.fetched == 3
    (report,) = service.reports
    assert report["ok"] is True and (report["total"], report["verified"]) == (3, 3)
    assert report["sentence"].startswith("3 of 3 images brought into clinic north's PACS and verified")
    (run,) = puller.runs.recent(10, "restore")
    assert (run.target, run.state) == ("group", "ok")
    assert "riverside" in run.as_dict()["summary"]["source"]


def test_group_delivery_with_a_damaged_object_adds_nothing_unverified_and_says_so(
    service: StandIn, tmp_path: Path
) -> None:
    pacs = Pacs()
    service.damaged = {next(iter(FILES))}
    assert deliveries(service, tmp_path, pacs).poll() == 1
    (report,) = service.reports
    assert report["ok"] is False and (report["total"], report["verified"]) == (3, 2)
    assert "1 of 3 images did not verify" in report["sentence"]
    assert b"bad" not in pacs.stored.values() and len(pacs.stored) == 2
    assert "sha256 differs" in report["failures"][0]["reason"]
