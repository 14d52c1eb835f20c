"""The dashboard's client of the backup engine: :class:`~pacs_dashboard.backend_api.BackendApi` over the
plugin's REST API on Orthanc (one source of truth).

Every failure is one of the errors of :mod:`pacs_dashboard.backend_api`, each with a sentence fit for a page:
the plugin's own sentence when it refused, a plain one when something is not there or the PACS does not
answer. Every identifier is checked (:mod:`pacs_backup.contracts.inputs`, the plugin's own rules) before it
becomes part of a request made with the dashboard's Orthanc credentials.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from typing import Any

from pacs_backup.clients.orthanc_http import ErrorAnswer, OrthancHttp, RequestRefused
from pacs_backup.contracts.documents import RunDoc, StatusDoc
from pacs_backup.contracts.errors import BackupError, SourceError, SourceGone
from pacs_backup.contracts.inputs import (
    MAX_LABEL_CHARS,
    UID_RULE,
    is_name,
    is_plain_text,
    is_run_id,
    is_snapshot_id,
    is_uid,
)
from pacs_backup.dicom.preview import BadImage, PreviewsBusy
from pacs_backup.settings.upload_overrides import UploadLimitDoc
from pacs_backup.sources.base import CopyDamaged, CopyInstance, CopyStudy, SourceDoc, SourceUnavailable, StudyMatch
from pacs_backup.state.catalog import StudySummary

from .backend_api import (
    PACS_DOWN,
    BackendBusy,
    BackendError,
    BackendRefused,
    HoldingDoc,
    NotInBackend,
    PacsDown,
    PacsStudy,
    PreparedDrive,
    RcloneConfigDoc,
    ReferralsDoc,
    SnapshotDoc,
    StudyDoc,
)
from .config import DashboardSettings

_ORTHANC_ID = re.compile(r"[0-9a-f]{8}(?:-[0-9a-f]{8}){4}")
# A copy's name as a source: pacs, bucket, drive-<target>, offsite, <target>-<snapshot id>, cloud-pacs.
SOURCE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


def _q(uid: str) -> str:
    return urllib.parse.quote(uid, safe="")


def _uid(uid: str) -> str:
    """``uid`` when it is one, else NotInBackend: checked here too, whatever the page checked, because
    Orthanc decodes %2F, so "..%2F..%2Fsystem" would reach its other routes with our credentials."""
    if not is_uid(uid):
        raise NotInBackend(f"There is no such study: {UID_RULE}.")
    return _q(uid)


def _orthanc_id(oid: str) -> str:
    if not _ORTHANC_ID.fullmatch(oid):
        raise NotInBackend("There is no such image in the PACS.")
    return oid


def _source(name: str) -> str:
    if not SOURCE_NAME.fullmatch(name):
        raise NotInBackend("There is no such backup copy. GET /copies lists them.")
    return name


def _refusal(exc: RequestRefused) -> str:
    """The plugin's own sentence."""
    return exc.sentence


