"""Study search as staff type it: any order, any form, no case, no accents."""

from __future__ import annotations

import sqlite3

import pytest

from pacs_backup.state.search import date_range, display_name, parse_date, query_patterns, study_search_text

SQL = sqlite3.connect(":memory:")


def matches(query: str, name: str, owner: str = "", species: str = "", breed: str = "", pid: str = "",
            accession: str = "", description: str = "", uid: str = "1.2.3") -> bool:  # fmt: skip
    """Whether a study with these values is found by ``query``, through SQLite's LIKE as the catalog does."""
    row = {"search_text": study_search_text(name, owner, species, breed, pid, accession, description), "study_uid": uid}
    like = "SELECT ? LIKE ? ESCAPE '\\'"
    return all(SQL.execute(like, (row[column], p)).fetchone()[0] for column, p in query_patterns(query))


@pytest.mark.parametrize(
    "query", ["Smith Bella", "Bella Smith", "Smith^Bella", "smith, bella", "SMITH", "bel", "  bella   SMITH "]
)
def test_names_in_any_order_and_form(query):
    assert matches(query, "Smith^Bella")


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("Müller", "MÜLLER^Rex"),
        ("muller", "Müller^Rex"),
        ("Mueller", "Müller^Rex"),
        ("O'Brien", "OBRIEN^Max"),
        ("obrien", "O'Brien^Max"),
        ("o\u2019brien", "O'Brien^Max"),
        ("猫", "猫^たま"),
        ("José", "JOSE^Luna"),
        ("Zoë", "Zoe^Kat"),
    ],
)
def test_accents_apostrophes_and_other_scripts(query, name):
    assert matches(query, name)


def test_other_fields_owner_species_breed_ids():
    values = ("Rex", "Jones^Mary", "Canine", "Labrador Retriever", "PID-77", "ACC 123", "")
    for q in ("jones", "mary jones", "canine", "labrador", "pid-77", "PID 77", "acc 123", "rex labrador"):
        assert matches(q, *values), q
    assert not matches("feline", *values)


def test_punctuation_is_not_a_word():
    assert (
        query_patterns("%") == [] and query_patterns("_") == [] and query_patterns("100%") == [("search_text", "%100%")]
    )
    assert matches("25", "Rex", accession="25-ACC") and not matches("25", "Smith^Bella")
    assert matches("acc25", "Rex", accession="ACC25") and matches("ACC-25", "Rex", accession="ACC25")


# A study whose random UID holds the digits a person typed for another study's ID.
UID_WITH_200 = "1.2.826.0.1.3680043.8.498.82574642003649441479174181574344452028"


@pytest.mark.parametrize("query", ["P-200", "p200", "200", "2003649", "498", "826"])
def test_numbers_never_match_the_digits_of_a_uid(query):
    assert not matches(query, "Tama", pid="P-300", uid=UID_WITH_200)


@pytest.mark.parametrize(
    ("query", "values"),
    [
        ("P-200", {"pid": "P-200"}),
        ("p200", {"pid": "P-200"}),
        ("P 200", {"pid": "P-200"}),
        ("VET-1042", {"pid": "CH-VET-1042"}),
        ("1042", {"pid": "VET1042"}),
        ("1042", {"pid": "VET-001042"}),
        ("000123", {"accession": "RX2024000123"}),
        ("ACC-17", {"accession": "2024-ACC-17"}),
        ("T13-L1", {"description": "Spine T13-L1"}),
        ("12.03.2024", {"description": "Control 12.03.2024"}),
        ("Bella-2", {"name": "Bella-2^Smith"}),
    ],
)
def test_ids_numbers_and_names_with_digits_are_found_however_they_are_typed(query, values):
    assert matches(query, values.pop("name", "Rex"), **values)


def test_a_pasted_uid_or_its_beginning_finds_its_study():
    assert matches(UID_WITH_200, "Rex", uid=UID_WITH_200)
    assert matches("1.2.826.0.1.3680043.8.498.825746", "Rex", uid=UID_WITH_200)
    assert matches("1.2.826.0.1.3680043.8.498.", "Rex", uid=UID_WITH_200)
    assert not matches("1.2.826.0.1.3680043.8.498.9", "Rex", uid=UID_WITH_200)


def test_dates_in_common_forms_and_either_order():
    assert parse_date("2026-11-26") == parse_date("20261126") == parse_date("26.11.2026") == "20261126"
    assert date_range("2026-12-01", "2026-11-01") == ("20261101", "20261201")
    assert parse_date("") is None
    with pytest.raises(ValueError, match="is not a date"):
        parse_date("five")
    with pytest.raises(ValueError):
        parse_date("2026-02-31")


def test_display_name_as_people_write_it():
    assert display_name("Smith^Bella") == "Smith, Bella"
    assert display_name("Rex") == "Rex"
    assert display_name("Yamada^Tarou=山田^太郎") == "Yamada, Tarou"
