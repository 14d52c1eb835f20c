#!/usr/bin/env python3
"""`make bench`: the cost and speed of every copy, as ratios against raw baselines measured in the same run.

QUICK=1 finishes in a few minutes; the full mode uses more and larger data. Writes
benchmarks/results/latest.json (keys listed in docs/performance.md) and PNG plots beside it.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "dev"), str(ROOT), str(ROOT / "plugins"), str(ROOT / "dashboard")]
import requests  # noqa: E402
from minio import Minio  # noqa: E402
from restores import bench_snapshots_and_restores, wait_copied  # noqa: E402
from viewing import bench_viewing  # noqa: E402

import devstack  # noqa: E402
from pacs_backup.clients.orthanc_http import OrthancHttp  # noqa: E402
from tests.support.dicomgen import make_study  # noqa: E402

QUICK = os.environ.get("QUICK", "") not in ("", "0")
# BENCH_TINY=1: the least data that still runs every step and writes every key and the report, for the
# harness's test in `make test` (its figures mean nothing).
TINY = os.environ.get("BENCH_TINY", "") not in ("", "0")
MODE = "tiny" if TINY else "quick" if QUICK else "full"
SIZES = {
    "ct": 8 if TINY else 60 if QUICK else 600,
    "radiographs": 1 if TINY else 3 if QUICK else 20,
    "rounds": 1 if TINY else 4 if QUICK else 3,  # quick: more alternating rounds, since each is short and noisy
    "lag_seconds": 1 if TINY else 10 if QUICK else 60,
    "backlog": 20 if TINY else 200 if QUICK else 1200,
}
RESULTS = Path(os.environ.get("BENCH_RESULTS") or ROOT / "benchmarks" / "results")
WORKERS = 4
# The object store measured against: the appliance's default (Versity S3 Gateway), or BENCH_STORE=minio.
STORE = os.environ.get("BENCH_STORE", "versitygw")
if STORE not in ("versitygw", "minio"):
    sys.exit(f"BENCH_STORE={STORE!r}: use versitygw (the default) or minio.")


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Stack:
    """The object store + rest-server + Orthanc (with or without the plugin) in a temporary folder."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.store_port, self.rest_port = devstack.free_port(), devstack.free_port()
        self.user, self.secret = "bench-" + devstack.new_secret(4).lower(), devstack.new_secret()
        self.store = self.start_store()
        self.rest = devstack.start_rest_server(base / "offsite", self.rest_port, base / "rest.log")
        self.pw = base / "restic-pw"
        self.pw.write_text(devstack.new_secret())
        self.orthanc: devstack.Process | None = None
        self.stopping: list[threading.Thread] = []  # tiny mode: Orthancs still stopping
        self.n = 0

    def start_store(self) -> devstack.Process:
        log = self.base / f"{STORE}.log"
        if STORE == "minio":
            return devstack.start_minio(
                self.base / "minio", self.store_port, devstack.free_port(), self.user, self.secret, log
            )
        return devstack.start_versitygw(self.base / "versitygw", self.store_port, self.user, self.secret, log)

    def client(self) -> Minio:
        return Minio(f"127.0.0.1:{self.store_port}", self.user, self.secret, secure=False)

    def start_orthanc(self, plugin: bool, bucket: str) -> tuple[OrthancHttp, devstack.OrthancSettings]:
        self.n += 1
        s = devstack.OrthancSettings(
            self.base / f"orthanc-{self.n}",
            devstack.free_port(),
            devstack.free_port(),
            "bench",
            devstack.new_secret(),
            plugin=plugin,
        )
        env = {
            "MINIO_ENDPOINT": f"127.0.0.1:{self.store_port}",
            "MINIO_ACCESS_KEY": self.user,
            "MINIO_SECRET_KEY": self.secret,
            "MINIO_BUCKET": bucket,
            "BACKUP_WORKERS": str(WORKERS),
            "RESTIC_REPOSITORY": f"rest:http://127.0.0.1:{self.rest_port}/{bucket}",
            "RESTIC_PASSWORD_FILE": str(self.pw),
            "BACKUP_FIRST_RUN_DELAY_SECONDS": "86400",
            "BACKUP_RETRY_BASE_SECONDS": "0.2",
            "BACKUP_RETRY_CAP_SECONDS": "2",
        }
        self.orthanc = devstack.start_orthanc(s, env, s.work_dir / "orthanc.log")
        return OrthancHttp(f"http://127.0.0.1:{s.http_port}", s.username, s.password), s

    def stop_orthanc(self) -> None:
        if self.orthanc:
            if TINY:  # nothing is measured after a stop: the next step need not wait out Orthanc's ~3.5 s stop
                stopping = threading.Thread(target=self.orthanc.stop, args=(60,))
                stopping.start()
                self.stopping.append(stopping)
            else:
                self.orthanc.stop(60)
            self.orthanc = None

    def close(self) -> None:
        self.stop_orthanc()
        for stopping in self.stopping:
            stopping.join()
        self.rest.stop(10)
        self.store.stop(30)


