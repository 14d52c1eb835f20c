"""The group catalog in PostgreSQL: its schema, brought up to date at start, and its connections.

Tables: ``clinics`` (id, label, the sha256 of its token, its last heartbeat and what the catalog holds of
it), ``instances`` (one row per object in the group store, with the details its study is searched by) and
``studies`` (one row per clinic and study, recomputed from its instances: what search and the pages read).

The schema is versioned as the project's SQLite files are (:mod:`pacs_backup.state.migrate`): a table
``schema_version`` says how many steps of :data:`MIGRATIONS` have run; each missing step runs in its own
transaction together with the new version, under an advisory lock so two services starting at once run it
once. A database newer than this release is refused with one sentence (:class:`SchemaTooNew`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg import pq

from pacs_backup.contracts.errors import BackupError
from pacs_backup.state.migrate import SchemaTooNew

log = logging.getLogger(__name__)

Connection = psycopg.Connection[tuple[Any, ...]]
Step = Callable[[Connection], None]
_LOCK_ID = 7_205_251  # pg_advisory_xact_lock key of the migrations ("group catalog")


class CatalogUnavailable(BackupError):
    """The group catalog's PostgreSQL cannot be reached or refused the login."""


def sql(*statements: str) -> Step:
    """A step made of SQL statements, run in order."""

    def step(conn: Connection) -> None:
        for statement in statements:
            conn.execute(statement)

    return step


_DETAILS = (
    "patient_id TEXT NOT NULL DEFAULT '', patient_name TEXT NOT NULL DEFAULT '', owner TEXT NOT NULL DEFAULT '', "
    "species TEXT NOT NULL DEFAULT '', breed TEXT NOT NULL DEFAULT '', accession TEXT NOT NULL DEFAULT '', "
    "study_date TEXT NOT NULL DEFAULT '', description TEXT NOT NULL DEFAULT ''"
)

# MIGRATIONS[n - 1] brings the catalog from version n - 1 to n. Append only; never edit a shipped one.
MIGRATIONS: tuple[Step, ...] = (
    sql(  # 1
        "CREATE EXTENSION IF NOT EXISTS pg_trgm",  # trigram indexes: words found inside the search text
        "CREATE TABLE clinics (id TEXT PRIMARY KEY, label TEXT NOT NULL DEFAULT '', token_sha256 TEXT UNIQUE, "
        "created_at TIMESTAMPTZ NOT NULL DEFAULT now(), revoked_at TIMESTAMPTZ, last_heartbeat_at TIMESTAMPTZ, "
        "last_status JSONB, studies BIGINT NOT NULL DEFAULT 0, instances BIGINT NOT NULL DEFAULT 0, "
        "size BIGINT NOT NULL DEFAULT 0, last_reconciled_at TIMESTAMPTZ, last_reconcile JSONB)",
        "CREATE TABLE instances (clinic TEXT NOT NULL REFERENCES clinics (id), study_uid TEXT NOT NULL, "
        "series_uid TEXT NOT NULL, sop_uid TEXT NOT NULL, key TEXT NOT NULL, sha256 TEXT NOT NULL DEFAULT '', "
        "size BIGINT NOT NULL DEFAULT 0, modality TEXT NOT NULL DEFAULT '', " + _DETAILS + ", "
        "copies JSONB NOT NULL DEFAULT '[]', verified_at TIMESTAMPTZ, PRIMARY KEY (clinic, sop_uid, key))",
        # a study's instances (its summary); the keys of one clinic in the listing's order (the reconcile)
        "CREATE INDEX instances_by_study ON instances (clinic, study_uid)",
        'CREATE INDEX instances_by_key ON instances (clinic, key COLLATE "C")',
        "CREATE TABLE studies (clinic TEXT NOT NULL REFERENCES clinics (id), study_uid TEXT NOT NULL, "
        + _DETAILS
        + ", display_name TEXT NOT NULL DEFAULT '', modalities TEXT NOT NULL DEFAULT '', "
        "series INTEGER NOT NULL DEFAULT 0, instances INTEGER NOT NULL DEFAULT 0, size BIGINT NOT NULL DEFAULT 0, "
        "search_text TEXT NOT NULL, copies JSONB NOT NULL DEFAULT '{}', last_verified_at TIMESTAMPTZ, "
        "updated_at TIMESTAMPTZ NOT NULL DEFAULT now(), PRIMARY KEY (clinic, study_uid))",
        # search: words anywhere in the text, a pasted UID's beginning, dates (newest first), a modality, a clinic
        "CREATE INDEX studies_text ON studies USING gin (search_text gin_trgm_ops)",
        'CREATE INDEX studies_uid ON studies (study_uid COLLATE "C" text_pattern_ops)',
        # in the order results are shown (search.py), so the newest matches are read first and no more
        "CREATE INDEX studies_by_date ON studies "
        "(study_date DESC, last_verified_at DESC NULLS LAST, clinic, study_uid)",
        "CREATE INDEX studies_by_clinic_date ON studies "
        "(clinic, study_date DESC, last_verified_at DESC NULLS LAST, study_uid)",
        "CREATE INDEX studies_modalities ON studies USING gin ((',' || modalities || ',') gin_trgm_ops)",
    ),
)
SCHEMA_VERSION = len(MIGRATIONS)


