"""Helpers for tests on a real Orthanc + plugin: filling the PACS, reading what it holds, running the
technician scripts as on a fresh machine."""

from __future__ import annotations

import json
import os
import subprocess

from tests.support.common import ROOT, sha256, wait_until
from tests.support.dicomgen import make_study

SCRIPTS = ROOT / "scripts"


def script(name: str, *args: str, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run a technician script with only the given settings (plus PATH), as on a fresh machine."""
    return subprocess.run(
        [str(SCRIPTS / name), *args],
        env={"PATH": os.environ["PATH"], **env},
        text=True,
        capture_output=True,
        timeout=timeout,
        check=False,
    )


def orthanc_env(o) -> dict[str, str]:
    return {"ORTHANC_URL": o.url, "ORTHANC_USERNAME": o.settings.username, "ORTHANC_PASSWORD": o.settings.password}


def fill(o, studies: int = 2, per_study: int = 10, **kw) -> dict[str, list[str]]:
    """Upload studies; return {StudyInstanceUID: [sha256 of each file]}."""
    out = {}
    for _ in range(studies):
        uid, files = make_study(per_study, rows=128, cols=128, **kw)
        for f in files:
            o.http().upload(f)
        out[uid] = sorted(sha256(f) for f in files)
    return out


def pacs_content(o) -> dict[str, list[str]]:
    """{StudyInstanceUID: sorted sha256 of the files Orthanc holds}."""
    http, out = o.http(), {}
    for sid in http.get_json("/studies"):
        study = http.get_json(f"/studies/{sid}")
        shas = [sha256(http.get(f"/instances/{i['ID']}/file")) for i in http.get_json(f"/studies/{sid}/instances")]
        out[study["MainDicomTags"]["StudyInstanceUID"]] = sorted(shas)
    return out


def orthanc_study_id(o, study_uid: str) -> str:
    return json.loads(o.http().request("POST", "/tools/lookup", study_uid.encode(), "text/plain"))[0]["ID"]


def _wait_run(o, run_id: int, timeout: float = 300) -> dict:
    def finished():
        run = o.http().get_json(f"/backup/runs/{run_id}")
        return run if run["state"] in ("ok", "failed") else None

    return wait_until(finished, timeout, f"run {run_id}", 0.5)  # type: ignore[return-value]