def write_files(folder: Path, blobs: list[bytes]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, b in enumerate(blobs):
        p = folder / f"{i:05d}.dcm"
        p.write_bytes(b)
        paths.append(p)
    return paths


def storescu(port: int, paths: list[Path]) -> float:
    """Send every file in one association, as a modality does; returns seconds."""
    t0 = time.perf_counter()
    subprocess.run(
        ["storescu", "-aec", "PACS", "127.0.0.1", str(port), *map(str, paths)],
        check=True,
        capture_output=True,
        timeout=3600,
    )
    return time.perf_counter() - t0


def rss_peak_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) of a process, in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def bench_ingest(stack: Stack, paths: list[Path]) -> dict[str, Any]:
    """C-STORE throughput with the plugin replicating vs without it, alternating runs, same files."""
    rates: dict[str, list[float]] = {"with": [], "without": []}
    rss: dict[str, list[float]] = {"with": [], "without": []}
    for r in range(SIZES["rounds"]):
        for mode in ("without", "with") if r % 2 == 0 else ("with", "without"):
            http, s = stack.start_orthanc(mode == "with", f"ingest-{r}-{mode}")
            secs = storescu(s.dicom_port, paths)
            rates[mode].append(len(paths) / secs)
            if mode == "with":
                wait_copied(http, len(paths))
            if stack.orthanc is not None:
                rss[mode].append(rss_peak_mb(stack.orthanc.pid))
            stack.stop_orthanc()
            log(f"ingest {mode} plugin: {len(paths) / secs:.1f} instances/s")
    with_, without = statistics.median(rates["with"]), statistics.median(rates["without"])
    rss_with, rss_without = statistics.median(rss["with"]), statistics.median(rss["without"])
    return {
        "ingest_with_per_s": with_,
        "ingest_without_per_s": without,
        "ingest_ratio": with_ / without,
        "plugin_rss_mb": max(0.0, rss_with - rss_without),
        "orthanc_rss_with_mb": rss_with,
        "orthanc_rss_without_mb": rss_without,
    }


def bench_lag(stack: Stack, blobs: list[bytes], tmp: Path) -> dict[str, Any]:
    """Steady ingest of 10 instances/s: lag from stored in Orthanc to copy verified."""
    from pydicom import dcmread
    from pynetdicom import AE, StoragePresentationContexts

    http, s = stack.start_orthanc(True, "lag")
    wait_copied(http, 0)
    ae = AE(ae_title="BENCH")
    ae.requested_contexts = StoragePresentationContexts
    assoc = ae.associate("127.0.0.1", s.dicom_port, ae_title="PACS")
    datasets = [dcmread(p) for p in write_files(tmp / "lag", blobs)]
    n = min(len(datasets), 10 * SIZES["lag_seconds"])
    start = time.perf_counter()
    for i in range(n):
        assoc.send_c_store(datasets[i])
        delay = start + (i + 1) / 10.0 - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
    assoc.release()
    st = wait_copied(http, n)
    stack.stop_orthanc()
    log(f"lag at 10/s: p50 {st['lag_s']['p50']} s, p99 {st['lag_s']['p99']} s")
    return {"lag_p50_s": st["lag_s"]["p50"], "lag_p99_s": st["lag_s"]["p99"], "lag_instances": n}