def connect(url: str) -> Connection:
    """A new connection in autocommit mode (callers open ``conn.transaction()`` blocks).

    Raises:
        CatalogUnavailable: with a sentence without the URL (it may hold the password).
    """
    try:
        # prepare_threshold=None: never a generic plan, so each search is planned for its own words
        # (a prepared LIKE $1 would be planned once for every word's frequency alike)
        return psycopg.connect(
            url, autocommit=True, connect_timeout=10, application_name="pacs-group", prepare_threshold=None
        )
    except psycopg.OperationalError:
        raise CatalogUnavailable(
            "The group catalog's PostgreSQL cannot be reached or refused the login; check GROUP_DATABASE_URL "
            "and that PostgreSQL is running."
        ) from None


def schema_version(conn: Connection) -> int:
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    if row is None:
        conn.execute("INSERT INTO schema_version VALUES (0)")
        return 0
    return int(row[0])


def migrate(conn: Connection, steps: Sequence[Step] = MIGRATIONS) -> int:
    """Run the steps the catalog has not seen, one transaction each; return ``len(steps)``.

    Raises:
        SchemaTooNew: the catalog was written by a newer release; nothing was changed.
    """
    newest = len(steps)
    while True:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_ID,))
            version = schema_version(conn)
            if version > newest:
                raise SchemaTooNew("The group catalog", str(conn.info.dbname), version, newest)
            if version == newest:
                return newest
            steps[version](conn)
            conn.execute("UPDATE schema_version SET version = %s", (version + 1,))
        log.info("group catalog migrated to version %d of %d", version + 1, newest)


class Catalog:
    """The catalog's connections: a few kept open for the web threads and the reconcile. Thread-safe."""

    def __init__(self, url: str, keep: int = 8) -> None:
        self._url, self._keep = url, keep
        self._idle: list[Connection] = []
        self._lock = threading.Lock()
        with self.connection() as conn:
            migrate(conn)

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A connection for the block (autocommit; use ``conn.transaction()``), returned afterwards."""
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None or conn.closed:
            conn = connect(self._url)
        healthy = False
        try:
            yield conn
            healthy = True
        except psycopg.OperationalError:
            raise CatalogUnavailable(
                "The group catalog's PostgreSQL stopped answering; the request was not completed. Try again."
            ) from None
        finally:
            idle = not conn.closed and conn.info.transaction_status == pq.TransactionStatus.IDLE
            with self._lock:
                if healthy and idle and len(self._idle) < self._keep:
                    self._idle.append(conn)
                    conn = None
            if conn is not None:
                conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
