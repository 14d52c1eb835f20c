"""Uploads that start while a restore is still fetching: nothing unverified reaches Orthanc."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

from pacs_backup.restore.uploads import DAMAGED, RestoreReport, VerifiedUploads


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
    uploads.submit("a.dcm", lambda: (state["written"], sha(full)), early=True)
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
    uploads.submit("good.dcm", lambda: (b"good", sha(b"good")))
    uploads.submit("bad.dcm", lambda: (b"bitrot", sha(b"original")))
    uploads.submit("bad-early.dcm", lambda: (b"bitrot2", sha(b"original2")), early=True)
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
