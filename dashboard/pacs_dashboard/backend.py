"""The dashboard's view of the backup engine: the plugin's REST API on Orthanc (one source of truth).

Every failure is one of the errors below, each with a sentence fit for a page: the plugin's own sentence
when it refused, a plain one when something is not there or the PACS does not answer.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from typing import Any

from pacs_backup.clients.orthanc_http import ErrorAnswer, OrthancHttp, RequestRefused
from pacs_backup.contracts.documents import RunDoc, StatusDoc
from pacs_backup.contracts.errors import BackupError, SourceError, SourceGone
from pacs_backup.dicom.preview import BadImage, PreviewsBusy

from .config import DashboardSettings

# What the plugin accepts in its paths and bodies (pacs_backup.api.http_input), checked here first so that
# nothing else ever becomes part of a request the dashboard makes with its Orthanc credentials.
_UID = re.compile(r"[0-9A-Za-z][0-9A-Za-z._-]{0,127}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_SNAPSHOT = re.compile(r"[0-9a-f]{6,64}")
UID_RULE = "a study's identifier is digits and dots (letters, '-' and '_' are allowed), at most 128 characters"
MAX_RUN_ID = 10**15 - 1


def valid_uid(uid: str) -> bool:
    return bool(_UID.fullmatch(uid)) and ".." not in uid


def valid_name(name: str) -> bool:
    return bool(_NAME.fullmatch(name))


def valid_snapshot(snapshot: str) -> bool:
    return bool(_SNAPSHOT.fullmatch(snapshot))


class BackendError(BackupError):
    """A call to the plugin failed; ``str()`` is a sentence fit for a page."""


class NotInBackend(BackendError):
    """What was asked for is not there (a study not in the backups, an unknown run): a 404."""


class BackendRefused(BackendError):
    """The plugin understood the request and refused it, saying why: a 400."""


class BackendBusy(BackendRefused):
    """The plugin has too much waiting already (HTTP 429): the same request may be made again later."""


class PacsDown(BackendError):
    """The PACS (Orthanc, with the plugin in it) did not answer: the dashboard falls back on its own copies."""


PACS_DOWN = "The PACS is not answering right now. Try again once it is back; the health page says since when."


_ORTHANC_ID = re.compile(r"[0-9a-f]{8}(?:-[0-9a-f]{8}){4}")


def _q(uid: str) -> str:
    return urllib.parse.quote(uid, safe="")


def _uid(uid: str) -> str:
    """``uid`` when it is one, else NotInBackend: checked here too, whatever the page checked, because
    Orthanc decodes %2F, so "..%2F..%2Fsystem" would reach its other routes with our credentials."""
    if not valid_uid(uid):
        raise NotInBackend(f"There is no such study: {UID_RULE}.")
    return _q(uid)


def _orthanc_id(oid: str) -> str:
    if not _ORTHANC_ID.fullmatch(oid):
        raise NotInBackend("There is no such image in the PACS.")
    return oid


def _refusal(exc: RequestRefused) -> str:
    """The plugin's own sentence."""
    return exc.sentence


