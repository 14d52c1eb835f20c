"""Every copy read as a source of studies, for the DICOMweb service of copies: :class:`CopyReader`.

:class:`PluginCopies` reads through the plugin's ``/backup/copies`` routes (every kind of copy: the PACS, the
bucket, drives, offsite snapshots, the cloud PACS). :class:`Copies`, what pages use (``deps.copies()``),
adds two things to it: while the PACS does not answer, the ``bucket`` source is read directly with the
dashboard's read-only account (:mod:`pacs_dashboard.bucket_copies`); and recent instances are kept in memory
(``DASHBOARD_VIEW_MEMORY_MB``), so a viewer's repeated requests for one image read the copy once.

Errors: NotFound (not in that copy), SourceUnavailable (cannot be read now), CopyDamaged (bytes do not match
the checksum the copy recorded), and the backend's NotInBackend / BackendRefused for bad names.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from pacs_backup.contracts.errors import BackupError, NotFound
from pacs_backup.sources.base import CopyInstance, CopyStudy, SourceDoc, SourceUnavailable, StudyMatch

from .backend_api import BackendApi, NotInBackend, PacsDown
from .bucket_copies import BUCKET, BucketCopies
from .view_cache import MB, ByteLru

LISTING_S = 10.0  # how long a study's list of instances is reused (a viewer's burst of requests)
DOWN_S = 30.0  # after the PACS did not answer, how long the bucket is read directly without asking it first
PACS_DOWN_SOURCE = (
    "The PACS is not answering right now, and this copy is read through it. "
    "The local backup copy can still be read: use the source 'bucket'."
)


def source_label(source: str) -> str:
    """A copy's name in a sentence ("the PACS", "the offsite snapshot 1a2b3c4d"...), from its source name."""
    fixed = {
        "pacs": "the PACS",
        BUCKET: "the local backup copy (bucket)",
        "offsite": "the newest offsite snapshot",
        "cloud-pacs": "the cloud PACS",
    }
    if source in fixed:
        return fixed[source]
    if source.startswith("drive-"):
        return f"the backup drive {source.removeprefix('drive-')}"
    target, _, snapshot = source.rpartition("-")
    return f"the snapshot {snapshot} of the copy {target}" if target else f"the copy {source}"


class CopyReader(Protocol):
    """Read-only access to every copy, by source name (``pacs``, ``bucket``, ``drive-<id>``, ``offsite``...)."""

    def sources(self, study_uid: str | None = None) -> list[SourceDoc]:
        """The copies (those holding ``study_uid`` when given)."""
        ...

    def studies(self, source: str, match: StudyMatch) -> list[CopyStudy]: ...

    def instances(self, source: str, study_uid: str) -> list[CopyInstance]:
        """Every instance of the study in the copy. Raises NotFound when the copy holds none."""
        ...

    def read(self, source: str, study_uid: str, sop_uid: str) -> bytes:
        """One instance's exact bytes, checked against the copy's checksum."""
        ...


class PluginCopies:
    """:class:`CopyReader` through the plugin's REST API (``GET /backup/copies...``)."""

    def __init__(self, backend: BackendApi) -> None:
        self.backend = backend

    def sources(self, study_uid: str | None = None) -> list[SourceDoc]:
        return self.backend.copies(study_uid)

    def studies(self, source: str, match: StudyMatch) -> list[CopyStudy]:
        return self.backend.copy_studies(source, match)

    def instances(self, source: str, study_uid: str) -> list[CopyInstance]:
        try:
            return self.backend.copy_instances(source, study_uid)
        except NotInBackend as exc:
            raise NotFound(str(exc)) from None

    def read(self, source: str, study_uid: str, sop_uid: str) -> bytes:
        try:
            return self.backend.copy_instance(source, study_uid, sop_uid)
        except NotInBackend as exc:
            raise NotFound(str(exc)) from None


