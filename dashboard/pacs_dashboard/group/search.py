"""Group search: every clinic's studies, found by the same rules as one clinic's search.

The search text is made by :func:`pacs_backup.state.search.study_search_text` (ingest.py) and what staff type
becomes the same LIKE patterns (:func:`~pacs_backup.state.search.query_patterns`), as the plugin's catalog
and the dashboard's mirror do in SQLite: names in any order and form, without case or accents, owner,
species, breed, ids, a pasted study UID, a date range and a modality; optionally one clinic. A trigram index
(pg_trgm) finds the words inside the text without reading every study.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypedDict, cast

from pacs_backup.state.search import date_range, like_pattern, query_patterns

from .catalog import Catalog

_FIELDS = (
    "clinic",
    "study_uid",
    "patient_id",
    "patient_name",
    "display_name",
    "owner",
    "species",
    "breed",
    "accession",
    "study_date",
    "description",
    "modalities",
    "series",
    "instances",
    "size",
    "copies",
    "last_verified_at",
)


class GroupStudy(TypedDict):
    """One study in the group's search results."""

    clinic: str
    study_uid: str
    patient_id: str
    patient_name: str
    display_name: str
    owner: str
    species: str
    breed: str
    accession: str
    study_date: str
    description: str
    modalities: str
    series: int
    instances: int
    size: int
    copies: dict[str, int]  # copy name -> how many of the study's instances it holds
    last_verified_at: float | None


def search(
    catalog: Catalog,
    text: str,
    date_from: str = "",
    date_to: str = "",
    modality: str = "",
    clinic: str = "",
    limit: int = 100,
    among: Sequence[str] | None = None,
) -> list[GroupStudy]:
    """Studies matching every typed word, newest study date first; ``among``: only these clinics (a user's
    grants; None: every clinic). Raises ValueError (a sentence) for a bad date."""
    first, last = date_range(date_from, date_to)
    sql = f"SELECT {', '.join(_FIELDS)} FROM studies WHERE true"  # noqa: S608 - constant columns
    args: list[Any] = []
    for column, pattern in query_patterns(text):
        # one of two fixed column names; the study UID's index is in the C collation
        sql += ' AND study_uid COLLATE "C" LIKE %s' if column == "study_uid" else " AND search_text LIKE %s"
        args.append(pattern)
    if first:
        sql += " AND study_date >= %s"
        args.append(first)
    if last:
        sql += " AND study_date <= %s AND study_date != ''"
        args.append(last)
    if modality:
        sql += " AND ',' || modalities || ',' ILIKE %s"  # SQLite's LIKE ignores case, as the plugin's search does
        args.append(like_pattern("," + modality.upper() + ","))
    if clinic:
        sql += " AND clinic = %s"
        args.append(clinic)
    if among is not None:  # in the query, before the limit: a user granted a small clinic still gets its studies
        sql += " AND clinic = ANY(%s)"
        args.append(list(among))
    sql += " ORDER BY study_date DESC, last_verified_at DESC NULLS LAST, clinic, study_uid LIMIT %s"
    args.append(max(1, min(limit, 1000)))
    with catalog.connection() as conn:
        rows = conn.execute(sql, args).fetchall()
    return [_study(r) for r in rows]


def _study(row: tuple[Any, ...]) -> GroupStudy:
    values = dict(zip(_FIELDS, row, strict=True))
    when = values["last_verified_at"]
    values["last_verified_at"] = when.timestamp() if isinstance(when, datetime) else None
    values["size"] = int(values["size"] or 0)
    return cast(GroupStudy, values)
