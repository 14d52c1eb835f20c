"""Holes an outside test found in the plugin, against the real Orthanc: bad input never stops the PACS."""

from __future__ import annotations

import json
import stat
from io import BytesIO
from pathlib import Path
from types import SimpleNamespace

import pytest
from pydicom import dcmread
from pynetdicom import AE
from pynetdicom.sop_class import SecondaryCaptureImageStorage

import devstack
from pacs_dashboard.backend import Backend
from pacs_dashboard.backend_api import BackendRefused
from tests.support.common import raw_request, wait_until
from tests.support.dicomgen import nested_instance
from tests.support.pacs import fill, orthanc_env, script
from tests.support.servers import OrthancServer


def raw(o, method: str, uri: str, body: bytes | None = None) -> tuple[int, str]:
    """Send a request as an attacker would (no client-side checks); return status and body."""
    auth = (o.settings.username, o.settings.password)
    return raw_request(o.url + uri, method, body, auth, {"Content-Type": "application/json"})


def alive(o) -> bool:
    return o.proc is not None and o.proc.alive() and raw(o, "GET", "/system")[0] == 200


@pytest.mark.parametrize("route", ["/backup/restores", "/backup/snapshots", "/backup/drills"])
def test_deeply_nested_json_is_a_400_not_a_crash(orthanc, route):
    for body in (b"[" * 500 + b"]" * 500, b'{"target":' + b"[" * 5000 + b"]" * 5000 + b"}", b"[" * 200_000):
        code, text = raw(orthanc, "POST", route, body)
        assert code == 400 and "error" in json.loads(text), (code, text[:200])
        assert alive(orthanc)


@pytest.mark.parametrize(
    ("method", "uri", "body"),
    [
        ("POST", "/backup/restores", b"\xff\xfe{"),
        ("POST", "/backup/restores", b"{not json"),
        (
            "POST",
            "/backup/restores",
            b'{"study_uid": "1.2.3", "source": "minio", "snapshot": "' + b"a" * 5_000_000 + b'"}',
        ),
        ("POST", "/backup/restores", b'{"study_uid": ["1.2"], "source": "minio"}'),
        ("POST", "/backup/snapshots", b'{"target": "nowhere"}'),
        ("GET", "/backup/runs/99999999999999999999999999", None),
        ("GET", "/backup/runs/abc", None),
        ("GET", "/backup/runs?limit=9999999999999999999999", None),
        ("GET", "/backup/studies?q=%00", None),
        ("GET", "/backup/studies?q=%ff%fe", None),
    ],
)
def test_bad_input_answers_a_sentence_never_a_python_error(orthanc, method, uri, body):
    code, text = raw(orthanc, method, uri, body)
    assert code in (400, 404), (code, text[:300])
    message = json.loads(text)["error"]
    assert "Traceback" not in message and "Error:" not in message and len(message) < 400
    assert alive(orthanc)


def test_study_paths_take_only_plain_uids(orthanc):
    # Orthanc itself resolves "..%2F.." before routing (a caller holding its password may call /system
    # anyway); what reaches the plugin must be one plain UID before anything is looked up with it.
    for uri in (
        "/backup/studies/1.2%20OR%201",
        "/backup/studies/%3Cscript%3E",
        "/backup/studies/" + "9" * 300,
        "/backup/studies/1..2/snapshots",
    ):
        code, text = raw(orthanc, "GET", uri)
        assert code == 400 and "not a valid study identifier" in text, (uri, code, text[:200])


def test_repeated_job_requests_queue_one_run(orthanc):
    fill(orthanc, studies=1, per_study=2)
    orthanc.wait_replicated(2)
    orthanc.http().post_json("/backup/snapshots", {})  # keeps the job thread busy for a while
    ids = {tuple(orthanc.http().post_json("/backup/drills", {"target": "offsite"})["runs"]) for _ in range(5)}
    assert len(ids) == 1


def test_deeply_nested_dicom_is_refused_by_c_store_and_rest(orthanc):
    # C-STORE: a file nested 200 deep is accepted by Orthanc 1.10 and then crashes it whenever read.
    ae = AE(ae_title="ATTACKER")
    ae.add_requested_context(SecondaryCaptureImageStorage, "1.2.840.10008.1.2.1")
    assoc = ae.associate("127.0.0.1", orthanc.settings.dicom_port, ae_title="PACS")
    assert assoc.is_established
    assoc.send_c_store(dcmread(BytesIO(nested_instance(200))))
    assoc.release()
    # REST: deeper than the limit but shallow enough that Orthanc's own upload path survives it.
    code, text = raw(orthanc, "POST", "/instances", nested_instance(40))
    assert code == 200 and json.loads(text)["Status"] == "FilteredOut", text
    assert alive(orthanc)
    assert orthanc.http().get_json("/instances") == []
    st = wait_until(lambda: (s := orthanc.status())["refused_instances"] >= 2 and s, 10, "refused count")
    assert "nest" in st["last_refused"]["reason"]
    fill(orthanc, studies=1, per_study=1)  # ordinary images still arrive and are copied
    orthanc.wait_replicated(1)


