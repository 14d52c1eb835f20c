#!/usr/bin/env python3
"""`make bench SCALE=1`: how the plugin's costs grow with the archive (10,000 / 100,000 / 1,000,000 images).

A clinic keeps images for ten years or more. For each size this builds the plugin's database as a
clinic's volume would hold it (queue rows marked copied, catalog rows of studies of 20 images with
varied names, a run history), starts a real Orthanc with the plugin on it (real MinIO), and measures:

- ``status_ms``: median time of ``GET /backup/status`` (what the dashboard asks every 10 s);
- ``search_p99_ms``: 99th percentile of ``GET /backup/studies?q=`` over typed names, ids and dates;
- ``restart_reconcile_s``: a real restart with nothing new: from starting Orthanc with the plugin on
  the volume (which holds its place in Orthanc's change log, as a running box does) until the plugin
  reports its start-up reconciliation done;
- ``full_reconcile_s``: the weekly full comparison's work on the queue (every instance Orthanc lists,
  checked in pages; measured on the engine with the listing given in memory, since this machine cannot
  hold an Orthanc of a million images: Orthanc's own listing time is not the plugin's and comes on top);
- ``plugin_rss_mb``: Orthanc's peak memory with the plugin after those requests, minus without it.

Orthanc itself holds no images here: every figure is the plugin's own work on its database, which is
what grows with the archive. Writes benchmarks/results/scale.json and scale.png (both untracked).
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "dev"), str(ROOT), str(ROOT / "plugins")]
import devstack  # noqa: E402
from pacs_backup.clients.orthanc_http import OrthancHttp  # noqa: E402
from pacs_backup.replication.outbox import Outbox  # noqa: E402
from pacs_backup.replication.reconcile import CHANGES_CURSOR  # noqa: E402
from pacs_backup.state.schema import open_plugin_db, refresh_all_studies  # noqa: E402

RESULTS = Path(os.environ.get("BENCH_RESULTS") or ROOT / "benchmarks" / "results")
SIZES = [int(s) for s in os.environ.get("SCALE_SIZES", "10000,100000,1000000").split(",")]
FAMILY = ["Smith", "Müller", "O'Brien", "García", "Nguyen", "Kowalski", "Rossi", "Dubois", "Jones", "Yamada"]
GIVEN = ["Bella", "Rex", "Luna", "Max", "Milo", "Coco", "Nala", "Simba", "Zoë", "Charlie"]
SPECIES = ["Canine", "Feline", "Equine", "Lapine"]


def log(msg: str) -> None:
    print(f"[scale {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def build_volume(path: Path, n: int, rng: random.Random) -> None:
    """A plugin database holding ``n`` copied images in studies of 20, as years of use would leave it."""
    db = open_plugin_db(path)
    db.execute("PRAGMA synchronous=OFF")
    now = time.time()
    db.execute("BEGIN")
    batch_o: list[tuple[Any, ...]] = []
    batch_c: list[tuple[Any, ...]] = []
    for i in range(n):
        study, series = i // 20, i // 5
        oid = _orthanc_id(i)
        key = f"dicom/1.2.{study}/1.2.{study}.{series}/1.2.{study}.{series}.{i}.dcm"
        when = now - (n - i) * 60.0  # one image a minute, oldest first
        batch_o.append((oid, when, when, key, f"{i:064x}", 500_000, when))
        name = f"{FAMILY[study % 10]}^{GIVEN[(study // 10) % 10]}"
        batch_c.append(
            (
                oid,
                f"1.2.{study}",
                f"1.2.{study}.{series}",
                f"1.2.{study}.{series}.{i}",
                f"P-{study % 5000}",
                name,
                f"{FAMILY[(study + 3) % 10]}^Owner",
                SPECIES[study % 4],
                "Mixed",
                f"A{study}",
                time.strftime("%Y%m%d", time.gmtime(when)),
                "X-ray",
                "DX",
                f"ab/cd/{oid}",
                key,
                f"{i:064x}",
                500_000,
                when,
            )
        )
        if len(batch_o) >= 20000:
            _flush(db, batch_o, batch_c)
    _flush(db, batch_o, batch_c)
    for r in range(min(n // 20, 2000)):
        db.execute(
            "INSERT INTO runs (target, kind, state, queued_at, started_at, finished_at, summary) "
            "VALUES ('offsite', ?, 'ok', ?, ?, ?, ?)",
            (
                "snapshot" if r % 2 else "drill",
                now - r * 3600,
                now - r * 3600,
                now - r * 3600 + 5,
                json.dumps({"data_added": 10_000_000}),
            ),
        )
    # A box that has been running keeps its place in Orthanc's change log (0: this Orthanc is new).
    db.execute("INSERT OR REPLACE INTO engine_state (key, value) VALUES (?, '0')", (CHANGES_CURSOR,))
    refresh_all_studies(db)
    db.execute("COMMIT")
    db.close()


def _flush(db: sqlite3.Connection, outbox: list[tuple[Any, ...]], catalog: list[tuple[Any, ...]]) -> None:
    db.executemany(
        "INSERT INTO outbox (orthanc_id, state, enqueued_at, next_attempt_at, object_key, sha256, size, "
        "done_at) VALUES (?, 'done', ?, ?, ?, ?, ?, ?)",
        outbox,
    )
    db.executemany(
        "INSERT INTO catalog (orthanc_id, study_uid, series_uid, sop_uid, patient_id, patient_name, owner, "
        "species, breed, accession, study_date, description, modality, path, object_key, sha256, size, "
        "added_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
        catalog,
    )
    outbox.clear()
    catalog.clear()


def timed_ms(call: Any) -> float:
    t0 = time.perf_counter()
    call()
    return (time.perf_counter() - t0) * 1000


def _orthanc_id(i: int) -> str:
    return f"{i:08x}-0000-0000-0000-000000000000"


def full_reconcile_s(path: Path, n: int) -> float:
    """The weekly comparison's work on the queue: every instance Orthanc lists, checked in pages."""
    outbox = Outbox(path)
    ids = [_orthanc_id(i) for i in range(n)]
    t0 = time.perf_counter()
    for start in range(0, n, 1000):  # the page size the engine uses
        outbox.enqueue_missing(ids[start : start + 1000], time.time())
    outbox.close()
    return time.perf_counter() - t0


