"""`make bench`, snapshots and restores: what a clinic waits for, as ratios against raw ingest in the same run.

- Snapshots: the first, then one after 1 % more data; the incremental one's breakdown (the manifest, restic's
  backup) beside restic's fixed costs measured on the same repository: opening it without a lock (the key
  derivation), with a lock, and a backup with nothing changed (the floor of any incremental snapshot).
- One study (the CT) restored through the plugin's own route (``POST /backup/restores``, what staff do on
  the dashboard) from the bucket and from the offsite snapshot, after it was deleted from the PACS; against
  ``POST /instances`` of the same files into an empty Orthanc, four threads.
- The whole PACS by ``scripts/disaster-recovery`` (what a technician runs on a new box) from the bucket and
  from the offsite snapshot into an empty Orthanc; against the same raw ingest of every file.
- The recovery time per copy kind: seconds per GB of those whole restores.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

import devstack
from pacs_backup.clients.orthanc_http import OrthancHttp
from pacs_backup.clients.restic import find_restic

GB = 1e9
SQLITE = ["*.sqlite", "*.sqlite-wal", "*.sqlite-shm", "*.sqlite-journal"]  # as the plugin's snapshots exclude


class StackLike(Protocol):
    rest_port: int
    store_port: int
    user: str
    secret: str
    pw: Path

    def start_orthanc(self, plugin: bool, bucket: str) -> tuple[OrthancHttp, devstack.OrthancSettings]: ...

    def stop_orthanc(self) -> None: ...


def wait_run(http: OrthancHttp, run_id: int, timeout: float = 1800) -> dict[str, Any]:
    """The run once it ended; an error when it failed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run: dict[str, Any] = http.get_json(f"/backup/runs/{run_id}")
        if run["state"] in ("ok", "failed"):
            if run["state"] != "ok":
                raise RuntimeError(f"run {run_id} failed: {run.get('error')}")
            return run
        time.sleep(0.02)
    raise RuntimeError(f"run {run_id} did not end within {timeout} s")


def wait_copied(http: OrthancHttp, count: int, timeout: float = 1800) -> dict[str, Any]:
    """The plugin's status once ``count`` instances are copied, none waits and the store answers."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = http.get_json("/backup/status")
        if st.get("replicated", 0) >= count and st.get("outbox_depth") == 0 and st["store"]["reachable"]:
            return dict(st)
        time.sleep(0.05)
    raise RuntimeError(f"replication did not finish within {timeout} s")


def raw_ingest_s(stack: StackLike, blobs: list[bytes], workers: int) -> float:
    """Seconds to POST ``blobs`` into an empty Orthanc without the plugin, ``workers`` threads."""
    http, _ = stack.start_orthanc(False, "raw")
    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(http.upload, blobs))
    secs = time.perf_counter() - t0
    stack.stop_orthanc()
    return secs


def _restic_seconds(env: dict[str, str], *args: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([find_restic(), *args], env=env, check=True, capture_output=True, timeout=600)
    return time.perf_counter() - t0


def restic_floor(stack: StackLike, storage: Path) -> dict[str, float]:
    """restic's fixed costs on the snapshot repository: what no incremental snapshot can go below."""
    env = {
        **os.environ,
        "RESTIC_REPOSITORY": f"rest:http://127.0.0.1:{stack.rest_port}/snap",
        "RESTIC_PASSWORD_FILE": str(stack.pw),
    }
    # The same host and path as the plugin's snapshots, so restic takes the newest as its parent and reads no
    # file again; another tag, so no restore ever picks it.
    unchanged = ["backup", str(storage), "--tag", "bench-floor", "--host", os.uname().nodename]
    excludes = [str(storage / "index"), str(storage / "index-*"), *SQLITE]
    unchanged += [a for e in excludes for a in ("--exclude", e)]
    return {
        "restic_open_s": _restic_seconds(env, "cat", "config", "--no-lock"),
        "restic_open_locked_s": _restic_seconds(env, "cat", "config"),
        "restic_backup_unchanged_s": _restic_seconds(env, *unchanged),
    }


def _snapshot(http: OrthancHttp) -> dict[str, Any]:
    return wait_run(http, http.post_json("/backup/snapshots", {})["runs"][0])


def _study_id(http: OrthancHttp, uid: str) -> str:
    return str(json.loads(http.request("POST", "/tools/lookup", uid.encode(), "text/plain"))[0]["ID"])


