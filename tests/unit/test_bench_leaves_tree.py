"""A benchmark run leaves tracked files unchanged: what it writes is ignored by git."""

from __future__ import annotations

import subprocess

from tests.support.common import ROOT


def test_benchmark_outputs_are_not_tracked():
    for name in ("latest.json", "scale.json", "throughput.png", "lag.png"):
        path = f"benchmarks/results/{name}"
        tracked = (
            subprocess.run(
                ["git", "ls-files", "--error-unmatch", path], cwd=ROOT, capture_output=True, check=False
            ).returncode
            == 0
        )
        ignored = subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT, check=False).returncode == 0
        assert not tracked and ignored, path