def rss_peak_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def probe(http: OrthancHttp, n: int) -> dict[str, float]:
    """Status and search times against the plugin holding ``n`` copies."""
    seen = http.get_json("/backup/status")["replicated"]
    if seen != n:
        raise RuntimeError(f"the plugin sees {seen} copies, not the {n} of the volume")
    out = {
        "status_ms": round(statistics.median(timed_ms(lambda: http.get_json("/backup/status")) for _ in range(15)), 1)
    }
    queries = ["smith bella", "Müller", "obrien", "P-42", "A123", "canine", "rex jones", "zoë"]
    times = sorted(
        timed_ms(lambda q=q: http.get_json("/backup/studies?" + urllib.parse.urlencode({"q": q})))
        for _ in range(5)
        for q in queries
    )
    out["search_p99_ms"] = round(times[min(len(times) - 1, int(0.99 * len(times)))], 1)
    out["recent_list_ms"] = round(
        statistics.median(
            timed_ms(lambda: http.get_json("/backup/studies?from=2020-01-01&to=2030-01-01")) for _ in range(5)
        ),
        1,
    )
    return out


def restart(http: OrthancHttp, started: float) -> dict[str, Any]:
    """Seconds from starting Orthanc until the plugin's start-up reconciliation is done, and how it went."""
    while True:
        done = http.get_json("/backup/status").get("last_reconcile")
        if done:
            break
        if time.perf_counter() - started > 600:
            raise RuntimeError("the plugin did not finish its start-up reconciliation in 10 minutes")
        time.sleep(0.05)
    return {"restart_reconcile_s": round(time.perf_counter() - started, 2), "restart_reconcile_mode": done["mode"]}


