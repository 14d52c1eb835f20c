"""The plugin's database file and its versions: one ordered list of migrations, ``PRAGMA user_version``.

The outbox, the catalog and the run history live in one SQLite file on the Orthanc data volume, for
years. Each release that changes a table appends a migration here; opening the file runs the ones it
has not seen yet, in one transaction each (:mod:`pacs_backup.state.migrate`, as for the dashboard's
files), so a volume made by any earlier release opens with this one, and one from a newer release is
refused with a sentence.
Version 1 is the first release's schema exactly as it created it (``CREATE TABLE IF NOT EXISTS``), so
files made before versions were recorded (user_version 0) pass through it unchanged.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path

from .migrate import SchemaTooNew as SchemaTooNew  # raised by migrate: a file from a newer release
from .migrate import Step
from .migrate import migrate as run_steps
from .search import study_search_text
from .sqlite import open_db

Migration = Step

_V1 = """
CREATE TABLE IF NOT EXISTS outbox (
    orthanc_id      TEXT PRIMARY KEY,
    state           TEXT NOT NULL CHECK (state IN ('pending', 'done', 'quarantined')),
    enqueued_at     REAL NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at REAL NOT NULL,
    last_error      TEXT,
    object_key      TEXT,
    sha256          TEXT,
    size            INTEGER,
    done_at         REAL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_attempt_at);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS catalog (
    orthanc_id   TEXT PRIMARY KEY,
    study_uid    TEXT NOT NULL,
    series_uid   TEXT NOT NULL,
    sop_uid      TEXT NOT NULL,
    patient_id   TEXT NOT NULL,
    patient_name TEXT NOT NULL,
    accession    TEXT NOT NULL,
    study_date   TEXT NOT NULL,
    description  TEXT NOT NULL,
    modality     TEXT NOT NULL,
    path         TEXT NOT NULL,
    added_at     REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS catalog_study ON catalog (study_uid);
CREATE TABLE IF NOT EXISTS runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    target      TEXT NOT NULL,
    kind        TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('queued', 'running', 'ok', 'failed')),
    queued_at   REAL NOT NULL,
    started_at  REAL,
    finished_at REAL,
    summary     TEXT,
    error       TEXT
);
CREATE INDEX IF NOT EXISTS runs_target_kind ON runs (target, kind, id);
"""


def _v1(db: sqlite3.Connection) -> None:
    for statement in _V1.split(";"):
        if statement.strip():
            db.execute(statement)


def _v2(db: sqlite3.Connection) -> None:
    """Catalog written when a copy is made (not from Orthanc later): it keeps its own key, sha256 and
    size, the owner/species/breed that veterinary modalities send, and a normalised search text; one
    row per study for search; which studies each snapshot holds. The unused ``meta`` table goes."""
    for column, kind in (
        ("owner", "TEXT NOT NULL DEFAULT ''"),
        ("species", "TEXT NOT NULL DEFAULT ''"),
        ("breed", "TEXT NOT NULL DEFAULT ''"),
        ("object_key", "TEXT NOT NULL DEFAULT ''"),
        ("sha256", "TEXT NOT NULL DEFAULT ''"),
        ("size", "INTEGER NOT NULL DEFAULT 0"),
    ):
        db.execute(f"ALTER TABLE catalog ADD COLUMN {column} {kind}")
    db.execute(
        "UPDATE catalog SET object_key = o.object_key, sha256 = o.sha256, size = o.size "
        "FROM outbox o WHERE o.orthanc_id = catalog.orthanc_id AND o.state = 'done'"
    )
    db.execute("DROP TABLE IF EXISTS meta")
    db.execute("""CREATE TABLE catalog_studies (
        study_uid    TEXT PRIMARY KEY,
        patient_id   TEXT NOT NULL,
        patient_name TEXT NOT NULL,
        owner        TEXT NOT NULL,
        species      TEXT NOT NULL,
        breed        TEXT NOT NULL,
        accession    TEXT NOT NULL,
        study_date   TEXT NOT NULL,
        description  TEXT NOT NULL,
        modalities   TEXT NOT NULL,
        series       INTEGER NOT NULL,
        instances    INTEGER NOT NULL,
        search_text  TEXT NOT NULL,
        updated_at   REAL NOT NULL)""")
    db.execute("CREATE INDEX catalog_studies_date ON catalog_studies (study_date, updated_at)")
    db.execute("CREATE INDEX catalog_patient ON catalog (patient_id)")
    db.execute("""CREATE TABLE snapshot_studies (
        target      TEXT NOT NULL,
        snapshot_id TEXT NOT NULL,
        taken_at    REAL NOT NULL,
        study_uid   TEXT NOT NULL,
        instances   INTEGER NOT NULL,
        PRIMARY KEY (target, snapshot_id, study_uid))""")
    db.execute("CREATE INDEX snapshot_studies_study ON snapshot_studies (study_uid, taken_at)")
    refresh_all_studies(db)


def refresh_all_studies(db: sqlite3.Connection) -> None:
    """Rebuild ``catalog_studies`` from the instance rows (a migration, or a repair)."""
    db.execute("DELETE FROM catalog_studies")
    for (study_uid,) in db.execute("SELECT DISTINCT study_uid FROM catalog").fetchall():
        refresh_study(db, study_uid, 0.0)


def refresh_study(db: sqlite3.Connection, study_uid: str, now: float) -> None:
    """Recompute one study's search row from its instance rows (inside the caller's transaction)."""
    row = db.execute(
        "SELECT MAX(patient_id), MAX(patient_name), MAX(owner), MAX(species), MAX(breed), MAX(accession), "
        "MAX(study_date), MAX(description), GROUP_CONCAT(DISTINCT modality), COUNT(DISTINCT series_uid), "
        "COUNT(*) FROM catalog WHERE study_uid = ?",
        (study_uid,),
    ).fetchone()
    if row is None or not row[10]:
        db.execute("DELETE FROM catalog_studies WHERE study_uid = ?", (study_uid,))
        return
    pid, name, owner, species, breed, accession, date, desc, modalities, series, instances = row
    text = study_search_text(name, owner, species, breed, pid, accession, desc)
    db.execute(
        "INSERT INTO catalog_studies (study_uid, patient_id, patient_name, owner, species, breed, accession, "
        "study_date, description, modalities, series, instances, search_text, updated_at) "
        "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (study_uid) DO UPDATE SET "
        "patient_id=excluded.patient_id, patient_name=excluded.patient_name, owner=excluded.owner, "
        "species=excluded.species, breed=excluded.breed, accession=excluded.accession, "
        "study_date=excluded.study_date, description=excluded.description, modalities=excluded.modalities, "
        "series=excluded.series, instances=excluded.instances, search_text=excluded.search_text, "
        "updated_at=MAX(catalog_studies.updated_at, excluded.updated_at)",
        (
            study_uid,
            pid,
            name,
            owner,
            species,
            breed,
            accession,
            date,
            desc,
            modalities or "",
            series,
            instances,
            text,
            now,
        ),
    )


_DETAILS = ("patient_id", "patient_name", "owner", "species", "breed", "accession", "study_date", "description")


def add_to_study(
    db: sqlite3.Connection, entry: Mapping[str, object], now: float, *, replaced_same_study: bool = False
) -> None:
    """Count one newly catalogued instance into its study's search row (inside the caller's transaction).

    Gives the row :func:`refresh_study` would, without reading the study's other instance rows again:
    a CT of 2,000 images would otherwise cost 2,000 x 2,000 row reads while it is being copied.
    """
    study_uid = str(entry["study_uid"])
    row = db.execute(
        f"SELECT {', '.join(_DETAILS)}, modalities, series, instances FROM catalog_studies WHERE study_uid = ?",  # noqa: S608 - constant columns
        (study_uid,),
    ).fetchone()
    if row is None or replaced_same_study:
        refresh_study(db, study_uid, now)
        return
    details = [max(str(old), str(entry[name])) for old, name in zip(row[:8], _DETAILS, strict=True)]
    modalities = row[8].split(",") if row[8] else []
    if entry["modality"] and entry["modality"] not in modalities:
        modalities.append(str(entry["modality"]))
    other_in_series = db.execute(
        "SELECT 1 FROM catalog WHERE study_uid = ? AND series_uid = ? AND orthanc_id <> ? LIMIT 1",
        (study_uid, entry["series_uid"], entry["orthanc_id"]),
    ).fetchone()
    pid, name, owner, species, breed, accession, _, desc = details
    db.execute(
        f"UPDATE catalog_studies SET {', '.join(f'{n} = ?' for n in _DETAILS)}, modalities = ?, series = ?, "  # noqa: S608 - constant columns
        "instances = ?, search_text = ?, updated_at = MAX(updated_at, ?) WHERE study_uid = ?",
        (
            *details,
            ",".join(modalities),
            row[9] + (0 if other_in_series else 1),
            row[10] + 1,
            study_search_text(name, owner, species, breed, pid, accession, desc),
            now,
            study_uid,
        ),
    )


def _v3(db: sqlite3.Connection) -> None:
    """External drives prepared for each drive target, recognised by their repository id."""
    db.execute("""CREATE TABLE drives (
        target           TEXT NOT NULL,
        repository_id    TEXT NOT NULL,
        label            TEXT NOT NULL,
        prepared_at      REAL NOT NULL,
        last_seen_at     REAL,
        last_snapshot_at REAL,
        PRIMARY KEY (target, repository_id))""")


def _v4(db: sqlite3.Connection) -> None:
    """The cloud PACS queue: every copied instance is also sent there and verified (a durable queue)."""
    db.execute("""CREATE TABLE cloud_queue (
        orthanc_id      TEXT PRIMARY KEY,
        study_uid       TEXT NOT NULL,
        sop_uid         TEXT NOT NULL,
        object_key      TEXT NOT NULL,
        sha256          TEXT NOT NULL,
        state           TEXT NOT NULL CHECK (state IN ('pending', 'verified')),
        enqueued_at     REAL NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        last_error      TEXT,
        verified_at     REAL)""")
    db.execute("CREATE INDEX cloud_queue_due ON cloud_queue (state, next_attempt_at)")


def _v5(db: sqlite3.Connection) -> None:
    """Running totals of the queue by state, kept by triggers in the same transactions as the rows, so
    the status (asked every few seconds) does not count a million rows each time."""
    db.execute("CREATE TABLE outbox_totals (state TEXT PRIMARY KEY, n INTEGER NOT NULL, bytes INTEGER NOT NULL)")
    db.execute(
        "INSERT INTO outbox_totals (state, n, bytes) SELECT s, 0, 0 FROM "
        "(SELECT 'pending' AS s UNION ALL SELECT 'done' UNION ALL SELECT 'quarantined')"
    )
    db.execute(
        "UPDATE outbox_totals SET n = (SELECT COUNT(*) FROM outbox o WHERE o.state = outbox_totals.state), "
        "bytes = (SELECT COALESCE(SUM(size), 0) FROM outbox o WHERE o.state = outbox_totals.state)"
    )
    db.execute("""CREATE TRIGGER outbox_totals_insert AFTER INSERT ON outbox BEGIN
        UPDATE outbox_totals SET n = n + 1, bytes = bytes + COALESCE(NEW.size, 0) WHERE state = NEW.state; END""")
    db.execute("""CREATE TRIGGER outbox_totals_update AFTER UPDATE OF state, size ON outbox BEGIN
        UPDATE outbox_totals SET n = n - 1, bytes = bytes - COALESCE(OLD.size, 0) WHERE state = OLD.state;
        UPDATE outbox_totals SET n = n + 1, bytes = bytes + COALESCE(NEW.size, 0) WHERE state = NEW.state; END""")
    db.execute("""CREATE TRIGGER outbox_totals_delete AFTER DELETE ON outbox BEGIN
        UPDATE outbox_totals SET n = n - 1, bytes = bytes - COALESCE(OLD.size, 0) WHERE state = OLD.state; END""")


def _v6(db: sqlite3.Connection) -> None:
    """Small values the engine keeps across restarts: the cursor in Orthanc's change log (so a restart
    reads the changes since, not the whole archive) and the like."""
    db.execute("CREATE TABLE engine_state (key TEXT PRIMARY KEY, value TEXT NOT NULL)")


def _v7(db: sqlite3.Connection) -> None:
    """Search texts made anew: a study's UID is no longer in them ("P-200" found studies whose random UID
    held the digits 200; a pasted UID is matched against the UID column), identifiers also without
    their punctuation ("p200")."""
    reindex_search_texts(db, "catalog_studies")


def _v8(db: sqlite3.Connection) -> None:
    """Studies sent to a referring clinic on request: a durable queue per clinic, each instance verified
    there the way the cloud PACS copy is."""
    db.execute("""CREATE TABLE referral_queue (
        peer            TEXT NOT NULL,
        orthanc_id      TEXT NOT NULL,
        study_uid       TEXT NOT NULL,
        sop_uid         TEXT NOT NULL,
        object_key      TEXT NOT NULL,
        sha256          TEXT NOT NULL,
        state           TEXT NOT NULL CHECK (state IN ('pending', 'verified')),
        requested_by    TEXT NOT NULL,
        enqueued_at     REAL NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        last_error      TEXT,
        verified_at     REAL,
        PRIMARY KEY (peer, orthanc_id))""")
    db.execute("CREATE INDEX referral_queue_due ON referral_queue (peer, state, next_attempt_at)")


def _v9(db: sqlite3.Connection) -> None:
    """A group of clinics: every copied instance also goes to the group store (a durable queue filled
    from the catalog, as the cloud PACS's), and the rows verified there are fed to the group service."""
    db.execute("""CREATE TABLE group_queue (
        orthanc_id      TEXT PRIMARY KEY,
        study_uid       TEXT NOT NULL,
        sop_uid         TEXT NOT NULL,
        object_key      TEXT NOT NULL,
        sha256          TEXT NOT NULL,
        state           TEXT NOT NULL CHECK (state IN ('pending', 'verified')),
        enqueued_at     REAL NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        last_error      TEXT,
        verified_at     REAL)""")
    db.execute("CREATE INDEX group_queue_due ON group_queue (state, next_attempt_at)")
    db.execute("""CREATE TABLE group_feed (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        entry           TEXT NOT NULL,
        queued_at       REAL NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        next_attempt_at REAL NOT NULL,
        last_error      TEXT)""")


def reindex_search_texts(db: sqlite3.Connection, table: str) -> None:
    """Recompute every study's search text in ``table`` (the catalog's, or the dashboard's mirror)."""
    assert table in ("catalog_studies", "studies")  # noqa: S101 - our two tables, never input
    db.create_function("study_search_text", 7, study_search_text, deterministic=True)
    db.execute(
        f"UPDATE {table} SET search_text = study_search_text(patient_name, owner, species, breed, "  # noqa: S608 - our table names
        "patient_id, accession, description)"
    )


def _v10(db: sqlite3.Connection) -> None:
    """A catalog row the group service refuses on its own is held (kept, tried again a day later) instead of
    being sent again with every other row: when it was refused."""
    db.execute("ALTER TABLE group_feed ADD COLUMN refused_at REAL")


MIGRATIONS: Sequence[Migration] = (_v1, _v2, _v3, _v4, _v5, _v6, _v7, _v8, _v9, _v10)
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(db: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS) -> int:
    """Bring ``db`` to the newest version, one transaction per step. Returns the version reached.

    Raises:
        SchemaTooNew: the file is from a newer release (the sentence names it and both versions).
    """
    return run_steps(db, migrations, "The backup database")


def open_plugin_db(path: Path) -> sqlite3.Connection:
    """Open the plugin's database file at the current schema version."""
    db = open_db(path, "")
    migrate(db)
    return db
