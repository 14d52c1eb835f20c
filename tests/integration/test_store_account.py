"""The plugin's own object-store account (security issue 16, item 3), against a real MinIO.

The plugin used to hold the store's root account, whose keys can delete a locked version with
bypass-governance: a thief of the box's keys could erase the local copies. Now the store set-up step
(`make run`, Compose's store-setup service, scripts/store-setup) creates the bucket and a dedicated
account with the root keys, and the plugin's keys may write and read copies but not delete them.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import stat
import subprocess
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from minio import Minio
from minio.commonconfig import COMPLIANCE, GOVERNANCE
from minio.deleteobjects import DeleteObject
from minio.error import S3Error
from minio.helpers import md5sum_hash
from minio.objectlockconfig import DAYS, ObjectLockConfig
from minio.retention import Retention
from minio.versioningconfig import SUSPENDED, VersioningConfig
from minio.xml import marshal

import devstack
from pacs_backup.cli.store_setup import plugin_policy, provision
from pacs_backup.clients.bucket import default_retention
from pacs_backup.clients.object_store import ObjectStore
from pacs_backup.contracts.errors import StoreError
from pacs_backup.settings.store import load_store_settings
from tests.support.common import ROOT
from tests.support.dicomgen import make_study
from tests.support.servers import MinioServer
from tests.support.store_account import plugin_account, plugin_env, setup_settings

BYPASS = {"x-amz-bypass-governance-retention": "true"}


def _client(env: dict[str, str]) -> Minio:
    return Minio(env["MINIO_ENDPOINT"], env["MINIO_ACCESS_KEY"], env["MINIO_SECRET_KEY"], secure=False)


def _refused(call, what: str) -> S3Error:
    try:
        call()
    except S3Error as exc:
        assert exc.code == "AccessDenied", f"{what}: refused with {exc.code}, expected AccessDenied"
        return exc
    raise AssertionError(f"the plugin's keys could {what}")


def _delete_version_bypassing_governance(client: Minio, bucket: str, key: str, version_id: str) -> None:
    # minio-py's remove_object has no bypass flag: send the single DELETE with the header ourselves.
    client._execute("DELETE", bucket, key, query_params={"versionId": version_id}, headers=BYPASS)


def _set_retention(
    client: Minio, bucket: str, key: str, version_id: str, left: timedelta, mode: str = GOVERNANCE, bypass: bool = False
) -> None:
    # minio-py's set_object_retention has no bypass flag either.
    body = marshal(Retention(mode, datetime.now(UTC).replace(microsecond=0) + left))
    client._execute(
        "PUT",
        bucket,
        key,
        body=body,
        query_params={"versionId": version_id, "retention": ""},
        headers={"Content-MD5": md5sum_hash(body), **(BYPASS if bypass else {})},
    )


def test_plugin_keys_write_and_read_but_cannot_delete_versions_or_bypass_governance(minio_server, bucket):
    env, report = plugin_account(minio_server, bucket, "GOVERNANCE", 1)
    assert report.bucket_created and report.versioning and report.object_lock
    assert report.retention == ("GOVERNANCE", 1) and report.warnings == ()
    plugin, root = _client(env), minio_server.client()
    key = "dicom/1.2/1.2.3/1.2.3.4.dcm"

    # Writing and reading copies works, and each copy gets the bucket's default retention.
    first = plugin.put_object(bucket, key, io.BytesIO(b"first"), 5, metadata={"sha256": "x"})
    second = plugin.put_object(bucket, key, io.BytesIO(b"second"), 6)
    assert plugin.get_object(bucket, key, version_id=first.version_id).read() == b"first"
    assert plugin.stat_object(bucket, key).version_id == second.version_id
    assert plugin.get_object_retention(bucket, key, version_id=first.version_id).mode == GOVERNANCE
    versions = list(plugin.list_objects(bucket, "dicom/", recursive=True, include_version=True))
    assert {v.version_id for v in versions} == {first.version_id, second.version_id}

    # Deleting is refused in every form: a version, a version with bypass-governance (single and
    # multi-object delete), and a plain delete (which would hide the copy behind a delete marker).
    _refused(lambda: plugin.remove_object(bucket, key, version_id=first.version_id), "delete a version")
    _refused(
        lambda: _delete_version_bypassing_governance(plugin, bucket, key, first.version_id),
        "delete a version with bypass-governance",
    )
    errors = list(plugin.remove_objects(bucket, [DeleteObject(key, first.version_id)], bypass_governance_mode=True))
    assert [e.code for e in errors] == ["AccessDenied"], "multi-object delete with bypass-governance not refused"
    _refused(lambda: plugin.remove_object(bucket, key), "hide a copy behind a delete marker")

    # Nor can the plugin's keys weaken the bucket.
    _refused(
        lambda: plugin.set_object_lock_config(bucket, ObjectLockConfig(GOVERNANCE, 1, DAYS)),
        "change the bucket's object lock",
    )
    _refused(lambda: plugin.set_bucket_versioning(bucket, VersioningConfig(SUSPENDED)), "suspend versioning")
    # A copy's retention: the plugin writes each copy with its own (until its study may go), which S3 checks as
    # s3:PutObjectRetention, so its keys may lengthen one. MinIO also lets that right shorten a GOVERNANCE
    # retention with the bypass header, without s3:BypassGovernanceRetention (its flaw; docs/object-stores.md):
    # the delete stays refused by the account's policy.
    _set_retention(plugin, bucket, key, first.version_id, timedelta(days=3650))
    _set_retention(plugin, bucket, key, first.version_id, timedelta(minutes=1), bypass=True)
    _refused(
        lambda: _delete_version_bypassing_governance(plugin, bucket, key, first.version_id),
        "delete a version once its retention was shortened",
    )
    _refused(lambda: plugin.make_bucket("t-" + uuid.uuid4().hex[:20], object_lock=False), "create buckets")
    other = "t-" + uuid.uuid4().hex[:20]
    root.make_bucket(other)
    _refused(lambda: plugin.put_object(other, key, io.BytesIO(b"x"), 1), "write to a bucket not its own")

    # Both versions are intact.
    kept = {v.version_id for v in root.list_objects(bucket, "dicom/", recursive=True, include_version=True)}
    assert kept == {first.version_id, second.version_id}
    assert not any(
        v.is_delete_marker for v in root.list_objects(bucket, "dicom/", include_version=True, recursive=True)
    )

    # Control, and the old behaviour: the root keys (which the plugin used to hold) CAN erase a locked
    # version with bypass-governance. So the refusals above come from the account, not from the lock.
    _delete_version_bypassing_governance(root, bucket, key, first.version_id)
    assert {v.version_id for v in root.list_objects(bucket, "dicom/", recursive=True, include_version=True)} == {
        second.version_id
    }


def test_store_setup_is_idempotent_and_the_plugin_only_reports_what_it_may_not_change(minio_server, bucket):
    settings = setup_settings(minio_server, bucket, "GOVERNANCE", 1)
    first = provision(settings)
    again = provision(settings)  # `make run` and `docker compose up` run it at every start
    assert first.bucket_created and first.account_created
    assert not again.bucket_created and not again.account_created
    assert again.retention == ("GOVERNANCE", 1) and again.warnings == ()
    root = minio_server.client()

    # The plugin's ensure_bucket with its own keys: everything checks out, nothing to warn about.
    env = plugin_env(settings)
    store = ObjectStore(load_store_settings(env))
    ok = store.ensure_bucket()
    assert ok.versioning and ok.object_lock and not ok.created and ok.warnings == ()
    data = b"DICM" * 100
    store.put_verified("dicom/a/b/c.dcm", data, hashlib.sha256(data).hexdigest(), "orthanc-id")
    assert store.get("dicom/a/b/c.dcm") == data

    # Settings that differ from the bucket: the plugin may not change the lock, so it warns (never fails)
    # and the bucket keeps its retention; the set-up step, with the root keys, applies it.
    differing = ObjectStore(load_store_settings({**env, "BACKUP_LOCK_DAYS": "7"}))
    report = differing.ensure_bucket()
    assert report.object_lock and any("may not change it" in w and "7 days" in w for w in report.warnings)
    assert default_retention(root, bucket) == ("GOVERNANCE", 1)
    changed = provision(
        setup_settings(minio_server, bucket, "GOVERNANCE", 7, settings.plugin_access_key, settings.plugin_secret_key)
    )
    assert changed.retention == ("GOVERNANCE", 7) and any("changed from GOVERNANCE 1" in w for w in changed.warnings)
    assert differing.ensure_bucket().warnings == ()

    # A rotated plugin secret is applied by running the step again; the old one stops working.
    rotated = setup_settings(minio_server, bucket, "GOVERNANCE", 7, settings.plugin_access_key, "rotated-" + "s" * 20)
    provision(rotated)
    assert ObjectStore(load_store_settings(plugin_env(rotated))).ensure_bucket().object_lock
    with pytest.raises(StoreError, match="refused our credentials"):
        store.ensure_bucket()


def test_plugin_keys_cannot_create_a_missing_bucket_and_say_who_can(minio_server, bucket):
    env, _ = plugin_account(minio_server, bucket)
    minio_server.client().remove_bucket(bucket)  # empty: as if the set-up step had not run yet
    with pytest.raises(StoreError, match="does not exist and the plugin's account may not create it"):
        ObjectStore(load_store_settings(env)).ensure_bucket()
    assert not minio_server.client().bucket_exists(bucket)


def test_compliance_mode_binds_the_root_account_too(minio_server):
    bucket = "t-" + uuid.uuid4().hex[:20]
    env, report = plugin_account(minio_server, bucket, "COMPLIANCE", 1)
    assert report.retention == ("COMPLIANCE", 1)
    put = _client(env).put_object(bucket, "dicom/x.dcm", io.BytesIO(b"kept"), 4)
    root = minio_server.client()
    assert root.get_object_retention(bucket, "dicom/x.dcm", version_id=put.version_id).mode == COMPLIANCE
    with pytest.raises(S3Error):
        _delete_version_bypassing_governance(root, bucket, "dicom/x.dcm", put.version_id)
    with pytest.raises(S3Error):
        _set_retention(root, bucket, "dicom/x.dcm", put.version_id, timedelta(minutes=1), COMPLIANCE, bypass=True)
    assert root.get_object(bucket, "dicom/x.dcm", version_id=put.version_id).read() == b"kept"


def test_the_plugin_replicates_with_its_own_account(
    orthanc_factory, plugin_store_env, offsite_env, minio_server, bucket
):
    orthanc = orthanc_factory({**plugin_store_env, **offsite_env})
    for f in make_study(3)[1]:
        orthanc.http().upload(f)
    status = orthanc.wait_replicated(3)
    assert status["failed"] == 0
    assert status["store"]["versioning"] and status["store"]["object_lock"] and status["store"]["warnings"] == []
    keys = [o.object_name for o in minio_server.client().list_objects(bucket, "dicom/", recursive=True)]
    assert len(keys) == 3


def test_make_run_gives_the_plugin_its_own_account(tmp_path, monkeypatch):
    """dev/stack.py's secrets and set-up step, on a temporary state directory and a MinIO of its own."""
    spec = importlib.util.spec_from_file_location("stack_under_test", ROOT / "dev" / "stack.py")
    assert spec and spec.loader
    stack = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stack)
    monkeypatch.setattr(stack, "SECRETS", tmp_path / "secrets")
    monkeypatch.setattr(stack, "LOGS", tmp_path / "logs")
    monkeypatch.setitem(stack.PORTS, "minio", devstack.free_port())

    env = stack.stack_env()
    root_user, root_password = stack.minio_root()
    assert env["MINIO_ACCESS_KEY"] != root_user and env["MINIO_SECRET_KEY"] != root_password
    for name in ("minio_root_user", "minio_root_password", "minio_access_key", "minio_secret_key"):
        assert stat.S_IMODE((tmp_path / "secrets" / name).stat().st_mode) == 0o600

    server = MinioServer(tmp_path)
    server.port, server.access_key, server.secret_key = stack.PORTS["minio"], root_user, root_password
    server.start()
    try:
        first, again = stack.setup_store(env), stack.setup_store(env)  # make run, run again
        assert "created" in first[0] and "present" in again[0]
        plugin = _client(env)
        put = plugin.put_object(env["MINIO_BUCKET"], "dicom/k.dcm", io.BytesIO(b"copy"), 4)
        _refused(
            lambda: _delete_version_bypassing_governance(plugin, env["MINIO_BUCKET"], "dicom/k.dcm", put.version_id),
            "delete with bypass-governance",
        )
    finally:
        server.stop()


