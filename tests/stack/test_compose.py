"""The appliance as an installer runs it: Docker Compose, built offline, tested end to end.

dev/docker-setup prepares the engine, the compose plugin, a debootstrapped base image, side-loaded
object store / restic / rest-server images and the wheelhouse, then builds the appliance's images.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import threading
import time
from pathlib import Path

import pytest
import requests
import yaml
from minio import Minio
from minio.deleteobjects import DeleteObject

from tests.support.common import ROOT, wait_until
from tests.support.compose import bucket_digests, compose_stack, sh
from tests.support.dicomgen import make_instance, make_study, new_uid

pytestmark = pytest.mark.timeout(2400)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    yield from compose_stack(tmp_path_factory, profiles="offsite-demo")


def test_compose_stack_end_to_end(stack, tmp_path):
    # 0. The images are Debian 13's: Orthanc 1.12 with orthanc-python 5 (the native tests run 1.10 / 4.0).
    assert stack.orthanc("/system").json()["Version"].startswith("1.12.")
    assert stack.orthanc("/plugins/python").json()["Version"].startswith("5.")
    # 1. A modality sends two studies to the published DICOM port.
    studies = [make_study(5, rows=128, cols=128, patient_name=f"PET^{i}") for i in range(2)]
    paths = []
    for n, (_, files) in enumerate(studies):
        for i, data in enumerate(files):
            p = tmp_path / f"{n}-{i}.dcm"
            p.write_bytes(data)
            paths.append(p)
    sh("storescu", "-aec", "PACS", "127.0.0.1", stack.env["DICOM_PORT"], *map(str, paths), timeout=120)
    sent = sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in paths)

    # 2. Every image is in the bucket, byte-identical.
    wait_until(lambda: stack.orthanc("/backup/status").json().get("replicated") == 10, 120, "10 replicated")
    stored = {
        hashlib.sha256(stack.orthanc(f"/instances/{i}/file").content).hexdigest()
        for i in stack.orthanc("/instances").json()
    }
    digests = bucket_digests(stack.minio())
    assert len(digests) == 10 and set(digests.values()) == stored
    # The plugin runs with its own account (made by the store-setup service), not the root account:
    # its keys cannot erase a locked copy even with bypass-governance.
    assert stack.env["MINIO_ACCESS_KEY"] != stack.env["MINIO_ROOT_USER"]
    plugin = Minio(
        f"127.0.0.1:{stack.env['MINIO_PORT']}",
        stack.env["MINIO_ACCESS_KEY"],
        stack.env["MINIO_SECRET_KEY"],
        secure=False,
    )
    copy = next(iter(plugin.list_objects("pacs-backup", "dicom/", recursive=True, include_version=True)))
    refused = plugin.remove_objects(
        "pacs-backup", [DeleteObject(copy.object_name, copy.version_id)], bypass_governance_mode=True
    )
    assert [e.code for e in refused] == ["AccessDenied"]

    # 3. An offsite snapshot to the rest-server profile, taken inside the stack with the generated login;
    # without it the rest-server refuses restic (it ran with --no-auth before).
    snap = stack.compose("exec", "-T", "orthanc", "snapshot-now", timeout=600)
    assert "Snapshot of offsite finished OK" in snap.stdout, snap.stdout[-2000:]
    for user, password in (("", ""), (stack.env["RESTIC_REST_USERNAME"], "wrong")):
        anonymous = stack.compose(
            "exec",
            "-T",
            "-e",
            f"RESTIC_REST_USERNAME={user}",
            "-e",
            f"RESTIC_REST_PASSWORD={password}",
            "orthanc",
            "restic",
            "-r",
            "rest:http://rest-server:8000/clinic",
            "snapshots",
            check=False,
            timeout=120,
        )
        assert anonymous.returncode != 0 and "401" in anonymous.stdout + anonymous.stderr, anonymous.stderr[-500:]

    # 4. A study is deleted by mistake and restored with restore-study run inside the stack.
    lost_uid = studies[0][0]
    sid = stack.orthanc("/tools/lookup", "POST", data=lost_uid).json()[0]["ID"]
    stack.orthanc(f"/studies/{sid}", "DELETE")
    assert len(stack.orthanc("/instances").json()) == 5
    restored = stack.compose("exec", "-T", "orthanc", "restore-study", "--from", "offsite", lost_uid, timeout=600)
    assert "5 of 5" in restored.stdout
    back = sorted(
        hashlib.sha256(stack.orthanc(f"/instances/{i}/file").content).hexdigest()
        for i in stack.orthanc("/instances").json()
    )
    assert back == sorted(stored) and len(back) == len(sent)

    # 5. The dashboard, through its published HTTPS port, with its password only.
    url = f"https://localhost:{stack.env['DASHBOARD_PORT']}"
    assert requests.get(url + "/api/status", timeout=10, verify=stack.ca).status_code == 401
    status = requests.get(
        url + "/api/status",
        auth=(stack.env["DASHBOARD_USERNAME"], stack.env["DASHBOARD_PASSWORD"]),
        timeout=10,
        verify=stack.ca,
    ).json()
    lights = {x["key"]: x for x in status["lights"]}
    assert lights["pacs"]["state"] == "green" and lights["store"]["state"] == "green"
    # 5a. The offsite-demo's rest-server is a container on this same box (issue 29): the status says same_box,
    # its light is amber "not offsite", no copy counts as away from the box, and the recovery sheet says so.
    placed = stack.orthanc("/backup/status").json()["offsite"]["offsite"]
    assert placed["same_box"] is True and "treated_as_offsite" not in placed, placed
    assert placed["same_box_reason"] == "rest-server is a service of this appliance's own Compose stack, on this box"
    demo = lights["offsite-offsite"]
    assert demo["state"] == "amber" and demo["label"] == "Offsite copy", demo
    assert demo["value"] == "not offsite - protects against mistakes, not against fire or theft"
    assert placed["same_box_reason"] in demo["advice"] and "fire, flood or theft" in demo["advice"]
    assert lights["offsite"]["state"] == "amber" and lights["offsite"]["value"] == "none: every copy is on this box"
    assert "** NOT OFFSITE: THIS REPOSITORY IS ON THE SAME BOX AS THE PACS." in stack.recovery_sheet

    # 6. Restart everything: nothing is lost, copying goes on.
    stack.compose("restart", timeout=600)
    stack.compose("up", "-d", "--wait", "--wait-timeout", "300", timeout=600)
    assert len(stack.orthanc("/instances").json()) == 10
    assert bucket_digests(stack.minio()) == digests
    st = stack.orthanc("/backup/status").json()
    assert st["outbox_depth"] == 0 and st["quarantined"] == 0 and st["state"] in ("ok", "degraded")
    print(json.dumps({"stack": "ok", "instances": 10, "objects": len(digests)}))


def test_compose_serves_the_dashboard_and_orthanc_over_https_only(stack):
    """16.15: passwords and the session cookie never cross the clinic's network in the clear."""
    text = sh("openssl", "x509", "-in", stack.ca, "-noout", "-ext", "subjectAltName").stdout
    entries = [e.strip().split(":", 1) for e in text.splitlines()[-1].split(",")]
    names = {_address_or_name(v) for _, v in entries}
    assert {"localhost", "127.0.0.1"} <= names
    for name in stack.env["TLS_HOSTNAMES"].split(","):  # scripts/init named this host, so the LAN name works
        assert _address_or_name(name) in names
    key = Path(stack.ca).with_name("tls.key")
    assert sh("stat", "-c", "%a", str(key)).stdout.strip() == "600"

    # Orthanc's REST API: https with its password; plain http on that port carries no password to Orthanc,
    # and Orthanc's own http port is not published at all.
    assert stack.orthanc("/system").json()["Name"]
    plain = requests.get(
        f"http://127.0.0.1:{stack.env['ORTHANC_HTTPS_PORT']}/system",
        auth=(stack.env["ORTHANC_USERNAME"], stack.env["ORTHANC_PASSWORD"]),
        timeout=10,
    )
    assert plain.status_code == 400 and "HTTPS" in plain.text
    assert stack.compose("port", "orthanc", "8042", check=False).stdout.strip() in ("", ":0")
    assert stack.compose("port", "dashboard", "8080", check=False).stdout.strip() in ("", ":0")
    with pytest.raises(requests.exceptions.SSLError):  # the certificate is checked, not waved through
        requests.get(f"https://localhost:{stack.env['ORTHANC_HTTPS_PORT']}/system", timeout=10)

    # The dashboard: the old http address only redirects; the session cookie is Secure; strict headers.
    redirect = requests.get(
        f"http://127.0.0.1:{stack.env['DASHBOARD_HTTP_PORT']}/login?next=%2F", allow_redirects=False, timeout=10
    )
    assert redirect.status_code == 308
    assert redirect.headers["Location"] == f"https://127.0.0.1:{stack.env['DASHBOARD_PORT']}/login?next=%2F"
    page = requests.get(f"https://localhost:{stack.env['DASHBOARD_PORT']}/login", timeout=10, verify=stack.ca)
    assert page.status_code == 200 and "max-age" in page.headers["Strict-Transport-Security"]
    cookies = page.headers.get("Set-Cookie", "")
    assert "pacs_dashboard=" in cookies and "Secure" in cookies and "HttpOnly" in cookies
    assert "unsafe-inline" not in page.headers["Content-Security-Policy"].split("script-src", 1)[1].split(";")[0]


