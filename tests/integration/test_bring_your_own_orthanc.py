"""The plugin installed into an existing Orthanc exactly as docs/install-existing-orthanc.md says."""

from __future__ import annotations

import json
import subprocess
import sys

import devstack
from pacs_backup.clients.orthanc_http import OrthancHttp
from tests.support.common import ROOT, sha256, wait_until
from tests.support.dicomgen import make_study


def test_installed_package_loads_into_debians_orthanc(tmp_path, minio_server, bucket):
    dist, venv = tmp_path / "dist", tmp_path / "opt-pacs-backup"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dist), str(ROOT)],
        check=True,
        timeout=600,
    )
    wheel = next(dist.glob("pacs_backup-*.whl"))
    subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", str(wheel)], check=True, timeout=600)
    shown = subprocess.run(
        [str(venv / "bin" / "pacs-backup"), "orthanc-snippet"], capture_output=True, text=True, check=True, timeout=60
    )
    snippet = json.loads(shown.stdout)
    entry = snippet["orthanc_configuration"]["PythonScript"]
    assert entry.startswith(str(venv)) and entry.endswith("orthanc_entry.py")

    # Debian's Orthanc with its own configuration plus the snippet; nothing from this checkout.
    work = tmp_path / "orthanc"
    work.mkdir()
    http_port, dicom_port, password = devstack.free_port(), devstack.free_port(), devstack.new_secret()
    config = {
        "StorageDirectory": str(work / "storage"),
        "IndexDirectory": str(work / "index"),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": True,
        "RegisteredUsers": {"clinic": password},
        **snippet["orthanc_configuration"],
    }
    (work / "orthanc.json").write_text(json.dumps(config))
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(work),
        **snippet["environment"],
        **minio_server.env(bucket),
        "RESTIC_REPOSITORY": "",
        "BACKUP_FIRST_RUN_DELAY_SECONDS": "86400",
    }
    argv = [devstack.require_program("Orthanc"), str(work / "orthanc.json")]
    proc = devstack.spawn("orthanc", argv, work / "orthanc.log", env, cwd=work)
    try:
        devstack.wait_http(proc, f"http://127.0.0.1:{http_port}/system", 90, ("clinic", password))
        http = OrthancHttp(f"http://127.0.0.1:{http_port}", "clinic", password)
        _, files = make_study(2, rows=32, cols=32)
        for f in files:
            http.upload(f)
        st = wait_until(lambda: (s := http.get_json("/backup/status"))["replicated"] == 2 and s, 60, "2 copies")
        assert st["enabled"] and st["store"]["reachable"]
        copied = {
            sha256(minio_server.client().get_object(bucket, o.object_name).read())
            for o in minio_server.client().list_objects(bucket, "dicom/", recursive=True)
        }
        assert copied == {sha256(f) for f in files}
    finally:
        proc.stop(60)
