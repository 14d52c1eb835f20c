"""The group copy's queue and its feed to the group service, against a small local HTTP stand-in of the
group service's two routes (a real server on loopback; nothing of the feed is replaced)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from pacs_backup.contracts.retry import RetryPolicy
from pacs_backup.replication.group_feed import HELD_RETRY_S, GroupFeed
from pacs_backup.replication.group_queue import GroupQueue
from pacs_backup.settings.group import GroupSettings, load_group_store
from pacs_backup.state.catalog import Catalog
from tests.support.catalog_rows import manifest_entry
from tests.support.common import wait_until

TOKEN = "clinic-token-" + "x" * 30


class StandIn(ThreadingHTTPServer):
    """The group service's catalog and heartbeat routes: answers ``fail`` (a list of statuses) first."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.fail: list[int] = []
        self.batches: list[dict[str, Any]] = []
        self.beats: list[dict[str, Any]] = []
        self.refused = 0
        self.auth: set[str] = set()
        self.poison: set[str] = set()  # a batch holding a row of these SOP UIDs is refused whole (HTTP 400)
        self.requests = 0


class Handler(BaseHTTPRequestHandler):
    server: StandIn

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.auth.add(self.headers.get("Authorization", ""))
        self.server.requests += 1
        bad = [e["sop_uid"] for e in body.get("entries", []) if e.get("sop_uid") in self.server.poison]
        if bad:
            self._answer(400, {"error": f"row {bad[0]} is not of clinic north"})
        elif self.server.fail:
            self.server.refused += 1
            self._answer(self.server.fail.pop(0), {"error": "not now"})
        elif self.path == "/group/api/catalog":
            self.server.batches.append(body)
            self._answer(200, {"accepted": len(body["entries"])})
        elif self.path == "/group/api/heartbeat":
            self.server.beats.append(body)
            self._answer(200, {})
        else:
            self._answer(404, {})

    def _answer(self, status: int, doc: dict[str, Any]) -> None:
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def standin() -> Iterator[StandIn]:
    server = StandIn()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def settings(url: str) -> GroupSettings:
    store = load_group_store({"GROUP_STORE_ENDPOINT": "127.0.0.1:1"}, "north", "k", "s" * 20)
    return GroupSettings("north", store, url, TOKEN, heartbeat_s=0.2)


def verified_rows(path: Path, n: int = 3) -> GroupQueue:
    catalog = Catalog(path)
    for i in range(n):
        key = f"dicom/1.2/1.2.3/1.2.3.{i}.dcm"
        catalog.record(manifest_entry("1.2", "1.2.3", f"1.2.3.{i}", orthanc_id=f"o{i}", key=key, sha256="a" * 64), i)
    queue = GroupQueue(path, "north", "", feed=True)
    assert queue.fill(10.0) == n
    due = queue.due(10.0)
    assert {p.key for p in due} == {f"north/dicom/1.2/1.2.3/1.2.3.{i}.dcm" for i in range(n)}
    queue.verified([p.orthanc_id for p in due], 11.0)
    return queue


def test_group_queue_keeps_group_keys_and_hands_verified_rows_to_the_feed(tmp_path):
    path = tmp_path / "db.sqlite"
    queue = verified_rows(path)
    assert queue.stats(12.0)["verified"] == 3 and queue.due(12.0) == []
    assert [e["key"] for e in queue.entries()] == [f"north/dicom/1.2/1.2.3/1.2.3.{i}.dcm" for i in range(3)]
    assert len(queue.sample(2)) == 2 and queue.fill(13.0) == 0  # nothing queued twice
    Catalog(path).record(  # an instance copied anew with other bytes is sent again
        manifest_entry("1.2", "1.2.3", "1.2.3.0", orthanc_id="o0", key="dicom/1.2/1.2.3/1.2.3.0.dcm", sha256="b" * 64),
        20.0,
    )
    assert queue.fill(21.0) == 1 and queue.due(21.0)[0].sha256 == "b" * 64


def test_group_feed_delivers_rows_retries_after_a_503_and_sends_the_heartbeat(tmp_path, standin):
    path = tmp_path / "db.sqlite"
    verified_rows(path)
    url = f"http://127.0.0.1:{standin.server_port}"
    feed = GroupFeed(path, settings(url), lambda: {"state": "ok", "enabled": True}, RetryPolicy(0.05, 0.2))
    standin.fail = [503]
    assert feed.send_due(100.0) == 0  # refused for now: kept, tried again later
    st = feed.status()
    assert st["depth"] == 3 and "not ready (HTTP 503)" in (st["last_error"] or {}).get("message", "")
    assert feed.send_due(100.01) == 0  # not due yet: backing off
    assert feed.send_due(101.0) == 3 and feed.status()["depth"] == 0 and feed.status()["last_error"] is None
    (batch,) = standin.batches
    assert batch["clinic"] == "north" and standin.auth == {f"Bearer {TOKEN}"}
    entry = batch["entries"][0]
    assert entry["key"].startswith("north/dicom/1.2/") and entry["verified_at"] == 11.0
    assert entry["copies"] == ["bucket", "group"] and entry["sha256"] == "a" * 64 and entry["patient_name"]
    feed.heartbeat()
    assert standin.beats == [{"clinic": "north", "status": {"state": "ok", "enabled": True}}]