def drain_once(stack: Stack, blobs: list[bytes], n: int) -> dict[str, Any]:
    """A backlog queued while the store was down vs a raw PUT loop and vs rclone of the storage folder."""
    http, s = stack.start_orthanc(True, f"drain-{n}")
    wait_copied(http, 0)
    stack.store.stop(30)
    for b in blobs:
        http.upload(b)
    total = len(blobs)
    # Each timed phase starts with nothing left to write back to disk: the backlog just written into Orthanc's
    # storage (600 MB in full mode) would otherwise be flushed during the drain and not during the raw loop.
    os.sync()
    stack.store = stack.start_store()
    back = time.perf_counter()
    # Drain throughput is timed from the moment the plugin sees the store again; the time it takes to
    # notice (probe backoff, capped at 2 s) is reported on its own.
    while not http.get_json("/backup/status")["store"]["reachable"]:
        time.sleep(0.02)
    t0 = time.perf_counter()
    wait_copied(http, total)
    drain = total / (time.perf_counter() - t0)
    detect = t0 - back
    storage = s.work_dir / "storage"
    stack.stop_orthanc()

    client = stack.client()
    client.make_bucket(f"raw-put-{n}")

    def put(i_b: tuple[int, bytes]) -> None:
        i, b = i_b
        client.put_object(
            f"raw-put-{n}", f"raw/{i}.dcm", io.BytesIO(b), len(b), metadata={"sha256": hashlib.sha256(b).hexdigest()}
        )

    os.sync()
    t0 = time.perf_counter()
    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(put, enumerate(blobs)))
    raw = total / (time.perf_counter() - t0)

    rclone_rate = None
    if shutil.which("rclone"):
        client.make_bucket(f"rclone-{n}")
        # A CA bundle variable in the environment makes rclone's S3 client refuse plain HTTP endpoints.
        env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
        env.update(
            {
                "RCLONE_CONFIG_B_TYPE": "s3",
                "RCLONE_CONFIG_B_PROVIDER": "Minio" if STORE == "minio" else "Other",
                "RCLONE_CONFIG_B_ENDPOINT": f"http://127.0.0.1:{stack.store_port}",
                "RCLONE_CONFIG_B_ACCESS_KEY_ID": stack.user,
                "RCLONE_CONFIG_B_SECRET_ACCESS_KEY": stack.secret,
            }
        )
        os.sync()
        t0 = time.perf_counter()
        subprocess.run(
            [
                "rclone",
                "copy",
                "--transfers",
                str(WORKERS),
                "--exclude",
                "*.sqlite*",
                "--exclude",
                "pacs-backup/**",
                str(storage),
                f"B:rclone-{n}",
            ],
            env=env,
            check=True,
            capture_output=True,
            timeout=3600,
        )
        rclone_rate = total / (time.perf_counter() - t0)
    log(
        f"drain run {n}: {drain:.1f}/s (store noticed after {detect:.2f} s), "
        f"raw PUT {raw:.1f}/s, rclone {rclone_rate}/s"
    )
    return {
        "drain_per_s": drain,
        "store_return_noticed_s": detect,
        "raw_put_per_s": raw,
        "rclone_per_s": rclone_rate,
        "drain_vs_raw_put": drain / raw,
        "drain_vs_rclone": (drain / rclone_rate) if rclone_rate else None,
        "backlog_instances": total,
    }


def bench_drain(stack: Stack, blobs: list[bytes], runs: int = 3) -> dict[str, Any]:
    """The drain ``runs`` times in a row: the worst ratio is the figure, the spread says how much it moves."""
    done = [drain_once(stack, blobs, n) for n in range(1, runs + 1)]
    out: dict[str, Any] = {"backlog_instances": len(blobs), "drain_runs": done}
    for key in ("drain_vs_raw_put", "drain_vs_rclone"):
        values = [d[key] for d in done if d[key] is not None]
        out[key] = min(values) if values else None
        out[f"{key}_spread"] = (max(values) - min(values)) if values else None
    for key in ("drain_per_s", "raw_put_per_s", "rclone_per_s"):
        values = [d[key] for d in done if d[key] is not None]
        out[key] = statistics.median(values) if values else None
    shown = ", ".join(f"{d['drain_vs_raw_put']:.3f}" for d in done)
    log(f"drain vs raw PUT in {runs} runs: {shown} (worst {out['drain_vs_raw_put']:.3f})")
    return out


def bench_dashboard(stack: Stack, tmp: Path) -> dict[str, Any]:
    """Peak memory of the dashboard after a few hundred page and API requests."""
    http, s = stack.start_orthanc(True, "dash")
    port = devstack.free_port()
    d = devstack.start_dashboard(
        port,
        tmp / "dash",
        {
            "ORTHANC_URL": http.url,
            "ORTHANC_USERNAME": s.username,
            "ORTHANC_PASSWORD": s.password,
            "DASHBOARD_USERNAME": "bench",
            "DASHBOARD_PASSWORD": "bench-password-long",
            "DASHBOARD_MONITOR_SECONDS": "1",
        },
        tmp / "dash.log",
    )
    for _ in range(4 if TINY else 40):
        for path in ("/api/status", "/metrics", "/", "/studies?q=A", "/drills"):
            requests.get(f"http://127.0.0.1:{port}{path}", auth=("bench", "bench-password-long"), timeout=30)
    peak = rss_peak_mb(d.pid)
    d.stop(10)
    stack.stop_orthanc()
    return {"dashboard_rss_mb": peak}


