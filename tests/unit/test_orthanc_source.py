"""Reading an instance's bytes straight from Orthanc's storage folder, only when that is provably safe."""

from __future__ import annotations

import hashlib
import json

import pytest

from pacs_backup.clients.orthanc_source import OrthancReader

UUID = "0a1b2c3d-0000-4000-8000-000000000001"
DICOM = b"\0" * 128 + b"DICM" + b"payload" * 100


def md5(b: bytes) -> str:
    return hashlib.md5(b, usedforsecurity=False).hexdigest()


class Getter:
    """Answers Orthanc's REST calls for one instance; records which were made."""

    def __init__(self, info: dict[str, object]) -> None:
        self.info, self.calls = info, []

    def __call__(self, uri: str) -> bytes:
        self.calls.append(uri)
        if uri.endswith("/attachments/dicom/info"):
            return json.dumps(self.info).encode()
        if uri.endswith("/file"):
            return DICOM
        raise AssertionError(uri)


def info(**over: object) -> dict[str, object]:
    base = {"Uuid": UUID, "UncompressedSize": len(DICOM), "CompressedSize": len(DICOM)}
    base |= {"UncompressedMD5": md5(DICOM), "CompressedMD5": md5(DICOM)}
    return base | over


@pytest.fixture
def storage(tmp_path):
    f = tmp_path / UUID[0:2] / UUID[2:4] / UUID
    f.parent.mkdir(parents=True)
    f.write_bytes(DICOM)
    return tmp_path


def test_an_uncompressed_file_is_read_from_storage_with_the_md5_orthanc_recorded_to_check_it_by(storage):
    get = Getter(info())
    stored = OrthancReader(get, storage_dir=storage).read_stored("i1")
    assert stored.data == DICOM and stored.md5 == md5(DICOM)
    assert stored.path == f"{UUID[0:2]}/{UUID[2:4]}/{UUID}"
    assert not any(c.endswith("/file") for c in get.calls)  # Orthanc was not asked for the bytes


@pytest.mark.parametrize(
    "why",
    ["compressed", "no md5 recorded", "other size on disk", "missing on disk", "no storage folder", "odd uuid"],
)
def test_otherwise_the_bytes_come_from_orthanc_as_before(storage, why):
    over: dict[str, object] = {}
    if why == "compressed":
        over = {"CompressedSize": 50, "CompressedMD5": md5(b"z")}
    elif why == "no md5 recorded":
        over = {"UncompressedMD5": None, "CompressedMD5": None}
    elif why == "other size on disk":
        (storage / UUID[0:2] / UUID[2:4] / UUID).write_bytes(DICOM + b"X")
    elif why == "missing on disk":
        (storage / UUID[0:2] / UUID[2:4] / UUID).unlink()
    elif why == "odd uuid":
        over = {"Uuid": "../../../etc/passwd"}
    get = Getter(info(**over))
    reader = OrthancReader(get, storage_dir=None if why == "no storage folder" else storage)
    stored = reader.read_stored("i1")
    assert stored.data == DICOM and stored.md5 is None
    assert get.calls[-1] == "/instances/i1/file"