def test_store_setup_script_prints_the_policy_and_refuses_the_root_keys_as_plugin_keys():
    script = ROOT / "scripts" / "store-setup"
    base = {"PATH": "/usr/bin:/bin", "MINIO_BUCKET": "clinic-a"}
    printed = subprocess.run([str(script), "--print-policy"], env=base, capture_output=True, text=True, check=True)
    assert json.loads(printed.stdout) == plugin_policy("clinic-a")
    same = subprocess.run(
        [str(script)],
        capture_output=True,
        text=True,
        check=False,
        env={
            **base,
            "MINIO_ENDPOINT": "127.0.0.1:9",
            "MINIO_ROOT_USER": "rootuser",
            "MINIO_ROOT_PASSWORD": "rootpassword",
            "MINIO_ACCESS_KEY": "rootuser",
            "MINIO_SECRET_KEY": "rootpassword",
        },
    )
    assert same.returncode == 2 and "MINIO_ACCESS_KEY is the object store's root user" in same.stderr
    assert "rootpassword" not in same.stdout + same.stderr
    unreachable = subprocess.run(
        [str(script), "--wait", "1"],
        capture_output=True,
        text=True,
        check=False,
        env={
            **base,
            "MINIO_ENDPOINT": "127.0.0.1:9",
            "MINIO_ROOT_USER": "rootuser",
            "MINIO_ROOT_PASSWORD": "rootpassword",
            "MINIO_ACCESS_KEY": "plugin",
            "MINIO_SECRET_KEY": "pluginsecret",
        },
    )
    assert unreachable.returncode == 3 and "cannot be reached" in unreachable.stderr