class Backend:
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
        if not 0 < int(run_id) <= MAX_RUN_ID:
            raise NotInBackend("There is no such restore or test.")
        run: RunDoc = self._get_json(f"/backup/runs/{int(run_id)}", "There is no such restore or test.")
        return run

    def trigger(self, kind: str, target: str | None = None) -> list[int]:
        if kind not in ("snapshots", "drills") or (target is not None and not valid_name(target)):
            raise BackendRefused("There is no such job or backup copy.")
        try:
            return list(self.http.post_json(f"/backup/{kind}", {"target": target} if target else {})["runs"])
        except BackupError as exc:
            raise self._down(exc) from None

    def studies(self, q: str, date_from: str, date_to: str, modality: str) -> list[dict[str, Any]]:
        params = urllib.parse.urlencode({"q": q, "from": date_from, "to": date_to, "modality": modality})
        return list(self._get_json("/backup/studies?" + params))

    def changed_studies(self, since: float, limit: int, after: str = "") -> list[dict[str, Any]]:
        """Studies whose catalog row changed after ``(since, after)`` (epoch seconds, study UID), oldest first."""
        params = urllib.parse.urlencode(
            {"changed_since": repr(float(since)), "limit": str(limit), **({"after": after} if after else {})}
        )
        return list(self._get_json("/backup/studies?" + params))

    def study(self, uid: str) -> dict[str, Any]:
        return dict(self._get_json("/backup/studies/" + _uid(uid), "This study is not in the backups."))

    def study_snapshots(self, uid: str) -> list[dict[str, Any]]:
        """The offsite snapshots that hold the study: target, id, short_id, time, instances (newest first)."""
        return list(self._get_json(f"/backup/studies/{_uid(uid)}/snapshots"))

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

    def snapshots(self, target: str) -> list[dict[str, Any]]:
        if not valid_name(target):
            raise NotInBackend("There is no such backup copy.")
        return list(self._get_json("/backup/snapshots?" + urllib.parse.urlencode({"target": target})))

    def restore(self, study_uid: str, source: str, snapshot: str | None) -> int:
        _uid(study_uid)
        if not valid_name(source) or (snapshot is not None and not valid_snapshot(snapshot)):
            raise BackendRefused("Choose a backup copy (and snapshot) from the list on the study's page.")
        try:
            answer = self.http.post_json(
                "/backup/restores", {"study_uid": study_uid, "source": source, "snapshot": snapshot}
            )
        except BackupError as exc:
            raise self._down(exc, "This study is not in that backup copy.") from None
        return int(answer["run"])

    def pacs_study(self, study_uid: str) -> dict[str, Any] | None:
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
        return {"id": study["ID"], "images": int(stats.get("CountInstances") or 0)}

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
        if not valid_uid(study_uid):
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

    def prepare_drive(self, target: str, label: str) -> dict[str, Any]:
        """Prepare the drive plugged in for ``target`` (``POST /backup/drives``): its repository id and runs."""
        if not valid_name(target):
            raise BackendRefused("Choose one of the backup drive targets listed on the page.")
        if len(label) > 64 or any(ord(c) < 32 for c in label):
            raise BackendRefused("The drive's name is too long (at most 64 characters) or holds control characters.")
        try:
            return dict(self.slow.post_json("/backup/drives", {"target": target, "label": label or None}))
        except BackupError as exc:
            raise self._down(exc, "There is no such backup drive target.") from None

    def rclone_config(self) -> dict[str, Any]:
        """The cloud-storage remotes the plugin has (names and types) and the targets using them."""
        return dict(self._get_json("/backup/rclone-config", "This PACS's backup has no cloud storage settings."))

    def put_rclone_config(self, text: str) -> dict[str, Any]:
        """Hand a pasted rclone configuration to the plugin, which checks it and writes it (its answer)."""
        try:
            answer = self.http.request(
                "PUT", "/backup/rclone-config", json.dumps({"config": text}).encode(), "application/json"
            )
            return dict(json.loads(answer))
        except (BackupError, ValueError) as exc:
            raise self._down(exc, "This PACS's backup cannot take a cloud storage configuration.") from None

    def test_rclone_connection(self) -> dict[str, Any]:
        """Ask the plugin to test each cloud-storage target's connection (restic and rclone, as a snapshot
        would); its answer has a ``tests`` list of ``{"target", "ok", "message"}`` and a ``message``."""
        try:
            answer = self.slow.request(
                "PUT", "/backup/rclone-config", json.dumps({"test": True}).encode(), "application/json"
            )
            return dict(json.loads(answer))
        except (BackupError, ValueError) as exc:
            raise self._down(exc, "This PACS's backup has no cloud storage to test.") from None
