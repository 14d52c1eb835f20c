"""The dashboard's view of the backup engine: the plugin's REST API on Orthanc (one source of truth)."""

from __future__ import annotations

import urllib.parse
from typing import Any

from pacs_backup.errors import BackupError
from pacs_backup.orthanc_http import OrthancHttp

from .config import DashboardSettings


class Backend:
    def __init__(self, settings: DashboardSettings) -> None:
        self.http = OrthancHttp(settings.orthanc_url, settings.orthanc_username, settings.orthanc_password,
                                timeout_s=15)

    def status(self) -> tuple[dict[str, Any] | None, str | None]:
        """``(status, None)`` or ``(None, reason)`` when Orthanc or the plugin does not answer."""
        try:
            return self.http.get_json("/backup/status"), None
        except (BackupError, ValueError) as exc:
            return None, str(exc)

    def runs(self, kind: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        q = {"limit": str(limit), **({"kind": kind} if kind else {})}
        return list(self.http.get_json("/backup/runs?" + urllib.parse.urlencode(q)))

    def run(self, run_id: int) -> dict[str, Any]:
        return dict(self.http.get_json(f"/backup/runs/{run_id}"))

    def trigger(self, kind: str, target: str | None = None) -> list[int]:
        return list(self.http.post_json(f"/backup/{kind}", {"target": target} if target else {})["runs"])

    def studies(self, q: str, date_from: str, date_to: str, modality: str) -> list[dict[str, Any]]:
        params = urllib.parse.urlencode({"q": q, "from": date_from, "to": date_to, "modality": modality})
        return list(self.http.get_json("/backup/studies?" + params))

    def study(self, uid: str) -> dict[str, Any]:
        return dict(self.http.get_json("/backup/studies/" + urllib.parse.quote(uid, safe="")))

    def snapshots(self, target: str) -> list[dict[str, Any]]:
        return list(self.http.get_json("/backup/snapshots?" + urllib.parse.urlencode({"target": target})))

    def restore(self, study_uid: str, source: str, snapshot: str | None) -> int:
        answer = self.http.post_json("/backup/restores", {"study_uid": study_uid, "source": source,
                                                          "snapshot": snapshot})
        return int(answer["run"])

    def instance_in_pacs(self, study_uid: str) -> str | None:
        """Orthanc id of one instance of the study when it is in the PACS (for a preview), else None."""
        try:
            found = self.http.post_json("/tools/find", {"Level": "Instance", "Limit": 1,
                                                         "Query": {"StudyInstanceUID": study_uid}})
        except BackupError:
            return None
        return str(found[0]) if found else None

    def preview(self, orthanc_id: str) -> bytes:
        return self.http.get(f"/instances/{urllib.parse.quote(orthanc_id, safe='')}/preview")