def test_compose_orthanc_crash_during_ingest_restarts_and_loses_nothing(stack, tmp_path):
    """Orthanc's own JSON parser overflows its stack on deeply nested input (upstream, 1.10.1 and 1.12.7):
    Docker's restart policy brings the container back and the plugin's outbox loses nothing (16.1)."""
    container = stack.compose("ps", "-q", "orthanc").stdout.strip()

    def restart_count() -> int:
        return int(sh("docker", "inspect", "-f", "{{.RestartCount}}", container).stdout.strip())

    restarts_before = restart_count()
    replicated_before = stack.orthanc("/backup/status").json()["replicated"]
    study, series = new_uid(), new_uid()
    files = [make_instance(study, series, instance_number=i + 1, rows=32, cols=32) for i in range(60)]
    acknowledged: dict[str, str] = {}

    def sender() -> None:
        # A modality that sends each image until Orthanc acknowledges it.
        for data in files:
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                try:
                    r = stack.orthanc("/instances", "POST", data=data, headers={"Content-Type": "application/dicom"})
                    if r.status_code == 200:
                        acknowledged[r.json()["ID"]] = hashlib.sha256(data).hexdigest()
                        break
                except requests.RequestException:
                    pass
                time.sleep(0.3)

    t = threading.Thread(target=sender)
    t.start()
    try:
        wait_until(lambda: len(acknowledged) >= 20, 120, "20 instances acknowledged")
        t0 = time.monotonic()
        try:  # Orthanc dies without answering; the HTTPS front says so with 502
            answer = stack.orthanc("/tools/find", "POST", data=b"[" * 100_000)
            assert answer.status_code == 502, answer.text[:200]
        except requests.ConnectionError:
            pass
        wait_until(lambda: restart_count() > restarts_before, 60, "Docker to restart the orthanc container")
        wait_until(lambda: _answers(stack), 180, "the restarted Orthanc to answer")
        back_s = time.monotonic() - t0
    finally:
        t.join(600)
    assert len(acknowledged) == 60
    st = wait_until(
        lambda: (
            (s := stack.orthanc("/backup/status").json())["replicated"] >= replicated_before + 60
            and s["outbox_depth"] == 0
            and s
        ),
        300,
        "the backup queue to drain",
    )
    in_bucket = set(bucket_digests(stack.minio()).values())
    lost = {d for d in acknowledged.values() if d not in in_bucket}
    assert not lost, f"{len(lost)} of 60 instances are not in the bucket"
    print(
        json.dumps(
            {
                "compose_crash": "ok",
                "sent": 60,
                "lost": len(lost),
                "back_after_s": round(back_s, 1),
                "restarts": restart_count() - restarts_before,
                "replicated": st["replicated"],
            }
        )
    )


