"""The cloud PACS by DICOM: its settings, the data set a C-STORE carries, and how failures are classified."""

from __future__ import annotations

import io
import json
import socket

import pydicom
import pytest

from pacs_backup.contracts.errors import CloudRefused, CloudUnavailable, ConfigError, SourceError
from pacs_backup.replication.cloud_pacs import Outgoing
from pacs_backup.replication.dimse_peer import MODALITY, DimsePeer, dataset_bytes
from pacs_backup.settings.cloud_peer import DicomPeerSettings, load_cloud_pacs
from tests.support.dicomgen import make_instance, new_uid


# --- settings ------------------------------------------------------------------------------------------
def test_a_dicom_peer_is_parsed_with_an_optional_local_ae_title():
    s = load_cloud_pacs({"CLOUD_PACS_DICOM": "CLOUDPACS@pacs.example.net:104"})
    assert s is not None and s.url is None and s.dicom == DicomPeerSettings("CLOUDPACS", "pacs.example.net", 104)
    s = load_cloud_pacs({"CLOUD_PACS_DICOM": " VET_PACS@[fd00::7]:11112 ", "CLOUD_PACS_DICOM_LOCAL_AET": "CLINIC1"})
    assert s is not None and s.dicom == DicomPeerSettings("VET_PACS", "fd00::7", 11112, "CLINIC1")
    assert s.dicom.shown == "VET_PACS@[fd00::7]:11112"
    assert load_cloud_pacs({}) is None
    web = load_cloud_pacs({"CLOUD_PACS_URL": "https://cloud.example/dicom-web"})
    assert web is not None and web.dicom is None and web.url == "https://cloud.example/dicom-web"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        (
            {"CLOUD_PACS_URL": "https://cloud.example/dicom-web", "CLOUD_PACS_DICOM": "A@h:104"},
            "CLOUD_PACS_URL and CLOUD_PACS_DICOM",
        ),
        ({"CLOUD_PACS_DICOM": "pacs.example.net:104"}, "CLOUD_PACS_DICOM"),
        ({"CLOUD_PACS_DICOM": "A@pacs.example.net"}, "CLOUD_PACS_DICOM"),
        ({"CLOUD_PACS_DICOM": "A@pacs.example.net:0"}, "CLOUD_PACS_DICOM"),
        ({"CLOUD_PACS_DICOM": "A@pacs.example.net:70000"}, "CLOUD_PACS_DICOM"),
        ({"CLOUD_PACS_DICOM": "A@pacs.example.net:ab"}, "CLOUD_PACS_DICOM"),
        ({"CLOUD_PACS_DICOM": "@pacs.example.net:104"}, "CLOUD_PACS_DICOM"),
        ({"CLOUD_PACS_DICOM": "A_TITLE_LONGER_THAN_16@h:104"}, "CLOUD_PACS_DICOM"),
        ({"CLOUD_PACS_DICOM": "BAD\\AET@h:104"}, "CLOUD_PACS_DICOM"),
        ({"CLOUD_PACS_DICOM": "A@fd00::7:104"}, "CLOUD_PACS_DICOM"),
        ({"CLOUD_PACS_DICOM": "A@http://h/x:104"}, "CLOUD_PACS_DICOM"),
        ({"CLOUD_PACS_DICOM": "A@h:104", "CLOUD_PACS_DICOM_LOCAL_AET": "É"}, "CLOUD_PACS_DICOM_LOCAL_AET"),
        ({"CLOUD_PACS_DICOM_LOCAL_AET": "CLINIC"}, "CLOUD_PACS_DICOM_LOCAL_AET"),
        ({"CLOUD_PACS_DICOM": "A@h:104", "CLOUD_PACS_USERNAME": "u"}, "CLOUD_PACS_USERNAME"),
        ({"CLOUD_PACS_DICOM": "A@h:104", "CLOUD_PACS_PASSWORD": "p"}, "CLOUD_PACS_PASSWORD"),
    ],
)
def test_a_bad_cloud_pacs_setting_is_a_config_error_naming_the_variable(env, named):
    with pytest.raises(ConfigError) as err:
        load_cloud_pacs(env)
    assert named in str(err.value)