class Copies:
    """The reader pages use: the plugin, the bucket directly while the PACS is down, and a memory of recent
    instances bounded in bytes."""

    def __init__(self, plugin: CopyReader, bucket: BucketCopies | None, memory_mb: float = 256) -> None:
        self.plugin, self.bucket = plugin, bucket
        self.memory = ByteLru(int(memory_mb * MB))
        # The DICOM JSON of recent headers (small; a study's metadata is asked once per series and viewer).
        self.headers = ByteLru(int(max(8 * MB, memory_mb * MB / 8)))
        self._lock = threading.Lock()
        self._listings: dict[tuple[str, str], tuple[float, list[CopyInstance]]] = {}
        self._down_until = 0.0
        self._early = ThreadPoolExecutor(max_workers=2, thread_name_prefix="view-early")

    def read_early(self, source: str, study_uid: str) -> None:
        """Start reading the study's first image now, in the background: the viewer's page names a snapshot, whose
        first look fetches the study (one restic run, most of a second); the page's own request, a moment
        later, waits for that same fetch instead of starting it. Failures are left for the page to report."""
        self._early.submit(self._first_image, source, study_uid)

    def _first_image(self, source: str, study_uid: str) -> None:
        try:
            found = self.instances(source, study_uid)
            if found:
                self.read(source, study_uid, found[0]["sop_uid"])
        except BackupError:
            pass  # the page asks again and shows the sentence

    def _direct(self, source: str) -> bool:
        return source == BUCKET and self.bucket is not None and time.monotonic() < self._down_until

    def _pacs_down(self, source: str) -> bool:
        """Note the PACS is down; True when the source can be read without it."""
        self._down_until = time.monotonic() + DOWN_S
        return source == BUCKET and self.bucket is not None

    def sources(self, study_uid: str | None = None) -> list[SourceDoc]:
        try:
            return self.plugin.sources(study_uid)
        except PacsDown:
            self._down_until = time.monotonic() + DOWN_S
            pacs = SourceDoc(
                name="pacs", kind="pacs", label="PACS", available=False, reason=PACS_DOWN_SOURCE, taken_at=""
            )
            return (self.bucket.sources(study_uid) if self.bucket is not None else []) + [pacs]

    def studies(self, source: str, match: StudyMatch) -> list[CopyStudy]:
        if self._direct(source) and self.bucket is not None:
            return self.bucket.studies(source, match)
        try:
            return self.plugin.studies(source, match)
        except PacsDown:
            if self._pacs_down(source) and self.bucket is not None:
                return self.bucket.studies(source, match)
            raise SourceUnavailable(PACS_DOWN_SOURCE) from None

    def instances(self, source: str, study_uid: str) -> list[CopyInstance]:
        key, now = (source, study_uid), time.monotonic()
        with self._lock:
            hit = self._listings.get(key)
        if hit is not None and now - hit[0] < LISTING_S:
            return hit[1]
        found = self._instances(source, study_uid)
        with self._lock:
            if len(self._listings) > 256:
                self._listings.clear()
            self._listings[key] = (now, found)
        return found

    def _instances(self, source: str, study_uid: str) -> list[CopyInstance]:
        if self._direct(source) and self.bucket is not None:
            return self.bucket.instances(source, study_uid)
        try:
            return self.plugin.instances(source, study_uid)
        except PacsDown:
            if self._pacs_down(source) and self.bucket is not None:
                return self.bucket.instances(source, study_uid)
            raise SourceUnavailable(PACS_DOWN_SOURCE) from None

    def read(self, source: str, study_uid: str, sop_uid: str) -> bytes:
        key = (source, study_uid, sop_uid)
        data = self.memory.get(key)
        if data is not None:
            return data
        data = self._read(source, study_uid, sop_uid)
        self.memory.put(key, data)
        return data

    def _read(self, source: str, study_uid: str, sop_uid: str) -> bytes:
        if self._direct(source) and self.bucket is not None:
            return self.bucket.read(source, study_uid, sop_uid)
        try:
            return self.plugin.read(source, study_uid, sop_uid)
        except PacsDown:
            if self._pacs_down(source) and self.bucket is not None:
                return self.bucket.read(source, study_uid, sop_uid)
            raise SourceUnavailable(PACS_DOWN_SOURCE) from None
