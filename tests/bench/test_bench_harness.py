"""`make test` checks that the benchmark harness runs (quick mode); the figures themselves are not asserted,
because benchmarks are ratios to read, not timed tests."""

from __future__ import annotations

import json
import os
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
    "plugin_rss_mb",
    "dashboard_rss_mb",
)


@pytest.mark.timeout(1800)
def test_bench_quick_mode_writes_every_figure(tmp_path):
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py")],
        capture_output=True,
        text=True,
        env={**os.environ, "QUICK": "1", "BENCH_RESULTS": str(tmp_path)},
        timeout=1700,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((tmp_path / "latest.json").read_text())
    for key in KEYS:
        assert isinstance(result[key], int | float), key
    assert (tmp_path / "throughput.png").stat().st_size > 1000 and (tmp_path / "lag.png").stat().st_size > 1000
    assert "ingest_ratio" in done.stdout and "met" in done.stdout


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
