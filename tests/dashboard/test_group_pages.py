"""The group's pages on a real PostgreSQL (Flask test client): each clinic's lights from its heartbeat and a
quiet clinic as its own alarm, the month's restore tests, who sees which clinic, and "bring this study to my
clinic" with its refusals and the delivery API's token checks."""

from __future__ import annotations

import html
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from flask import Flask

from pacs_dashboard import create_app
from pacs_dashboard.config import load_dashboard_settings
from pacs_dashboard.group.service import parts
from pacs_dashboard.group.tokens import add_clinic
from tests.dashboard.test_accounts import login, user_with_role
from tests.support.dashboard_fakes import PASSWORD, FakeBackend, csrf_of
from tests.support.group_rows import clinic_entries, feed_entries, study_uid
from tests.support.postgres import group_database_url, postgres_server  # noqa: F401 - fixtures

BELLA_NORTH, BELLA_SOUTH = study_uid(1, 0), study_uid(2, 0)


def status_doc(now: float) -> dict[str, Any]:
    """A clinic's /backup/status as its heartbeat carries it (no patient data)."""
    drill = {"id": 7, "target": "minio", "kind": "drill", "state": "ok", "queued_at": now - 60}
    drill |= {"started_at": now - 60, "finished_at": now - 30, "duration_s": 30, "summary": {}, "error": None}
    return {
        "version": "1",
        "time": now,
        "state": "ok",
        "enabled": True,
        "outbox_depth": 0,
        "oldest_pending_age_s": None,
        "replicated": 4,
        "store": {"endpoint": "s", "bucket": "b", "reachable": True, "versioning": True, "object_lock": True},
        "last_drill": drill,
        "last_snapshot": None,
        "disk": {
            "path": "/var/lib/orthanc",
            "free_bytes": 400 * 10**9,
            "total_bytes": 500 * 10**9,
            "forecast": {"size_bytes": 10**11, "growth_bytes_per_month": 10**9, "months_until_full": 30.0},
        },
    }


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
    client, now = app.test_client(), time.time()
    tokens = {}
    with app.app_context():
        for number, clinic in enumerate(("north", "south"), start=1):
            tokens[clinic] = token = add_clinic(parts().catalog, clinic, clinic.title())
            auth = {"Authorization": f"Bearer {token}"}
            rows = feed_entries(clinic_entries(clinic, number))
            assert (
                client.post("/group/api/catalog", json={"clinic": clinic, "entries": rows}, headers=auth).status_code
                == 200
            )
            beat = {"clinic": clinic, "status": status_doc(now)}
            assert client.post("/group/api/heartbeat", json=beat, headers=auth).status_code == 200
    with psycopg.connect(group_database_url, autocommit=True) as conn:  # south's box went quiet 25 minutes ago
        conn.execute("UPDATE clinics SET last_heartbeat_at = now() - interval '25 minutes' WHERE id = 'south'")
    app.config["tokens"] = tokens
    return app


def section(page: str, clinic: str) -> str:
    start = page.index(f'id="clinic-{clinic}"')
    end = page.find('<section class="clinic"', start + 1)
    return html.unescape(page[start : end if end > 0 else len(page)])


def test_group_overview_shows_each_clinics_lights_and_a_quiet_clinic_as_its_own_alarm(app: Flask) -> None:
    page = login(app, "admin").get("/group").get_data(as_text=True)
    north, south = section(page, "north"), section(page, "south")
    assert "Local backup copy" in north and "reachable" in north and "quiet-alarm" not in north
    assert "The local backup copy: up to date" in north
    assert "passed at" in north and "The PACS disk: 400 GB free of 500 GB, full in about 2 years" in north
    assert "South has not been heard from since" in south and "over 10 minutes" in south
    assert 'data-state="red"' in south
    assert "Problems - not heard from: South; needs attention: North." in html.unescape(page)  # no offsite copy
    assert "1 restore test this month, all passed." in page  # both clinics' drill 7, each counted once
    again = login(app, "admin").get("/group").get_data(as_text=True)
    assert again.count("1 restore test this month, all passed.") == 2
    start = login(app, "admin").get("/")  # the group service has no PACS of its own: it starts on the clinics
    assert start.status_code == 302 and start.headers["Location"].endswith("/group")
    health = app.test_client().get("/healthz")  # public, for an uptime monitor: the catalog and each clinic
    assert health.status_code == 200 and "pacs" not in health.get_json()["parts"]
    assert health.get_json()["parts"] == {"catalog": "green", "clinic-north": "green", "clinic-south": "red"}
    assert app.test_client().get("/healthz?strict=1").status_code == 503  # south has gone quiet