def plots(result: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4))
    pairs = [
        ("C-STORE ingest\n(with / without plugin)", result["ingest_with_per_s"], result["ingest_without_per_s"]),
        ("backlog drain\n(vs raw PUT loop)", result["drain_per_s"], result["raw_put_per_s"]),
        ("disaster recovery, bucket\n(vs raw POST)", result["restore_bucket_per_s"], result["raw_ingest_per_s"]),
        ("disaster recovery, offsite\n(vs raw POST)", result["restore_offsite_per_s"], result["raw_ingest_per_s"]),
    ]
    xs = list(range(len(pairs)))
    ax.bar([x - 0.2 for x in xs], [p[1] for p in pairs], 0.4, label="appliance")
    ax.bar([x + 0.2 for x in xs], [p[2] for p in pairs], 0.4, label="baseline")
    ax.set_xticks(xs, [p[0] for p in pairs])
    ax.set_ylabel("instances / s")
    ax.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "throughput.png")
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.bar(["p50", "p99"], [result["lag_p50_s"] or 0, result["lag_p99_s"] or 0])
    ax.axhline(0.5, color="green", linestyle="--", label="p50 target")
    ax.axhline(2.0, color="red", linestyle="--", label="p99 target")
    ax.set_ylabel("s, stored -> copy verified")
    ax.legend()
    fig.tight_layout()
    fig.savefig(RESULTS / "lag.png")


TARGETS = [
    ("ingest_ratio", ">=", 0.95),
    ("lag_p50_s", "<=", 0.5),
    ("lag_p99_s", "<=", 2.0),
    ("drain_vs_raw_put", ">=", 0.8),  # the worst of three runs in a row
    ("drain_vs_rclone", ">=", 1.0),  # the worst of the same three
    ("incremental_snapshot_ratio", "<=", 0.1),
    ("restore_bucket_vs_raw_ingest", ">=", 0.8),
    ("restore_offsite_vs_raw_ingest", ">=", 0.7),
    ("restore_study_bucket_vs_raw_ingest", ">=", 0.8),
    ("restore_study_offsite_vs_raw_ingest", ">=", 0.7),
    ("restore_vs_raw_ingest", ">=", 0.7),
    ("plugin_rss_mb", "<=", 60),
    ("dashboard_rss_mb", "<=", 120),
    ("view_bucket_vs_pacs", "<=", 1.5),
    ("view_offsite_speedup_vs_restore", ">=", 3.0),
]
# Figures without a goal, printed after the goals: what the ratios above are made of.
FIGURES = [
    "drain_vs_raw_put_spread",
    "drain_vs_rclone_spread",
    "snapshot_first_s",
    "snapshot_incremental_s",
    "snapshot_incremental_manifest_s",
    "snapshot_incremental_restic_s",
    "restic_open_s",
    "restic_open_locked_s",
    "restic_backup_unchanged_s",
    "incremental_snapshot_floor_ratio",
    "rto_bucket_s_per_gb",
    "rto_offsite_s_per_gb",
    "raw_ingest_s_per_gb",
]


def main() -> int:
    RESULTS.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pacs-bench-") as t:
        tmp = Path(t)
        log(f"mode {MODE}: {SIZES}")
        ct_uid, ct = make_study(SIZES["ct"], rows=512, cols=512)
        _, xr = make_study(SIZES["radiographs"], rows=2500, cols=2000, modality="CR")
        mix = ct + xr
        stack = Stack(tmp / "stack")
        try:
            result: dict[str, Any] = {
                "mode": MODE,
                "instances": len(mix),
                "bytes": sum(map(len, mix)),
                "workers": WORKERS,
            }
            result.update(bench_ingest(stack, write_files(tmp / "ingest", mix)))
            result.update(bench_lag(stack, ct, tmp))
            _, backlog = make_study(SIZES["backlog"], rows=512, cols=512)
            result.update(bench_drain(stack, backlog))
            _, extra = make_study(max(1, len(mix) // 100), rows=512, cols=512)
            result.update(bench_snapshots_and_restores(stack, mix, extra, (ct_uid, ct), log, ROOT, WORKERS))
            result.update(bench_dashboard(stack, tmp))
            result.update(bench_viewing(stack, tmp, log))
        finally:
            stack.close()
    result["machine"] = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
    }
    (RESULTS / "latest.json").write_text(json.dumps(result, indent=2))
    plots(result)
    print(f"\n{'measure':36s} {'value':>10s}  goal      result")
    for key, op, goal in TARGETS:
        v = result.get(key)
        met = v is not None and (v >= goal if op == ">=" else v <= goal)
        shown = "n/a" if v is None else f"{v:.3f}"
        print(f"{key:36s} {shown:>10s}  {op} {goal:<6} {'pass' if met else 'miss'}")
    print()
    for key in FIGURES:
        v = result.get(key)
        print(f"{key:36s} {'n/a' if v is None else f'{v:.3f}':>10s}")
    print(f"\nwritten: {RESULTS / 'latest.json'}, throughput.png, lag.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
