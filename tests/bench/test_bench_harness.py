"""`make test` checks that the benchmark harness runs every step (on tiny data: BENCH_TINY=1) and writes every
key and the report; the figures themselves are not asserted, because benchmarks are ratios to read, not timed
tests."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tests.support.common import ROOT

KEYS = (
    "ingest_ratio",
    "lag_p50_s",
    "lag_p99_s",
    "drain_vs_raw_put",
    "drain_vs_rclone",
    "incremental_snapshot_ratio",
    "restore_vs_raw_ingest",
    "restore_bucket_vs_raw_ingest",
    "restore_offsite_vs_raw_ingest",
    "restore_study_bucket_vs_raw_ingest",
    "restore_study_offsite_vs_raw_ingest",
    "rto_bucket_s_per_gb",
    "rto_offsite_s_per_gb",
    "snapshot_incremental_restic_s",
    "restic_open_s",
    "restic_backup_unchanged_s",
    "drain_vs_raw_put_spread",
    "plugin_rss_mb",
    "dashboard_rss_mb",
    "view_pacs_s",
    "view_bucket_s",
    "view_offsite_uncached_s",
    "view_offsite_cached_s",
    "view_share_s",
    "view_bucket_vs_pacs",
    "view_offsite_speedup_vs_restore",
)
# One line of the closing report: the key, its value, the goal and whether it was met.
REPORT_ROW = re.compile(r"^(\w+) +(-?[0-9]+\.[0-9]{3}|n/a) +(>=|<=) +[0-9.]+ +(yes|NO|pass|miss)\b")


@pytest.mark.timeout(1800)
def test_bench_quick_mode_writes_every_figure(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py")],
        capture_output=True,
        text=True,
        env={**os.environ, "QUICK": "1", "BENCH_TINY": "1", "BENCH_RESULTS": str(tmp_path)},
        timeout=1700,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((tmp_path / "latest.json").read_text())
    assert result["mode"] == "tiny"
    for key in KEYS:
        assert isinstance(result[key], int | float), key
    assert len(result["drain_runs"]) == 3  # the drain's goal holds only if its worst of three runs meets it
    assert (tmp_path / "throughput.png").stat().st_size > 1000 and (tmp_path / "lag.png").stat().st_size > 1000
    # The report: a header, then one row per goal with the value written to latest.json.
    lines = done.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["measure", "value"])
    rows = {}
    for line in lines[header + 1 :]:
        if not line.strip():
            break
        found = REPORT_ROW.match(line)
        assert found, line
        rows[found.group(1)] = found.group(2)
    for key in KEYS:
        if key in rows:
            assert rows[key] == f"{result[key]:.3f}", key
    goals = {"ingest_ratio", "drain_vs_raw_put", "incremental_snapshot_ratio", "restore_study_offsite_vs_raw_ingest"}
    assert goals | {"restore_bucket_vs_raw_ingest", "view_bucket_vs_pacs", "view_offsite_speedup_vs_restore"} <= set(
        rows
    ), rows


@pytest.mark.timeout(600)
def test_bench_scale_mode_writes_every_figure(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "scale.py")],
        capture_output=True,
        text=True,
        env={**os.environ, "SCALE_SIZES": "2000", "BENCH_RESULTS": str(tmp_path)},
        timeout=500,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    figures = json.loads((tmp_path / "scale.json").read_text())["2000"]
    for key in ("status_ms", "search_p99_ms", "restart_reconcile_s", "full_reconcile_s", "plugin_rss_mb"):
        assert isinstance(figures[key], int | float), key
    # A restart of a running box follows Orthanc's change log; it does not list the archive.
    assert figures["restart_reconcile_mode"] == "changes"
    assert (tmp_path / "scale.png").stat().st_size > 1000
