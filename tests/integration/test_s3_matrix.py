"""The appliance on each supported S3 server: copy, object lock, drill, restore, and the immutability check.

Each test runs once per server that ``S3_SERVER`` selects (tests/support/s3_servers.py): the default only
in `make test`, every supported one in `make test-s3`. The plugin always holds its own least-privilege
account, made the way the installer makes it on that server.
"""

from __future__ import annotations

import dataclasses
import io
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest
from minio import Minio
from minio.commonconfig import GOVERNANCE
from minio.error import S3Error
from minio.helpers import md5sum_hash
from minio.objectlockconfig import DAYS, ObjectLockConfig
from minio.retention import Retention
from minio.xml import marshal

from pacs_backup.clients.bucket import BucketNotImmutable
from pacs_backup.clients.object_store import ObjectStore
from pacs_backup.settings.store import load_store_settings
from tests.support.common import figure, sha256, wait_until
from tests.support.pacs import fill, orthanc_env, orthanc_study_id, pacs_content, script
from tests.support.s3_servers import S3Server, put_rate, selected, start_server

BYPASS = {"x-amz-bypass-governance-retention": "true"}


@pytest.fixture(scope="module", params=selected())
def s3(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    server = start_server(request.param, tmp_path_factory.mktemp(request.param))
    yield server
    server.stop()


@pytest.fixture
def new_bucket() -> str:
    return "m-" + uuid.uuid4().hex[:20]


def _client(env: dict[str, str]) -> Minio:
    return Minio(env["MINIO_ENDPOINT"], env["MINIO_ACCESS_KEY"], env["MINIO_SECRET_KEY"], secure=False)


def _copies(client: Minio, bucket: str) -> dict[str, tuple[str, str]]:
    """{object key: (sha256 metadata, sha256 of the bytes)} for the bucket's current objects."""
    out = {}
    for obj in client.list_objects(bucket, prefix="dicom/", recursive=True):
        stat = client.stat_object(bucket, obj.object_name)
        resp = client.get_object(bucket, obj.object_name)
        try:
            out[obj.object_name] = (stat.metadata.get("x-amz-meta-sha256", ""), sha256(resp.read()))
        finally:
            resp.close()
            resp.release_conn()
    return out


def _refused(call, what: str, server: S3Server) -> None:
    try:
        call()
    except S3Error as exc:
        assert exc.code in ("AccessDenied", "ObjectLocked", "InvalidRequest"), f"{server.name}: {what}: {exc.code}"
        return
    raise AssertionError(f"{server.name}: {what} was allowed")


def test_s3_matrix_copy_is_byte_identical_with_its_sha256(s3, new_bucket, orthanc_factory):
    env = s3.plugin_account(new_bucket)
    orthanc = orthanc_factory(env)
    fill(orthanc, studies=1, per_study=6)
    status = orthanc.wait_replicated(6)
    assert status["failed"] == 0 and status["quarantined"] == 0
    store = status["store"]
    assert store["versioning"] and store["object_lock"] and "refused" not in store, store
    copies = _copies(s3.client(), new_bucket)
    held = {sha256(orthanc.http().get(f"/instances/{i}/file")) for i in orthanc.http().get_json("/instances")}
    assert len(copies) == 6
    assert all(meta == data for meta, data in copies.values()), "an object's sha256 metadata is not its bytes'"
    assert {data for _, data in copies.values()} == held, "the copies are not the bytes Orthanc holds"


def test_s3_matrix_a_locked_version_survives_the_plugins_key(s3, new_bucket):
    env = s3.plugin_account(new_bucket, "GOVERNANCE", 1)
    plugin, root = _client(env), s3.client()
    key = "dicom/1.2/1.2.3/1.2.3.4.dcm"
    # Written as the plugin writes every copy: with its own retention (BACKUP_LOCK_MODE, BACKUP_LOCK_DAYS).
    ObjectStore(load_store_settings(env)).put_verified(key, b"original", sha256(b"original"), "o1")
    version = root.stat_object(new_bucket, key).version_id
    assert version, f"{s3.name} gave no version id: versioning is off"

    _refused(lambda: plugin.remove_object(new_bucket, key, version_id=version), "deleting the version", s3)
    _refused(lambda: plugin.remove_object(new_bucket, key), "hiding it behind a delete marker", s3)
    _refused(
        lambda: plugin._execute("DELETE", new_bucket, key, query_params={"versionId": version}, headers=BYPASS),
        "deleting it bypassing governance",
        s3,
    )
    # The lock itself, not only the policy: the root account without the bypass header cannot delete it.
    _refused(lambda: root.remove_object(new_bucket, key, version_id=version), "root deleting the locked version", s3)
    # An overwrite is a new version; the locked one stays, byte for byte.
    plugin.put_object(new_bucket, key, io.BytesIO(b"overwrite"), 9)
    kept = root.get_object(new_bucket, key, version_id=version)
    try:
        assert kept.read() == b"original"
    finally:
        kept.close()
        kept.release_conn()
    versions = [
        v.version_id for v in root.list_objects(new_bucket, prefix="dicom/", recursive=True, include_version=True)
    ]
    assert version in versions and len(versions) == 2

    body = marshal(Retention(GOVERNANCE, datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=5)))

    def shorten() -> None:
        plugin._execute(
            "PUT",
            new_bucket,
            key,
            body=body,
            query_params={"versionId": version, "retention": ""},
            headers={"Content-MD5": md5sum_hash(body), **BYPASS},
        )

    if s3.name == "minio":
        # MinIO's flaw (docs/object-stores.md): with s3:PutObjectRetention, which the plugin needs to write each
        # copy's retention, the bypass header shortens a GOVERNANCE retention without s3:BypassGovernanceRetention.
        # The policy still refuses the delete.
        shorten()
        _refused(lambda: plugin.remove_object(new_bucket, key, version_id=version), "deleting it once shortened", s3)
    else:
        _refused(shorten, "shortening its retention", s3)