def test_compose_down_as_documented_leaves_nothing_behind(stack):
    """Issue 29.4; last in this file, as it takes the stack down. Every container's volume is one of the
    project's named volumes (the one-shots used to get a new empty anonymous volume from the orthanc image's
    VOLUME at every `up`, which `down` left behind). With the optional profile named in COMPOSE_PROFILES in
    .env, as the install guide says, a plain `docker compose down` removes every container and the network
    and keeps only the named volumes, which hold the data; `down --volumes` removes those too."""
    label = f"label=com.docker.compose.project={stack.name}"
    named = {f"{stack.name}_{v}" for v in yaml.safe_load((ROOT / "docker-compose.yml").read_text())["volumes"]}
    containers = sh("docker", "ps", "-aq", "--filter", label).stdout.split()
    services = sh("docker", "inspect", "-f", '{{index .Config.Labels "com.docker.compose.service"}}', *containers)
    assert {"store-setup", "offsite-auth", "rest-server", "orthanc"} <= set(services.stdout.split())
    mounts = sh("docker", "inspect", "-f", "{{json .Mounts}}", *containers).stdout.splitlines()
    volumes = {m["Name"] for line in mounts for m in json.loads(line) if m["Type"] == "volume"}
    assert f"{stack.name}_orthanc-data" in volumes
    assert volumes <= named, f"anonymous volumes: {sorted(volumes - named)}"

    stack.compose("down", timeout=300)  # no --profile: COMPOSE_PROFILES in .env names offsite-demo
    assert sh("docker", "ps", "-aq", "--filter", label).stdout.split() == []
    assert sh("docker", "network", "ls", "-q", "--filter", label).stdout.split() == []
    kept = set(sh("docker", "volume", "ls", "-q", "--filter", label).stdout.split())
    assert f"{stack.name}_orthanc-data" in kept and kept <= named

    stack.compose("down", "--volumes", timeout=300)
    assert sh("docker", "volume", "ls", "-q", "--filter", label).stdout.split() == []


def _address_or_name(text: str) -> str:
    try:
        return str(ipaddress.ip_address(text))  # openssl writes IPv6 addresses in its own long form
    except ValueError:
        return text


def _answers(stack) -> bool:
    try:
        return stack.orthanc("/system").status_code == 200
    except requests.RequestException:
        return False
