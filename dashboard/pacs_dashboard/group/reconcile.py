"""The catalog checked against the group store, so a lost catalog message never hides a study.

- :func:`reconcile` lists each clinic's ``<clinic>/dicom/`` keys; a key the catalog does not hold is described
  from its header (:meth:`GroupStore.describe`) and added through the ingest path;
- :func:`rebuild` empties the catalog and fills it from the bucket alone: each clinic's manifest
  (``<clinic>/catalog/manifest.jsonl``) and its listing, headers read only for keys the manifest lacks;
- :class:`ReconcileThread` runs the reconcile every GROUP_RECONCILE_MINUTES.

Objects are never deleted from the group store (object lock, no delete rights), so a catalog row whose
object is not listed is only counted, never removed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from itertools import islice
from typing import TypeVar, cast

from psycopg.types.json import Jsonb

from pacs_backup.state.manifest import ManifestEntry

from .catalog import Catalog
from .ingest import CatalogEntry, group_key, write
from .store import GroupStore, Listed

log = logging.getLogger(__name__)

CHUNK = 5000  # keys per look-up and per transaction
T = TypeVar("T")


@dataclass
class ClinicReport:
    """What one clinic's reconcile or rebuild found."""

    clinic: str
    listed: int = 0  # instance objects in the group store
    added: int = 0  # catalog rows written
    headers_read: int = 0  # objects described from their header
    unreadable: int = 0  # objects that are not readable DICOM files (left out, counted)
    seconds: float = 0.0


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


def _known(catalog: Catalog, clinic: str, keys: list[str]) -> set[str]:
    with catalog.connection() as conn:
        rows = conn.execute(
            'SELECT key FROM instances WHERE clinic = %s AND key COLLATE "C" = ANY(%s)', (clinic, keys)
        ).fetchall()
    return {str(r[0]) for r in rows}


def _describe_all(
    objects: Iterable[Listed], describe: Callable[[Listed], CatalogEntry | None], report: ClinicReport
) -> list[CatalogEntry]:
    out = []
    for obj in objects:
        entry = describe(obj)
        report.headers_read += 1
        if entry is None:
            report.unreadable += 1
            log.warning("group store object %s is not a readable DICOM file; left out of the catalog", obj.key)
        else:
            out.append(entry)
    return out


def reconcile_clinic(catalog: Catalog, store: GroupStore, clinic: str) -> ClinicReport:
    """Add the objects of ``clinic`` that the catalog lacks."""
    report, started = ClinicReport(clinic), time.monotonic()
    for chunk in _chunks(store.listing(clinic), CHUNK):
        report.listed += len(chunk)
        known = _known(catalog, clinic, [o.key for o in chunk])
        entries = _describe_all((o for o in chunk if o.key not in known), store.describe, report)
        if entries:
            with catalog.connection() as conn, conn.transaction():
                write(conn, clinic, entries)
            report.added += len(entries)
    report.seconds = round(time.monotonic() - started, 3)
    _note(catalog, report)
    return report


def reconcile(catalog: Catalog, store: GroupStore) -> list[ClinicReport]:
    """Reconcile every clinic of the bucket (and of the catalog)."""
    with catalog.connection() as conn:
        registered = {str(r[0]) for r in conn.execute("SELECT id FROM clinics").fetchall()}
    return [reconcile_clinic(catalog, store, c) for c in sorted(registered | set(store.clinics()))]


def entry_of(manifest_entry: ManifestEntry, obj: Listed) -> CatalogEntry:
    """A manifest line as a catalog entry of the listed object (the listing's key and size)."""
    return cast(CatalogEntry, {**manifest_entry, "key": obj.key, "size": obj.size, "verified_at": None, "copies": []})


def rebuild_clinic(
    catalog: Catalog,
    clinic: str,
    listing: Iterable[Listed],
    manifest: Iterable[ManifestEntry],
    describe: Callable[[Listed], CatalogEntry | None],
) -> ClinicReport:
    """Fill the (emptied) catalog rows of ``clinic`` from its listing: manifest lines where the manifest has
    the key, the header otherwise. ``describe`` reads a header (the store's; a benchmark passes its own)."""
    report, started = ClinicReport(clinic), time.monotonic()
    by_key: Mapping[str, ManifestEntry] = {group_key(clinic, e["key"]): e for e in manifest}
    for chunk in _chunks(listing, CHUNK):
        report.listed += len(chunk)
        entries = [entry_of(by_key[o.key], o) for o in chunk if o.key in by_key]
        entries += _describe_all((o for o in chunk if o.key not in by_key), describe, report)
        with catalog.connection() as conn, conn.transaction():
            write(conn, clinic, entries)
        report.added += len(entries)
    report.seconds = round(time.monotonic() - started, 3)
    return report


def empty(catalog: Catalog) -> None:
    """Remove every instance and study row (clinics and their tokens stay)."""
    with catalog.connection() as conn, conn.transaction():
        conn.execute("TRUNCATE instances, studies")
        conn.execute("UPDATE clinics SET studies = 0, instances = 0, size = 0")


def rebuild(catalog: Catalog, store: GroupStore) -> list[ClinicReport]:
    """Empty the catalog and fill it from the bucket alone."""
    empty(catalog)
    reports = []
    for clinic in store.clinics():
        report = rebuild_clinic(catalog, clinic, store.listing(clinic), store.manifest(clinic), store.describe)
        _note(catalog, report)
        reports.append(report)
    return reports


def _note(catalog: Catalog, report: ClinicReport) -> None:
    with catalog.connection() as conn, conn.transaction():
        conn.execute(
            "UPDATE clinics SET last_reconciled_at = now(), last_reconcile = %s WHERE id = %s",
            (Jsonb(asdict(report)), report.clinic),
        )


class ReconcileThread(threading.Thread):
    """Reconciles at start and then every ``minutes``; a failure is logged and tried again next time."""

    def __init__(self, catalog: Catalog, store: GroupStore, minutes: float) -> None:
        super().__init__(name="group-reconcile", daemon=True)
        self.catalog, self.store, self.interval_s = catalog, store, minutes * 60
        self.stopping = threading.Event()
        self.last: list[ClinicReport] = []

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.last = reconcile(self.catalog, self.store)
                added = sum(r.added for r in self.last)
                if added:
                    log.warning("group reconcile added %d instances the clinics' catalog messages had not", added)
            except Exception:  # the thread must go on; the next round tries again
                log.exception("group reconcile failed; trying again in %.0f minutes", self.interval_s / 60)
            self.stopping.wait(self.interval_s)

    def stop(self) -> None:
        self.stopping.set()
