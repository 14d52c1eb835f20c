"""The Compose stack's postgresql profile: Orthanc's index in PostgreSQL, backups unchanged (issue 12.6).

A short variant of test_compose.py: the images stay files on the orthanc-data volume, so copies,
snapshots, drills and restores must behave exactly as with Orthanc's SQLite index.
"""

from __future__ import annotations

import hashlib

import pytest

from tests.support.common import wait_until
from tests.support.compose import bucket_digests, compose_stack, sh
from tests.support.dicomgen import make_study

pytestmark = pytest.mark.timeout(2400)


@pytest.fixture(scope="module")
def pg_stack(tmp_path_factory):
    yield from compose_stack(
        tmp_path_factory, profiles="postgresql,offsite-demo", extra={"ORTHANC_POSTGRESQL_HOST": "postgres"}
    )


def test_postgresql_index_backs_up_drills_and_restores_unchanged(pg_stack, tmp_path):
    stack = pg_stack
    plugins = stack.orthanc("/plugins").json()
    assert "postgresql-index" in plugins and "python" in plugins

    uid, files = make_study(6, rows=64, cols=64, patient_name="PG^TEST")
    paths = []
    for i, data in enumerate(files):
        (p := tmp_path / f"{i}.dcm").write_bytes(data)
        paths.append(str(p))
    sh("storescu", "-aec", "PACS", "127.0.0.1", stack.env["DICOM_PORT"], *paths, timeout=120)
    wait_until(lambda: stack.orthanc("/backup/status").json().get("replicated") == 6, 120, "6 replicated")
    # What Orthanc stored (a C-STORE gets a new file meta header) is what the bucket holds, byte for byte.
    stored = sorted(
        hashlib.sha256(stack.orthanc(f"/instances/{i}/file").content).hexdigest()
        for i in stack.orthanc("/instances").json()
    )
    assert len(stored) == len(files) and sorted(bucket_digests(stack.minio()).values()) == stored

    # The index really is in PostgreSQL: its resources table holds the study, series and instances.
    rows = stack.compose(
        "exec", "-T", "postgres", "psql", "-U", "orthanc", "-d", "orthanc", "-tAc", "select count(*) from resources"
    )
    assert int(rows.stdout.strip()) >= 1 + 1 + 1 + 6  # patient, study, series, instances

    snap = stack.compose("exec", "-T", "orthanc", "snapshot-now", timeout=600)
    assert "Snapshot of offsite finished OK" in snap.stdout, snap.stdout[-2000:]
    drill = stack.compose("exec", "-T", "orthanc", "verify-backups", timeout=900, check=False)
    assert drill.returncode == 0, drill.stdout[-2000:] + drill.stderr[-2000:]

    sid = stack.orthanc("/tools/lookup", "POST", data=uid).json()[0]["ID"]
    stack.orthanc(f"/studies/{sid}", "DELETE")
    assert stack.orthanc("/instances").json() == []
    restored = stack.compose("exec", "-T", "orthanc", "restore-study", "--from", "offsite", uid, timeout=600)
    assert "6 of 6" in restored.stdout

    # A restart keeps the index (it lives in the postgres volume, not in the orthanc container).
    stack.compose("restart", "orthanc", timeout=300)
    stack.compose("up", "-d", "--wait", "--wait-timeout", "300", timeout=600)
    back = sorted(
        hashlib.sha256(stack.orthanc(f"/instances/{i}/file").content).hexdigest()
        for i in stack.orthanc("/instances").json()
    )
    assert back == stored
