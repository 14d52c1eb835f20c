"""A clinic's side of a group of clinics, on real programs: two clinics (Orthanc + plugin, each with its own
local bucket) copy into a second real MinIO standing in for the group store, with keys made by
`scripts/group add-clinic`; the S3 server refuses what a clinic's keys may not do; one clinic is rebuilt
from the group store alone; the catalog feed reaches a local stand-in of the group service."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from minio import Minio
from minio.error import S3Error

from pacs_backup.state.manifest import read_manifest
from tests.support.common import figure, sha256, wait_until
from tests.support.pacs import fill, orthanc_env, orthanc_study_id, pacs_content, script
from tests.support.servers import MinioServer

GROUP_BUCKET = "group-pacs"


@pytest.fixture(scope="module")
def group_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinioServer]:
    """A second real MinIO: the group's store, apart from the clinics' local ones."""
    server = MinioServer(tmp_path_factory.mktemp("group-store"))
    server.start()
    yield server
    server.stop()


class GroupServiceStandIn(ThreadingHTTPServer):
    """The group service's two routes as the clinic calls them; the first ``fail`` answers are 503."""

    def __init__(self, fail: int) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fail, self.refused = fail, 0
        self.entries: list[dict[str, Any]] = []
        self.beats: list[dict[str, Any]] = []
        self.lock = threading.Lock()