def test_dashboard_reader_account_reads_but_never_writes(minio_server, bucket):
    import dataclasses

    settings = dataclasses.replace(
        setup_settings(minio_server, bucket),
        reader_access_key="reader-" + bucket[-8:],
        reader_secret_key=devstack.new_secret(),
    )
    report = provision(settings, wait_s=30)
    assert report.reader == settings.reader_access_key
    writer = _client(plugin_env(settings))
    writer.put_object(bucket, "dicom/1/2/3.dcm", io.BytesIO(b"copy"), 4)
    reader = Minio(settings.endpoint, settings.reader_access_key, settings.reader_secret_key, secure=False)
    assert reader.get_object(bucket, "dicom/1/2/3.dcm").read() == b"copy"
    assert [o.object_name for o in reader.list_objects(bucket, "dicom/", recursive=True)] == ["dicom/1/2/3.dcm"]
    _refused(lambda: reader.put_object(bucket, "dicom/x.dcm", io.BytesIO(b"x"), 1), "write with the reader's keys")
    _refused(lambda: reader.remove_object(bucket, "dicom/1/2/3.dcm"), "delete with the reader's keys")


def test_security_dashboard_reader_reads_only_the_current_copies(minio_server, bucket):
    """The dashboard lists a study's copies and draws one: it needs no earlier versions, which keep what was
    overwritten or hidden (a study removed on request stays readable there until its lock ends)."""
    import dataclasses

    settings = dataclasses.replace(
        setup_settings(minio_server, bucket),
        reader_access_key="reader-" + bucket[-8:],
        reader_secret_key=devstack.new_secret(),
    )
    provision(settings, wait_s=30)
    writer = _client(plugin_env(settings))
    old = writer.put_object(bucket, "dicom/1/2/3.dcm", io.BytesIO(b"first"), 5)
    writer.put_object(bucket, "dicom/1/2/3.dcm", io.BytesIO(b"second"), 6)
    reader = Minio(settings.endpoint, settings.reader_access_key, settings.reader_secret_key, secure=False)
    assert reader.get_object(bucket, "dicom/1/2/3.dcm").read() == b"second"
    assert [o.object_name for o in reader.list_objects(bucket, "dicom/", recursive=True)] == ["dicom/1/2/3.dcm"]
    _refused(lambda: reader.get_object(bucket, "dicom/1/2/3.dcm", version_id=old.version_id).read(), "old version")
    _refused(lambda: reader.stat_object(bucket, "dicom/1/2/3.dcm", version_id=old.version_id), "old version's data")
    # (MinIO checks a listing of versions as s3:ListBucket, which the dashboard needs: it may see that older
    # versions exist, by name, but not read them. Servers that check s3:ListBucketVersions refuse the listing.)
    # The bucket's own settings are not the dashboard's business either.
    _refused(lambda: reader.get_bucket_versioning(bucket), "read versioning")
    _refused(lambda: reader.get_object_lock_config(bucket), "read the lock")
