"""Catalog updates from one clinic: checked, then written idempotently with their studies' summaries.

A batch is what a clinic's feed POSTs (``{"clinic": id, "entries": [...]}``), each entry a manifest line
(:class:`~pacs_backup.state.manifest.ManifestEntry`) plus ``verified_at`` (when the clinic verified the object
in the group store, epoch seconds) and optionally ``copies`` (the names of the copies holding it). The same
path writes what the reconcile and the rebuild find in the bucket.

An entry's ``key`` is its object key in the group store, ``<clinic>/dicom/...``; the clinic's own layout
``dicom/...`` is taken as below its prefix. A key below another clinic's prefix, or an entry naming another
clinic, refuses the whole batch (:class:`ForeignRow`). Sending a batch twice leaves the catalog as once.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Any, cast

from pacs_backup.contracts.errors import BackupError
from pacs_backup.contracts.inputs import is_uid
from pacs_backup.state.manifest import ENTRY_FIELDS, ManifestEntry
from pacs_backup.state.search import display_name, study_search_text

from .catalog import Catalog, Connection

MAX_ENTRIES = 2000  # per batch
MAX_TEXT = 1024  # characters of one text field
_SHA256 = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_TEXT_FIELDS = tuple(f for f in ENTRY_FIELDS if f != "size")
_UID_FIELDS = ("study_uid", "series_uid", "sop_uid")


class CatalogEntry(ManifestEntry):
    """One instance as the group catalog takes it."""

    verified_at: float | None
    copies: list[str]


class InvalidBatch(BackupError):
    """The batch is not of the shape the group service takes: ``str(err)`` says what and where (a 400)."""


class ForeignRow(BackupError):
    """The batch holds a row of another clinic than the one whose token sent it (a 403)."""


def _bad(index: int, what: str) -> InvalidBatch:
    return InvalidBatch(f"Entry {index} of the batch {what}.")


def group_key(clinic: str, key: str) -> str:
    """The object key in the group store of a key as the clinic wrote it (``dicom/...`` -> ``<clinic>/dicom/...``)."""
    return f"{clinic}/{key}" if key.startswith("dicom/") else key


def check_entry(raw: object, index: int, clinic: str) -> CatalogEntry:
    """One entry, checked. Raises InvalidBatch or ForeignRow with a sentence naming the entry."""
    if not isinstance(raw, dict):
        raise _bad(index, "is not a JSON object")
    other = raw.get("clinic")
    if other is not None and other != clinic:
        raise ForeignRow(f"Entry {index} of the batch belongs to another clinic; nothing of the batch was taken.")
    out: dict[str, Any] = {}
    for name in _TEXT_FIELDS:
        value = raw.get(name, "")
        if value is None:
            value = ""
        if not isinstance(value, str) or len(value) > MAX_TEXT or "\x00" in value or not _encodable(value):
            raise _bad(index, f"has a {name} that is not text of at most {MAX_TEXT} characters")
        out[name] = value
    for name in _UID_FIELDS:
        if not is_uid(out[name]):
            raise _bad(index, f"has no valid {name}")
    if out["sha256"] and not _SHA256.fullmatch(out["sha256"]):
        raise _bad(index, "has a sha256 that is not 64 lowercase hexadecimal digits")
    size = raw.get("size", 0)
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size < 2**53:
        raise _bad(index, "has a size that is not a whole number of bytes")
    out["size"] = size
    key = group_key(clinic, out["key"])
    if not key.startswith(f"{clinic}/dicom/"):
        if re.match(r"[a-z0-9][a-z0-9-]{1,31}/dicom/", key):
            raise ForeignRow(
                f"Entry {index} of the batch is an object of another clinic; nothing of the batch was taken."
            )
        raise _bad(index, f"has a key that is not below {clinic}/dicom/")
    if ".." in key or not key.endswith(".dcm"):
        raise _bad(index, "has a key that is not an instance's key (…/<study>/<series>/<instance>.dcm)")
    out["key"] = key
    verified = raw.get("verified_at")
    if verified is not None and (
        isinstance(verified, bool) or not isinstance(verified, int | float) or not math.isfinite(verified)
    ):
        raise _bad(index, "has a verified_at that is not a time in seconds since 1970")
    out["verified_at"] = None if verified is None else float(verified)
    out["copies"] = _copies(raw.get("copies"), index)
    return cast(CatalogEntry, out)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # half of a surrogate pair, as JSON's \ud800 gives
        return False
    return True


def _copies(value: object, index: int) -> list[str]:
    """The copy names: a list of names, or an object keyed by them."""
    if value is None:
        return []
    names = list(value) if isinstance(value, list | dict) else None
    if names is None or len(names) > 32 or not all(isinstance(n, str) and _NAME.fullmatch(n) for n in names):
        raise _bad(index, "has copies that are not a list of at most 32 copy names")
    return sorted(set(names))


def check_batch(body: object, clinic: str) -> list[CatalogEntry]:
    """A POSTed batch for ``clinic`` (the token's), checked whole. Raises InvalidBatch or ForeignRow."""
    if not isinstance(body, dict):
        raise InvalidBatch('The batch is not a JSON object like {"clinic": "north", "entries": [...]}.')
    if body.get("clinic") != clinic:
        raise ForeignRow("The batch names another clinic than the one this token belongs to; nothing was taken.")
    entries = body.get("entries")
    if not isinstance(entries, list):
        raise InvalidBatch('The batch has no "entries" list.')
    if len(entries) > MAX_ENTRIES:
        raise InvalidBatch(f"The batch holds {len(entries)} entries; send at most {MAX_ENTRIES} at a time.")
    return [check_entry(raw, i, clinic) for i, raw in enumerate(entries)]


# --- writing --------------------------------------------------------------------------------------------
_COLUMNS = (
    "study_uid",
    "series_uid",
    "sop_uid",
    "key",
    "sha256",
    "size",
    "modality",
    "patient_id",
    "patient_name",
    "owner",
    "species",
    "breed",
    "accession",
    "study_date",
    "description",
)
_INCOMING = (
    "CREATE TEMP TABLE IF NOT EXISTS incoming (n BIGINT, clinic TEXT, study_uid TEXT, series_uid TEXT, "
    "sop_uid TEXT, key TEXT, sha256 TEXT, size BIGINT, modality TEXT, patient_id TEXT, patient_name TEXT, "
    "owner TEXT, species TEXT, breed TEXT, accession TEXT, study_date TEXT, description TEXT, copies JSONB, "
    "verified_at DOUBLE PRECISION)"
)
_ALL = ", ".join(("clinic", *_COLUMNS, "copies"))
_UPSERT = (
    f"INSERT INTO instances ({_ALL}, verified_at) "  # noqa: S608 - constant columns
    f"SELECT DISTINCT ON (clinic, sop_uid, key) {_ALL}, to_timestamp(verified_at) FROM incoming "
    "ORDER BY clinic, sop_uid, key, n DESC "
    "ON CONFLICT (clinic, sop_uid, key) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in (*_COLUMNS[4:], "copies"))
    + ", verified_at = GREATEST(instances.verified_at, excluded.verified_at)"
)


def ingest(catalog: Catalog, clinic: str, entries: Sequence[CatalogEntry]) -> int:
    """Write checked entries of ``clinic`` and recompute their studies, in one transaction. Returns the count."""
    with catalog.connection() as conn, conn.transaction():
        write(conn, clinic, entries)
    return len(entries)


def write(conn: Connection, clinic: str, entries: Iterable[CatalogEntry]) -> set[str]:
    """Upsert ``entries`` inside the caller's transaction; returns the studies touched (all recomputed).

    The clinic's row is locked first, so the catalog writes of one clinic follow each other."""
    conn.execute(
        "INSERT INTO clinics (id) VALUES (%s) ON CONFLICT (id) DO NOTHING", (clinic,)
    )  # a clinic first seen in the bucket (reconcile, rebuild) gets a row without a token
    conn.execute("SELECT 1 FROM clinics WHERE id = %s FOR UPDATE", (clinic,))
    conn.execute(_INCOMING)
    conn.execute("TRUNCATE incoming")
    studies: set[str] = set()
    with conn.cursor().copy(
        "COPY incoming (n, clinic, " + ", ".join(_COLUMNS) + ", copies, verified_at) FROM STDIN"
    ) as copy:
        for n, e in enumerate(entries):
            studies.add(e["study_uid"])
            copy.write_row(
                (n, clinic, *(e[c] for c in _COLUMNS), _json_list(e["copies"]), e["verified_at"])  # type: ignore[literal-required]
            )
    if studies:
        conn.execute(_UPSERT)
        refresh_studies(conn, clinic, sorted(studies))
    return studies


def _json_list(names: list[str]) -> str:
    return "[" + ",".join(f'"{n}"' for n in names) + "]"  # names are checked: letters, digits, ._-


_AGGREGATE = (
    'SELECT study_uid, MAX(patient_id COLLATE "C"), MAX(patient_name COLLATE "C"), MAX(owner COLLATE "C"), '
    'MAX(species COLLATE "C"), MAX(breed COLLATE "C"), MAX(accession COLLATE "C"), MAX(study_date COLLATE "C"), '
    "MAX(description COLLATE \"C\"), string_agg(DISTINCT NULLIF(modality, ''), ',' ORDER BY NULLIF(modality, '')), "
    "COUNT(DISTINCT series_uid), COUNT(*), SUM(size), MAX(verified_at) FROM instances "
    "WHERE clinic = %s AND study_uid = ANY(%s) GROUP BY study_uid"
)
_COPIES = (
    "SELECT study_uid, c, COUNT(*) FROM instances CROSS JOIN LATERAL jsonb_array_elements_text(copies) AS c "
    "WHERE clinic = %s AND study_uid = ANY(%s) GROUP BY study_uid, c"
)
_STUDY_UPSERT = (
    "INSERT INTO studies (clinic, study_uid, patient_id, patient_name, owner, species, breed, accession, study_date, "
    "description, modalities, series, instances, size, last_verified_at, display_name, search_text, copies, "
    "updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, now()) "
    "ON CONFLICT (clinic, study_uid) DO UPDATE SET patient_id = excluded.patient_id, "
    "patient_name = excluded.patient_name, owner = excluded.owner, species = excluded.species, "
    "breed = excluded.breed, accession = excluded.accession, study_date = excluded.study_date, "
    "description = excluded.description, modalities = excluded.modalities, series = excluded.series, "
    "instances = excluded.instances, size = excluded.size, last_verified_at = excluded.last_verified_at, "
    "display_name = excluded.display_name, search_text = excluded.search_text, copies = excluded.copies, "
    "updated_at = now()"
)


def refresh_studies(conn: Connection, clinic: str, study_uids: list[str]) -> None:
    """Recompute the summary rows of these studies from their instances, and the clinic's totals (inside the
    caller's transaction, which holds the clinic's row)."""
    old = conn.execute(
        "SELECT COUNT(*), COALESCE(SUM(instances), 0), COALESCE(SUM(size), 0) FROM studies "
        "WHERE clinic = %s AND study_uid = ANY(%s)",
        (clinic, study_uids),
    ).fetchone()
    copies: dict[str, dict[str, int]] = {}
    for uid, name, count in conn.execute(_COPIES, (clinic, study_uids)).fetchall():
        copies.setdefault(uid, {})[name] = int(count)
    rows = []
    for r in conn.execute(_AGGREGATE, (clinic, study_uids)).fetchall():
        uid, pid, name, owner, species, breed, accession, _, desc = r[:9]
        text = study_search_text(name, owner, species, breed, pid, accession, desc)
        copies_json = "{" + ",".join(f'"{k}":{v}' for k, v in sorted(copies.get(uid, {}).items())) + "}"
        rows.append((clinic, uid, *r[1:9], r[9] or "", *r[10:14], display_name(name), text, copies_json))
    found = {row[1] for row in rows}
    gone = [uid for uid in study_uids if uid not in found]
    if gone:
        conn.execute("DELETE FROM studies WHERE clinic = %s AND study_uid = ANY(%s)", (clinic, gone))
    with conn.cursor() as cur:
        cur.executemany(_STUDY_UPSERT, rows)
    new_instances = sum(int(row[12]) for row in rows)
    new_size = sum(int(row[13] or 0) for row in rows)
    assert old is not None  # noqa: S101 - an aggregate always answers one row
    conn.execute(
        "UPDATE clinics SET studies = studies + %s, instances = instances + %s, size = size + %s WHERE id = %s",
        (len(rows) - int(old[0]), new_instances - int(old[1]), new_size - int(old[2]), clinic),
    )
