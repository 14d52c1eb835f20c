"""Versioned schema: a queue/catalog file made by the first release opens with this one, data kept."""

from __future__ import annotations

import sqlite3
import stat

import pytest

from pacs_backup.replication.outbox import Outbox
from pacs_backup.state.catalog import Catalog, StudyQuery
from pacs_backup.state.history import RunLog
from pacs_backup.state.schema import SCHEMA_VERSION, SchemaTooNew, open_plugin_db

# Exactly what release 0.1 created (CREATE TABLE IF NOT EXISTS in three modules, no user_version).
RELEASE_0_1 = """
CREATE TABLE IF NOT EXISTS outbox (orthanc_id TEXT PRIMARY KEY, state TEXT NOT NULL CHECK (state IN
  ('pending', 'done', 'quarantined')), enqueued_at REAL NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at REAL NOT NULL, last_error TEXT, object_key TEXT, sha256 TEXT, size INTEGER, done_at REAL);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_attempt_at);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS catalog (orthanc_id TEXT PRIMARY KEY, study_uid TEXT NOT NULL, series_uid TEXT NOT NULL,
  sop_uid TEXT NOT NULL, patient_id TEXT NOT NULL, patient_name TEXT NOT NULL, accession TEXT NOT NULL,
  study_date TEXT NOT NULL, description TEXT NOT NULL, modality TEXT NOT NULL, path TEXT NOT NULL,
  added_at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS catalog_study ON catalog (study_uid);
CREATE TABLE IF NOT EXISTS runs (id INTEGER PRIMARY KEY AUTOINCREMENT, target TEXT NOT NULL, kind TEXT NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('queued', 'running', 'ok', 'failed')), queued_at REAL NOT NULL,
  started_at REAL, finished_at REAL, summary TEXT, error TEXT);
CREATE INDEX IF NOT EXISTS runs_target_kind ON runs (target, kind, id);
"""


def old_volume(path):
    db = sqlite3.connect(path)
    db.executescript(RELEASE_0_1)
    db.execute("INSERT INTO outbox VALUES ('o1', 'done', 1, 0, 1, NULL, 'dicom/1.2/1.3/1.4.dcm', 'ab' , 10, 2)")
    db.execute("INSERT INTO outbox VALUES ('o2', 'pending', 1, 3, 1, 'store down', NULL, NULL, NULL, NULL)")
    db.execute(
        "INSERT INTO catalog VALUES ('o1', '1.2', '1.3', '1.4', 'PID-9', 'Müller^Rex', 'ACC-5', '20261101', "
        "'Chest', 'DX', 'ab/cd/abcd-uuid', 5)"
    )
    db.execute(
        "INSERT INTO runs (target, kind, state, queued_at, finished_at, summary) "
        "VALUES ('offsite', 'snapshot', 'ok', 1, 2, '{}')"
    )
    db.commit()
    db.close()


def test_release_0_1_volume_opens_and_keeps_everything(tmp_path):
    path = tmp_path / "pacs-backup-outbox.sqlite"
    old_volume(path)
    outbox, catalog, runs = Outbox(path), Catalog(path), RunLog(path)
    stats = outbox.stats(10)
    assert (stats.replicated, stats.depth) == (1, 1)
    assert runs.last("offsite", "snapshot") is not None
    found = catalog.studies(StudyQuery(text="rex mueller"))
    assert [s["study_uid"] for s in found] == ["1.2"] and found[0]["instances"] == 1
    entry = catalog.study("1.2")[0]
    assert (entry["key"], entry["sha256"], entry["size"]) == ("dicom/1.2/1.3/1.4.dcm", "ab", 10)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert not db.execute("SELECT name FROM sqlite_master WHERE name='meta'").fetchall()


def test_opening_twice_is_harmless_and_newer_files_are_refused(tmp_path):
    path = tmp_path / "q.sqlite"
    open_plugin_db(path).close()
    open_plugin_db(path).close()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    with pytest.raises(SchemaTooNew, match="newer release") as refused:
        open_plugin_db(path)
    assert str(refused.value) == (
        f"The backup database {path} was written by a newer release (version {SCHEMA_VERSION + 1}; this release "
        f"knows versions up to {SCHEMA_VERSION}): install that release or newer, or put back the file as it was "
        "before the upgrade."
    )
    assert (refused.value.version, refused.value.newest) == (SCHEMA_VERSION + 1, SCHEMA_VERSION)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1  # left as it was


