"""The catalog's change feed pages exactly, even when many studies changed at the same moment."""

from __future__ import annotations

from pacs_backup.state.catalog import _COLUMNS, Catalog, StudyQuery
from pacs_backup.state.manifest import ENTRY_FIELDS, ManifestEntry
from tests.support.catalog_rows import manifest_entry


def entry(n: int) -> ManifestEntry:
    return manifest_entry(f"1.2.{n}", f"1.2.{n}.1", f"1.2.{n}.1.1", orthanc_id=f"o{n}", key=f"k{n}")


def test_change_feed_pages_by_time_then_uid(tmp_path):
    catalog = Catalog(tmp_path / "c.sqlite")
    for n in range(25):
        catalog.record(entry(n), 100.0)  # all at one moment, as a migration or backfill makes them
    seen: list[str] = []
    since, after = 0.0, ""
    while True:
        page = catalog.studies(StudyQuery(changed_since=since, after=after, limit=10))
        if not page:
            break
        seen += [s["study_uid"] for s in page]
        since, after = page[-1]["last_copied_at"], page[-1]["study_uid"]
    assert sorted(seen) == sorted(f"1.2.{n}" for n in range(25)) and len(seen) == 25


def test_manifest_keys_are_the_catalog_columns_in_order():
    # ManifestEntry is assembled from two TypedDicts; the catalog zips its columns with these keys.
    columns = [c.strip() for c in _COLUMNS.split(",")]
    assert ["object_key" if f == "key" else f for f in ENTRY_FIELDS] == columns


def test_a_study_row_kept_up_to_date_one_image_at_a_time_equals_one_rebuilt_from_all_its_images(tmp_path):
    """Study rows grow by one image per copy (no re-reading a 2,000-image CT per image); same result."""
    import random
    import sqlite3

    from pacs_backup.state.schema import refresh_all_studies

    rng = random.Random(7)
    catalog = Catalog(tmp_path / "c.sqlite")
    for i in range(300):
        e = entry(i)
        study = rng.randrange(4)
        e["study_uid"], e["series_uid"] = f"1.2.{study}", f"1.2.{study}.{rng.randrange(3)}"
        e["modality"] = rng.choice(["DX", "CR", "CT"])
        e["patient_name"] = rng.choice(["Smith^Bella", "Müller^Rex", ""])
        e["owner"] = rng.choice(["", "Jones", "O'Brien"])
        e["accession"] = rng.choice(["", f"A{study}"])
        catalog.record(e, float(i))
    db = sqlite3.connect(tmp_path / "c.sqlite")
    columns = "study_uid, patient_id, patient_name, owner, species, breed, accession, study_date, description"
    query = f"SELECT {columns}, series, instances, search_text, modalities FROM catalog_studies ORDER BY study_uid"  # noqa: S608

    def rows():
        return [(*r[:-1], set(r[-1].split(","))) for r in db.execute(query)]

    kept = rows()
    refresh_all_studies(db)
    assert rows() == kept and sum(r[10] for r in kept) == 300
