"""A group of three clinics on real programs: three clinic stacks (Orthanc + plugin, each with its own local
bucket), one group store (a second MinIO), a real PostgreSQL and the group service (the dashboard in group mode).

Clinics join with `scripts/group-join-clinic`; each clinic's studies are found by the group search; the
overview shows every clinic, and the one that was stopped as quiet; a study of one clinic is viewed from the
central copy and brought into another clinic's PACS, byte for byte and audited on both sides; one clinic's keys
are refused the other's objects by the S3 server; the stopped clinic is recovered from the group store alone;
a reconcile finds a study whose catalog rows were lost.
"""

from __future__ import annotations

import html
import io
import os
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import requests
from minio import Minio
from minio.error import S3Error

import devstack
from pacs_backup.dicom import multipart
from tests.support.common import figure, sha256, wait_until
from tests.support.pacs import fill, orthanc_env, pacs_content, script
from tests.support.postgres import group_database_url, postgres_server  # noqa: F401 - fixtures
from tests.support.servers import MinioServer

GROUP_BUCKET = "group-pacs"
# clinic -> (patient name, owner, species) of its one study
STUDIES = {
    "north": ("Müller^Bella", "Hans Müller", "Canine"),
    "riverside": ("García^Luna", "José García", "Feline"),
    "south": ("Dubois^Zoë", "Émile Dubois", "Lapine"),
}


@pytest.fixture(scope="module")
def group_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MinioServer]:
    """A second real MinIO: the group's store, apart from the clinics' local buckets."""
    server = MinioServer(tmp_path_factory.mktemp("group-store"))
    server.start()
    yield server
    server.stop()


class GroupService:
    """The real dashboard (waitress) in group mode, logged in as the group's administrator."""

    def __init__(self, work: Path, env: dict[str, str], port: int) -> None:
        self.port, self.work = port, work
        self.username, self.password = "groupadmin", devstack.new_secret()
        full = {
            "DASHBOARD_MODE": "group",
            "DASHBOARD_USERNAME": self.username,
            "DASHBOARD_PASSWORD": self.password,
            **env,
        }
        self.proc = devstack.start_dashboard(port, work, full, work / "dashboard.log")
        self.session = self.login(self.username, self.password)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def login(self, username: str, password: str) -> requests.Session:
        s = requests.Session()
        page = s.get(self.url + "/login", timeout=10).text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token, page[:500]
        r = s.post(
            self.url + "/login",
            data={"username": username, "password": password, "csrf_token": token.group(1)},
            timeout=10,
            allow_redirects=False,
        )
        assert r.status_code == 302, r.text
        return s

    def csrf(self, s: requests.Session) -> str:
        found = re.search(r'name="csrf_token" value="([^"]+)"', s.get(self.url + "/group/studies", timeout=10).text)
        assert found
        return found.group(1)

    def found(self, q: str, s: requests.Session | None = None) -> set[tuple[str, str]]:
        """(clinic, study) of the group search's results for ``q``."""
        page = (s or self.session).get(self.url + "/group/studies", params={"q": q}, timeout=30)
        assert page.status_code == 200, page.text[:500]
        return set(re.findall(r'data-clinic="([^"]+)" data-study="([^"]+)"', page.text))

    def stop(self) -> None:
        self.proc.stop(20)


