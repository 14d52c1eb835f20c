"""Finding studies the way staff type: names in any order and form, without case or accents.

DICOM writes a person's name as ``Family^Given^Middle^Prefix^Suffix`` (and ``=`` between alphabetic,
ideographic and phonetic forms); staff type "Smith Bella", "bella smith", "Müller", "Mueller",
"O'Brien" or "猫". Both sides are reduced to the same words: Unicode-folded (NFKD, accents dropped,
casefold), split on everything that is not a letter or digit, apostrophes removed inside words. A
study matches when every typed word is found in its text, as a word or inside one ("ller" finds
Müller, "1042" finds VET1042). A pasted study UID is matched against the UID itself.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date
from typing import Literal

_SPLIT = re.compile(r"[^\w]+", re.UNICODE)
_APOSTROPHES = re.compile(r"[\u0027\u2019\u02bc`\u00b4]")
# German umlauts are also written with an "e" (Müller = Mueller); index both spellings.
_UMLAUTS = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "Ä": "Ae", "Ö": "Oe", "Ü": "Ue", "ß": "ss"})


def fold(text: str) -> str:
    """Lower-case, accent-free form of ``text`` (``Müller`` -> ``muller``)."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def words(text: str) -> list[str]:
    """The folded words of ``text``; apostrophes inside a word are dropped (O'Brien -> obrien)."""
    return [w for w in _SPLIT.split(fold(_APOSTROPHES.sub("", text)).replace("_", " ")) if w]


def search_text(*values: str | None) -> str:
    """The text a study is searched in: folded words of every value, each umlaut spelled both ways."""
    out: list[str] = []
    for value in values:
        if not value:
            continue
        out += words(value)
        spelled = value.translate(_UMLAUTS)
        if spelled != value:
            out += words(spelled)
    return " " + " ".join(dict.fromkeys(out)) + " "


def study_search_text(
    name: str | None,
    owner: str | None,
    species: str | None,
    breed: str | None,
    patient_id: str | None,
    accession: str | None,
    description: str | None,
) -> str:
    """A study's search text (the plugin's catalog and the dashboard's mirror make it the same way).

    Identifiers are also kept without their punctuation ("p200" for P-200) so they are found however
    they are typed. The study UID is not in it (see :func:`query_patterns`).
    """
    whole = ["".join(words(v)) for v in (patient_id, accession) if v and len(words(v)) > 1]
    return search_text(name, owner, species, breed, patient_id, accession, description, *whole)


_UID = re.compile(r"\d+(\.\d+){3,}\.?")  # a pasted study UID, or its beginning (four parts or more)
Column = Literal["search_text", "study_uid"]


def query_patterns(query: str) -> list[tuple[Column, str]]:
    """``(column, LIKE pattern)`` pairs (``ESCAPE '\\'``) a study must all match, at most 8.

    A term that looks like a study UID is matched against the UID, from its start. Every other word
    is found anywhere inside the search text. A UID is not part of the search text because its random
    digits matched numbers typed for something else ("P-200" found a study whose UID held "200").
    """
    patterns: list[tuple[Column, str]] = []
    for term in query.split():
        if _UID.fullmatch(term):
            patterns.append(("study_uid", _escape(term.rstrip(".")) + "%"))
        else:
            patterns += [("search_text", like_pattern(w[:64])) for w in words(term)]
    return patterns[:8]


def _escape(word: str) -> str:
    return word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def like_pattern(word: str) -> str:
    """A LIKE pattern (with ``ESCAPE '\\'``) finding ``word`` anywhere in a search text."""
    return f"%{_escape(word)}%"


_DATE_FORMATS = (re.compile(r"(\d{4})-?(\d{2})-?(\d{2})"), re.compile(r"(\d{2})[./](\d{2})[./](\d{4})"))


def parse_date(value: str) -> str | None:
    """``2026-11-26``, ``20261126`` or ``26.11.2026`` / ``26/11/2026`` -> ``20261126``; '' -> None.

    Raises:
        ValueError: with a sentence naming the value, when it is not a date.
    """
    value = value.strip()
    if not value:
        return None
    for number, pattern in enumerate(_DATE_FORMATS):
        m = pattern.fullmatch(value)
        if m:
            y, mo, d = (m[1], m[2], m[3]) if number == 0 else (m[3], m[2], m[1])
            try:
                return date(int(y), int(mo), int(d)).strftime("%Y%m%d")
            except ValueError:
                break
    raise ValueError(f"{value[:40]!r} is not a date; write it as 2026-11-26.")


def date_range(first: str, second: str) -> tuple[str | None, str | None]:
    """Both ends of a date range, in either order."""
    a, b = parse_date(first), parse_date(second)
    if a and b and a > b:
        a, b = b, a
    return a, b


def display_name(dicom_name: str) -> str:
    """``Smith^Bella`` -> ``Smith, Bella``; other forms are kept as they are."""
    alphabetic = dicom_name.split("=")[0]
    parts = [p.strip() for p in alphabetic.split("^")]
    family, given = ([*parts, "", ""])[:2]
    rest = " ".join(p for p in parts[2:] if p)
    if family and (given or rest):
        return f"{family}, {' '.join(p for p in (given, rest) if p)}"
    return family or given or rest or dicom_name.strip()