def test_s3_matrix_drill_passes_then_catches_a_tampered_copy(s3, new_bucket, orthanc_factory):
    env = s3.plugin_account(new_bucket)
    orthanc = orthanc_factory({**env, "BACKUP_DRILL_SAMPLE": "50"})
    fill(orthanc, studies=1, per_study=4)
    orthanc.wait_replicated(4)
    first = orthanc.run_job("drills", target="minio")[0]
    assert first["state"] == "ok" and first["summary"]["identical"] == 4, first

    # The store's root account writes other bytes under a copy's key, keeping its metadata (tampering).
    root = s3.client()
    key = next(iter(root.list_objects(new_bucket, "dicom/", recursive=True))).object_name
    original = root.stat_object(new_bucket, key)
    meta = {k[len("x-amz-meta-") :]: v for k, v in original.metadata.items() if k.lower().startswith("x-amz-meta-")}
    root.put_object(new_bucket, key, io.BytesIO(b"garbage" * 100), 700, metadata=meta)

    second = orthanc.run_job("drills", target="minio")[0]
    assert second["state"] == "ok" and second["summary"]["repaired"] == 1, second
    resp = root.get_object(new_bucket, key)
    try:
        assert sha256(resp.read()) == original.metadata["x-amz-meta-sha256"], "the drill did not put the copy back"
    finally:
        resp.close()
        resp.release_conn()


def test_s3_matrix_restore_a_study_deleted_in_the_pacs(s3, new_bucket, orthanc_factory):
    env = s3.plugin_account(new_bucket)
    orthanc = orthanc_factory(env)
    before = fill(orthanc, studies=2, per_study=4)
    orthanc.wait_replicated(8)
    lost = sorted(before)[0]
    orthanc.http().delete(f"/studies/{orthanc_study_id(orthanc, lost)}")
    assert lost not in pacs_content(orthanc)
    done = script("restore-study", "--from", "minio", lost, env={**orthanc_env(orthanc), **env})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 of 4" in done.stdout
    assert pacs_content(orthanc) == before, "the restored study is not byte for byte what was deleted"


