"""Issue 23 item 2: any input adds at most 64 MB to the process that draws previews.

Each case runs in a fresh interpreter (tests/support/preview_memory.py) and measures how much its peak
resident memory grows while the previews are drawn, as the plugin and the dashboard draw them (the copy
read as a stream). Before the limits the same inputs added 191 MB (the bomb), 768 MB (16k x 16k) and
280-574 MB (three bombs at once).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.common import ROOT
from tests.support.dicomraw import bomb, write_instance

BUDGET_MB = 64


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("previews")
    files = {"bomb": folder / "bomb.dcm", "16k": folder / "16k.dcm", "16k-16bit": folder / "16k-16bit.dcm"}
    files["bomb"].write_bytes(bomb())  # 98 KB that inflate to 10,000 x 10,000 bytes
    with files["16k"].open("wb") as f:  # 16384 x 16384 8-bit, uncompressed: 256 MB, at the default limit
        write_instance(f, "explicit-little", rows=16384, cols=16384)
    with files["16k-16bit"].open("wb") as f:  # the same 16 bits deep, deflated: 512 MB declared, past it
        write_instance(f, "deflated", rows=16384, cols=16384, bits=16)
    return files


def added_memory(*paths: Path, size: int = 256) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT)])}
    out = subprocess.run(
        [sys.executable, "-m", "tests.support.preview_memory", "--size", str(size), *map(str, paths)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(out.stdout)


def test_security_the_bomb_previews_within_the_budget(inputs):
    result = added_memory(inputs["bomb"])
    assert result["outcomes"] == ["png 250x250"]
    assert result["added_mb"] < BUDGET_MB, result


def test_security_a_16k_image_previews_within_the_budget(inputs):
    result = added_memory(inputs["16k"], inputs["16k-16bit"], size=1024)
    assert result["outcomes"][0] == "png 1024x1024"
    assert result["outcomes"][1].startswith("BadImage: This image is too large to preview (16384 x 16384, 512 MB")
    assert result["added_mb"] < BUDGET_MB, result


def test_security_three_parallel_previews_stay_within_the_budget(inputs):
    result = added_memory(inputs["bomb"], inputs["16k"], inputs["bomb"], size=1024)
    assert result["outcomes"] == ["png 1000x1000", "png 1024x1024", "png 1000x1000"]
    assert result["added_mb"] < BUDGET_MB, result


def test_security_the_guard_reads_the_bomb_within_the_budget(inputs):
    code = (
        "import json, resource, sys\n"
        "from pacs_backup.dicom.guard import screen\n"
        "from pacs_backup.settings.limits import Limits\n"
        "data = open(sys.argv[1], 'rb').read()\n"
        "base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "v = screen(data, Limits())\n"
        "added = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024\n"
        "print(json.dumps({'added_mb': added, 'refusal': v.refusal}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "plugins")}
    for name, refused in (("bomb", False), ("16k-16bit", True)):  # 100 MB inflated; 512 MB + headers
        out = subprocess.run(
            [sys.executable, "-c", code, str(inputs[name])], env=env, capture_output=True, text=True, check=True
        )
        result = json.loads(out.stdout)
        assert (result["refusal"] is not None) == refused, result
        assert result["added_mb"] < BUDGET_MB, result