class _Handler(BaseHTTPRequestHandler):
    server: GroupServiceStandIn

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        ok = self.headers.get("Authorization") == "Bearer token-of-north"
        with self.server.lock:
            if not ok:
                status, doc = 401, {"error": "who are you"}
            elif self.server.fail > 0:
                self.server.fail -= 1
                self.server.refused += 1
                status, doc = 503, {"error": "starting"}
            elif self.path == "/group/api/catalog":
                self.server.entries += body["entries"]
                status, doc = 200, {"accepted": len(body["entries"])}
            else:
                self.server.beats.append(body)
                status, doc = 200, {}
        data = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def add_clinic(store: MinioServer, clinic: str) -> dict[str, str]:
    """`scripts/group add-clinic` with the group store's root account: the lines it prints to paste."""
    root = {
        "GROUP_STORE_ENDPOINT": store.endpoint,
        "GROUP_STORE_BUCKET": GROUP_BUCKET,
        "GROUP_STORE_ROOT_USER": store.access_key,
        "GROUP_STORE_ROOT_PASSWORD": store.secret_key,
        "GROUP_LOCK_DAYS": "1",
    }
    done = script("group", "add-clinic", clinic, env=root, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "GROUP_SERVICE_TOKEN" in done.stdout and "python -m pacs_dashboard group add-clinic" in done.stdout
    assert store.secret_key not in done.stdout + done.stderr  # the root account's secret is never printed
    return dict(line.split("=", 1) for line in done.stdout.splitlines() if line and not line.startswith("#"))


def keys_of(store: MinioServer, pasted: dict[str, str]) -> Minio:
    return Minio(store.endpoint, pasted["GROUP_STORE_ACCESS_KEY"], pasted["GROUP_STORE_SECRET_KEY"], secure=False)


def refused(call: Any) -> str:
    """The S3 error code of a call the server must refuse."""
    with pytest.raises(S3Error) as err:
        call()
    return str(err.value.code)


def group_status(o) -> dict:
    return o.status()["group"]


def test_group_copy_of_two_clinics_outage_policies_drill_feed_and_recovery_from_the_group_store(
    orthanc_factory, minio_server, group_store, tmp_path: Path
):
    north, south = add_clinic(group_store, "north"), add_clinic(group_store, "south")
    service = GroupServiceStandIn(fail=2)
    threading.Thread(target=service.serve_forever, daemon=True).start()
    try:
        _run(orthanc_factory, minio_server, group_store, north, south, service)
    finally:
        service.shutdown()
        service.server_close()


def _run(orthanc_factory, minio_server, group_store, north, south, service) -> None:
    common = {"BACKUP_FIRST_RUN_DELAY_SECONDS": "86400", "GROUP_MANIFEST_SECONDS": "1"}
    feed = {
        "GROUP_SERVICE_URL": f"http://127.0.0.1:{service.server_port}",
        "GROUP_SERVICE_TOKEN": "token-of-north",
        "GROUP_HEARTBEAT_SECONDS": "1",
    }
    a = orthanc_factory({**minio_server.env("t-group-north"), **common, **north, **feed}, name="north")
    b = orthanc_factory({**minio_server.env("t-group-south"), **common, **south}, name="south")
    fill(a, studies=2, per_study=3)
    fill(b, studies=1, per_study=3)
    for o, n in ((a, 6), (b, 3)):
        wait_until(lambda o=o, n=n: group_status(o)["verified"] == n, 120, f"{n} images verified in the group store")

    # every instance is in the group store under <clinic>/dicom/..., byte for byte, with its sha256
    root = group_store.client()
    for o, clinic in ((a, "north"), (b, "south")):
        local = o.http()
        held = {}
        for obj in root.list_objects(GROUP_BUCKET, prefix=f"{clinic}/dicom/", recursive=True):
            resp = root.get_object(GROUP_BUCKET, obj.object_name)
            data, meta = resp.read(), resp.headers.get("x-amz-meta-sha256")
            assert meta == sha256(data), obj.object_name
            held[obj.object_name] = sha256(data)
        in_pacs = {}
        for i in local.get_json("/instances"):
            tags = local.get_json(f"/instances/{i}/tags?simplify")
            key = f"{clinic}/dicom/{tags['StudyInstanceUID']}/{tags['SeriesInstanceUID']}/{tags['SOPInstanceUID']}.dcm"
            in_pacs[key] = sha256(local.get(f"/instances/{i}/file"))
        assert held == in_pacs
        wait_until(
            lambda c=clinic, keys=set(in_pacs): {e["key"] for e in _manifest(root, c)} == keys,
            60,
            f"{clinic}'s manifest in the group store, listing every image",
        )

    # the group store is down: the copy waits and says so, then catches up
    group_store.stop()
    fill(a, studies=1, per_study=3)
    a.wait_replicated(9)
    st = wait_until(
        lambda: (s := group_status(a))["reachable"] is False and s["depth"] == 3 and s, 90, "the outage seen"
    )
    assert "cannot be reached" in st["last_error"]["message"] and a.status()["state"] == "degraded"
    group_store.start()
    wait_until(lambda: (s := group_status(a))["verified"] == 9 and s["depth"] == 0, 120, "caught up")
    assert group_status(a)["reachable"] is True and group_status(a)["lag_s"]["p50"] is not None

    # clinic north's keys: its own objects only, and never a delete (refused by the server itself)
    mine = keys_of(group_store, north)
    theirs = next(root.list_objects(GROUP_BUCKET, prefix="south/dicom/", recursive=True)).object_name
    own = next(root.list_objects(GROUP_BUCKET, prefix="north/dicom/", recursive=True)).object_name
    assert refused(lambda: mine.get_object(GROUP_BUCKET, theirs).read()) == "AccessDenied"
    assert refused(lambda: list(mine.list_objects(GROUP_BUCKET, prefix="south/", recursive=True))) == "AccessDenied"
    assert refused(lambda: list(mine.list_objects(GROUP_BUCKET, recursive=True))) == "AccessDenied"
    assert refused(lambda: mine.remove_object(GROUP_BUCKET, theirs)) == "AccessDenied"
    assert refused(lambda: mine.put_object(GROUP_BUCKET, theirs, io.BytesIO(b"x"), 1)) == "AccessDenied"
    version = next(root.list_objects(GROUP_BUCKET, prefix=own, include_version=True)).version_id
    assert refused(lambda: mine.remove_object(GROUP_BUCKET, own, version_id=version)) == "AccessDenied"
    assert refused(lambda: mine.remove_object(GROUP_BUCKET, own)) == "AccessDenied"
    assert mine.stat_object(GROUP_BUCKET, own).size > 0  # and its own are readable

    # the group store's drill reads a sample back and compares it with what the copy recorded
    (run,) = a.run_job("drills", "group")
    assert run["state"] == "ok" and run["summary"]["checked"] >= 1, run
    assert run["summary"]["identical"] == run["summary"]["checked"]
    assert group_status(a)["last_drill"]["state"] == "ok"

    # the feed: every row verified in the group store reached the group service, after two 503s
    wait_until(lambda: len({e["sop_uid"] for e in service.entries}) == 9, 60, "9 catalog rows acknowledged")
    assert service.refused == 2 and all(e["key"].startswith("north/dicom/") for e in service.entries)
    assert all(e["verified_at"] and "group" in e["copies"] for e in service.entries)
    wait_until(lambda: service.beats, 30, "a heartbeat")
    assert service.beats[-1]["clinic"] == "north" and service.beats[-1]["status"]["group"]["clinic"] == "north"
    assert group_status(a)["feed"]["depth"] == 0

    # north rebuilt on a new box from the group store alone, with its own group keys
    content = pacs_content(a)
    fresh = orthanc_factory({}, plugin=False, name="north-rebuilt")
    only_group = {k: v for k, v in north.items() if k.startswith("GROUP_")}
    done = script("disaster-recovery", "--from", "group", env={**orthanc_env(fresh), **only_group}, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "9 of 9 images restored and verified" in done.stdout
    assert pacs_content(fresh) == content
    study = sorted(content)[0]  # one study again, by its UID; a patient id the manifest lacks is "not found"
    fresh.http().delete(f"/studies/{orthanc_study_id(fresh, study)}")
    again = script("restore-study", "--from", "group", study, env={**orthanc_env(fresh), **only_group})
    assert again.returncode == 0 and pacs_content(fresh) == content, again.stdout + again.stderr
    unknown = script(
        "restore-study", "--from", "group", "--patient-id", "NOBODY", env={**orthanc_env(fresh), **only_group}
    )
    assert (
        unknown.returncode == 4
        and "No study in group store group-pacs (north/) has patient id 'NOBODY'" in unknown.stderr
    )
    figure("group_copy", lag_p50_s=group_status(a)["lag_s"]["p50"], images=9)


def _manifest(root: Minio, clinic: str) -> list[dict]:
    """The clinic's manifest in the group store (empty until it is written)."""
    try:
        data = root.get_object(GROUP_BUCKET, f"{clinic}/catalog/manifest.jsonl").read()
    except S3Error:
        return []
    return list(read_manifest(data)[1])
