"""Replication end to end: real Orthanc + plugin, real MinIO, instances sent by REST and C-STORE."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from pynetdicom import AE, StoragePresentationContexts

from pacs_backup.contracts.errors import SourceError
from pacs_backup.contracts.keys import instance_key
from tests.support.common import sha256, wait_until
from tests.support.dicomgen import make_instance, make_study, new_uid, pydicom_sample_files
from tests.support.servers import MinioServer


def instance_uids(orthanc, oid: str) -> tuple[str, str, str]:
    tags = orthanc.http().get_json(f"/instances/{oid}/simplified-tags")
    return tags["StudyInstanceUID"], tags["SeriesInstanceUID"], tags["SOPInstanceUID"]


def bucket_copies(client, bucket: str) -> dict[str, tuple[str, str]]:
    """Map Orthanc id -> (key, sha256 of the object's bytes) for every object in the bucket."""
    copies = {}
    for obj in client.list_objects(bucket, prefix="dicom/", recursive=True):
        stat = client.stat_object(bucket, obj.object_name)
        resp = client.get_object(bucket, obj.object_name)
        try:
            data = resp.read()
        finally:
            resp.close()
            resp.release_conn()
        assert stat.metadata["x-amz-meta-sha256"] == sha256(data), f"{obj.object_name}: metadata sha256 is wrong"
        copies[stat.metadata["x-amz-meta-orthanc-id"]] = (obj.object_name, sha256(data))
    return copies


def assert_all_copies_identical(orthanc, client, bucket: str) -> int:
    """Every instance in Orthanc has exactly one object version in the bucket, with identical bytes,
    at the key its UIDs give."""
    ids = orthanc.http().get_json("/instances")
    copies = bucket_copies(client, bucket)
    for oid in ids:
        assert oid in copies, f"instance {oid} has no copy in the bucket"
        key, digest = copies[oid]
        assert digest == sha256(orthanc.http().get(f"/instances/{oid}/file")), f"{key} differs from Orthanc's copy"
        study, series, sop = instance_uids(orthanc, oid)
        assert key in (instance_key(study, series, sop), instance_key(study, series, sop, variant=oid))
    versions = list(client.list_objects(bucket, prefix="dicom/", recursive=True, include_version=True))
    assert len(versions) == len(ids), "an instance was uploaded more than once (or an object is extra)"
    return len(ids)


def storescu(orthanc, files: list[Path]) -> None:
    """Send files with dcmtk's storescu, as a modality would."""
    subprocess.run(
        [
            "storescu",
            "-aec",
            orthanc.settings.aet,
            "-aet",
            "MODALITY",
            "127.0.0.1",
            str(orthanc.settings.dicom_port),
            *map(str, files),
        ],
        check=True,
        timeout=300,
        capture_output=True,
    )


def pynetdicom_send(orthanc, files: list[bytes], tmp_path: Path) -> None:
    from pydicom import dcmread

    ae = AE(ae_title="XRAY")
    ae.requested_contexts = StoragePresentationContexts
    assoc = ae.associate("127.0.0.1", orthanc.settings.dicom_port, ae_title=orthanc.settings.aet)
    assert assoc.is_established
    try:
        for i, data in enumerate(files):
            path = tmp_path / f"pn-{i}.dcm"
            path.write_bytes(data)
            status = assoc.send_c_store(dcmread(path))
            assert status.Status == 0x0000
    finally:
        assoc.release()


def test_replication_rest_and_cstore_instances_arrive_byte_identical(orthanc, minio_server, bucket, tmp_path):
    http = orthanc.http()
    # 1. REST: a synthetic study, and every pydicom sample file Orthanc accepts.
    _, rest_files = make_study(120, series=3)
    for data in rest_files:
        http.upload(data)
    accepted_samples = 0
    for path in pydicom_sample_files():
        try:
            http.upload(path.read_bytes())
            accepted_samples += 1
        except SourceError:
            pass  # Orthanc rejects some deliberately broken samples; those are not ours to copy
    assert accepted_samples >= 40
    # 2. C-STORE with dcmtk's storescu.
    _, dcmtk_files = make_study(120, series=2)
    paths = []
    for i, data in enumerate(dcmtk_files):
        p = tmp_path / f"s{i}.dcm"
        p.write_bytes(data)
        paths.append(p)
    storescu(orthanc, paths)
    # 3. C-STORE with pynetdicom.
    _, pn_files = make_study(60)
    pynetdicom_send(orthanc, pn_files, tmp_path)

    total = len(http.get_json("/instances"))
    assert total >= 300
    status = orthanc.wait_replicated(total, timeout=300)
    assert status["failed"] == 0 and status["quarantined"] == 0
    assert status["store"]["versioning"] and status["store"]["object_lock"]
    assert assert_all_copies_identical(orthanc, minio_server.client(), bucket) == total
    # REST uploads are kept exactly as sent: the copy equals the file the modality produced.
    sent = {sha256(d) for d in rest_files}
    assert sent <= {digest for _, digest in bucket_copies(minio_server.client(), bucket).values()}


def test_replication_survives_object_store_outage(orthanc_factory, tmp_path, bucket, offsite_env):
    store = MinioServer(tmp_path)
    store.start()
    try:
        orthanc = orthanc_factory({**store.env(bucket), **offsite_env})
        http = orthanc.http()
        _, first = make_study(10)
        for d in first:
            http.upload(d)
        orthanc.wait_replicated(10)
        store.stop()
        _, during = make_study(40)
        t0 = time.monotonic()
        for d in during:
            http.upload(d)  # ingest goes on while the store is down
        wait_until(lambda: orthanc.status()["store"]["reachable"] is False, 30, "status to show the store down")
        st = orthanc.status()
        assert st["state"] == "error" and st["outbox_depth"] >= 1 and st["replicated"] == 10
        assert st["last_error"]["message"]
        assert time.monotonic() - t0 < 60
        store.start()
        st = orthanc.wait_replicated(50, timeout=120)
        assert st["state"] == "ok" and st["failed"] == 0
        assert assert_all_copies_identical(orthanc, store.client(), bucket) == 50
    finally:
        store.stop()


def test_replication_after_kill9_with_backlog_loses_nothing_and_copies_once(
    orthanc_factory, tmp_path, bucket, offsite_env
):
    store = MinioServer(tmp_path)
    store.start()
    try:
        orthanc = orthanc_factory({**store.env(bucket), **offsite_env})
        http = orthanc.http()
        _, early = make_study(30)
        for d in early:
            http.upload(d)
        store.stop()  # build a backlog the plugin cannot drain
        _, backlog = make_study(50)
        for d in backlog:
            http.upload(d)
        wait_until(lambda: orthanc.status()["outbox_depth"] > 0, 30, "a backlog")
        orthanc.kill()  # kill -9: no chance to flush anything
        store.start()
        orthanc.start()
        st = orthanc.wait_replicated(80, timeout=180)
        assert st["quarantined"] == 0
        assert assert_all_copies_identical(orthanc, store.client(), bucket) == 80
    finally:
        store.stop()


def test_replication_kill9_mid_copy_then_restart(orthanc, minio_server, bucket):
    http = orthanc.http()
    _, files = make_study(150, rows=256, cols=256)
    for d in files:
        http.upload(d)
    orthanc.kill()
    orthanc.start()
    orthanc.wait_replicated(150, timeout=180)
    assert assert_all_copies_identical(orthanc, minio_server.client(), bucket) == 150


def test_replication_same_instance_twice_gives_one_object(orthanc, minio_server, bucket, tmp_path):
    study, series = new_uid(), new_uid()
    data = make_instance(study, series)
    http = orthanc.http()
    http.upload(data)
    orthanc.wait_replicated(1)
    http.upload(data)
    p = tmp_path / "again.dcm"
    p.write_bytes(data)
    storescu(orthanc, [p])
    # A different instance sent after the two repeats: once it is copied, the repeats were handled.
    http.upload(make_instance(new_uid(), new_uid()))
    orthanc.wait_replicated(2)
    objs = list(minio_server.client().list_objects(bucket, "dicom/", recursive=True, include_version=True))
    assert len([o for o in objs if o.object_name.startswith(f"dicom/{study}/")]) == 1


def test_replication_deleting_a_study_keeps_its_backup(orthanc, minio_server, bucket):
    http = orthanc.http()
    study_uid, files = make_study(5)
    for d in files:
        http.upload(d)
    orthanc.wait_replicated(5)
    for sid in http.get_json("/studies"):
        http.delete(f"/studies/{sid}")
    # An instance stored after the deletions: once it is copied, the plugin has seen the deletions.
    http.upload(make_instance(new_uid(), new_uid()))
    orthanc.wait_replicated(6)
    keys = [o.object_name for o in minio_server.client().list_objects(bucket, f"dicom/{study_uid}/", recursive=True)]
    assert len(keys) == 5


def test_replication_objects_are_locked_against_deletion(orthanc, minio_server, bucket):
    from minio.error import S3Error

    http = orthanc.http()
    _, files = make_study(1)
    http.upload(files[0])
    orthanc.wait_replicated(1)
    client = minio_server.client()
    obj = next(iter(client.list_objects(bucket, "dicom/", recursive=True, include_version=True)))
    try:
        client.remove_object(bucket, obj.object_name, version_id=obj.version_id)
    except S3Error as exc:
        assert exc.code == "AccessDenied" or "retention" in exc.message.lower() or "WORM" in exc.message
    else:
        raise AssertionError("a locked backup copy could be deleted")
    assert client.stat_object(bucket, obj.object_name, version_id=obj.version_id).size > 0


def test_replication_bad_config_keeps_orthanc_serving(orthanc_factory, minio_server, bucket):
    env = minio_server.env(bucket)
    env["BACKUP_WORKERS"] = "lots"
    orthanc = orthanc_factory(env)
    st = orthanc.status()
    assert st["state"] == "error" and "BACKUP_WORKERS" in st["config_error"]
    _, files = make_study(1)
    assert orthanc.http().upload(files[0])["Status"] == "Success"
    log = orthanc.log.read_text()
    assert "BACKUP_WORKERS" in log and "Traceback" not in log
    assert minio_server.secret_key not in log


def test_replication_restart_follows_orthancs_change_log_not_the_whole_listing(orthanc, minio_server, bucket):
    """Issue 14: a restart reads Orthanc's change log from the saved cursor; images stored while the
    plugin was not loaded are found there (nothing lost), and the archive is not listed again."""
    import dataclasses

    http = orthanc.http()
    _, first = make_study(4, rows=32, cols=32)
    for d in first:
        http.upload(d)
    orthanc.wait_replicated(4)
    assert orthanc.status()["last_reconcile"]["mode"] == "full"  # first start: no cursor yet

    orthanc.stop()  # Orthanc runs a while without the plugin (e.g. a configuration mistake)
    with_plugin = orthanc.settings
    orthanc.settings = dataclasses.replace(with_plugin, plugin=False)
    orthanc.start()
    _, missed = make_study(3, rows=32, cols=32)
    for d in missed:
        http.upload(d)
    orthanc.stop()
    orthanc.settings = with_plugin
    orthanc.start()

    st = orthanc.wait_replicated(7, timeout=120)
    assert st["last_reconcile"]["mode"] == "changes" and st["last_reconcile"]["queued"] == 3
    # It read the change log since the cursor saved at the first start (the 7 new images), no listing.
    assert st["last_reconcile"]["instances_seen"] == 7
    assert assert_all_copies_identical(orthanc, minio_server.client(), bucket) == 7


def test_the_store_refuses_to_overwrite_a_copy_when_asked_only_if_absent(minio_server, bucket):
    """Copies skip the look-up before uploading only because MinIO refuses an existing key when asked."""
    from pacs_backup.clients.object_store import ObjectStore
    from pacs_backup.clients.store_errors import KeyExists
    from pacs_backup.settings.store import load_store_settings

    store = ObjectStore(load_store_settings(minio_server.env(bucket)))
    store.ensure_bucket()
    assert store.check_conditional_writes()
    data = b"an image"
    store.put_verified("dicom/x.dcm", data, sha256(data), "o1", if_absent=True)
    with pytest.raises(KeyExists):
        store.put_verified("dicom/x.dcm", b"another image", sha256(b"another image"), "o2", if_absent=True)
    versions = list(minio_server.client().list_objects(bucket, prefix="dicom/", include_version=True, recursive=True))
    assert len(versions) == 1 and store.get("dicom/x.dcm") == data


def test_the_store_refuses_a_body_that_does_not_match_the_hash_the_copy_was_signed_with(minio_server, bucket):
    """Copies are signed with the SHA-256 computed when the file was read (the client does not hash
    again): the store checks every byte against it and keeps nothing that differs."""
    from pacs_backup.clients.object_store import ObjectStore
    from pacs_backup.contracts.errors import StoreError
    from pacs_backup.settings.store import load_store_settings

    store = ObjectStore(load_store_settings(minio_server.env(bucket)))
    store.ensure_bucket()
    with pytest.raises(StoreError, match="refused"):
        store.put_verified("dicom/y.dcm", b"the bytes sent", sha256(b"the bytes read"), "o1")
    assert store.stat("dicom/y.dcm") is None
    store.put_verified("dicom/y.dcm", b"the bytes read", sha256(b"the bytes read"), "o1")
    assert store.get("dicom/y.dcm") == b"the bytes read"


def test_an_image_damaged_on_the_pacs_disk_before_its_copy_is_reported_not_silently_copied(
    orthanc_factory, tmp_path, bucket, offsite_env
):
    store = MinioServer(tmp_path)
    store.start()
    try:
        orthanc = orthanc_factory({**store.env(bucket), **offsite_env})
        http = orthanc.http()
        orthanc.wait_replicated(0)
        store.stop()
        _, files = make_study(4)
        for d in files:
            http.upload(d)
        victim = http.get_json("/instances")[0]
        uuid = http.get_json(f"/instances/{victim}/attachments/dicom/info")["Uuid"]
        on_disk = orthanc.settings.work_dir / "storage" / uuid[0:2] / uuid[2:4] / uuid
        data = bytearray(on_disk.read_bytes())
        data[-1] ^= 0xFF  # one bit pattern flipped by the disk, after Orthanc recorded its checksum
        on_disk.write_bytes(bytes(data))
        store.start()
        wait_until(lambda: orthanc.status()["quarantined"] == 1, 60, "the damaged image to be set aside")
        st = orthanc.wait_replicated(3, timeout=60)
        assert st["failed"] == 0
        assert "damage on the PACS disk" in http.get_json("/backup/quarantine")[0]["reason"]
    finally:
        store.stop()