# --- what a C-STORE carries ----------------------------------------------------------------------------
def test_the_data_set_is_what_follows_the_file_meta_header():
    data = make_instance(new_uid(), new_uid(), rows=8, cols=8)
    ds = pydicom.dcmread(io.BytesIO(data))
    rewritten = io.BytesIO()
    ds.file_meta.ImplementationVersionName = "OTHER_RECEIVER_1"  # what a receiver does to the header
    ds.file_meta.SourceApplicationEntityTitle = "CLINICBOX"
    ds.save_as(rewritten, enforce_file_format=True)
    assert rewritten.getvalue() != data
    assert dataset_bytes(rewritten.getvalue()) == dataset_bytes(data)
    assert data.endswith(dataset_bytes(data)) and len(dataset_bytes(data)) < len(data) - 132
    assert dataset_bytes(b"not a part 10 file") == b"not a part 10 file"


# --- the adapter, with Orthanc's in-process REST API faked ----------------------------------------------
class FakeOrthanc:
    """Answers like Orthanc's REST API; ``fail`` lists the URIs whose POST fails."""

    def __init__(self, fail: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.fail, self.calls, self.declared = set(fail), [], None

    def get(self, uri: str) -> bytes:
        self.calls.append(("GET", uri, b""))
        if uri.startswith("/jobs/"):
            return json.dumps({"State": "Success", "Content": {"FailedInstancesCount": 0}}).encode()
        return b"{}"

    def post(self, uri: str, body: bytes) -> bytes:
        self.calls.append(("POST", uri, body))
        if uri in self.fail:
            raise SourceError(f"Orthanc refused {uri}: Error in the network protocol")
        return json.dumps({"ID": "job-1"}).encode()

    def put(self, uri: str, body: bytes) -> bytes:
        self.calls.append(("PUT", uri, body))
        self.declared = json.loads(body)
        return b""


def peer(port: int, orthanc: FakeOrthanc, local_aet: str | None = "CLINICBOX") -> DimsePeer:
    return DimsePeer(
        DicomPeerSettings("CLOUDPACS", "127.0.0.1", port, local_aet), orthanc.get, orthanc.post, orthanc.put
    )


@pytest.fixture
def listening_port():
    with socket.socket() as s:  # accepts TCP connections (the remote is up), speaks no DICOM
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield s.getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_send_declares_the_remote_then_stores_by_id_and_bucket_copies_straight(listening_port):
    orthanc = FakeOrthanc()
    peer(listening_port, orthanc).send([Outgoing("id-1", b"a"), Outgoing(None, b"from-bucket"), Outgoing("id-2", b"b")])
    assert orthanc.declared == {
        "AET": "CLOUDPACS",
        "Host": "127.0.0.1",
        "Port": listening_port,
        "AllowEcho": True,
        "AllowStore": True,
        "AllowFind": False,
        "AllowMove": False,
        "AllowGet": False,
        "LocalAet": "CLINICBOX",
    }
    posts = [(u, b) for m, u, b in orthanc.calls if m == "POST"]
    assert posts[0] == (
        f"/modalities/{MODALITY}/store",
        json.dumps({"Resources": ["id-1", "id-2"], "Asynchronous": True}).encode(),
    )
    assert posts[1] == (f"/modalities/{MODALITY}/store-straight", b"from-bucket")


def test_an_unreachable_remote_is_unavailable_without_asking_orthanc(closed_port):
    orthanc = FakeOrthanc()
    with pytest.raises(CloudUnavailable) as err:
        peer(closed_port, orthanc).send([Outgoing("id-1", b"a")])
    assert "cannot be reached" in str(err.value) and "CLOUDPACS@127.0.0.1" in str(err.value)
    assert not [c for c in orthanc.calls if c[0] == "POST"]


def test_a_refused_association_is_told_apart_from_a_refused_operation(listening_port):
    store, echo = f"/modalities/{MODALITY}/store", f"/modalities/{MODALITY}/echo"
    with pytest.raises(CloudRefused) as err:  # the echo fails too: the association itself is refused
        peer(listening_port, FakeOrthanc({store, echo})).send([Outgoing("id-1", b"a")])
    assert "refused the DICOM association" in str(err.value) and "CLINICBOX" in str(err.value)
    with pytest.raises(CloudRefused) as err:  # the echo works: it refused the images
        peer(listening_port, FakeOrthanc({store})).send([Outgoing("id-1", b"a")])
    assert "accepted the DICOM association but refused to store the images" in str(err.value)


def test_every_image_refused_is_a_refusal(listening_port):
    orthanc = FakeOrthanc()
    orthanc.get = lambda uri: json.dumps(  # type: ignore[method-assign]
        {"State": "Success", "Content": {"InstancesCount": 2, "FailedInstancesCount": 2}}
    ).encode()
    with pytest.raises(CloudRefused, match="refused every image"):
        peer(listening_port, orthanc).send([Outgoing("id-1", b"a"), Outgoing("id-2", b"b")])
