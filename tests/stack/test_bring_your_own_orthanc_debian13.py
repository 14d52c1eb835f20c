"""The plugin installed into a clinic's existing Debian 13 Orthanc exactly as docs/install-existing-orthanc.md
says (issue 12.2): Debian's own packages and /etc/orthanc, nothing of the appliance's image."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest
import requests

import devstack
from tests.support.common import ROOT, sha256, wait_until
from tests.support.compose import docker_setup, sh
from tests.support.dicomgen import make_study

pytestmark = pytest.mark.timeout(1800)
IMAGE = "pacs-backup/test-debian13-orthanc"


def test_plugin_installs_into_debian13_orthanc_as_documented(tmp_path, minio_server, bucket, plugin_store_env):
    docker_setup()  # base image and the Python 3.13 wheelhouse
    sh(
        "docker", "build", "-q", "-t", IMAGE, "-f", str(ROOT / "dev/docker/Dockerfile.debian13-orthanc"),
        str(ROOT / "dev/docker"), timeout=1200,
    )  # fmt: skip
    dist = tmp_path / "dist"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(dist), str(ROOT)],
        check=True,
        timeout=600,
    )  # what `make package` does
    plugin_env = {**plugin_store_env, "RESTIC_REPOSITORY": "", "BACKUP_FIRST_RUN_DELAY_SECONDS": "86400"}
    (tmp_path / "plugin.env").write_text("".join(f"{k}={v}\n" for k, v in plugin_env.items()))
    http_port, dicom_port = devstack.free_port(), devstack.free_port()
    name = "byo-" + uuid.uuid4().hex[:8]
    sh(
        "docker", "run", "-d", "--name", name, "--network", "host",
        "-e", f"HTTP_PORT={http_port}", "-e", f"DICOM_PORT={dicom_port}",
        "-v", f"{dist}:/dist:ro", "-v", f"{ROOT / 'build' / 'wheelhouse'}:/wheelhouse:ro",
        "-v", f"{tmp_path / 'plugin.env'}:/plugin.env:ro",
        "-v", f"{ROOT / 'tests/stack/byo_debian13_install.sh'}:/install.sh:ro",
        "--entrypoint", "/install.sh", IMAGE,
    )  # fmt: skip
    url = f"http://127.0.0.1:{http_port}"
    try:

        def answers() -> bool:
            try:
                return requests.get(url + "/backup/status", timeout=5).status_code == 200
            except requests.RequestException:
                running = sh("docker", "inspect", "-f", "{{.State.Running}}", name).stdout.strip()
                assert running == "true", sh("docker", "logs", name, check=False).stderr[-3000:]
                return False

        wait_until(answers, 300, "Debian 13's Orthanc with the plugin to answer")
        assert requests.get(url + "/system", timeout=5).json()["Version"].startswith("1.12.")
        assert requests.get(url + "/plugins/python", timeout=5).json()["Version"].startswith("5.")
        _, files = make_study(3, rows=32, cols=32)
        for data in files:
            r = requests.post(url + "/instances", data=data, headers={"Content-Type": "application/dicom"}, timeout=30)
            assert r.status_code == 200
        st = wait_until(
            lambda: (s := requests.get(url + "/backup/status", timeout=5).json())["replicated"] == 3 and s,
            120,
            "3 copies",
        )
        assert st["enabled"] and st["store"]["reachable"]
        client = minio_server.client()
        copied = {
            sha256(client.get_object(bucket, o.object_name).read())
            for o in client.list_objects(bucket, "dicom/", recursive=True)
        }
        assert copied == {sha256(f) for f in files}
        # The environment file holds the store's secret: owner-only, as the docs say.
        mode = sh("docker", "exec", name, "stat", "-c", "%a %U", "/etc/pacs-backup.env").stdout.split()
        assert mode == ["600", "root"]
    finally:
        print(sh("docker", "logs", "--tail", "60", name, check=False).stderr[-4000:])
        sh("docker", "rm", "-f", name, check=False)
