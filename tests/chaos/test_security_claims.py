"""Security claims of the README, each backed by a test against the real programs."""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.support.common import ROOT


def test_orthanc_rest_api_needs_authentication(orthanc):
    for uri in ("/system", "/instances", "/backup/status", "/backup/studies"):
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(orthanc.url + uri, timeout=10)  # noqa: S310 - loopback test URL
        assert err.value.code == 401


def test_no_secret_in_any_log(orthanc, minio_server, dashboard_factory, offsite_env):
    from tests.support.dicomgen import make_study

    d = dashboard_factory(orthanc)
    http = orthanc.http()
    for f in make_study(3)[1]:
        http.upload(f)
    orthanc.wait_replicated(3)
    assert all(r["state"] == "ok" for r in orthanc.run_job("snapshots"))
    orthanc.stop()
    d.stop()
    secrets = [
        minio_server.secret_key,
        orthanc.settings.password,
        d.password,
        Path(offsite_env["RESTIC_PASSWORD_FILE"]).read_text(),
    ]
    logs = [orthanc.log, d.work / "dashboard.log", minio_server.log]
    for log in logs:
        text = log.read_text(errors="replace")
        for s in secrets:
            assert s not in text, f"a secret appears in {log}"


def test_no_default_credentials_in_tracked_files():
    import subprocess

    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    # Built from parts so that this list itself is not a hit of the same search.
    weak = ("minio" + "admin", "change" + "me", "orthanc:" + "orthanc", '"admin": ' + '"admin"', "password=" + "admin")
    for f in files:
        p = ROOT / f
        if p.suffix in (".png", ".md") or not p.is_file():
            continue
        text = p.read_text(errors="replace").lower()
        assert not any(re.search(r"\b" + re.escape(w) + r"\b", text) for w in weak), f