def plot(result: dict[str, Any]) -> None:
    """scale.png: each figure against the number of images (log scale), with its target at 1,000,000."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted(int(k) for k in result if k.isdigit())
    panels = [
        ("status_ms", "Status (GET /backup/status), ms", 50),
        ("search_p99_ms", "Study search, 99th percentile, ms", 200),
        ("restart_reconcile_s", "Restart with nothing new, s", 10),
        ("plugin_rss_mb", "Plugin memory, MB", 60),
    ]
    fig, axes = plt.subplots(2, 2, figsize=(9, 6.5))
    for ax, (key, title, target) in zip(axes.flat, panels, strict=True):
        values = [result[str(n)][key] for n in sizes]
        ax.plot(sizes, values, marker="o", label="measured")
        for n, v in zip(sizes, values, strict=True):
            ax.annotate(f"{v:g}", (n, v), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
        ax.axhline(target, color="tab:red", linestyle="--", linewidth=1, label=f"target at 1M: {target:g}")
        ax.set_xscale("log")
        ax.set_ylim(bottom=0, top=max(target, *values) * 1.25)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("images in the archive")
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle(f"Costs against archive size ({result['machine']['cpus']} cores, {result['machine']['date'][:10]})")
    fig.tight_layout()
    fig.savefig(RESULTS / "scale.png", dpi=90)
    plt.close(fig)


def measure(base: Path, n: int, minio: devstack.Process, minio_env: dict[str, str]) -> dict[str, Any]:
    rng = random.Random(n)  # noqa: S311 - test data
    volume = base / f"volume-{n}" / "pacs-backup-outbox.sqlite"
    log(f"{n} images: building the volume")
    build_volume(volume, n, rng)
    figures: dict[str, Any] = {}
    rss: dict[bool, float] = {}
    for plugin in (False, True):
        s = devstack.OrthancSettings(
            base / f"orthanc-{n}-{int(plugin)}",
            devstack.free_port(),
            devstack.free_port(),
            "bench",
            devstack.new_secret(),
            plugin=plugin,
        )
        env = {
            **minio_env,
            "BACKUP_OUTBOX_PATH": str(volume),
            "BACKUP_FIRST_RUN_DELAY_SECONDS": "86400",
            "BACKUP_RECONCILE_HOURS": "0",
        }
        started = time.perf_counter()
        proc = devstack.start_orthanc(s, env, s.work_dir / "orthanc.log")
        try:
            http = OrthancHttp(f"http://127.0.0.1:{s.http_port}", s.username, s.password, timeout_s=300)
            if plugin:
                figures.update(restart(http, started))
                figures.update(probe(http, n))
            rss[plugin] = rss_peak_mb(proc.pid)
        finally:
            proc.stop(120)
    figures["plugin_rss_mb"] = round(rss[True] - rss[False], 1)
    log(f"{n} images: the weekly full comparison")
    figures["full_reconcile_s"] = round(full_reconcile_s(volume, n), 2)
    log(f"{n} images: {figures}")
    return figures


def main() -> int:
    RESULTS.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="pacs-scale-") as t:
        base = Path(t)
        user, secret = "scale-" + devstack.new_secret(4).lower(), devstack.new_secret()
        port = devstack.free_port()
        minio = devstack.start_minio(base / "minio", port, devstack.free_port(), user, secret, base / "minio.log")
        try:
            minio_env = {
                "MINIO_ENDPOINT": f"127.0.0.1:{port}",
                "MINIO_ACCESS_KEY": user,
                "MINIO_SECRET_KEY": secret,
                "MINIO_BUCKET": "scale",
            }
            for n in SIZES:
                result[str(n)] = measure(base, n, minio, minio_env)
        finally:
            minio.stop(30)
    result["machine"] = {"cpus": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    (RESULTS / "scale.json").write_text(json.dumps(result, indent=2))
    plot(result)
    print(json.dumps(result, indent=2))
    print(f"written: {RESULTS / 'scale.json'}, scale.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
