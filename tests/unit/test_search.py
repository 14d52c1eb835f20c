"""Study search as staff type it: any order, any form, no case, no accents."""

from __future__ import annotations

import pytest

from pacs_backup.search import date_range, display_name, parse_date, query_words, search_text


def matches(query: str, *values: str) -> bool:
    text = search_text(*values)
    return all(w in text for w in query_words(query))


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
    values = ("Rex", "Jones^Mary", "Canine", "Labrador Retriever", "PID-77", "ACC 123")
    for q in ("jones", "mary jones", "canine", "labrador", "pid-77", "PID 77", "acc 123", "rex labrador"):
        assert matches(q, *values), q
    assert not matches("feline", *values)


def test_punctuation_is_not_a_word():
    assert query_words("%") == [] and query_words("_") == [] and query_words("100%") == ["100"]
    assert matches("25", "ACC25") and not matches("25", "Smith^Bella")


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