def test_group_staff_see_only_the_clinics_granted_to_them(app: Flask) -> None:
    staff = user_with_role(app, "desk", "staff")
    assert "No clinic has joined the group yet, or your account may see none" in staff.get("/group").get_data(
        as_text=True
    )
    admin = login(app, "admin")
    edit = admin.get("/users/edit?name=desk").get_data(as_text=True)
    assert 'id="set-clinics"' in edit and 'value="north"' in edit and 'value="south"' in edit
    resp = admin.post(
        "/group/users/clinics", data={"username": "desk", "clinic": ["north", "../x"], "csrf_token": csrf_of(edit)}
    )
    assert resp.status_code == 302
    assert ("group_grants_changed", "desk may now see clinics: north (before: none)") in [
        (r[3], r[4]) for r in app.extensions["db"].audit_rows()
    ]
    found = staff.get("/group/studies?q=bella").get_data(as_text=True)
    assert f'data-clinic="north" data-study="{BELLA_NORTH}"' in found and 'data-clinic="south"' not in found
    assert "Bring this study" not in found  # one clinic only: nowhere to bring it
    assert 'id="clinic-south"' not in staff.get("/group").get_data(as_text=True)
    assert staff.get(f"/group/studies/south/{BELLA_SOUTH}/view").status_code == 404
    assert admin.get("/group/studies?q=bella").get_data(as_text=True).count("data-clinic=") == 4  # two Bellas each
    monitor = user_with_role(app, "nagios", "monitor")
    assert monitor.get("/group/studies?q=bella").status_code == 403
    with app.app_context():  # the grants are part of the query: other clinics' newer studies never crowd them out
        from pacs_dashboard.group.search import search

        newest_first = search(parts().catalog, "bella", limit=2)
        assert {s["clinic"] for s in newest_first} <= {"north", "south"}
        only_north = search(parts().catalog, "bella", limit=2, among=["north"])
        assert [s["clinic"] for s in only_north] == ["north", "north"]
    assert monitor.get("/group/api/overview").get_json() == {
        "headline": "No clinic has joined the group yet.",
        "clinics": [],
    }


def test_group_bring_a_study_refusals_and_the_delivery_api(app: Flask) -> None:
    admin = login(app, "admin")
    token = csrf_of(admin.get("/group/studies").get_data(as_text=True))

    def ask(clinic: str, study: str, to: str, client: Any = admin, csrf: str = token) -> Any:
        return client.post("/group/deliveries", data={"clinic": clinic, "study": study, "to": to, "csrf_token": csrf})

    assert "already in clinic north" in ask("north", BELLA_NORTH, "north").get_data(as_text=True)
    assert "does not hold this study" in ask("north", BELLA_SOUTH, "south").get_data(as_text=True)
    staff = user_with_role(app, "desk", "staff")
    app.extensions["db"].execute("INSERT INTO group_grants VALUES ('desk', 'north', 'admin', 0)")
    refused = ask("north", BELLA_NORTH, "south", staff, csrf_of(staff.get("/group/studies").get_data(as_text=True)))
    assert refused.status_code == 403 and "may not bring studies into clinic south" in refused.get_data(as_text=True)
    assert ask("north", BELLA_NORTH, "south").status_code == 302
    assert ask("north", BELLA_NORTH, "south").status_code == 302  # asked again: the same request
    page = html.unescape(admin.get("/group/deliveries").get_data(as_text=True))
    assert page.count('data-state="pending"') == 1 and "Waiting for clinic south to fetch it." in page

    api, client = "/group/api/deliveries", app.test_client()
    south = {"Authorization": f"Bearer {app.config['tokens']['south']}"}
    north = {"Authorization": f"Bearer {app.config['tokens']['north']}"}
    assert (
        client.get(api).status_code == 401 and client.get(api, headers={"Authorization": "Bearer x"}).status_code == 401
    )
    (listed,) = client.get(api, headers=south).get_json()["deliveries"]
    assert (listed["source_clinic"], listed["study_uid"], listed["target_clinic"]) == ("north", BELLA_NORTH, "south")
    assert client.get(api, headers=north).get_json() == {"deliveries": []}
    assert client.get(f"{api}/{listed['id']}/instances", headers=north).status_code == 404
    no_reader = client.get(f"{api}/{listed['id']}/instances", headers=south)
    assert no_reader.status_code == 503 and "GROUP_READER_ACCESS_KEY" in no_reader.get_json()["error"]
    assert client.post(f"{api}/{listed['id']}/done", data="nope", headers=south).status_code == 400
    report = {"ok": True, "total": 4, "verified": 4}
    done = client.post(f"{api}/{listed['id']}/done", json=report, headers=south).get_json()["delivery"]
    assert (
        done["state"] == "delivered"
        and done["sentence"] == "4 of 4 images brought into clinic south's PACS and verified."
    )
    actions = [r[3] for r in app.extensions["db"].audit_rows()]
    assert "group_delivery_requested" in actions and "group_delivery_done" in actions
    web = admin.get(f"/group/copies/north/dicom-web/studies/{BELLA_NORTH}/instances")
    assert web.status_code == 503 and "GROUP_READER_ACCESS_KEY" in web.get_json()["error"]