def test_group_feed_thread_keeps_trying_until_acknowledged_and_beats(tmp_path, standin):
    path = tmp_path / "db.sqlite"
    verified_rows(path, 5)
    feed = GroupFeed(
        path, settings(f"http://127.0.0.1:{standin.server_port}"), lambda: {"state": "ok"}, RetryPolicy(0.05, 0.2)
    )
    standin.fail = [503, 503, 502]
    feed.start()
    try:
        wait_until(lambda: feed.status()["depth"] == 0, 20, "every row acknowledged after three refusals")
        wait_until(lambda: len(standin.beats) >= 2, 20, "heartbeats every GROUP_HEARTBEAT_SECONDS")
    finally:
        feed.stop()
    delivered = [e["sop_uid"] for b in standin.batches for e in b["entries"]]
    assert sorted(delivered) == [f"1.2.3.{i}" for i in range(5)] and standin.refused == 3


def test_group_feed_says_when_the_token_is_refused(tmp_path, standin):
    path = tmp_path / "db.sqlite"
    verified_rows(path, 1)
    feed = GroupFeed(path, settings(f"http://127.0.0.1:{standin.server_port}"), dict, RetryPolicy(0.05, 0.2))
    standin.fail = [401]
    assert feed.send_due(100.0) == 0
    message = (feed.status()["last_error"] or {}).get("message", "")
    assert "refused clinic north's token" in message and "GROUP_SERVICE_TOKEN" in message and TOKEN not in message
    assert feed.status()["depth"] == 1  # kept until the token is fixed


def test_group_feed_says_when_the_service_cannot_be_reached(tmp_path):
    path = tmp_path / "db.sqlite"
    verified_rows(path, 1)
    feed = GroupFeed(path, settings("http://127.0.0.1:1"), dict, RetryPolicy(0.05, 0.2))
    assert feed.send_due(100.0) == 0
    assert "cannot be reached" in (feed.status()["last_error"] or {}).get("message", "")


def test_group_feed_a_row_the_service_refuses_holds_back_no_other_and_is_kept(tmp_path, standin):
    """One row the group service refuses (HTTP 400 for the whole batch) used to be sent again with every other
    row, forever: nothing of the clinic reached the group's catalog. Now the batch is split until that row is
    alone; the others are delivered, and it is kept, said, and tried again a day later."""
    path = tmp_path / "db.sqlite"
    verified_rows(path, 5)
    standin.poison = {"1.2.3.2"}
    feed = GroupFeed(path, settings(f"http://127.0.0.1:{standin.server_port}"), dict, RetryPolicy(0.05, 0.2))
    assert feed.send_due(100.0) == 4
    delivered = sorted(e["sop_uid"] for b in standin.batches for e in b["entries"])
    assert delivered == ["1.2.3.0", "1.2.3.1", "1.2.3.3", "1.2.3.4"]
    st = feed.status()
    assert st["depth"] == 1 and st["held"] == 1
    assert "refused 1 catalog row" in (st["last_error"] or {}).get("message", "")
    asked = standin.requests
    assert feed.send_due(200.0) == 0 and standin.requests == asked  # not sent again within the day
    standin.poison = set()  # the group service's admin fixed the cause
    assert feed.send_due(100.0 + HELD_RETRY_S + 1) == 1
    assert feed.status()["depth"] == 0 and feed.status()["held"] == 0


def test_group_copy_is_locked_until_the_retention_rule_lets_the_study_go(tmp_path):
    """The group's copy of a study is kept as long as the clinic's own: the later of GROUP_LOCK_DAYS and the
    study's date + the rule's years (it was GROUP_LOCK_DAYS only, so the group could lose a study the law keeps)."""
    import hashlib
    from datetime import UTC, datetime

    from pacs_backup.replication.group_copy import GroupSender
    from pacs_backup.settings.retention import RetentionRule

    path = tmp_path / "db.sqlite"
    files = {"o0": b"DICM old radiograph", "o1": b"DICM new radiograph"}
    sha = {oid: hashlib.sha256(b).hexdigest() for oid, b in files.items()}
    old = manifest_entry("1.2", "1.2.3", "1.2.3.0", orthanc_id="o0", key="dicom/1.2/1.2.3/1.2.3.0.dcm")
    Catalog(path).record({**old, "sha256": sha["o0"], "study_date": "20210115"}, 1.0)
    new = manifest_entry("1.4", "1.4.3", "1.4.3.0", orthanc_id="o1", key="dicom/1.4/1.4.3/1.4.3.0.dcm")
    Catalog(path).record({**new, "sha256": sha["o1"], "study_date": "20261126"}, 2.0)
    queue = GroupQueue(path, "north", "")
    queue.fill(10.0)
    reader = type("Reader", (), {"read_file": lambda self, oid: files[oid]})()
    now = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
    sender = GroupSender(
        settings("http://127.0.0.1:1"), queue, reader, None, tmp_path / "m.jsonl", clock=now.timestamp,
        retention=RetentionRule(7),
    )  # fmt: skip
    written: dict[str, datetime | None] = {}
    sender.target.copy = lambda key, data, sha, oid, until=None: written.__setitem__(key, until)  # type: ignore[method-assign]
    sender._deliver(queue.due(10.0))  # one study at a time
    queue.verified(["o0"], 11.0)
    sender._deliver(queue.due(12.0))
    assert written["north/dicom/1.2/1.2.3/1.2.3.0.dcm"] == datetime(2028, 1, 15, tzinfo=UTC)  # 2021-01-15 + 7 years
    assert written.get("north/dicom/1.4/1.4.3/1.4.3.0.dcm") == datetime(2033, 11, 26, tzinfo=UTC), written
