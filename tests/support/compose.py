"""The appliance's Compose stack as an installer runs it, for the stack tests: init, up, and removal."""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests
from minio import Minio

from devstack import free_port
from tests.support.common import ROOT


def sh(
    *args: str, env: dict[str, str] | None = None, timeout: float = 1800, check: bool = True, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        args,
        env={**os.environ, **(env or {})},
        text=True,
        capture_output=True,
        timeout=timeout,
        check=False,
        cwd=ROOT,
        input=input,
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"{' '.join(args)} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return done


def docker_setup(*args: str, timeout: float = 3000) -> subprocess.CompletedProcess[str]:
    """dev/docker-setup, one at a time on this machine: the stack test files may run in both test processes,
    and on a fresh machine two runs would install the engine and build the same images at once."""
    lock = Path(tempfile.gettempdir()) / "pacs-backup-docker-setup.lock"
    with lock.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        try:
            return sh(str(ROOT / "dev" / "docker-setup"), *args, timeout=timeout)
        finally:
            fcntl.flock(held, fcntl.LOCK_UN)


def read_env(path: Path) -> dict[str, str]:
    """NAME=value lines; scripts/init writes its values in single quotes (NAME='value'), as Compose reads them."""
    lines = path.read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if "=" in line and not line.startswith("#"))
    return {name: value[1:-1] if value[:1] == value[-1:] == "'" and len(value) > 1 else value for name, value in pairs}


# What dev/docker-setup --all builds and lists at the end of every run, built or already there.
SETUP_TAGS = (
    "pacs-backup/orthanc:0.1.0",
    "pacs-backup/dashboard:0.1.0",
    "pacs-backup/proxy:0.1.0",
    "pacs-backup/store:0.1.0",
    "pacs-backup/minio:source",
    "pacs-backup/rest-server:0.14.0",
    "pacs-backup/postgres:17",
)


def compose_stack(tmp_path_factory: Any, *, profiles: str, extra: dict[str, str] | None = None) -> Iterator[Any]:
    """Install the appliance as the README says (init, then up) in a fresh project; yield it; remove it."""
    setup = docker_setup("--all")
    # Every run lists the tags with their image ids and the docker save line (issue 29.3), a re-run too.
    listed = [ln.split() for ln in setup.stdout.splitlines() if ln.startswith("  sha256:")]
    assert sorted(tag for _, tag in listed) == sorted(SETUP_TAGS), setup.stdout
    assert f"docker save -o pacs-backup-images.tar {' '.join(SETUP_TAGS)}" in setup.stdout
    work = tmp_path_factory.mktemp("compose")
    env_file = work / ".env"
    text = (ROOT / ".env.example").read_text()
    overrides = {
        "DICOM_PORT": free_port(),
        "ORTHANC_HTTPS_PORT": free_port(),
        "DASHBOARD_PORT": free_port(),
        "DASHBOARD_HTTP_PORT": free_port(),
        "TLS_DIR": str(work / "certs"),
        "MINIO_PORT": free_port(),
        # The appliance's images as dev/docker-setup tags them (pacs-backup/<name>:0.1.0), not the published ones.
        "IMAGE_REGISTRY": "pacs-backup",
        "OBJECT_STORE_IMAGE": "pacs-backup/minio:source",
        "RESTIC_IMAGE": "pacs-backup/restic:0.19.1",
        "REST_SERVER_IMAGE": "pacs-backup/rest-server:0.14.0",
        "RESTIC_REPOSITORY": "rest:http://rest-server:8000/clinic",
        "BACKUP_FIRST_RUN_DELAY_SECONDS": "3600",
        "POSTGRES_IMAGE": "pacs-backup/postgres:17",
        # The optional services, named in .env as the install guide says, so `up` and `down` both see them.
        "COMPOSE_PROFILES": profiles,
        **(extra or {}),
    }
    lines = [ln for ln in text.splitlines() if ln.split("=", 1)[0] not in overrides]
    env_file.write_text("\n".join(lines + [f"{k}={v}" for k, v in overrides.items()]) + "\n")
    project = "pacsbackup" + uuid.uuid4().hex[:8]
    compose_env = {"COMPOSE_PROJECT_NAME": project}
    base = ["docker", "compose", "-f", str(ROOT / "docker-compose.yml"), "--env-file", str(env_file)]

    # Compose refuses to start without the secrets, naming the variable.
    refused = sh(*base, "config", env=compose_env, check=False)
    assert refused.returncode != 0 and "required variable" in refused.stderr and "in .env" in refused.stderr

    init = sh(str(ROOT / "scripts" / "init"), "--env-file", str(env_file), "--clinic", "Test Vet", env=compose_env)
    assert "generated ORTHANC_PASSWORD" in init.stdout and (work / "recovery-sheet.txt").exists()
    # The offsite-demo rest-server's login (16.15), and the advice to list the devices (16.2).
    assert "generated RESTIC_REST_USERNAME" in init.stdout and "generated RESTIC_REST_PASSWORD" in init.stdout
    assert "DICOM_MODALITIES is empty" in init.stdout
    settings = read_env(env_file)
    sheet = (work / "recovery-sheet.txt").read_text()
    assert settings["RESTIC_PASSWORD"] in sheet and settings["RESTIC_REPOSITORY"] in sheet

    class Stack:
        env = settings
        recovery_sheet = sheet  # as scripts/init wrote it, through the orthanc image
        name = project
        # The proxy's self-signed certificate, made on first start: clients check it, as a browser would
        # after the clinic accepted it once.
        ca = str(work / "certs" / "tls.crt")

        def compose(self, *args: str, **kw) -> subprocess.CompletedProcess[str]:
            return sh(*base, *args, env=compose_env, **kw)

        def orthanc(self, uri: str, method: str = "GET", **kw) -> requests.Response:
            return requests.request(
                method,
                f"https://localhost:{settings['ORTHANC_HTTPS_PORT']}{uri}",
                auth=(settings["ORTHANC_USERNAME"], settings["ORTHANC_PASSWORD"]),
                timeout=30,
                verify=self.ca,
                **kw,
            )

        def dashboard_healthz(self) -> requests.Response:
            return requests.get(f"https://localhost:{settings['DASHBOARD_PORT']}/healthz", timeout=30, verify=self.ca)

        def minio(self) -> Minio:
            """The object store (the store service, whatever OBJECT_STORE) with its root account."""
            return Minio(
                f"127.0.0.1:{settings['MINIO_PORT']}",
                settings["MINIO_ROOT_USER"],
                settings["MINIO_ROOT_PASSWORD"],
                secure=False,
            )

    s = Stack()
    try:
        s.compose("up", "-d", "--wait", "--wait-timeout", "300", timeout=600)
        yield s
    finally:
        logs = s.compose("logs", "--no-color", "--tail", "80", check=False)
        print(logs.stdout[-8000:])
        s.compose("down", "-v", "--remove-orphans", timeout=300, check=False)


def bucket_digests(client: Minio) -> dict[str, str]:
    out = {}
    for obj in client.list_objects("pacs-backup", prefix="dicom/", recursive=True):
        resp = client.get_object("pacs-backup", obj.object_name)
        try:
            out[obj.object_name] = hashlib.sha256(resp.read()).hexdigest()
        finally:
            resp.close()
            resp.release_conn()
    return out
