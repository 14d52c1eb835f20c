"""Request checks of the plugin's REST routes: bad input is a sentence and a 400, never a crash."""

from __future__ import annotations

import pytest

from pacs_backup.api import http_input as check
from pacs_backup.contracts.errors import BadRequest


def test_deep_json_is_refused_without_recursion():
    for body in (b"[" * 10_000, b'{"a":' * 2000 + b"1" + b"}" * 2000, b'{"target": ' + b"[" * 300 + b"]" * 300 + b"}"):
        with pytest.raises(BadRequest, match="nests more than"):
            check.json_object(body)
    with pytest.raises(BadRequest, match="too large"):
        check.json_object(b"[" * 100_000)


def test_brackets_inside_strings_do_not_count():
    assert check.json_object(b'{"target": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}')["target"].startswith("[")


@pytest.mark.parametrize("body", [b"\xff\xfe", b"not json", b"[1, 2]", b'"text"', b"{" + b" " * 70_000 + b"}"])
def test_malformed_bodies_are_bad_requests(body):
    with pytest.raises(BadRequest):
        check.json_object(body)


def test_query_values_are_decoded_once():
    q = check.decoded_query({"q": "Smith%5EBella", "o": "O%27Brien", "m": "M%C3%BCller", "s": "Smith+Bella"})
    assert q == {"q": "Smith^Bella", "o": "O'Brien", "m": "Müller", "s": "Smith Bella"}
    for bad in ("%00", "%ff", "x" * 300):
        with pytest.raises(BadRequest):
            check.decoded_query({"q": bad})


@pytest.mark.parametrize("value", ["..%2F..%2Fsystem", "../system", "a/b", "1.2..3", "%00", "", "x" * 200])
def test_uids_that_could_escape_a_path_are_refused(value):
    with pytest.raises(BadRequest):
        check.uid(value)


def test_ordinary_uids_pass():
    assert check.uid("1.2.840.113619.2.55.3") == "1.2.840.113619.2.55.3"


@pytest.mark.parametrize("value", ["99999999999999999999999", "-1", "1e3", "abc", ""])
def test_run_ids_are_numbers_of_sane_size(value):
    with pytest.raises(BadRequest):
        check.run_id(value)


def test_text_fields_are_checked():
    with pytest.raises(BadRequest):
        check.text_field({"snapshot": "x" * 5_000_000}, "snapshot")
    with pytest.raises(BadRequest):
        check.text_field({"target": ["offsite"]}, "target")
    with pytest.raises(BadRequest):
        check.text_field({}, "study_uid", required=True)
