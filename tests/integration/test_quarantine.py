"""Instances set aside instead of copied are visible to a technician and can be tried again."""

from __future__ import annotations

from tests.support.common import wait_until
from tests.support.dicomgen import make_study
from tests.support.pacs import orthanc_env, script
from tests.support.servers import MinioServer


def test_set_aside_instances_are_listed_and_requeued(orthanc_factory, bucket, tmp_path):
    store = MinioServer(tmp_path)
    store.start()
    try:
        o = orthanc_factory(store.env(bucket))
        o.wait_replicated(0)
        store.stop()  # copies wait while the store is down
        _, files = make_study(2, rows=32, cols=32)
        ids = [o.http().upload(f)["ID"] for f in files]
        o.http().delete(f"/instances/{ids[0]}")  # gone before it could be copied
        store.start()
        wait_until(lambda: (s := o.status())["replicated"] == 1 and s["quarantined"] == 1, 60, "1 copied, 1 aside")
        listed = o.http().get_json("/backup/quarantine")
        assert [r["orthanc_id"] for r in listed] == [ids[0]] and "Deleted" in listed[0]["reason"]
        done = script("quarantine", env=orthanc_env(o))
        assert done.returncode == 1 and ids[0] in done.stdout and "--requeue" in done.stdout, done.stdout
        done = script("quarantine", "--requeue", env=orthanc_env(o))
        assert done.returncode == 0 and "1 set-aside" in done.stdout, done.stdout + done.stderr
    finally:
        store.stop()
