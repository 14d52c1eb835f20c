"""The group service's API on a real PostgreSQL: clinics push catalog rows and heartbeats with their token,
the catalog takes a batch once however often it is sent, finds studies as one clinic's search does, and
refuses bad tokens, other clinics' rows and bad input with a sentence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient

from pacs_backup.contracts.errors import ConfigError
from pacs_backup.state.catalog import Catalog as ClinicCatalog
from pacs_backup.state.catalog import StudyQuery
from pacs_backup.state.search import date_range
from pacs_dashboard import create_app
from pacs_dashboard.config import load_dashboard_settings
from pacs_dashboard.group.search import search
from pacs_dashboard.group.service import parts
from pacs_dashboard.group.tokens import add_clinic, revoke_clinic
from tests.dashboard.test_accounts import user_with_role
from tests.support.dashboard_fakes import PASSWORD, FakeBackend
from tests.support.group_rows import clinic_entries, feed_entries, study_uid
from tests.support.postgres import group_database_url, postgres_server  # noqa: F401 - fixtures

CATALOG = "/group/api/catalog"


@pytest.fixture
def app(tmp_path: Path, group_database_url: str) -> Flask:  # noqa: F811 - the fixture imported above
    env = {
        "DASHBOARD_MODE": "group",
        "GROUP_DATABASE_URL": group_database_url,
        "DASHBOARD_DATA_DIR": str(tmp_path),
        "DASHBOARD_USERNAME": "admin",
        "DASHBOARD_PASSWORD": PASSWORD,
        "DASHBOARD_COOKIE_SECURE": "false",
    }
    app = create_app(load_dashboard_settings(env), start_monitor=False, backend=FakeBackend())
    app.config["TESTING"] = True
    return app


def _token(app: Flask, clinic: str) -> str:
    with app.app_context():
        return add_clinic(parts().catalog, clinic, clinic.title())


def _post(client: FlaskClient, token: str, body: Any, path: str = CATALOG) -> Any:
    return client.post(path, json=body, headers={"Authorization": f"Bearer {token}"})


def _catalog_counts(url: str) -> tuple[int, int, list[tuple[Any, ...]]]:
    with psycopg.connect(url) as conn:
        instances = conn.execute("SELECT COUNT(*) FROM instances").fetchone()
        studies = conn.execute("SELECT COUNT(*) FROM studies").fetchone()
        totals = conn.execute("SELECT id, studies, instances, size FROM clinics ORDER BY id").fetchall()
    assert instances and studies
    return int(instances[0]), int(studies[0]), totals


def test_group_ingest_is_idempotent(app: Flask, group_database_url: str) -> None:  # noqa: F811
    client, token = app.test_client(), _token(app, "north")
    rows = feed_entries(clinic_entries("north", 1))
    first = _post(client, token, {"clinic": "north", "entries": rows})
    assert first.status_code == 200, first.get_json()
    assert first.get_json() == {"accepted": len(rows)}
    once = _catalog_counts(group_database_url)
    # the feed retries after a lost answer; a later batch repeats part of the first; keys in the store's form
    in_store_form = [{**r, "key": "north/" + r["key"]} for r in rows]
    for again in (rows, rows[3:9], in_store_form, rows):
        assert _post(client, token, {"clinic": "north", "entries": again}).status_code == 200
    assert _catalog_counts(group_database_url) == once
    instances, studies, totals = once
    assert (instances, studies) == (len(rows), 8)
    assert totals == [("north", 8, len(rows), sum(r["size"] for r in rows))]
    with app.app_context():
        found = search(parts().catalog, "bella muller")
    assert [s["study_uid"] for s in found] == [study_uid(1, 0)]
    assert found[0]["instances"] == 4 and found[0]["series"] == 2
    assert found[0]["copies"] == {"bucket": 4, "group": 4}
    assert found[0]["display_name"] == "Müller, Bella"


QUERIES: list[tuple[str, str, str, str]] = [  # text, from, to, modality
    ("", "", "", ""),
    ("muller", "", "", ""),
    ("Mueller", "", "", ""),
    ("MÜLLER bella", "", "", ""),
    ("bella müller", "", "", ""),
    ("obrien", "", "", ""),
    ("O'Brien rex", "", "", ""),
    ("o\u2019brien", "", "", ""),  # a typographic apostrophe
    ("garcia", "", "", ""),
    ("García Luna", "", "", ""),
    ("猫", "", "", ""),
    ("山田", "", "", ""),
    ("canine", "", "", ""),
    ("feline siamese", "", "", ""),
    ("labrador hans", "", "", ""),
    ("P-200", "", "", ""),
    ("p200", "", "", ""),
    ("200", "", "", ""),
    ("1042", "", "", ""),
    ("A-1001", "", "", ""),
    ("b/77", "", "", ""),
    ("emile zoe", "", "", ""),
    ("thorax", "", "", ""),
    ("smith", "", "", ""),
    ("nobody-here", "", "", ""),
    (study_uid(1, 2), "", "", ""),
    ("1.2.826.0.1.1", "", "", ""),
    ("", "2026-11-01", "2026-11-30", ""),
    ("", "26.11.2026", "", ""),
    ("", "", "20250101", ""),
    ("bella", "2026-11-26", "2026-11-26", ""),
    ("", "", "", "DX"),
    ("", "", "", "mr"),
    ("", "", "", "SR"),
    ("thorax", "", "", "US"),
]


def test_group_search_finds_what_one_clinics_search_finds(app: Flask, tmp_path: Path) -> None:
    entries = clinic_entries("north", 1)
    clinic_catalog = ClinicCatalog(tmp_path / "plugin.sqlite")
    for n, e in enumerate(entries):
        clinic_catalog.record(e, 1_800_000_000.0 + n)
    client = app.test_client()
    assert _post(client, _token(app, "north"), {"clinic": "north", "entries": feed_entries(entries)}).status_code == 200
    south = feed_entries(clinic_entries("south", 2))
    assert _post(client, _token(app, "south"), {"clinic": "south", "entries": south}).status_code == 200
    with app.app_context():
        catalog = parts().catalog
        for text, first, last, modality in QUERIES:
            lo, hi = date_range(first, last)
            clinic_found = clinic_catalog.studies(StudyQuery(text=text, date_from=lo, date_to=hi, modality=modality))
            group_found = search(catalog, text, first, last, modality, clinic="north")
            assert {s["study_uid"] for s in group_found} == {s["study_uid"] for s in clinic_found}, (text, first, last)
            # across the group the same words find each clinic's study of that patient (a UID is one clinic's)
            every = search(catalog, text, first, last, modality)
            clinics = {"north"} if text.startswith("1.2.") else {"north", "south"}
            assert {s["clinic"] for s in every} == (clinics if clinic_found else set()), text
        with pytest.raises(ValueError, match="not a date"):
            search(catalog, "", "31.02.2026")


def test_group_status_flags_a_quiet_clinic(app: Flask, group_database_url: str, logged_in: FlaskClient) -> None:  # noqa: F811
    client = app.test_client()
    for clinic in ("north", "south"):
        beat = {"clinic": clinic, "status": {"outbox_depth": 0, "replicated": 12}}
        answer = _post(client, _token(app, clinic), beat, "/group/api/heartbeat")
        assert answer.status_code == 200, answer.get_json()
    with psycopg.connect(group_database_url) as conn:  # south's last heartbeat was 11 minutes ago
        conn.execute("UPDATE clinics SET last_heartbeat_at = now() - interval '11 minutes' WHERE id = 'south'")
    assert client.get("/group/api/status").status_code == 401  # the group admin's, after login
    status = logged_in.get("/group/api/status").get_json()
    assert status["quiet_minutes"] == 10
    by_id = {c["clinic"]: c for c in status["clinics"]}
    assert by_id["north"]["quiet"] is False and by_id["north"]["age_s"] < 60
    assert by_id["south"]["quiet"] is True and 650 < by_id["south"]["age_s"] < 720
    assert by_id["north"]["status"] == {"outbox_depth": 0, "replicated": 12}
    for role in ("staff", "monitor"):  # the group's status is the group admin's (an administrator)
        other = user_with_role(app, f"user-{role}", role)
        assert other.get("/group/api/status").status_code == 403


def test_group_bad_token_gets_401_without_a_hint(app: Flask, group_database_url: str) -> None:  # noqa: F811
    client, token = app.test_client(), _token(app, "north")
    body = {"clinic": "north", "entries": feed_entries(clinic_entries("north", 1))[:2]}
    revoked = _token(app, "east")
    with app.app_context():
        revoke_clinic(parts().catalog, "east")
    answers = [
        client.post(CATALOG, json=body),
        _post(client, token + "x", body),
        _post(client, token[:-1], body),
        client.post(CATALOG, json=body, headers={"Authorization": f"Basic {token}"}),
        _post(client, revoked, {**body, "clinic": "east"}),
        _post(client, "", body, "/group/api/heartbeat"),
    ]
    assert {a.status_code for a in answers} == {401}
    assert {a.get_json()["error"] for a in answers} == {"The clinic token is missing, unknown or revoked."}
    assert _catalog_counts(group_database_url)[:2] == (0, 0)


def test_group_row_of_another_clinic_is_refused(app: Flask, group_database_url: str) -> None:  # noqa: F811
    client, north = app.test_client(), _token(app, "north")
    _token(app, "south")
    south_rows = feed_entries(clinic_entries("south", 2))
    mixed = [*feed_entries(clinic_entries("north", 1))[:3], {**south_rows[0], "key": "south/" + south_rows[0]["key"]}]
    for body in (
        {"clinic": "north", "entries": mixed},  # an object below south's prefix
        {"clinic": "south", "entries": south_rows},  # north's token speaking for south
        {"clinic": "north", "entries": [{**mixed[0], "clinic": "south"}]},
    ):
        answer = _post(client, north, body)
        assert answer.status_code == 403, answer.get_json()
        assert "another clinic" in answer.get_json()["error"]
    assert _catalog_counts(group_database_url)[:2] == (0, 0)  # nothing of a refused batch was taken


def test_group_bad_input_gets_a_sentence(app: Flask) -> None:
    client, token = app.test_client(), _token(app, "north")
    good = feed_entries(clinic_entries("north", 1))[0]
    cases = [
        (b"not json", "not JSON"),
        ({"clinic": "north"}, "entries"),
        ({"clinic": "north", "entries": [1]}, "Entry 0"),
        ({"clinic": "north", "entries": [{**good, "sop_uid": "../x"}]}, "sop_uid"),
        ({"clinic": "north", "entries": [{**good, "size": "big"}]}, "size"),
        ({"clinic": "north", "entries": [{**good, "key": "elsewhere/x.dcm"}]}, "key"),
        ({"clinic": "north", "entries": [good] * 2001}, "at most 2000"),
        ({"clinic": "north", "entries": [{**good, "owner": "half \ud800 pair"}]}, "owner"),
    ]
    for body, words in cases:
        if isinstance(body, bytes):
            answer = client.post(CATALOG, data=body, headers={"Authorization": f"Bearer {token}"})
        else:
            answer = _post(client, token, body)
        assert answer.status_code == 400, (words, answer.get_json())
        assert words in answer.get_json()["error"]
    for status in ({"note": "nul \x00"}, {"load": float("nan")}, "green"):
        answer = _post(client, token, {"clinic": "north", "status": status}, "/group/api/heartbeat")
        assert answer.status_code == 400 and "status" in answer.get_json()["error"]
    too_big = _post(client, token, {"clinic": "north", "entries": [], "pad": "x" * (9 * 1024 * 1024)})
    assert too_big.status_code == 413 and "MB" in too_big.get_json()["error"]


def test_group_api_is_absent_from_a_clinic_dashboard(tmp_path: Path) -> None:
    env = {
        "ORTHANC_URL": "http://127.0.0.1:1",
        "DASHBOARD_DATA_DIR": str(tmp_path),
        "DASHBOARD_USERNAME": "admin",
        "DASHBOARD_PASSWORD": PASSWORD,
    }
    app = create_app(load_dashboard_settings(env), start_monitor=False, backend=FakeBackend())
    answer = app.test_client().post(CATALOG, json={"clinic": "north", "entries": []})
    assert answer.status_code in (401, 404)  # no such endpoint: the login check answers before the 404
    assert "group" not in app.extensions


def test_group_settings_refusals_name_the_variable(tmp_path: Path) -> None:
    base = {"DASHBOARD_DATA_DIR": str(tmp_path), "DASHBOARD_MODE": "group"}
    url = {"GROUP_DATABASE_URL": "postgresql://g@h/db"}
    cases = [
        ({}, "GROUP_DATABASE_URL"),
        ({"GROUP_DATABASE_URL": "mysql://x"}, "GROUP_DATABASE_URL"),
        ({"DASHBOARD_MODE": "groups", "ORTHANC_URL": "http://127.0.0.1:1"}, "DASHBOARD_MODE"),
        ({**url, "GROUP_READER_ACCESS_KEY": "r"}, "GROUP_READER_SECRET_KEY"),
        (
            {
                "GROUP_DATABASE_URL": "postgresql://g@h/db",
                "GROUP_READER_ACCESS_KEY": "r",
                "GROUP_READER_SECRET_KEY": "s",
            },
            "GROUP_STORE_ENDPOINT",
        ),
        ({**url, "GROUP_QUIET_MINUTES": "soon"}, "GROUP_QUIET_MINUTES"),
    ]
    for env, variable in cases:
        with pytest.raises(ConfigError, match=variable):
            load_dashboard_settings({**base, **env})
    settings = load_dashboard_settings({**base, "GROUP_DATABASE_URL": "postgresql://g:secret@h/db"})
    assert settings.mode == "group" and settings.group is not None
    assert "secret" not in repr(settings.group)
