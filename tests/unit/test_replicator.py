"""Replicator behaviour with in-memory fakes of Orthanc and the store (integration tests use real ones)."""

import hashlib
import threading
import time
from types import SimpleNamespace

import pytest

from pacs_backup.clients.bucket import BucketReport
from pacs_backup.clients.object_store import StoredObject
from pacs_backup.clients.orthanc_source import InstanceUids
from pacs_backup.clients.store_errors import ChecksumMismatch, KeyExists
from pacs_backup.contracts.errors import SourceGone, StoreError, StoreUnavailable
from pacs_backup.contracts.keys import instance_key
from pacs_backup.contracts.retry import RetryPolicy
from pacs_backup.replication.outbox import Outbox
from pacs_backup.replication.replicator import Replicator, ReplicatorOptions


class FakeOrthanc:
    def __init__(self, n=0):
        self.files = {f"id{i}": f"dicom-bytes-{i}".encode() for i in range(n)}

    def uids(self, oid):
        if oid not in self.files:
            raise SourceGone("gone")
        return InstanceUids("1.2", "1.2.3", "1.2.3." + oid[2:])

    def read_file(self, oid):
        if oid not in self.files:
            raise SourceGone("gone")
        return self.files[oid]

    def read_stored(self, oid):
        from pacs_backup.clients.orthanc_source import StoredFile

        return StoredFile(self.read_file(oid), "", None)

    def list_instances(self, since, limit):
        return sorted(self.files)[since : since + limit]

    def last_change(self):
        return 0

    def changes(self, since, limit):
        from pacs_backup.clients.orthanc_source import ChangesPage

        return ChangesPage([], [], None, since, True)


class FakeStore:
    def __init__(self):
        self.objects = {}
        self.owners = {}
        self.puts = 0
        self.down = False
        self.refuse = set()
        self.lock = threading.Lock()
        self.settings = SimpleNamespace(endpoint="fake:9000")
        self.bucket = "b"

    calls_while_down = 0

    def _check(self):
        if self.down:
            self.calls_while_down += 1
            raise StoreUnavailable("store down")

    def ensure_bucket(self):
        self._check()
        return BucketReport(False, True, True, ())

    def ping(self):
        self._check()

    conditional = False  # whether it honours "only if absent" uploads (S3 conditional writes)
    stats = 0
    sent_for_nothing = 0  # uploads refused because the key existed (their bytes were sent in vain)
    versions = 0  # object versions written (a second write of a key adds one, as in a versioned bucket)

    def check_conditional_writes(self):
        return self.conditional

    def stat(self, key):
        self._check()
        self.stats += 1
        obj = self.objects.get(key)
        return None if obj is None else StoredObject(key, len(obj), hashlib.sha256(obj).hexdigest(), self.owners[key])

    def put_verified(self, key, data, sha256, orthanc_id, md5=None, if_absent=False, *, retain_until=None):
        self._check()
        if key in self.refuse:
            raise StoreError("refused")
        with self.lock:
            if md5 is not None and md5 != hashlib.md5(data, usedforsecurity=False).hexdigest():
                self.objects[key], self.owners[key] = data, orthanc_id  # written, then found different
                raise ChecksumMismatch(f"{key}: checksum mismatch")
            if if_absent and self.conditional and key in self.objects:
                self.sent_for_nothing += 1
                raise KeyExists(f"{key} exists")
            self.puts += 1
            self.versions += 1
            self.objects[key] = data
            self.owners[key] = orthanc_id


