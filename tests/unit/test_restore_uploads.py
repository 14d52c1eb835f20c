"""Uploads that start while a restore is still fetching: nothing unverified reaches Orthanc."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

from pacs_backup.restore.uploads import DAMAGED, Loaded, RestoreReport, VerifiedUploads


class RecordingOrthanc:
    """Stores what it is sent and answers the MD5 of it, as Orthanc does."""

    def __init__(self) -> None:
        self.stored: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def upload(self, dicom: bytes) -> dict[str, Any]:
        key = hashlib.sha1(dicom, usedforsecurity=False).hexdigest()
        with self._lock:
            self.stored[key] = dicom
        return {"ID": key}

    def get_json(self, uri: str) -> Any:
        key = uri.split("/")[2]
        return {"UncompressedMD5": hashlib.md5(self.stored[key], usedforsecurity=False).hexdigest()}


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def test_an_early_file_still_being_written_is_uploaded_once_complete_never_half():
    full = b"DICM" * 1000
    state = {"written": full[:100]}  # restic has written only part of it when first read
    orthanc, report = RecordingOrthanc(), RestoreReport(source="test")
    uploads = VerifiedUploads(orthanc, report, None)
    uploads.expect(1)
    uploads.submit("a.dcm", lambda: Loaded(state["written"], sha(full)), early=True)
    uploads.wait()
    assert orthanc.stored == {}  # the half-written file was not sent
    state["written"] = full
    uploads.retry_early()
    uploads.close()
    assert report.ok and report.verified == 1 and report.failures == []
    assert list(orthanc.stored.values()) == [full]


def test_a_damaged_copy_is_reported_and_not_sent_even_after_the_retry():
    orthanc, report = RecordingOrthanc(), RestoreReport(source="test")
    seen: list[tuple[int, int]] = []
    uploads = VerifiedUploads(orthanc, report, lambda d, t: seen.append((d, t)))
    uploads.expect(3)
    uploads.submit("good.dcm", lambda: Loaded(b"good", sha(b"good")))
    uploads.submit("bad.dcm", lambda: Loaded(b"bitrot", sha(b"original")))
    uploads.submit("bad-early.dcm", lambda: Loaded(b"bitrot2", sha(b"original2")), early=True)
    uploads.retry_early()
    uploads.close()
    assert report.verified == 1 and not report.ok
    assert sorted(report.failures) == [("bad-early.dcm", DAMAGED), ("bad.dcm", DAMAGED)]
    assert list(orthanc.stored.values()) == [b"good"]
    assert seen[-1] == (3, 3) and len(seen) == 3


def test_files_written_before_the_manifest_is_read_wait_for_it_and_are_all_uploaded(tmp_path):
    from pacs_backup.restore.uploads import AnnouncedFiles

    root = "/var/lib/orthanc/db"
    blobs = {f"ab/cd/f{i}": f"image {i}".encode() for i in range(5)}
    for path, data in blobs.items():
        f = tmp_path / root.lstrip("/") / path
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(data)
    entries = [{"path": p, "key": f"k{p[-1]}", "sha256": sha(d)} for p, d in blobs.items()]
    orthanc, report = RecordingOrthanc(), RestoreReport(source="test")
    uploads = VerifiedUploads(orthanc, report, None)
    files = AnnouncedFiles(uploads, tmp_path)
    files.restored(f"{root}/ab/cd/f0")  # restic finished these before the manifest was read
    files.restored(f"{root}/ab/cd/f1")
    files.restored(f"{root}/ab")  # a folder: not in the manifest, ignored
    uploads.wait()
    assert orthanc.stored == {}  # nothing sent before its checksum could be checked
    files.know(root, entries)
    files.restored(f"{root}/ab/cd/f2")
    files.finish()  # f3 and f4 were never announced: uploaded after restic ended
    uploads.close()
    assert report.ok and report.verified == 5
    assert sorted(orthanc.stored.values()) == sorted(blobs.values())


class CountingMd5:
    """Counts the MD5s the restore computes itself."""

    def __init__(self, monkeypatch: Any) -> None:
        import pacs_backup.restore.uploads as uploads_module

        self.calls = 0
        real = hashlib.md5

        def md5(data: bytes, **kw: Any) -> Any:
            self.calls += 1
            return real(data, **kw)

        monkeypatch.setattr(uploads_module.hashlib, "md5", md5)


def test_the_copys_own_md5_spares_hashing_each_restored_file_again(monkeypatch):
    counted = CountingMd5(monkeypatch)
    orthanc, report = RecordingOrthanc(), RestoreReport(source="test")
    files = [f"image {i}".encode() * 100 for i in range(6)]
    md5 = [hashlib.md5(f, usedforsecurity=False).hexdigest() for f in files]
    counted.calls = 0  # the fake Orthanc's own MD5s are not the restore's
    orthanc_md5 = RecordingOrthanc.get_json

    def answer_without_counting(self: RecordingOrthanc, uri: str) -> Any:
        key = uri.split("/")[2]
        return {"UncompressedMD5": md5[files.index(self.stored[key])]}

    monkeypatch.setattr(RecordingOrthanc, "get_json", answer_without_counting)
    uploads = VerifiedUploads(orthanc, report, None)
    uploads.expect(len(files))
    for f, m in zip(files, md5, strict=True):
        uploads.submit("x.dcm", lambda f=f, m=m: Loaded(f, sha(f), m))
    uploads.close()
    monkeypatch.setattr(RecordingOrthanc, "get_json", orthanc_md5)
    assert report.ok and report.verified == 6
    assert report.bytes_verified == sum(map(len, files))
    assert counted.calls == 0


def test_a_wrong_md5_from_the_copy_neither_fails_a_good_restore_nor_passes_a_bad_one():
    class Corrupting(RecordingOrthanc):
        def upload(self, dicom: bytes) -> dict[str, Any]:
            return super().upload(dicom + b"!" if dicom.startswith(b"bad") else dicom)

    orthanc, report = Corrupting(), RestoreReport(source="test")
    uploads = VerifiedUploads(orthanc, report, None)
    uploads.expect(2)
    # The store's ETag is not the MD5 of the bytes (e.g. encrypted at rest): the bytes sent decide.
    uploads.submit("good.dcm", lambda: Loaded(b"good", sha(b"good"), "0" * 32))
    # Orthanc stored other bytes than were sent: failed, whatever the copy claimed.
    bad_md5 = hashlib.md5(b"bad!", usedforsecurity=False).hexdigest()
    uploads.submit("bad.dcm", lambda: Loaded(b"bad", sha(b"bad"), bad_md5[::-1]))
    uploads.close()
    assert report.verified == 1 and report.bytes_verified == 4
    assert report.failures == [("bad.dcm", "Orthanc stored different bytes than were restored")]


def test_only_a_single_part_etag_is_taken_as_an_md5():
    from pacs_backup.clients.object_store import etag_md5

    assert etag_md5('"9E107D9D372BB6826BD81D3542A419D6"') == "9e107d9d372bb6826bd81d3542a419d6"
    assert etag_md5('"9e107d9d372bb6826bd81d3542a419d6-3"') is None  # multipart: not an MD5 of the bytes
    assert etag_md5(None) is None and etag_md5("") is None and etag_md5('"abc"') is None