def test_repository_passwords_are_masked_in_status_and_runs(
    orthanc_factory, minio_server, bucket, rest_server, restic_password_file
):
    address = rest_server.new_repository().replace("http://", "http://clinic:Sup3r-Secret-pw@")
    o = orthanc_factory(
        {
            **minio_server.env(bucket),
            "RESTIC_REPOSITORY": address,
            "RESTIC_PASSWORD_FILE": str(restic_password_file),
            "BACKUP_FIRST_RUN_DELAY_SECONDS": "86400",
        }
    )
    rest_server.stop()  # restic's error text then quotes the address
    try:
        assert o.run_job("snapshots")[0]["state"] == "failed"
    finally:
        rest_server.start()
    status, runs = raw(o, "GET", "/backup/status")[1], raw(o, "GET", "/backup/runs")[1]
    assert "clinic:***@" in status
    for text in (status, runs, o.log.read_text()):
        assert "Sup3r-Secret-pw" not in text, text[:500]


def test_data_files_are_owner_only(orthanc):
    fill(orthanc, studies=1, per_study=2)
    orthanc.wait_replicated(2)
    assert orthanc.run_job("snapshots")[0]["state"] == "ok"
    storage = orthanc.settings.work_dir / "storage"
    loose = [p for p in [storage, *storage.rglob("*")] if stat.S_IMODE(p.stat().st_mode) & 0o077]
    assert not loose, loose[:5]


# --- who may call the plugin's routes, and from where (issue 23, item 6) --------------------------------
ROLES = "tech:admin,dash:service,desk:staff,nagios:monitor"  # tech: the fixture's user, the scripts' one


class ManyUsersOrthanc(OrthancServer):
    """The test Orthanc with more registered users than the technician's ``tech``."""

    def __init__(self, work: Path, backup_env: dict[str, str], users: dict[str, str]) -> None:
        super().__init__(work, backup_env)
        self.users = users

    def start(self) -> None:
        argv, env = devstack.orthanc_command(self.settings, self.backup_env)
        config = json.loads(Path(argv[1]).read_text())
        config["RegisteredUsers"].update(self.users)
        Path(argv[1]).write_text(json.dumps(config))
        self.proc = devstack.spawn("orthanc", argv, self.log, env, cwd=self.settings.work_dir)
        devstack.wait_http(self.proc, self.url + "/system", 90, (self.settings.username, self.settings.password))

    def as_user(self, user: str, method: str, uri: str, body: bytes | None = None, **headers: str) -> tuple[int, str]:
        password = self.settings.password if user == "tech" else self.users[user]
        sent = {"Content-Type": "application/json", **{k.replace("_", "-"): v for k, v in headers.items()}}
        return raw_request(self.url + uri, method, body, (user, password), sent)


@pytest.fixture
def many_users(tmp_path, minio_server, bucket, offsite_env):
    users = {name: devstack.new_secret() for name in ("dash", "desk", "nagios", "visitor")}
    o = ManyUsersOrthanc(
        tmp_path / "orthanc", {**minio_server.env(bucket), **offsite_env, "BACKUP_ROLES": ROLES}, users
    )
    o.start()
    yield o
    o.stop()
    print(o.log.read_text(errors="replace")[-4000:])


# A request for every route that changes nothing when it is allowed (unknown targets, an empty config).
EVERY_ROUTE = [
    ("GET", "/backup/status", None, "monitor"),
    ("GET", "/backup/runs", None, "monitor"),
    ("GET", "/backup/runs/1", None, "monitor"),
    ("GET", "/backup/snapshots", None, "monitor"),
    ("POST", "/backup/snapshots", b'{"target": "nowhere"}', "staff"),
    ("POST", "/backup/drills", b'{"target": "nowhere"}', "staff"),
    ("POST", "/backup/restores", b'{"study_uid": "1.2.3", "source": "nowhere"}', "staff"),
    ("GET", "/backup/studies?q=a", None, "staff"),
    ("GET", "/backup/studies/1.2.3", None, "staff"),
    ("GET", "/backup/studies/1.2.3/snapshots", None, "staff"),
    ("GET", "/backup/studies/1.2.3/preview", None, "staff"),
    ("POST", "/backup/drives", b'{"target": "nowhere"}', "service"),
    ("GET", "/backup/rclone-config", None, "service"),
    ("PUT", "/backup/rclone-config", b'{"config": ""}', "service"),
    ("GET", "/backup/quarantine", None, "admin"),
    ("POST", "/backup/quarantine/requeue", b"{}", "admin"),
]
RANK = {"monitor": 1, "staff": 2, "service": 3, "admin": 4}
USER_ROLES = {"nagios": "monitor", "desk": "staff", "dash": "service", "tech": "admin", "visitor": None}