def test_s3_matrix_immutability_refuses_a_bucket_without_object_lock(s3, new_bucket, orthanc_factory):
    s3.plain_bucket(new_bucket)
    env = {**s3.root_env(new_bucket), "BACKUP_LOCK_MODE": "GOVERNANCE", "BACKUP_LOCK_DAYS": "1"}
    with pytest.raises(BucketNotImmutable, match=r"has no object lock but BACKUP_LOCK_MODE=GOVERNANCE asks") as err:
        ObjectStore(load_store_settings(env)).ensure_bucket()
    sentence = str(err.value)
    assert sentence.count(". ") == 0 and "MINIO_BUCKET" in sentence and "BACKUP_LOCK_MODE=OFF" in sentence

    orthanc = orthanc_factory(env)
    fill(orthanc, studies=1, per_study=2)

    def refused() -> dict | None:
        status = orthanc.status()
        return status if status["store"].get("refused") and status["outbox_depth"] == 2 else None

    status = wait_until(refused, 60, "the plugin to refuse the bucket")
    assert isinstance(status, dict)
    assert status["store"]["refused"] == sentence and status["replicated"] == 0
    assert status["last_error"]["message"] == sentence
    assert list(s3.client().list_objects(new_bucket, recursive=True)) == [], "something was copied"
    # Accepting unlocked copies is the other way out, and then the same bucket is used.
    ObjectStore(load_store_settings({**env, "BACKUP_LOCK_MODE": "OFF"})).ensure_bucket()


def test_s3_matrix_figures_idle_memory_and_put_rate(s3, new_bucket):
    """Measured figures for docs/object-stores.md (recorded, not asserted: performance is not a test)."""
    s3.locked_bucket(new_bucket)
    rate = put_rate(s3, new_bucket, count=200, size=256 * 1024)
    figure(
        "s3_server",
        server=s3.name,
        idle_rss_mb=round(s3.started_rss_kb / 1024, 1),
        rss_after_tests_mb=round(s3.rss_kb() / 1024, 1),
        put_256k_per_s=round(rate, 1),
    )
    assert rate > 0


def test_s3_matrix_store_setup_makes_a_working_account_or_says_how(s3, new_bucket):
    """scripts/store-setup's step: the bucket is prepared on every server; the plugin's account through MinIO's
    or Versity S3 Gateway's admin API, and otherwise one sentence pointing to the server's own tool (never a
    report of an account the server does not know)."""
    from pacs_backup.cli.store_setup import provision
    from pacs_backup.contracts.errors import StoreError
    from tests.support.store_account import plugin_env, setup_settings

    settings = setup_settings(s3, new_bucket)
    if s3.name in ("minio", "versitygw"):
        # With the dashboard's read-only account too, as `make run` and Compose make them; twice (idempotent).
        settings = dataclasses.replace(settings, reader_access_key="reader-" + new_bucket, reader_secret_key="r" * 24)
        provision(settings, wait_s=30)
        assert provision(settings, wait_s=30).account == settings.plugin_access_key
        plugin = _client(plugin_env(settings))
        old = plugin.put_object(new_bucket, "dicom/a/b/c.dcm", io.BytesIO(b"old"), 3).version_id
        plugin.put_object(new_bucket, "dicom/a/b/c.dcm", io.BytesIO(b"new"), 3)
        reader = Minio(s3.endpoint, settings.reader_access_key, settings.reader_secret_key, secure=False)
        current = reader.get_object(new_bucket, "dicom/a/b/c.dcm")
        try:
            assert current.read() == b"new"
        finally:
            current.close()
            current.release_conn()
        _refused(lambda: reader.get_object(new_bucket, "dicom/a/b/c.dcm", version_id=old), "reader: old version", s3)
        _refused(lambda: reader.put_object(new_bucket, "x", io.BytesIO(b"x"), 1), "reader: writing", s3)
    else:
        with pytest.raises(StoreError, match=r"docs/object-stores\.md"):
            provision(settings, wait_s=30)
    root = s3.client()
    assert root.get_bucket_versioning(new_bucket).status == "Enabled"
    assert root.get_object_lock_config(new_bucket).mode == "GOVERNANCE"


