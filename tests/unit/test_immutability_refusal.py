"""The replicator refuses to copy into a bucket that cannot lock copies, says why, and starts by itself once
the bucket is fixed (in-memory fakes; tests/integration/test_s3_matrix.py does it on real S3 servers)."""

from __future__ import annotations

import pytest

from pacs_backup.clients.bucket import BucketNotImmutable, BucketReport
from pacs_backup.contracts.retry import RetryPolicy
from pacs_backup.replication import replicator as replicator_module
from pacs_backup.replication.outbox import Outbox
from pacs_backup.replication.replicator import Replicator, ReplicatorOptions
from tests.unit.test_replicator import FakeOrthanc, FakeStore, wait_for

SENTENCE = "Backup copies are not being made: bucket b has no object lock but BACKUP_LOCK_MODE=GOVERNANCE asks..."


class UnlockedStore(FakeStore):
    """A store whose bucket has no object lock until ``fixed`` is set."""

    fixed = False

    def ensure_bucket(self):
        if not self.fixed:
            raise BucketNotImmutable(SENTENCE)
        return BucketReport(False, True, True, ())


def test_immutability_refused_bucket_gets_nothing_until_fixed(tmp_path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(replicator_module, "REFUSED_RECHECK_S", 0.1)
    orthanc, store = FakeOrthanc(5), UnlockedStore()
    options = ReplicatorOptions(workers=2, retry=RetryPolicy(0.05, 0.2), store_probe_cap_s=0.2)
    r = Replicator(Outbox(tmp_path / "outbox.sqlite"), orthanc, store, options)
    r.start()
    try:
        _refused_then_fixed(r, orthanc, store)
    finally:
        r.stop(2)


def _refused_then_fixed(r: Replicator, orthanc: FakeOrthanc, store: UnlockedStore) -> None:
    for oid in orthanc.files:
        r.on_new_instance(oid)
    wait_for(lambda: r.status()["store"].get("refused") == SENTENCE)
    status = r.status()
    assert status["last_error"] is not None and status["last_error"]["message"] == SENTENCE
    assert store.puts == 0 and status["replicated"] == 0 and not status["store"]["reachable"]

    store.fixed = True
    wait_for(lambda: r.status()["replicated"] == 5)
    assert "refused" not in r.status()["store"] and store.puts == 5