def test_security_each_orthanc_user_reaches_only_its_routes(many_users):
    o = many_users
    fill(o, studies=1, per_study=1)
    o.wait_replicated(1)
    for method, uri, body, least in EVERY_ROUTE:
        for user, role in USER_ROLES.items():
            code, text = o.as_user(user, method, uri, body)
            if role is not None and RANK[role] >= RANK[least]:
                assert code not in (401, 403, 415), (user, method, uri, code, text[:300])
            else:
                assert code == 403, (user, method, uri, code, text[:300])
                said = json.loads(text)["error"]
                assert (f"'{user}' has the {role} role" if role else f"'{user}' has no role") in said, said
    # The monitor sees health, never a patient, and cannot start a restore.
    assert o.as_user("nagios", "GET", "/backup/status")[0] == 200
    code, text = o.as_user("nagios", "GET", "/backup/studies")
    assert code == 403 and "needs the staff role" in text and "PATIENT" not in text.upper()
    code, text = o.as_user("nagios", "POST", "/backup/restores", b'{"study_uid": "1.2.3", "source": "minio"}')
    assert code == 403 and "needs the staff role" in text
    assert [r for r in o.http().get_json("/backup/runs") if r["kind"] == "restore"] == []


def test_security_a_cross_site_post_starts_nothing(many_users):
    o = many_users
    drill = b'{"target": "offsite"}'
    # A page on another site posting a form (text/plain) with the browser's cached password of the admin.
    code, text = o.as_user(
        "tech", "POST", "/backup/drills", drill, Content_Type="text/plain", Origin="http://evil.example"
    )
    assert code == 403 and "another site" in text, text
    code, text = o.as_user("tech", "POST", "/backup/restores", drill, Sec_Fetch_Site="cross-site")
    assert code == 403 and "another site" in text, text
    code, text = o.as_user("tech", "POST", "/backup/drills", drill, Origin="http://evil.example")
    assert code == 403, text
    code, text = o.as_user("tech", "POST", "/backup/drills", drill, Content_Type="text/plain")
    assert code == 415 and "application/json" in text, text
    code, text = o.as_user("dash", "PUT", "/backup/rclone-config", b'{"config": "x"}', Content_Type="text/plain")
    assert code == 415, text
    assert o.http().get_json("/backup/runs") == []  # nothing was started
    # Orthanc's own pages (same origin) and the scripts (no Origin) still may.
    same = f"http://127.0.0.1:{o.settings.http_port}"
    code, text = o.as_user("tech", "POST", "/backup/drills", drill, Origin=same, Sec_Fetch_Site="same-origin")
    assert code == 200 and json.loads(text)["runs"], text  # Orthanc answers a plugin's 202 as 200
    assert len(o.http().get_json("/backup/runs")) == 1


def test_security_the_dashboard_and_the_technician_scripts_keep_working(many_users):
    o = many_users
    fill(o, studies=1, per_study=2)
    o.wait_replicated(2)
    # The dashboard with an Orthanc account of its own, mapped to the service role.
    dashboard = Backend(SimpleNamespace(orthanc_url=o.url, orthanc_username="dash", orthanc_password=o.users["dash"]))
    status, problem = dashboard.status()
    assert problem is None and status["replicated"] == 2
    (study,) = dashboard.studies("", "", "", "")
    assert len(dashboard.study(study["study_uid"])["instances"]) == 2
    assert dashboard.trigger("drills", "offsite")
    assert "remotes" in dashboard.rclone_config()
    with pytest.raises(BackendRefused) as refused:  # the plugin's own sentence, not a role refusal
        dashboard.prepare_drive("nowhere", "Drive A")
    assert "role" not in str(refused.value)
    # The technician scripts, with the admin's Orthanc user (as Compose and make run give them).
    listed = script("quarantine", env=orthanc_env(o))
    assert listed.returncode == 0, listed.stdout + listed.stderr
    # ... and with a monitor's they say why not, in a sentence.
    as_monitor = {**orthanc_env(o), "ORTHANC_USERNAME": "nagios", "ORTHANC_PASSWORD": o.users["nagios"]}
    refused_script = script("quarantine", env=as_monitor)
    assert refused_script.returncode != 0 and "needs the admin role" in refused_script.stdout + refused_script.stderr