def _version_retention(root: Minio, bucket: str, key: str) -> tuple[str, str | None, datetime | None]:
    """(version id, mode, retain-until) of the current version of ``key``, read with the root account."""
    version = root.stat_object(bucket, key).version_id
    assert version
    retention = root.get_object_retention(bucket, key, version_id=version)
    if retention is None:
        return version, None, None
    return version, retention.mode, retention.retain_until_date


def test_s3_matrix_retention_locks_each_copy_until_the_law_lets_it_go(s3, new_bucket, orthanc_factory):
    """Each copy carries its own COMPLIANCE retention: until the study's date + the rule's years (7) when that is
    ahead, else BACKUP_LOCK_DAYS (1). Neither the plugin's key nor the store's root account can delete it, even
    after root lowers the bucket's default retention."""
    env = s3.plugin_account(new_bucket, "COMPLIANCE", 1)
    orthanc = orthanc_factory({**env, "BACKUP_RETENTION_YEARS": "7"})
    this_year = datetime.now(UTC).year
    recent, old = date(this_year - 6, 1, 15), date(this_year - 9, 1, 15)
    kept = fill(orthanc, studies=1, per_study=2, study_date=recent.strftime("%Y%m%d"))
    fill(orthanc, studies=1, per_study=2, study_date=old.strftime("%Y%m%d"))
    status = orthanc.wait_replicated(4)
    assert status["failed"] == 0, status
    started = datetime.now(UTC)
    plugin, root = _client(env), s3.client()
    keys = [o.object_name for o in root.list_objects(new_bucket, prefix="dicom/", recursive=True)]
    assert len(keys) == 4
    for key in keys:
        version, mode, until = _version_retention(root, new_bucket, key)
        assert mode == "COMPLIANCE", f"{s3.name}: {key} has no retention of its own ({mode})"
        assert until is not None
        if key.split("/")[1] in kept:
            assert until == datetime(recent.year + 7, 1, 15, tzinfo=UTC), f"{s3.name}: {key} locked until {until}"
        else:  # past its years: only the lock of BACKUP_LOCK_DAYS
            assert started < until + timedelta(minutes=5) and until < started + timedelta(days=1, minutes=5), until
    key = next(k for k in keys if k.split("/")[1] in kept)
    version = root.stat_object(new_bucket, key).version_id
    _refused(lambda: plugin.remove_object(new_bucket, key, version_id=version), "the plugin deleting it", s3)
    _refused(lambda: root.remove_object(new_bucket, key, version_id=version), "root deleting it", s3)
    body = marshal(Retention("GOVERNANCE", datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)))
    for who, client in (("the plugin", plugin), ("root", root)):
        _refused(
            lambda client=client: client._execute(
                "PUT",
                new_bucket,
                key,
                body=body,
                query_params={"versionId": version, "retention": ""},
                headers={"Content-MD5": md5sum_hash(body), **BYPASS},
            ),
            f"{who} shortening its retention",
            s3,
        )
    # Root lowers the bucket's default retention, then tries again: the copy keeps its own.
    root.set_object_lock_config(new_bucket, ObjectLockConfig("GOVERNANCE", 1, DAYS))
    _refused(
        lambda: root._execute("DELETE", new_bucket, key, query_params={"versionId": version}, headers=BYPASS),
        "root deleting it after lowering the bucket's default",
        s3,
    )
    assert _version_retention(root, new_bucket, key)[1:] == ("COMPLIANCE", datetime(recent.year + 7, 1, 15, tzinfo=UTC))