def wait_for(cond, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


@pytest.fixture
def make(tmp_path):
    made = []

    def _make(orthanc, store, **opts):
        r = Replicator(
            Outbox(tmp_path / "outbox.sqlite"),
            orthanc,
            store,
            ReplicatorOptions(workers=3, retry=RetryPolicy(0.05, 0.2), store_probe_cap_s=0.2, **opts),
        )
        made.append(r)
        r.start()
        return r

    yield _make
    for r in made:
        r.stop(2)


def test_replicator_copies_every_new_instance(make):
    orthanc, store = FakeOrthanc(50), FakeStore()
    r = make(orthanc, store)
    for oid in orthanc.files:
        r.on_new_instance(oid)
    # Reconciliation at start may find them first; a later callback then re-checks them (no re-upload).
    wait_for(lambda: r.status()["replicated"] == 50 and r.status()["outbox_depth"] == 0)
    assert store.puts == 50
    assert sorted(store.objects.values()) == sorted(orthanc.files.values())


def test_replicator_reconciles_instances_stored_while_it_was_down(make):
    orthanc, store = FakeOrthanc(30), FakeStore()
    r = make(orthanc, store)  # no callbacks at all: everything must come from reconciliation
    wait_for(lambda: r.status()["replicated"] == 30)
    assert r.status()["last_reconcile"]["queued"] == 30


def test_replicator_store_outage_loses_nothing_and_recovers(make):
    orthanc, store = FakeOrthanc(0), FakeStore()
    r = make(orthanc, store)
    wait_for(lambda: r.status()["store"]["reachable"])
    store.down = True
    for i in range(40):
        orthanc.files[f"id{i}"] = f"x{i}".encode()
        r.on_new_instance(f"id{i}")
    wait_for(lambda: not r.status()["store"]["reachable"])
    tried = store.calls_while_down
    wait_for(lambda: store.calls_while_down >= tried + 3)  # it kept trying the store, and copied nothing
    st = r.status()
    assert st["replicated"] == 0 and st["outbox_depth"] == 40
    assert "store down" in st["last_error"]["message"]
    store.down = False
    wait_for(lambda: r.status()["replicated"] == 40)
    assert r.outbox.stats(time.time()).failing == 0  # an outage is not the items' fault


def test_replicator_quarantines_instance_deleted_before_copy(make):
    orthanc, store = FakeOrthanc(3), FakeStore()
    r = make(orthanc, store, reconcile_every_s=0)
    wait_for(lambda: r.status()["replicated"] == 3)
    r.on_new_instance("id-deleted")
    wait_for(lambda: r.status()["quarantined"] == 1)
    assert r.outbox.quarantined()[0][0] == "id-deleted"


def test_replicator_retries_refused_upload_without_blocking_others(make):
    orthanc, store = FakeOrthanc(10), FakeStore()
    store.refuse.add("dicom/1.2/1.2.3/1.2.3.0.dcm")
    r = make(orthanc, store)
    wait_for(lambda: r.status()["replicated"] == 9)
    wait_for(lambda: r.outbox.entry("id0")["attempts"] >= 2)
    st = r.status()
    assert st["failed"] == 1 and st["outbox_depth"] == 1
    store.refuse.clear()
    wait_for(lambda: r.status()["replicated"] == 10)


def test_replicator_does_not_upload_identical_object_twice(make):
    orthanc, store = FakeOrthanc(5), FakeStore()
    r = make(orthanc, store)
    wait_for(lambda: r.status()["replicated"] == 5)
    puts = store.puts
    for oid in orthanc.files:  # stored again (e.g. re-sent after deletion): pending again, but no upload
        r.outbox.enqueue([(oid, time.time())])
    with r._work:
        r._work.notify_all()
    wait_for(lambda: r.status()["outbox_depth"] == 0 and r.status()["replicated"] == 5)
    assert store.puts == puts


class ChangeLogOrthanc(FakeOrthanc):
    """FakeOrthanc with Orthanc's change log, counting how often the whole listing is read."""

    def __init__(self, n=0):
        super().__init__(n)
        self.log = [("NewInstance", oid) for oid in sorted(self.files)]
        self.trimmed_before = 0
        self.listings = 0

    def add(self, oid):
        self.files[oid] = f"bytes-{oid}".encode()
        self.log.append(("NewInstance", oid))

    def delete(self, oid):
        del self.files[oid]
        self.log.append(("Deleted", oid))

    def list_instances(self, since, limit):
        if since == 0:
            self.listings += 1
        return super().list_instances(since, limit)

    def last_change(self):
        return len(self.log)

    def changes(self, since, limit):
        from pacs_backup.clients.orthanc_source import ChangesPage

        after = max(since, self.trimmed_before)
        rows = [(seq, kind, oid) for seq, (kind, oid) in enumerate(self.log, 1) if seq > after]
        page = rows[:limit]
        return ChangesPage(
            [oid for _, kind, oid in page if kind == "NewInstance"],
            [oid for _, kind, oid in page if kind == "Deleted"],
            page[0][0] if page else None,
            page[-1][0] if page else max(since, len(self.log)) if since <= len(self.log) else len(self.log),
            len(rows) <= limit,
        )


def test_restart_follows_the_change_log_instead_of_listing_the_archive(tmp_path):
    """Issue 14: a restart with nothing new must not read Orthanc's whole listing (1M instances)."""
    orthanc, store = ChangeLogOrthanc(25), FakeStore()
    opts = ReplicatorOptions(workers=2, retry=RetryPolicy(base_s=0.01, cap_s=0.05), reconcile_page=10)

    def start():
        r = Replicator(Outbox(tmp_path / "outbox.sqlite"), orthanc, store, opts)
        r.start()
        return r

    r = start()  # first start: no cursor yet, so the full listing, once
    wait_for(lambda: r.status()["replicated"] == 25)
    assert orthanc.listings == 1 and r.status()["last_reconcile"]["mode"] == "full"
    r.stop()

    # While the plugin was down (a lost callback), two instances arrived and one more came and went.
    orthanc.add("idA")
    orthanc.add("idB")
    orthanc.add("idC")
    orthanc.delete("idC")
    r = start()
    wait_for(lambda: r.status()["replicated"] == 27)
    rec = r.status()["last_reconcile"]
    assert rec["mode"] == "changes" and rec["queued"] == 2 and orthanc.listings == 1
    assert r.status()["quarantined"] == 0  # the one deleted meanwhile is not chased
    r.stop()

    # A trimmed or reset change log cannot prove nothing was missed: the whole listing is compared again.
    orthanc.add("idD")
    orthanc.trimmed_before = len(orthanc.log) + 5
    orthanc.log += [("StableStudy", "x")] * 10
    r = start()
    wait_for(lambda: r.status()["replicated"] == 28)
    assert r.status()["last_reconcile"]["mode"] == "full" and orthanc.listings == 2
    r.stop()


def test_where_the_store_honours_conditional_uploads_new_copies_skip_the_look_up(make):
    orthanc, store = FakeOrthanc(30), FakeStore()
    store.conditional = True
    r = make(orthanc, store)
    wait_for(lambda: r.status()["replicated"] == 30 and r.status()["outbox_depth"] == 0)
    assert store.versions == 30 and store.stats == 0
    assert sorted(store.objects.values()) == sorted(orthanc.files.values())


def test_same_uids_from_another_patient_keep_both_copies_with_conditional_uploads(make):
    orthanc, store = FakeOrthanc(0), FakeStore()
    store.conditional = True
    orthanc.files = {"idA": b"patient A's image", "idB": b"patient B's image"}
    orthanc.uids = lambda oid: InstanceUids("1.2", "1.2.3", "1.2.3.4")  # the same UIDs for both
    r = make(orthanc, store)
    wait_for(lambda: r.status()["replicated"] == 2)
    assert sorted(store.objects.values()) == [b"patient A's image", b"patient B's image"]
    assert store.versions == 2  # neither copy was overwritten by the other


def test_a_clinic_restored_into_an_empty_pacs_is_not_uploaded_again(make):
    """After a disaster recovery every copy already exists: look up first, write no new versions."""
    orthanc, store = FakeOrthanc(200), FakeStore()
    store.conditional = True
    for oid, data in orthanc.files.items():
        key = instance_key("1.2", "1.2.3", "1.2.3." + oid[2:])
        store.objects[key], store.owners[key] = data, oid
    r = make(orthanc, store)
    wait_for(lambda: r.status()["replicated"] == 200 and r.status()["outbox_depth"] == 0)
    assert store.versions == 0
    assert store.sent_for_nothing <= 20  # it noticed after a few and looked up the rest first


@pytest.mark.parametrize("conditional", [True, False])
def test_an_image_damaged_on_the_pacs_disk_is_set_aside_with_a_sentence_not_marked_copied(make, conditional):
    from pacs_backup.clients.orthanc_source import StoredFile

    orthanc, store = FakeOrthanc(3), FakeStore()
    store.conditional = conditional
    original = orthanc.files["id1"]
    damaged = original[:-1] + b"X"

    def read_stored(oid):  # Orthanc recorded the MD5 of what it received; the disk now holds other bytes
        data = damaged if oid == "id1" else orthanc.files[oid]
        return StoredFile(data, "", hashlib.md5(original if oid == "id1" else data, usedforsecurity=False).hexdigest())

    orthanc.read_stored = read_stored
    r = make(orthanc, store)
    wait_for(lambda: r.status()["replicated"] == 2 and r.status()["quarantined"] == 1)
    entry = r.outbox.entry("id1")
    assert entry["state"] == "quarantined" and "damage on the PACS disk" in entry["last_error"]
