"""A cloud PACS reached by DICOM (DIMSE): C-STORE to send, C-FIND to verify, C-MOVE to get a study back.

No DICOM stack of our own: the plugin drives Orthanc's DICOM client through the in-process REST API.
At first use the remote is declared to Orthanc as the modality ``pacs-backup-cloud``
(``PUT /modalities/{name}``, which Orthanc 1.10 and 1.12 accept at run time whether or not
``DicomModalitiesInDatabase`` keeps it across restarts - it is declared again at every start), allowed to
echo and to store (the C-MOVE of a restore comes back as C-STORE from it) and nothing else. Then:

- send: ``POST /modalities/{name}/store`` with the PACS's instance ids (one association per batch); an
  instance no longer in the PACS goes from its bucket copy through ``/modalities/{name}/store-straight``;
- verify: ``/modalities/{name}/query`` (C-FIND, series then instances: hierarchical, as strict PACS want);
- restore: a C-FIND of the study, then ``/queries/{id}/retrieve`` (C-MOVE to this appliance's AE title;
  ``/modalities/{name}/move`` runs only synchronously in 1.10, and C-GET is not in 1.10).

Store and retrieve run as Orthanc jobs that this thread polls, not as ``"Synchronous": true`` calls: the
Python plugin (4.0) holds the interpreter lock during an SDK call, so a synchronous C-MOVE deadlocks
with the plugin's own received-instance filter (the instances coming back wait for the lock until the
DICOM timeout), and a long C-STORE over a slow VPN would hold up every image arriving meanwhile. Each
call is preceded by a TCP probe, so an unreachable remote never ties Orthanc up until its DICOM timeout.

Errors are classified by probing, never by reading Orthanc's message: when a DICOM call fails, a TCP
connection to the remote is tried (refused or timed out: :class:`CloudUnavailable`, not counted against
an image), then a C-ECHO (refused: the association is refused, usually an AE title the remote does not
know: :class:`CloudRefused`); otherwise the remote accepted the association and refused the operation.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from pacs_backup.contracts.errors import BackupError, CloudRefused, CloudUnavailable
from pacs_backup.restore.uploads import RestoreReport
from pacs_backup.settings.cloud_peer import DicomPeerSettings

from .throttle import Throttle

if TYPE_CHECKING:
    from pacs_backup.replication.cloud_pacs import Outgoing, SentStudy
    from pacs_backup.restore.uploads import OrthancTarget, Progress

Getter = Callable[[str], bytes]
Sender = Callable[[str, bytes], bytes]  # POST or PUT of a body to an in-process REST URI

MODALITY = "pacs-backup-cloud"
STORE_TIMEOUT_S = 600.0  # one batch of a study
MOVE_TIMEOUT_S = 3600.0  # a whole study coming back
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}


def dataset_bytes(data: bytes) -> bytes:
    """The DICOM data set of a Part 10 file: what follows the file meta information (group 0002).

    A C-STORE carries only the data set; the receiver writes its own file meta header (its implementation
    UID and version, the sender's AE title), so files that went through DIMSE are compared by this part.
    """
    if len(data) < 132 or data[128:132] != b"DICM":
        return data
    pos = 132
    while pos + 8 <= len(data) and data[pos : pos + 2] == b"\x02\x00":  # group 0x0002, little endian
        vr = data[pos + 4 : pos + 6]
        if vr in _LONG_VRS:
            (length,) = struct.unpack_from("<I", data, pos + 8)
            pos += 12 + length
        else:
            (length,) = struct.unpack_from("<H", data, pos + 6)
            pos += 8 + length
    return data[pos:]


def dataset_sha256(data: bytes) -> str:
    return hashlib.sha256(dataset_bytes(data)).hexdigest()


class DimsePeer:
    """One remote DICOM node, used through the Orthanc the plugin runs in. Thread-safe."""

    def __init__(
        self,
        peer: DicomPeerSettings,
        get: Getter,
        post: Sender,
        put: Sender,
        connect_timeout_s: float = 10.0,
        throttle: Throttle | None = None,
        modality: str = MODALITY,
        called: str = "The cloud PACS",
    ) -> None:
        self.peer = peer
        self.modality = modality  # its name in Orthanc's list of modalities (one per remote)
        self.called = called  # what sentences call it ("The cloud PACS", a referring clinic's name)
        self.throttle = throttle  # paces whole batches: Orthanc's DICOM client sends them (CLOUD_PACS_UPLOAD_LIMIT)
        self._get, self._post, self._put = get, post, put
        self._timeout = connect_timeout_s
        self._declared = False
        self._lock = threading.Lock()

    @property
    def shown(self) -> str:
        return f"{self.peer.shown} (DICOM)"

    # --- the Orthanc side -------------------------------------------------------------------------------
    def _declare(self) -> None:
        with self._lock:
            if self._declared:
                return
            body: dict[str, Any] = {
                "AET": self.peer.aet,
                "Host": self.peer.host,
                "Port": self.peer.port,
                "AllowEcho": True,
                "AllowStore": True,  # a restore's C-MOVE answers come back as C-STORE from it
                "AllowFind": False,
                "AllowMove": False,
                "AllowGet": False,
            }
            if self.peer.local_aet:
                body["LocalAet"] = self.peer.local_aet  # the AE title Orthanc calls it with
            try:
                self._put(f"/modalities/{self.modality}", json.dumps(body).encode())
            except BackupError as exc:
                raise BackupError(
                    f"Orthanc would not declare {self.called} at {self.peer.shown} as a DICOM modality ({exc})."
                ) from None
            self._declared = True

    def _reachable(self) -> None:
        """Raise CloudUnavailable when no TCP connection to the remote can be made."""
        try:
            with socket.create_connection((self.peer.host, self.peer.port), timeout=self._timeout):
                pass
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise CloudUnavailable(
                f"{self.called} at {self.peer.shown} cannot be reached ({reason}); check the network or VPN."
            ) from None

    def _job(self, uri: str, body: dict[str, Any], what: str, timeout_s: float) -> dict[str, Any]:
        """Run ``uri`` as an Orthanc job and wait for it; returns the job's content."""
        answer = self._call(uri, json.dumps({**body, "Asynchronous": True}).encode(), what)
        job = answer.get("ID") if isinstance(answer, dict) else None
        if not job:
            raise CloudRefused(f"Orthanc did not start a job to {what} with {self.peer.shown}.")
        deadline, pause = time.monotonic() + timeout_s, 0.05
        while time.monotonic() < deadline:
            try:
                info = json.loads(self._get(f"/jobs/{job}"))
            except (BackupError, ValueError):
                raise CloudRefused(f"Orthanc lost its job to {what} with {self.peer.shown}.") from None
            state = info.get("State") if isinstance(info, dict) else None
            if state == "Success":
                content = info.get("Content")
                return content if isinstance(content, dict) else {}
            if state == "Failure":
                raise self._classify(what)
            time.sleep(pause)  # releases the interpreter lock: Orthanc's job runs meanwhile
            pause = min(pause * 2, 1.0)
        with contextlib.suppress(BackupError):
            self._post(f"/jobs/{job}/cancel", b"")
        raise CloudUnavailable(f"{self.called} at {self.peer.shown} did not {what} within {timeout_s:.0f} s.")

    def _call(self, uri: str, body: bytes, what: str) -> Any:
        """POST to ``uri`` (a DICOM operation); a failure becomes CloudUnavailable or CloudRefused."""
        self._reachable()
        self._declare()
        try:
            answer = self._post(uri, body)
        except BackupError:
            self._declared = False  # declared again next time, in case it was removed meanwhile
            raise self._classify(what) from None
        try:
            return json.loads(answer) if answer.strip() else {}
        except ValueError:
            raise CloudRefused(f"Orthanc answered {what} with something unreadable.") from None

    def _classify(self, what: str) -> BackupError:
        """Why a DICOM operation failed, found by probing the remote (never by matching a message)."""
        try:
            self._reachable()
        except CloudUnavailable as exc:
            return exc
        try:
            self._declare()
            self._post(f"/modalities/{self.modality}/echo", b"{}")
        except BackupError:
            return CloudRefused(
                f"{self.called} at {self.peer.shown} refused the DICOM association: it must know this "
                f"appliance's AE title ({self._local_aet()}, with its address and port) and its own AE title must "
                f"be {self.peer.aet} (CLOUD_PACS_DICOM, CLOUD_PACS_DICOM_LOCAL_AET)."
            )
        return CloudRefused(
            f"{self.called} at {self.peer.shown} accepted the DICOM association but refused to {what}; "
            "its log says why (e.g. this AE title may not query or retrieve)."
        )

    def _local_aet(self) -> str:
        if self.peer.local_aet:
            return self.peer.local_aet
        try:
            return str(json.loads(self._get("/system")).get("DicomAet") or "ORTHANC")
        except (BackupError, ValueError):
            return "ORTHANC"

    # --- the cloud PACS interface (see cloud_pacs.CloudPacs) --------------------------------------------
    def send(self, items: Sequence[Outgoing]) -> None:
        """C-STORE: the PACS's own instances in one association, bucket copies one by one."""
        if self.throttle is not None:
            self.throttle.take(sum(len(i.data) for i in items))
        in_pacs = [i.orthanc_id for i in items if i.orthanc_id is not None]
        if in_pacs:
            answer = self._job(
                f"/modalities/{self.modality}/store",
                {"Resources": in_pacs},
                "store the images (C-STORE)",
                STORE_TIMEOUT_S,
            )
            if int(answer.get("FailedInstancesCount") or 0) >= len(in_pacs):
                raise CloudRefused(f"{self.called} at {self.peer.shown} refused every image sent (C-STORE).")
        for item in items:
            if item.orthanc_id is None:
                self._call(f"/modalities/{self.modality}/store-straight", item.data, "store an image (C-STORE)")

    def _query(self, level: str, query: dict[str, str]) -> str:
        """A C-FIND; returns the id of Orthanc's record of it (``/queries/{id}``)."""
        body = json.dumps({"Level": level, "Query": query}).encode()
        answer = self._call(f"/modalities/{self.modality}/query", body, f"answer a search (C-FIND, {level})")
        qid = answer.get("ID") if isinstance(answer, dict) else None
        if not qid:
            raise CloudRefused(f"Orthanc gave no search id for a C-FIND to {self.peer.shown}.")
        return str(qid)

    def _find(self, level: str, query: dict[str, str]) -> list[dict[str, Any]]:
        qid = self._query(level, query)
        try:
            found = json.loads(self._get(f"/queries/{qid}/answers?expand&simplify"))
        except (BackupError, ValueError):
            raise CloudRefused(f"The answers of a C-FIND to {self.peer.shown} could not be read.") from None
        return [a for a in found if isinstance(a, dict)] if isinstance(found, list) else []

    def instances_of(self, study_uid: str) -> set[str]:
        """C-FIND: the SOPInstanceUIDs the remote holds for a study (series level, then instance level)."""
        series = {
            str(a["SeriesInstanceUID"])
            for a in self._find("Series", {"StudyInstanceUID": study_uid, "SeriesInstanceUID": ""})
            if a.get("SeriesInstanceUID")
        }
        found: set[str] = set()
        for uid in sorted(series):
            query = {"StudyInstanceUID": study_uid, "SeriesInstanceUID": uid, "SOPInstanceUID": ""}
            found |= {str(a["SOPInstanceUID"]) for a in self._find("Instance", query) if a.get("SOPInstanceUID")}
        return found

    def restore(
        self, study_uid: str, orthanc: OrthancTarget, sent: SentStudy, progress: Progress | None = None
    ) -> RestoreReport:
        """C-MOVE the study into this Orthanc, then check each instance's data set against what was sent.

        The files Orthanc writes for instances received by C-STORE carry its own file meta header, so the
        check compares the data set (everything after group 0002) with that of the file that was sent.
        An instance this PACS still held is left as it was (Orthanc keeps the first copy) and checked too.
        """
        report = RestoreReport(source=f"cloud PACS {self.shown}", details={"studies": [study_uid]})
        expected: dict[str, str] = {}
        for sop, load in sent.originals().items():
            try:
                expected[sop] = dataset_sha256(load())
            except BackupError as exc:
                report.failures.append((sop, f"what was sent cannot be read to check it: {exc}"))
        report.total = len(expected) + len(report.failures)
        if report.total == 0:
            return report
        qid = self._query("Study", {"StudyInstanceUID": study_uid})
        move = {"TargetAet": self._local_aet()}
        self._job(f"/queries/{qid}/retrieve", move, "send the study back (C-MOVE)", MOVE_TIMEOUT_S)
        for done, (sop, digest) in enumerate(sorted(expected.items()), start=1):
            why = self._check(sop, digest)
            if why is None:
                report.verified += 1
            else:
                report.failures.append((sop, why))
            if progress is not None:
                progress(done, len(expected))
        return report

    def _check(self, sop: str, digest: str) -> str | None:
        try:
            hits = json.loads(self._post("/tools/lookup", sop.encode()))
            ids = [h["ID"] for h in hits if isinstance(h, dict) and h.get("Type") == "Instance"]
            if not ids:
                return "the cloud PACS did not send it back"
            if dataset_sha256(self._get(f"/instances/{ids[0]}/file")) != digest:
                return "it came back different from what was sent (its DICOM data set differs)"
        except (BackupError, ValueError, KeyError, TypeError) as exc:
            return f"it could not be checked in this PACS ({exc})"
        return None