def test_a_migration_that_fails_half_way_leaves_the_file_at_the_version_before_with_its_data(tmp_path):
    from pacs_backup.state.schema import MIGRATIONS, migrate

    path = tmp_path / "q.sqlite"
    old_volume(path)
    db = sqlite3.connect(path, isolation_level=None)
    migrate(db, MIGRATIONS[:6])

    def half(db: sqlite3.Connection) -> None:  # a crash after the step's first statement
        db.execute("DELETE FROM catalog")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        migrate(db, [*MIGRATIONS[:6], half])
    db.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 6
    assert db.execute("SELECT COUNT(*) FROM catalog").fetchone()[0] == 1
    db.close()
    catalog = Catalog(path)  # the next start runs the step again, this time the real one
    assert [s["study_uid"] for s in catalog.studies(StudyQuery(text="rex"))] == ["1.2"]
    assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_queue_totals_follow_every_change(tmp_path):
    path = tmp_path / "q.sqlite"
    old_volume(path)  # made before the totals existed: the migration counts what is there
    ob = Outbox(path)
    assert (ob.stats(10).replicated, ob.stats(10).depth, ob.stats(10).replicated_bytes) == (1, 1, 10)
    ob.enqueue([("new", 11.0)])
    ob.mark_done("o2", "k2", "s2", 5, 12.0)
    ob.enqueue([("o1", 13.0)])  # stored again: copied again
    ob.quarantine("new", "gone")
    st = ob.stats(20)
    assert (st.replicated, st.depth, st.quarantined, st.replicated_bytes) == (1, 1, 1, 5)
    db = sqlite3.connect(path)
    counted = dict(db.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state").fetchall())
    assert counted == {"done": 1, "pending": 1, "quarantined": 1}


def test_search_texts_of_a_version_6_file_are_made_anew(tmp_path):
    """A catalog from before version 7 split study UIDs into words: "P-200" found any study whose UID
    held the digits 200. Opening it with this release rebuilds the search texts."""
    from pacs_backup.state.schema import MIGRATIONS, migrate

    path = tmp_path / "pacs-backup-outbox.sqlite"
    db = sqlite3.connect(path, isolation_level=None)
    migrate(db, MIGRATIONS[:6])
    uid = "1.2.826.0.1.3680043.8.498.82574642003649441479174181574344452028"
    db.execute(
        "INSERT INTO catalog_studies (study_uid, patient_id, patient_name, owner, species, breed, accession, "
        "study_date, description, modalities, series, instances, search_text, updated_at) VALUES "
        "(?, 'P-300', 'Tama', '', '', '', '', '20251231', '', 'DX', 1, 1, ?, 1)",
        (uid, " tama p 300 1 2 826 0 3680043 8 498 82574642003649441479174181574344452028 "),
    )
    db.close()
    catalog = Catalog(path)
    assert catalog.studies(StudyQuery(text="P-200")) == []
    assert [s["study_uid"] for s in catalog.studies(StudyQuery(text="P-300"))] == [uid]
    assert [s["study_uid"] for s in catalog.studies(StudyQuery(text=uid))] == [uid]


def test_the_plugin_with_a_newer_database_does_not_run_and_its_status_says_why(tmp_path):
    from pacs_backup.api.service import OUTBOX_FILENAME, BackupService

    db = sqlite3.connect(tmp_path / OUTBOX_FILENAME)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 2}")
    db.commit()
    env = {"MINIO_ENDPOINT": "127.0.0.1:9000", "MINIO_ACCESS_KEY": "backup", "MINIO_SECRET_KEY": "s3cr3t-value"}
    svc = BackupService(lambda uri: b"{}", tmp_path, env)
    status = svc.status()
    assert status["state"] == "error" and not status["enabled"] and svc.replicator is None
    assert status.get("config_error", "").startswith(f"The backup database {tmp_path / OUTBOX_FILENAME} was written")
    assert f"version {SCHEMA_VERSION + 2}; this release knows versions up to {SCHEMA_VERSION}" in status["config_error"]