class Backend:
    """:class:`~pacs_dashboard.backend_api.BackendApi` over HTTP, with the dashboard's Orthanc account."""

    def __init__(self, settings: DashboardSettings) -> None:
        self.http = OrthancHttp(
            settings.orthanc_url, settings.orthanc_username, settings.orthanc_password, timeout_s=15
        )
        # The status is asked often (pages, the monitor, /healthz): a PACS that hangs must not hold a page long.
        self.quick = OrthancHttp(
            settings.orthanc_url, settings.orthanc_username, settings.orthanc_password, timeout_s=8
        )
        # Preparing a drive makes a repository on it (restic init): a slow USB disk may take a while.
        self.slow = OrthancHttp(
            settings.orthanc_url, settings.orthanc_username, settings.orthanc_password, timeout_s=120
        )

    @staticmethod
    def _down(exc: Exception, missing: str = "That is not in the backups.") -> BackendError:
        """The dashboard's error for a failed call: NotInBackend (404), BackendRefused (4xx, with the
        plugin's sentence) or PacsDown (no answer, or an error inside the PACS)."""
        if isinstance(exc, BackendError):
            return exc
        if isinstance(exc, SourceGone):
            return NotInBackend(missing)
        if isinstance(exc, RequestRefused):
            return (BackendBusy if exc.status == 429 else BackendRefused)(_refusal(exc))
        if isinstance(exc, SourceError | ValueError):
            return PacsDown(PACS_DOWN)
        return BackendError(str(exc))

    def _get_json(self, uri: str, missing: str = "That is not in the backups.") -> Any:
        try:
            return self.http.get_json(uri)
        except (BackupError, ValueError) as exc:
            raise self._down(exc, missing) from None

    def status(self) -> tuple[StatusDoc | None, str | None]:
        """``(status, None)`` or ``(None, reason)`` when Orthanc or the plugin does not answer."""
        try:
            return self.quick.get_json("/backup/status"), None
        except (BackupError, ValueError) as exc:
            return None, str(exc)

    def runs(self, kind: str | None = None, limit: int = 100) -> list[RunDoc]:
        q = {"limit": str(limit), **({"kind": kind} if kind else {})}
        runs: list[RunDoc] = list(self._get_json("/backup/runs?" + urllib.parse.urlencode(q)))
        return runs

    def run(self, run_id: int) -> RunDoc:
        if not is_run_id(int(run_id)):
            raise NotInBackend("There is no such restore or test.")
        run: RunDoc = self._get_json(f"/backup/runs/{int(run_id)}", "There is no such restore or test.")
        return run

    def trigger(self, kind: str, target: str | None = None) -> list[int]:
        if kind not in ("snapshots", "drills") or (target is not None and not is_name(target)):
            raise BackendRefused("There is no such job or backup copy.")
        try:
            return list(self.http.post_json(f"/backup/{kind}", {"target": target} if target else {})["runs"])
        except BackupError as exc:
            raise self._down(exc) from None

    def studies(self, q: str, date_from: str, date_to: str, modality: str) -> list[StudySummary]:
        params = urllib.parse.urlencode({"q": q, "from": date_from, "to": date_to, "modality": modality})
        found: list[StudySummary] = list(self._get_json("/backup/studies?" + params))
        return found

    def changed_studies(self, since: float, limit: int, after: str = "") -> list[StudySummary]:
        """Studies whose catalog row changed after ``(since, after)`` (epoch seconds, study UID), oldest first."""
        params = urllib.parse.urlencode(
            {"changed_since": repr(float(since)), "limit": str(limit), **({"after": after} if after else {})}
        )
        changed: list[StudySummary] = list(self._get_json("/backup/studies?" + params))
        return changed

    def study(self, uid: str) -> StudyDoc:
        study: StudyDoc = self._get_json("/backup/studies/" + _uid(uid), "This study is not in the backups.")
        return study

    def study_snapshots(self, uid: str) -> list[HoldingDoc]:
        """The offsite snapshots that hold the study: target, id, short_id, time, instances (newest first)."""
        holdings: list[HoldingDoc] = list(self._get_json(f"/backup/studies/{_uid(uid)}/snapshots"))
        return holdings

    def backup_preview(self, uid: str, position: int, size: int = 256) -> bytes:
        """A PNG of the study's ``position``-th image (1-based), drawn by the plugin from its bucket copy.
        Raises BadImage (the plugin's 422) and PreviewsBusy (its 503) besides the BackendErrors."""
        try:
            return self.http.get(
                f"/backup/studies/{_uid(uid)}/preview?"
                + urllib.parse.urlencode({"instance": str(position), "size": str(size)})
            )
        except RequestRefused as exc:
            if exc.status == 422:
                raise BadImage(exc.sentence) from None
            raise self._down(exc, "No picture of this image can be shown.") from None
        except ErrorAnswer as exc:
            if exc.status == 503:  # the plugin's preview slots are taken: busy, not down
                raise PreviewsBusy() from None
            raise self._down(exc, "No picture of this image can be shown.") from None
        except SourceError as exc:
            raise self._down(exc, "No picture of this image can be shown.") from None
        except BackupError as exc:
            raise self._down(exc, "No picture of this image can be shown.") from None

    def snapshots(self, target: str) -> list[SnapshotDoc]:
        """The snapshots of one copy, newest first (for the technician; no page lists them)."""
        if not is_name(target):
            raise NotInBackend("There is no such backup copy.")
        snaps: list[SnapshotDoc] = list(
            self._get_json("/backup/snapshots?" + urllib.parse.urlencode({"target": target}))
        )
        return snaps

    def restore(self, study_uid: str, source: str, snapshot: str | None) -> int:
        _uid(study_uid)
        if not is_name(source) or (snapshot is not None and not is_snapshot_id(snapshot)):
            raise BackendRefused("Choose a backup copy (and snapshot) from the list on the study's page.")
        try:
            answer = self.http.post_json(
                "/backup/restores", {"study_uid": study_uid, "source": source, "snapshot": snapshot}
            )
        except BackupError as exc:
            raise self._down(exc, "This study is not in that backup copy.") from None
        return int(answer["run"])

    def pacs_study(self, study_uid: str) -> PacsStudy | None:
        """``{"id": Orthanc id, "images": count}`` when the study is in the PACS now (``/tools/lookup``), else None.

        Raises:
            PacsDown: the PACS does not answer.
        """
        _uid(study_uid)
        try:
            found = json.loads(self.http.request("POST", "/tools/lookup", study_uid.encode(), "text/plain"))
            study = next((f for f in found if f.get("Type") == "Study"), None)
            if study is None:
                return None
            stats = self.http.get_json(f"/studies/{_orthanc_id(str(study['ID']))}/statistics")
        except SourceGone:
            return None
        except BackupError as exc:
            raise self._down(exc) from None
        return {"id": str(study["ID"]), "images": int(stats.get("CountInstances") or 0)}

    def instance_file(self, orthanc_id: str) -> bytes | None:
        """The stored file of one instance in the PACS, or None when the PACS does not hold it."""
        try:
            return self.http.get(f"/instances/{_orthanc_id(orthanc_id)}/file")
        except SourceGone:
            return None
        except BackupError as exc:
            raise self._down(exc) from None

    def instance_in_pacs(self, study_uid: str) -> str | None:
        """Orthanc id of one instance of the study when it is in the PACS (for a preview), else None."""
        if not is_uid(study_uid):
            return None
        try:
            found = self.http.post_json(
                "/tools/find", {"Level": "Instance", "Limit": 1, "Query": {"StudyInstanceUID": study_uid}}
            )
        except BackupError:
            return None
        return str(found[0]) if found else None

    def preview(self, orthanc_id: str) -> bytes:
        try:
            return self.http.get(f"/instances/{_orthanc_id(orthanc_id)}/preview")
        except BackupError as exc:
            raise self._down(exc, "No picture of this study can be shown.") from None

    def referrals(self, study_uid: str) -> ReferralsDoc:
        answer: ReferralsDoc = self._get_json(f"/backup/referrals?study={_uid(study_uid)}")
        return answer

    def send_referral(self, peer: str, study_uid: str, user: str) -> int:
        _uid(study_uid)
        if not is_name(peer):
            raise BackendRefused("Choose one of the referring clinics listed on the study's page.")
        try:
            answer = self.http.post_json(
                "/backup/referrals", {"peer": peer, "study_uid": study_uid, "requested_by": user}
            )
        except BackupError as exc:
            raise self._down(exc, "This study or that clinic is not known to the backups.") from None
        return int(answer["queued"])

    def prepare_drive(self, target: str, label: str) -> PreparedDrive:
        """Prepare the drive plugged in for ``target`` (``POST /backup/drives``): its repository id and runs."""
        if not is_name(target):
            raise BackendRefused("Choose one of the backup drive targets listed on the page.")
        if not is_plain_text(label, MAX_LABEL_CHARS):
            raise BackendRefused(
                f"The drive's name is too long (at most {MAX_LABEL_CHARS} characters) or holds control characters."
            )
        try:
            prepared: PreparedDrive = self.slow.post_json("/backup/drives", {"target": target, "label": label or None})
            return prepared
        except BackupError as exc:
            raise self._down(exc, "There is no such backup drive target.") from None

    def rclone_config(self) -> RcloneConfigDoc:
        """The cloud-storage remotes the plugin has (names and types) and the targets using them."""
        config: RcloneConfigDoc = self._get_json(
            "/backup/rclone-config", "This PACS's backup has no cloud storage settings."
        )
        return config

    def put_rclone_config(self, text: str) -> RcloneConfigDoc:
        """Hand a pasted rclone configuration to the plugin, which checks it and writes it (its answer)."""
        return self._put_rclone(
            self.http, {"config": text}, "This PACS's backup cannot take a cloud storage configuration."
        )

    def test_rclone_connection(self) -> RcloneConfigDoc:
        """Ask the plugin to test each cloud-storage target's connection (restic and rclone, as a snapshot
        would); its answer has a ``tests`` list of ``{"target", "ok", "message"}`` and a ``message``."""
        return self._put_rclone(self.slow, {"test": True}, "This PACS's backup has no cloud storage to test.")

    def upload_limits(self) -> list[UploadLimitDoc]:
        answer = self._get_json("/backup/upload-limits", "This PACS's backup has no upload timetables.")
        copies: list[UploadLimitDoc] = answer.get("copies") or [] if isinstance(answer, dict) else []
        return copies

    def set_upload_limit(self, copy: str, rule: str) -> UploadLimitDoc:
        try:
            answer: UploadLimitDoc = self.http.send_json("PUT", "/backup/upload-limits", {"copy": copy, "rule": rule})
            return answer
        except (BackupError, ValueError) as exc:
            raise self._down(exc, "This PACS's backup cannot take an upload timetable.") from None

    def _put_rclone(self, client: OrthancHttp, payload: dict[str, object], missing: str) -> RcloneConfigDoc:
        try:
            answer: RcloneConfigDoc = client.send_json("PUT", "/backup/rclone-config", payload)
            return answer
        except (BackupError, ValueError) as exc:
            raise self._down(exc, missing) from None

    # --- every copy as a read-only source of studies -----------------------------------------------------
    def _copy_error(self, exc: Exception, missing: str) -> Exception:
        """CopyDamaged for the plugin's 409, SourceUnavailable for its 503, else as :meth:`_down`."""
        if isinstance(exc, RequestRefused) and exc.status == 409:
            return CopyDamaged(exc.sentence)
        if isinstance(exc, ErrorAnswer) and not isinstance(exc, RequestRefused) and exc.status == 503:
            return SourceUnavailable(exc.sentence)
        return self._down(exc, missing)

    def _copy_get(self, uri: str, missing: str) -> bytes:
        try:  # a snapshot is read study by study (restic dump): slow, but never the whole repository
            return self.slow.get(uri)
        except (BackupError, ValueError) as exc:
            raise self._copy_error(exc, missing) from None

    def copies(self, study_uid: str | None = None) -> list[SourceDoc]:
        query = "?" + urllib.parse.urlencode({"study": study_uid}) if study_uid else ""
        if study_uid:
            _uid(study_uid)
        found: list[SourceDoc] = json.loads(self._copy_get("/backup/copies" + query, "There are no backup copies."))
        return found

    def copy_studies(self, source: str, match: StudyMatch) -> list[CopyStudy]:
        dates = f"{match.date_from}-{match.date_to}" if match.date_from or match.date_to else ""
        params = {
            "StudyInstanceUID": match.study_uid,
            "PatientID": match.patient_id,
            "PatientName": match.patient_name,
            "AccessionNumber": match.accession,
            "StudyDate": dates,
            "ModalitiesInStudy": match.modality,
            "limit": str(match.limit),
            "offset": str(match.offset),
        }
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v})
        uri = f"/backup/copies/{_source(source)}/studies?{query}"
        found: list[CopyStudy] = json.loads(self._copy_get(uri, "There is no such backup copy."))
        return found

    def copy_instances(self, source: str, study_uid: str) -> list[CopyInstance]:
        uri = f"/backup/copies/{_source(source)}/studies/{_uid(study_uid)}"
        found: list[CopyInstance] = json.loads(self._copy_get(uri, "This copy does not hold this study."))
        return found

    def copy_instance(self, source: str, study_uid: str, sop_uid: str) -> bytes:
        if not is_uid(sop_uid):
            raise NotInBackend(f"There is no such image: {UID_RULE}.")
        uri = f"/backup/copies/{_source(source)}/studies/{_uid(study_uid)}/instances/{_q(sop_uid)}"
        return self._copy_get(uri, "This copy does not hold this image.")
