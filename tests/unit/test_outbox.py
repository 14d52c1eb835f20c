from pacs_backup.replication.outbox import Outbox


def test_outbox_enqueue_is_idempotent_while_pending(tmp_path):
    ob = Outbox(tmp_path / "o.sqlite")
    ob.enqueue([("a", 10.0), ("b", 11.0)])
    ob.enqueue([("a", 12.0)])
    st = ob.stats(20.0)
    assert st.depth == 2 and st.oldest_pending_age_s == 10.0


def test_outbox_due_respects_time_and_exclusions(tmp_path):
    ob = Outbox(tmp_path / "o.sqlite")
    ob.enqueue([("a", 1.0), ("b", 2.0), ("c", 3.0)])
    assert ob.due(2.5, 10, set()) == ["a", "b"]
    assert ob.due(5.0, 1, {"a"}) == ["b"]


def test_outbox_done_reports_lag_and_survives_reopen(tmp_path):
    ob = Outbox(tmp_path / "o.sqlite")
    ob.enqueue([("a", 100.0)])
    assert ob.mark_done("a", "dicom/k.dcm", "ab" * 32, 5, 100.75) == 0.75
    ob.close()
    ob2 = Outbox(tmp_path / "o.sqlite")
    st = ob2.stats(200.0)
    assert st.replicated == 1 and st.depth == 0
    assert ob2.entry("a")["object_key"] == "dicom/k.dcm"


def test_outbox_failure_keeps_entry_pending_with_reason(tmp_path):
    ob = Outbox(tmp_path / "o.sqlite")
    ob.enqueue([("a", 1.0)])
    assert ob.mark_failed("a", "store refused", retry_at=50.0) == 1
    assert ob.mark_failed("a", "store down", retry_at=2.0, count=False) == 1
    st = ob.stats(10.0)
    assert st.depth == 1 and st.failing == 1
    assert ob.entry("a")["last_error"] == "store down"
    assert ob.due(3.0, 5, set()) == ["a"]


def test_outbox_quarantine_is_kept_and_can_be_requeued(tmp_path):
    ob = Outbox(tmp_path / "o.sqlite")
    ob.enqueue([("a", 1.0), ("b", 1.0)])
    ob.quarantine("a", "deleted before copy")
    assert ob.due(9.0, 5, set()) == ["b"]
    assert ob.quarantined() == [("a", "deleted before copy")]
    assert ob.requeue_quarantined(10.0) == 1
    assert set(ob.due(10.0, 5, set())) == {"a", "b"}


def test_outbox_stored_again_after_done_is_pending_again(tmp_path):
    ob = Outbox(tmp_path / "o.sqlite")
    ob.enqueue([("a", 1.0)])
    ob.mark_done("a", "k", "h", 1, 2.0)
    ob.enqueue([("a", 3.0)])
    assert ob.stats(4.0).depth == 1


def test_outbox_reconcile_only_adds_unknown_ids(tmp_path):
    ob = Outbox(tmp_path / "o.sqlite")
    ob.enqueue([("a", 1.0)])
    ob.mark_done("a", "k", "h", 1, 2.0)
    assert ob.enqueue_missing(["a", "b", "c"], 5.0) == 2
    assert ob.enqueue_missing(["a", "b", "c"], 6.0) == 0
    assert ob.stats(7.0).depth == 2
