"""Holes an outside test found in the plugin, against the real Orthanc: bad input never stops the PACS."""

from __future__ import annotations

import json
import stat
from io import BytesIO

import pytest
from pydicom import dcmread
from pynetdicom import AE
from pynetdicom.sop_class import SecondaryCaptureImageStorage

from tests.support.common import raw_request, wait_until
from tests.support.dicomgen import nested_instance
from tests.support.pacs import fill


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