def bench_snapshots_and_restores(
    stack: StackLike,
    blobs: list[bytes],
    extra: list[bytes],
    study: tuple[str, list[bytes]],
    log: Any,
    root: Path,
    workers: int,
) -> dict[str, Any]:
    """Snapshots with their floor, one study restored by the plugin, the whole PACS by the script."""
    http, s = stack.start_orthanc(True, "snap")
    for b in blobs:
        http.upload(b)
    wait_copied(http, len(blobs))
    first = _snapshot(http)
    for b in extra:
        http.upload(b)
    wait_copied(http, len(blobs) + len(extra))
    incremental = _snapshot(http)
    first_s, incremental_s = float(first["duration_s"]), float(incremental["duration_s"])
    out: dict[str, Any] = {
        "snapshot_first_s": first_s,
        "snapshot_incremental_s": incremental_s,
        "incremental_snapshot_ratio": incremental_s / first_s,
        "snapshot_incremental_manifest_s": incremental["summary"].get("manifest_s"),
        "snapshot_incremental_restic_s": incremental["summary"].get("restic_s"),
    }
    log(f"snapshot first {first_s:.2f} s, incremental (+{len(extra)}) {incremental_s:.2f} s")

    uid, files = study
    study_bytes = sum(map(len, files))
    for source, key in (("minio", "bucket"), ("offsite", "offsite")):
        http.delete(f"/studies/{_study_id(http, uid)}")
        t0 = time.perf_counter()
        run = wait_run(http, http.post_json("/backup/restores", {"study_uid": uid, "source": source})["run"])
        out[f"restore_study_{key}_per_s"] = len(files) / (time.perf_counter() - t0)
        if not run["summary"]["ok"] or run["summary"]["verified"] != len(files):
            raise RuntimeError(f"the study's restore from {source} did not verify: {run['summary']}")
    out.update(restic_floor(stack, s.work_dir / "storage"))
    out["incremental_snapshot_floor_ratio"] = out["restic_backup_unchanged_s"] / first_s
    stack.stop_orthanc()

    all_blobs = blobs + extra
    total_bytes = sum(map(len, all_blobs))
    raw = len(all_blobs) / raw_ingest_s(stack, all_blobs, workers)
    raw_study = len(files) / raw_ingest_s(stack, files, workers)
    env = {
        "PATH": os.environ["PATH"],
        "MINIO_ENDPOINT": f"127.0.0.1:{stack.store_port}",
        "MINIO_ACCESS_KEY": stack.user,
        "MINIO_SECRET_KEY": stack.secret,
        "MINIO_BUCKET": "snap",
        "RESTIC_REPOSITORY": f"rest:http://127.0.0.1:{stack.rest_port}/snap",
        "RESTIC_PASSWORD_FILE": str(stack.pw),
    }
    for source, key in (("minio", "bucket"), ("offsite", "offsite")):
        target, ts = stack.start_orthanc(False, f"restore-{source}")
        e = {**env, "ORTHANC_URL": target.url, "ORTHANC_USERNAME": ts.username, "ORTHANC_PASSWORD": ts.password}
        t0 = time.perf_counter()
        done = subprocess.run(
            [str(root / "scripts" / "disaster-recovery"), "--from", source],
            env=e,
            capture_output=True,
            text=True,
            timeout=3600,
            check=False,
        )
        secs = time.perf_counter() - t0
        if done.returncode != 0:
            raise RuntimeError(f"disaster recovery from {source} failed: {done.stdout[-2000:]}{done.stderr}")
        out[f"restore_{key}_per_s"] = len(all_blobs) / secs
        out[f"rto_{key}_s_per_gb"] = secs / (total_bytes / GB)
        stack.stop_orthanc()
    out["raw_ingest_per_s"] = raw
    out["raw_ingest_study_per_s"] = raw_study
    out["raw_ingest_s_per_gb"] = (len(all_blobs) / raw) / (total_bytes / GB)
    for key in ("bucket", "offsite"):
        out[f"restore_{key}_vs_raw_ingest"] = out[f"restore_{key}_per_s"] / raw
        out[f"restore_study_{key}_vs_raw_ingest"] = out[f"restore_study_{key}_per_s"] / raw_study
    out["restore_vs_raw_ingest"] = min(out["restore_bucket_vs_raw_ingest"], out["restore_offsite_vs_raw_ingest"])
    log(
        f"raw ingest {raw:.0f}/s (the study alone {raw_study:.0f}/s); whole PACS: bucket "
        f"{out['restore_bucket_per_s']:.0f}/s, offsite {out['restore_offsite_per_s']:.0f}/s; one study "
        f"({study_bytes / 1e6:.0f} MB): bucket {out['restore_study_bucket_per_s']:.0f}/s, offsite "
        f"{out['restore_study_offsite_per_s']:.0f}/s; restic open {out['restic_open_s']:.2f} s, unchanged backup "
        f"{out['restic_backup_unchanged_s']:.2f} s"
    )
    return out
