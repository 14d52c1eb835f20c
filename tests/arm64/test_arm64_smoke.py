"""arm64 smoke test (issue 12.4), under emulation: `make arm64-smoke`, outside `make test` (it is slow).

The appliance's Compose stack with its arm64 images (built by dev/arm64-images: Orthanc 1.12.7 with the
Python plugin, the dashboard, the HTTPS front) runs under qemu; the object store is the amd64 image, as
a NAS could use an S3 service elsewhere. An image sent to Orthanc reaches the bucket byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import time

import pytest

from tests.support.common import wait_until
from tests.support.compose import bucket_digests, compose_stack, sh
from tests.support.dicomgen import make_study

pytestmark = pytest.mark.timeout(3600)


@pytest.fixture(scope="module")
def arm64_stack(tmp_path_factory):
    images = {
        "ORTHANC_IMAGE": "pacs-backup/orthanc:0.1.0-arm64",
        "DASHBOARD_IMAGE": "pacs-backup/dashboard:0.1.0-arm64",
        "PROXY_IMAGE": "pacs-backup/proxy:0.1.0-arm64",
        "RESTIC_REPOSITORY": "/var/lib/orthanc/db/smoke-repository",
    }
    for image in list(images.values())[:3]:
        arch = sh("docker", "image", "inspect", "-f", "{{.Architecture}}", image, check=False).stdout.strip()
        assert arch == "arm64", f"{image} is missing or not arm64: run dev/arm64-images (make arm64-smoke does)"
    t0 = time.monotonic()
    for stack in compose_stack(tmp_path_factory, profiles="", extra=images):
        stack.started_s = time.monotonic() - t0
        yield stack


def test_arm64_images_start_and_copy_an_image(arm64_stack, tmp_path):
    stack = arm64_stack
    machine = stack.compose("exec", "-T", "orthanc", "uname", "-m").stdout.strip()
    assert machine == "aarch64"
    assert stack.orthanc("/system").json()["Version"].startswith("1.12.")
    assert stack.orthanc("/plugins/python").json()["Version"].startswith("5.")

    _, files = make_study(1, rows=64, cols=64, patient_name="ARM^SMOKE")
    t0 = time.monotonic()
    r = stack.orthanc("/instances", "POST", data=files[0], headers={"Content-Type": "application/dicom"})
    assert r.status_code == 200
    wait_until(lambda: stack.orthanc("/backup/status").json().get("replicated") == 1, 300, "1 replicated")
    copied_s = time.monotonic() - t0
    stored = hashlib.sha256(stack.orthanc(f"/instances/{r.json()['ID']}/file").content).hexdigest()
    assert list(bucket_digests(stack.minio()).values()) == [stored]

    health = stack.dashboard_healthz()
    assert health.status_code == 200
    print(json.dumps({"arm64_smoke": "ok", "stack_up_s": round(stack.started_s, 1), "copy_s": round(copied_s, 2)}))
