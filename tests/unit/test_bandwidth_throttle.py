"""The cloud PACS sender shares the clinic's internet: a token bucket paces STOW-RS (and C-STORE batches),
and nothing is sent outside the window (replication/throttle.py, CLOUD_PACS_UPLOAD_LIMIT)."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from pacs_backup.replication.cloud_pacs import CloudQueue, CloudSender
from pacs_backup.replication.dicomweb import DicomWeb
from pacs_backup.replication.throttle import Throttle, paced
from pacs_backup.settings.bandwidth import parse_schedule

KIB = 1024


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_bandwidth_token_bucket_keeps_to_the_rate_in_force_with_a_fake_clock():
    t = FakeTime()
    local = [datetime(2026, 12, 7, 10, 0)]
    schedule = parse_schedule("CLOUD_PACS_UPLOAD_LIMIT", "08:00,256K 18:00,off")
    throttle = Throttle(schedule, clock=t.clock, sleep=t.sleep, local=lambda: local[0], burst_s=0.25)
    body = bytes(2 * 1024 * KIB)  # 2 MiB at 256 KiB/s: 8 seconds, less the burst let through at once
    assert b"".join(paced(body, throttle)) == body
    assert abs((t.now - 100.0) - (8.0 - 0.25)) < 1e-6
    # At night the limit is off: nothing waits.
    local[0] = datetime(2026, 12, 7, 19, 0)
    before = t.now
    assert b"".join(paced(body, throttle)) == body and t.now == before
    # A pause lets through one burst, not the whole pause's worth.
    local[0] = datetime(2026, 12, 7, 9, 0)
    t.now += 3600
    start = t.now
    throttle.take(1024 * KIB)
    assert abs((t.now - start) - (4.0 - 0.25)) < 1e-6


class _Stow(BaseHTTPRequestHandler):
    received: list[int] = []  # noqa: RUF012 - one test's server

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        self.received.append(len(self.rfile.read(length)))
        self.send_response(200)
        self.send_header("Content-Type", "application/dicom+json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: Any) -> None:
        pass


def test_bandwidth_stow_on_loopback_takes_at_least_what_the_limit_allows():
    """A measurable limit on loopback: 600 KiB at 256 KiB/s cannot arrive in less than ~80% of size/limit."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        root = f"http://127.0.0.1:{server.server_address[1]}/dicom-web"
        limit, size = 256 * KIB, 600 * KIB
        files = [bytes(size // 3)] * 3
        fast = DicomWeb(root)
        began = time.monotonic()
        fast.store(files)
        unlimited_s = time.monotonic() - began
        slow = DicomWeb(root, throttle=Throttle(parse_schedule("CLOUD_PACS_UPLOAD_LIMIT", "256K")))
        began = time.monotonic()
        slow.store(files)
        limited_s = time.monotonic() - began
    finally:
        server.shutdown()
    assert _Stow.received[-1] == _Stow.received[-2] > size  # the whole body arrived, both times
    assert limited_s >= 0.8 * size / limit > unlimited_s * 2, (limited_s, unlimited_s)
    assert limited_s < 3 * size / limit  # paced, not stalled


class _FakeClient:
    shown = "https://cloud.example/dicom-web"

    def __init__(self) -> None:
        self.sent: list[int] = []

    def send(self, items: Any) -> None:
        self.sent.append(len(items))

    def instances_of(self, study_uid: str) -> set[str]:
        return set()


def test_bandwidth_cloud_sender_holds_outside_its_window_and_says_when(tmp_path: Path):
    now = [datetime(2026, 12, 7, 10, 0).timestamp()]
    night = parse_schedule("CLOUD_PACS_UPLOAD_LIMIT", "06:00,0 20:00,off")
    sender = CloudSender(
        CloudQueue(tmp_path / "plugin.sqlite"),
        _FakeClient(),
        SimpleNamespace(),  # type: ignore[arg-type]
        None,
        clock=lambda: now[0],
        upload=night,
    )
    assert sender.held_until() == datetime(2026, 12, 7, 20, 0).timestamp()
    doc = sender.status()
    assert doc["window"] == "06:00,0 20:00,off" and doc["next_window"] == sender.held_until()
    now[0] = datetime(2026, 12, 7, 21, 0).timestamp()
    assert sender.held_until() is None and sender.status()["next_window"] is None
    always = CloudSender(CloudQueue(tmp_path / "p2.sqlite"), _FakeClient(), SimpleNamespace(), None)  # type: ignore[arg-type]
    assert always.held_until() is None and "window" not in always.status()


class _CountingQueue:
    def __init__(self) -> None:
        self.filled = self.asked = 0

    def fill(self, now: float) -> int:
        self.filled += 1
        return 0

    def due(self, now: float) -> list[object]:
        self.asked += 1
        return []


def test_bandwidth_cloud_sender_thread_asks_for_nothing_to_send_outside_the_window():
    night = parse_schedule("CLOUD_PACS_UPLOAD_LIMIT", "06:00,0 20:00,off")
    for hour, sends in ((10, False), (21, True)):
        queue = _CountingQueue()
        clock = datetime(2026, 12, 7, hour, 0).timestamp()
        sender = CloudSender(queue, _FakeClient(), SimpleNamespace(), None, clock=lambda c=clock: c, upload=night)  # type: ignore[arg-type]
        sender.start()
        deadline = time.monotonic() + 5
        while queue.filled == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)
        sender.stop()
        assert queue.filled >= 1 and (queue.asked > 0) == sends, (hour, queue.asked)


def test_bandwidth_c_store_batches_wait_for_their_share_of_the_rate():
    from pacs_backup.replication.cloud_pacs import Outgoing
    from pacs_backup.replication.dimse_peer import DimsePeer
    from pacs_backup.settings.cloud_peer import DicomPeerSettings

    t = FakeTime()
    limit = parse_schedule("CLOUD_PACS_UPLOAD_LIMIT", "100K")
    peer = DimsePeer(
        DicomPeerSettings("CLOUD", "127.0.0.1", 104),
        lambda uri: b"{}",
        lambda uri, body: b"{}",
        lambda uri, body: b"{}",
        throttle=Throttle(limit, clock=t.clock, sleep=t.sleep, burst_s=0.0),
    )
    stored: list[int] = []
    peer._call = lambda uri, body, what, *a: stored.append(len(body)) or {}  # type: ignore[method-assign]
    peer.send([Outgoing(None, bytes(100 * KIB)), Outgoing(None, bytes(100 * KIB))])
    assert stored == [100 * KIB, 100 * KIB]
    assert abs((t.now - 100.0) - 2.0) < 1e-6  # 200 KiB at 100 KiB/s
