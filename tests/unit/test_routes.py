"""The plugin's route table: every kind of error becomes its status and a sentence, input is checked first."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest

from pacs_backup.api.access import Access, Role, load_access, parse_roles
from pacs_backup.api.routes import ROUTES, dispatch
from pacs_backup.contracts.errors import BackupError, Busy, ConfigError, NotFound
from pacs_backup.contracts.runs import SnapshotSummary
from pacs_backup.state.history import RunLog
from tests.support.common import ROOT


class FakeScheduler:
    def __init__(self, runs: RunLog, fail: Exception | None = None) -> None:
        self.runs, self.fail, self.asked = runs, fail, []

    def request(self, kind: str, target: str | None) -> list[int]:
        if self.fail:
            raise self.fail
        self.asked.append((kind, target))
        return [1]

    def request_restore(self, study: str, source: str, snapshot: str | None) -> int:
        if self.fail:
            raise self.fail
        self.asked.append(("restore", study, source, snapshot))
        return 7


class FakeService:
    access = Access(roles={"clinic": Role.ADMIN})

    def __init__(self, runs: RunLog, fail: Exception | None = None) -> None:
        self.sched = FakeScheduler(runs, fail)

    def status(self) -> dict[str, Any]:
        return {"state": "ok"}

    def scheduler(self) -> FakeScheduler:
        return self.sched


def call(svc: Any, method: str, path: str, query: dict[str, str] | None = None, body: bytes = b"") -> tuple[int, Any]:
    return dispatch(svc, method, path, query or {}, body, headers("clinic"))


def test_routes_answer_with_status_and_sentence(tmp_path):
    svc = FakeService(RunLog(tmp_path / "r.sqlite"))
    assert call(svc, "GET", "status") == (200, {"state": "ok"})
    assert call(svc, "POST", "drills", body=b'{"target": "offsite"}') == (202, {"runs": [1]})
    assert call(svc, "POST", "restores", body=b'{"study_uid": "1.2.3", "source": "minio"}') == (202, {"run": 7})
    code, answer = call(svc, "GET", "nowhere")
    assert code == 404 and "There is no /backup/nowhere" in answer["error"]
    code, answer = call(svc, "DELETE", "status")
    assert code == 405 and "GET" in answer["error"]
    code, answer = call(svc, "GET", "runs/12")
    assert code == 404 and answer["error"] == "There is no such run."
    code, answer = call(svc, "POST", "restores", body=b'{"study_uid": "../x", "source": "minio"}')
    assert code == 400 and "not a valid study identifier" in answer["error"]
    assert svc.sched.asked == [("drill", "offsite"), ("restore", "1.2.3", "minio", None)]


def test_error_types_choose_the_status(tmp_path):
    for error, status in (
        (Busy("Too many waiting."), 429),
        (NotFound("Not there."), 404),
        (BackupError("Cannot now."), 409),
    ):
        svc = FakeService(RunLog(tmp_path / f"{status}.sqlite"), error)
        code, answer = call(svc, "POST", "snapshots")
        assert (code, answer) == (status, {"error": str(error)})


def test_run_log_keeps_runs_and_masks_addresses(tmp_path):
    runs = RunLog(tmp_path / "r.sqlite")
    rid = runs.queue("offsite", "snapshot", 1.0)
    assert runs.waiting("offsite", "snapshot") == rid and runs.count_waiting("snapshot") == 1
    runs.start(rid, 2.0)
    runs.finish(rid, 3.0, False, SnapshotSummary(None, data_added=5), "cannot open rest:https://u:secret-pw@h/x")
    run = runs.get(rid)
    assert run is not None and run.state == "failed" and "secret-pw" not in (run.error or "")
    assert runs.waiting("offsite", "snapshot") is None and runs.last("offsite", "snapshot") == run
    assert RunLog(tmp_path / "r.sqlite").get(rid) == run  # kept across a restart


# --- who may call which route (issue 23, item 6) --------------------------------------------------------
# Every route, a path that reaches it, and the least role that may call it: the table docs/security.md shows.
ROLE_TABLE = {
    ("GET", "status"): "monitor",
    ("GET", "runs"): "monitor",
    ("GET", "runs/3"): "monitor",
    ("GET", "snapshots"): "monitor",
    ("POST", "snapshots"): "staff",
    ("POST", "drills"): "staff",
    ("POST", "restores"): "staff",
    ("GET", "studies"): "staff",
    ("GET", "studies/1.2.3"): "staff",
    ("GET", "studies/1.2.3/snapshots"): "staff",
    ("GET", "studies/1.2.3/preview"): "staff",
    ("POST", "drives"): "service",
    ("GET", "rclone-config"): "service",
    ("PUT", "rclone-config"): "service",
    ("GET", "copies"): "staff",
    ("GET", "copies/bucket/studies"): "staff",
    ("GET", "copies/bucket/studies/1.2.3"): "staff",
    ("GET", "copies/bucket/studies/1.2.3/instances/1.2.3.4"): "staff",
    ("GET", "referrals"): "staff",
    ("POST", "referrals"): "staff",
    ("GET", "upload-limits"): "staff",
    ("PUT", "upload-limits"): "admin",
    ("GET", "quarantine"): "admin",
    ("POST", "quarantine/requeue"): "admin",
}
USERS = {"nagios": "monitor", "desk": "staff", "dash": "service", "clinic": "admin", "visitor": None}


class Unreachable:
    """A service or scheduler whose every other part is unavailable: allowed calls end in a 409, not a crash."""

    def __getattr__(self, name: str) -> Any:
        raise BackupError(f"{name} is not here in this test.")


class RoleService(Unreachable):
    def __init__(self, access: Access) -> None:
        self.access = access

    def status(self) -> dict[str, Any]:
        return {"state": "ok"}

    def scheduler(self) -> Unreachable:
        return Unreachable()


def headers(user: str | None, **more: str) -> dict[str, str]:
    sent = {"host": "pacs.clinic.lan:8042", "content-type": "application/json", **more}
    if user is not None:
        sent["authorization"] = "Basic " + base64.b64encode(f"{user}:pw".encode()).decode()
    return sent


def test_security_every_route_has_a_role_and_each_user_reaches_only_its_routes():
    matched = {
        (r.method, r.pattern.pattern) for r in ROUTES for m, p in ROLE_TABLE if r.method == m and r.pattern.fullmatch(p)
    }
    assert matched == {(r.method, r.pattern.pattern) for r in ROUTES}, "a route is missing from ROLE_TABLE"
    svc = RoleService(Access(roles={u: Role[r.upper()] for u, r in USERS.items() if r}))
    for (method, path), least in ROLE_TABLE.items():
        for user, role in USERS.items():
            code, answer = dispatch(svc, method, path, {}, b"{}", headers(user))
            if role is not None and Role[role.upper()] >= Role[least.upper()]:
                assert code not in (403, 415), (method, path, user, answer)
            else:
                assert code == 403, (method, path, user, code, answer)
                said = answer["error"]
                assert (f"'{user}' has the {role} role" if role else f"'{user}' has no role") in said, said


def test_security_a_request_without_a_user_or_with_a_bad_role_map_gets_a_sentence():
    svc = RoleService(Access(roles={"clinic": Role.ADMIN}))
    code, answer = dispatch(svc, "GET", "status", {}, b"", {"host": "x"})
    assert code == 403 and "Log in to Orthanc" in answer["error"]
    code, answer = dispatch(svc, "GET", "status", {}, b"", {"authorization": "Bearer abc"})
    assert code == 403 and "Log in to Orthanc" in answer["error"]
    broken = load_access({"BACKUP_ROLES": "clinic:boss"}, '{"AuthenticationEnabled": true}')
    code, answer = dispatch(RoleService(broken), "GET", "status", {}, b"", headers("clinic"))
    assert code == 403 and "BACKUP_ROLES has 'clinic:boss'" in answer["error"]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"content-type": "text/plain"}, 415),  # a plain HTML form's body
        ({"content-type": "application/x-www-form-urlencoded"}, 415),
        ({"content-type": "text/plain", "origin": "https://evil.example"}, 403),
        ({"origin": "https://evil.example"}, 403),
        ({"origin": "null"}, 403),
        ({"sec-fetch-site": "cross-site"}, 403),
        ({"sec-fetch-site": "same-site", "origin": "https://pacs.clinic.lan:8042"}, 403),
        ({"origin": "https://pacs.clinic.lan:8042"}, 202),  # Orthanc's own pages
        ({"sec-fetch-site": "same-origin", "origin": "https://proxy.clinic.lan"}, 202),
        ({"sec-fetch-site": "none"}, 202),
        ({"content-type": "application/json; charset=utf-8"}, 202),
        ({}, 202),  # the dashboard's server and the technician scripts: no Origin
    ],
)
def test_security_posts_must_be_json_from_the_same_site(tmp_path, extra, expected):
    svc = FakeService(RunLog(tmp_path / "r.sqlite"))
    svc.access = Access(roles={"clinic": Role.ADMIN})  # type: ignore[attr-defined]
    code, answer = dispatch(svc, "POST", "drills", {}, b'{"target": "offsite"}', headers("clinic", **extra))
    assert code == expected, answer
    assert svc.sched.asked == ([("drill", "offsite")] if expected == 202 else [])
    if expected == 415:
        assert "Content-Type: application/json" in answer["error"]
    if expected == 403:
        assert "another site" in answer["error"]


def test_security_gets_need_no_content_type_and_reads_are_not_origin_checked(tmp_path):
    svc = FakeService(RunLog(tmp_path / "r.sqlite"))
    svc.access = Access(roles={"nagios": Role.MONITOR})  # type: ignore[attr-defined]
    assert dispatch(svc, "GET", "status", {}, b"", headers("nagios", **{"content-type": ""})) == (200, {"state": "ok"})


def test_security_the_role_map_setting():
    one_user = '{"AuthenticationEnabled": true, "RegisteredUsers": {"clinic": "pw"}}'
    two_users = '{"AuthenticationEnabled": true, "RegisteredUsers": {"clinic": "pw", "viewer": "pw"}}'
    assert load_access({}, one_user).roles == {"clinic": Role.ADMIN}  # make run, Compose: one account
    assert load_access({}, two_users).roles == {}  # several: nobody until BACKUP_ROLES says who
    mapped = load_access({"BACKUP_ROLES": "clinic:admin, dashboard:Service,nagios:monitor"}, two_users)
    assert mapped.roles == {"clinic": Role.ADMIN, "dashboard": Role.SERVICE, "nagios": Role.MONITOR}
    assert load_access({"BACKUP_ROLES": "viewer:staff"}, one_user).roles == {"viewer": Role.STAFF}
    # Orthanc not checking passwords while it answers other machines: the user in the header is whatever
    # the caller wrote, so nobody gets a role.
    for config in (
        '{"AuthenticationEnabled": false, "RemoteAccessAllowed": true, "RegisteredUsers": {"clinic": "pw"}}',
        '{"AuthenticationEnabled": false, "RemoteAccessAllowed": true}',
    ):
        off = load_access({}, config)
        assert off.role_of("clinic") is None and "AuthenticationEnabled" in (off.problem or "")
    # Debian's own Orthanc (no password, this machine only): its callers read every patient through Orthanc
    # itself, so they are admins of the backup too; a cross-site form is still refused.
    for config in ('{"AuthenticationEnabled": false}', "{}"):
        local = load_access({}, config)
        assert local.problem is None and local.role_of(None) == local.role_of("anyone") == Role.ADMIN
        svc = RoleService(local)
        assert dispatch(svc, "GET", "status", {}, b"", {"host": "localhost:8042"})[0] == 200
        form = {"host": "localhost:8042", "content-type": "text/plain", "origin": "http://evil.example"}
        assert dispatch(svc, "POST", "drills", {}, b"{}", form)[0] in (403, 415)
    assert load_access({}, '{"RemoteAccessAllowed": true, "RegisteredUsers": {"clinic": "pw"}}').roles
    for bad in ("clinic", "clinic:root", ":admin", "clinic:admin,clinic:staff"):
        with pytest.raises(ConfigError, match="BACKUP_ROLES"):
            parse_roles(bad)


def test_security_docs_list_every_route_with_its_role():
    text = (ROOT / "docs" / "security.md").read_text()
    section = text.split("## Who may call the plugin's routes", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `(GET|POST|PUT) /backup/([^`]+)` \| (\w+) \|", section, re.M)
    documented = {(m, p): role for m, p, role in rows}
    for route in ROUTES:
        found = {role for (m, p), role in documented.items() if m == route.method and route.pattern.fullmatch(p)}
        assert found == {route.role.word}, (route.method, route.pattern.pattern, found)
    for method, path in documented:  # and no row for a route that does not exist
        assert any(r.method == method and r.pattern.fullmatch(path) for r in ROUTES), (method, path)