def join(store: MinioServer, clinic: str, database_url: str, service_url: str) -> dict[str, str]:
    """`scripts/group-join-clinic`: the lines the clinic's installer pastes (keys and token in one go)."""
    env = {
        "GROUP_STORE_ENDPOINT": store.endpoint,
        "GROUP_STORE_BUCKET": GROUP_BUCKET,
        "GROUP_STORE_ROOT_USER": store.access_key,
        "GROUP_STORE_ROOT_PASSWORD": store.secret_key,
        "GROUP_LOCK_DAYS": "1",
        "GROUP_DATABASE_URL": database_url,
        "GROUP_SERVICE_URL": service_url,
    }
    done = script("group-join-clinic", clinic, "--label", clinic.title(), env=env, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert store.secret_key not in done.stdout + done.stderr
    pasted = dict(line.split("=", 1) for line in done.stdout.splitlines() if line and not line.startswith("#"))
    for name in ("GROUP_CLINIC_ID", "GROUP_STORE_ACCESS_KEY", "GROUP_STORE_SECRET_KEY", "GROUP_SERVICE_TOKEN"):
        assert pasted.get(name), (name, done.stdout)
    assert pasted["GROUP_SERVICE_URL"] == service_url
    return pasted


def reader_lines(store: MinioServer) -> dict[str, str]:
    root = {
        "GROUP_STORE_ENDPOINT": store.endpoint,
        "GROUP_STORE_BUCKET": GROUP_BUCKET,
        "GROUP_STORE_ROOT_USER": store.access_key,
        "GROUP_STORE_ROOT_PASSWORD": store.secret_key,
        "GROUP_LOCK_DAYS": "1",
    }
    done = script("group", "add-reader", env=root, timeout=120)
    assert done.returncode == 0, done.stderr
    return dict(line.split("=", 1) for line in done.stdout.splitlines() if line and not line.startswith("#"))


def refused(call) -> str:
    with pytest.raises(S3Error) as err:
        call()
    return str(err.value.code)


def clinic_section(page: str, clinic: str) -> str:
    start = page.index(f'id="clinic-{clinic}"')
    end = page.find('<section class="clinic"', start + 1)
    return page[start : end if end > 0 else len(page)]


def test_group_of_three_clinics_search_quiet_view_bring_keys_recovery_and_reconcile(
    orthanc_factory,
    minio_server,
    group_store,
    group_database_url,  # noqa: F811 - the fixture imported above
    tmp_path: Path,
):
    started = time.monotonic()
    port = devstack.free_port()
    service_url = f"http://127.0.0.1:{port}"
    reader = reader_lines(group_store)
    pasted = {c: join(group_store, c, group_database_url, service_url) for c in STUDIES}
    service_env = {
        "GROUP_DATABASE_URL": group_database_url,
        "GROUP_QUIET_MINUTES": "0.3",  # 18 s: the live clinics beat every second
        "GROUP_RECONCILE_MINUTES": "1440",  # the test runs the reconcile itself
        **reader,
    }
    (tmp_path / "group-service").mkdir()
    service = GroupService(tmp_path / "group-service", service_env, port)
    try:
        _run(orthanc_factory, minio_server, group_store, group_database_url, service, pasted, reader, started)
    finally:
        service.stop()


def _run(orthanc_factory, minio_server, group_store, database_url, service, pasted, reader, started) -> None:
    common = {"BACKUP_FIRST_RUN_DELAY_SECONDS": "86400", "GROUP_MANIFEST_SECONDS": "1", "GROUP_HEARTBEAT_SECONDS": "1"}
    clinics = {
        c: orthanc_factory({**minio_server.env(f"t-group3-{c}"), **common, **pasted[c]}, name=c) for c in STUDIES
    }
    uids: dict[str, str] = {}
    for clinic, (name, owner, species) in STUDIES.items():
        (uids[clinic],) = fill(clinics[clinic], studies=1, per_study=3, patient_name=name, owner=owner, species=species)
    for clinic, o in clinics.items():
        wait_until(lambda o=o: o.status()["group"]["verified"] == 3, 120, f"{clinic}'s images in the group store")

    # the group search finds each clinic's study by the owner's or the patient's words, accents and order aside
    searched_at = time.monotonic()
    for clinic, words in (("north", "muller hans"), ("riverside", "Luna garcia"), ("south", "zoe dubois")):
        wait_until(lambda w=words, c=clinic: service.found(w) == {(c, uids[c])}, 60, f"{words!r} found in {clinic}")
    assert service.found("canine") == {("north", uids["north"])}
    catalog_s = time.monotonic() - searched_at

    # the overview shows every clinic from its heartbeat, in the clinic dashboard's words
    page = wait_until(
        lambda: (
            (p := service.session.get(service.url + "/group", timeout=10).text)
            and all(f'id="clinic-{c}"' in p and "Last heard from" in clinic_section(p, c) for c in STUDIES)
            and p
        ),
        60,
        "every clinic heard from",
    )
    for clinic in STUDIES:
        section = clinic_section(str(page), clinic)
        assert "Local backup copy" in section and "Group copy" in section and "quiet-alarm" not in section

    # clinic south stops: first what it holds (to compare its recovery with), then the box is switched off
    south_content = pacs_content(clinics["south"])
    clinics["south"].stop()
    stopped_at = time.monotonic()

    # a study of riverside viewed from the central copy: the group service's DICOMweb gives its exact bytes
    b, study_b = clinics["riverside"], uids["riverside"]
    in_b = {}
    for i in b.http().get_json("/instances"):
        tags = b.http().get_json(f"/instances/{i}/tags?simplify")
        in_b[tags["SOPInstanceUID"]] = (tags["SeriesInstanceUID"], b.http().get(f"/instances/{i}/file"))
    web = f"{service.url}/group/copies/riverside/dicom-web"
    accept = 'multipart/related; type="application/dicom"; transfer-syntax=*'
    for sop, (series, data) in in_b.items():
        r = service.session.get(
            f"{web}/studies/{study_b}/series/{series}/instances/{sop}", headers={"Accept": accept}, timeout=30
        )
        assert r.status_code == 200, r.text[:300]
        ((_, part),) = multipart.decode(r.content, r.headers["Content-Type"])
        assert sha256(part) == sha256(data)
    listed = service.session.get(f"{web}/studies/{study_b}/instances", timeout=30).json()
    assert len(listed) == 3
    viewer = service.session.get(f"{service.url}/group/studies/riverside/{study_b}/view", timeout=30)
    assert viewer.status_code == 200 and "/group/copies/riverside/dicom-web" in viewer.text

    # ... and brought into north's PACS, byte for byte, audited on both sides
    bring_started = time.monotonic()
    r = service.session.post(
        service.url + "/group/deliveries",
        data={"csrf_token": service.csrf(service.session), "clinic": "riverside", "study": study_b, "to": "north"},
        timeout=30,
    )
    assert r.status_code == 200 and "north will fetch this study" in html.unescape(r.text), r.text[:500]
    a = clinics["north"]
    wanted = sorted(sha256(d) for _, d in in_b.values())
    wait_until(lambda: pacs_content(a).get(study_b) == wanted, 120, "riverside's study in north's PACS, byte for byte")
    deliveries = wait_until(
        lambda: "delivered:" in (t := html.unescape(service.session.get(service.url + "/group/deliveries").text)) and t,
        60,
        "the delivery reported back",
    )
    assert "3 of 3 images brought into clinic north's PACS and verified" in str(deliveries)
    bring_s = time.monotonic() - bring_started
    audit = html.unescape(service.session.get(service.url + "/audit", timeout=10).text)
    assert "group_delivery_requested" in audit and "group_delivery_done" in audit and "group_copy_viewed" in audit
    runs = a.http().get_json("/backup/runs?kind=restore")
    run = next(r for r in runs if r["target"] == "group")
    assert run["state"] == "ok" and "riverside" in run["summary"]["source"] and run["summary"]["verified"] == 3
    assert f"study {study_b} of clinic riverside: 3 of 3 images brought into clinic north's PACS" in a.log.read_text()

    # the delivery API answers only the clinic the study is brought to, with its own token
    (delivery,) = re.findall(r'data-delivery="(\d+)"', str(deliveries))
    api = f"{service.url}/group/api/deliveries"
    assert requests.get(api, timeout=10).status_code == 401
    other = {"Authorization": f"Bearer {pasted['riverside']['GROUP_SERVICE_TOKEN']}"}
    assert requests.get(f"{api}/{delivery}/instances", headers=other, timeout=10).status_code == 404
    assert requests.get(api, headers=other, timeout=10).json() == {"deliveries": []}

    # a clinic's staff see only the clinics granted to them
    staff_password = devstack.new_secret()
    csrf = service.csrf(service.session)
    account = {"username": "north-desk", "role": "staff", "password": staff_password, "again": staff_password}
    assert service.session.post(service.url + "/users/add", data={**account, "csrf_token": csrf}).status_code == 200
    granted = {"username": "north-desk", "clinic": "north", "csrf_token": csrf}
    assert service.session.post(service.url + "/group/users/clinics", data=granted).status_code == 200
    desk = service.login("north-desk", staff_password)
    assert service.found("dubois", desk) == set() and service.found("garcia", desk) == set()
    assert service.found("muller", desk) == {("north", uids["north"])}
    assert 'id="clinic-riverside"' not in desk.get(service.url + "/group", timeout=10).text
    assert desk.get(f"{web}/studies/{study_b}/instances", timeout=10).status_code == 404

    # north's keys: never riverside's objects (refused by the S3 server itself)
    root = group_store.client()
    mine = Minio(
        group_store.endpoint,
        pasted["north"]["GROUP_STORE_ACCESS_KEY"],
        pasted["north"]["GROUP_STORE_SECRET_KEY"],
        secure=False,
    )
    theirs = next(root.list_objects(GROUP_BUCKET, prefix="riverside/dicom/", recursive=True)).object_name
    before = root.stat_object(GROUP_BUCKET, theirs)
    assert refused(lambda: mine.get_object(GROUP_BUCKET, theirs).read()) == "AccessDenied"
    assert refused(lambda: list(mine.list_objects(GROUP_BUCKET, prefix="riverside/", recursive=True))) == "AccessDenied"
    assert refused(lambda: mine.remove_object(GROUP_BUCKET, theirs)) == "AccessDenied"
    assert refused(lambda: mine.remove_object(GROUP_BUCKET, theirs, version_id=before.version_id)) == "AccessDenied"
    assert refused(lambda: mine.put_object(GROUP_BUCKET, theirs, io.BytesIO(b"x"), 1)) == "AccessDenied"
    after = root.stat_object(GROUP_BUCKET, theirs)
    assert (after.version_id, after.etag) == (before.version_id, before.etag)

    # south recovered on a new box from the group store alone, with its own group keys
    recovery_started = time.monotonic()
    fresh = orthanc_factory({}, plugin=False, name="south-rebuilt")
    only_group = {k: v for k, v in pasted["south"].items() if k.startswith("GROUP_STORE") or k == "GROUP_CLINIC_ID"}
    done = script("disaster-recovery", "--from", "group", env={**orthanc_env(fresh), **only_group}, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert pacs_content(fresh) == south_content
    recovery_s = time.monotonic() - recovery_started

    # a catalog message lost: north's study leaves the catalog, the reconcile finds it again in the group store
    study_a = uids["north"]
    wait_until(  # north copied the study brought to it as its own, and the catalog has all of it
        lambda: (g := a.status()["group"])["verified"] == 6 and g["feed"]["depth"] == 0,
        60,
        "north's six images verified in the group store and fed to the catalog",
    )
    assert service.found(study_b) == {("riverside", study_b), ("north", study_b)}
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("DELETE FROM instances WHERE clinic = 'north' AND study_uid = %s", (study_a,))
        conn.execute("DELETE FROM studies WHERE clinic = 'north' AND study_uid = %s", (study_a,))
    assert service.found("muller") == set()
    cli_env = {
        "GROUP_DATABASE_URL": database_url,
        **reader,
        "PYTHONPATH": f"{devstack.PLUGINS_DIR}:{devstack.ROOT / 'dashboard'}",
    }
    reconciled = subprocess.run(
        [str(devstack.VENV / "bin" / "python"), "-m", "pacs_dashboard", "group", "reconcile"],
        env={"PATH": os.environ["PATH"], **cli_env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert reconciled.returncode == 0, reconciled.stdout + reconciled.stderr
    assert '"clinic": "north"' in reconciled.stdout and '"added": 3' in reconciled.stdout
    assert service.found("muller hans") == {("north", study_a)}

    # south, switched off, is its own alarm on the overview once GROUP_QUIET_MINUTES passed without a word
    quiet = wait_until(
        lambda: "quiet-alarm" in (s := clinic_section(service.session.get(service.url + "/group").text, "south")) and s,
        150,
        "south shown as not heard from",
        interval=2,
    )
    assert "South has not been heard from since" in html.unescape(str(quiet))
    overview = service.session.get(service.url + "/group").text
    assert "quiet-alarm" not in clinic_section(overview, "north")
    assert "quiet-alarm" not in clinic_section(overview, "riverside")
    figure(
        "group_three_clinics",
        catalog_search_s=round(catalog_s, 1),
        bring_study_s=round(bring_s, 1),
        recover_clinic_s=round(recovery_s, 1),
        quiet_after_stop_s=round(time.monotonic() - stopped_at, 1),
        total_s=round(time.monotonic() - started, 1),
    )
