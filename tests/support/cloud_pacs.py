"""Helpers of the cloud PACS tests: the plugin's view of the copy, study contents, restores."""

from __future__ import annotations

import json

from pacs_backup.replication.dimse_peer import dataset_sha256
from tests.support.common import sha256, wait_until
from tests.support.dicomgen import make_study


def cloud_status(o) -> dict:
    """The cloud PACS part of the plugin's ``/backup/status``."""
    return o.status()["cloud_pacs"]


def upload_studies(o, studies: int, per_study: int) -> dict[str, list[str]]:
    """Upload new studies; return {StudyInstanceUID: sorted sha256 of each file}."""
    out = {}
    for _ in range(studies):
        uid, files = make_study(per_study, rows=128, cols=128)
        for f in files:
            o.http().upload(f)
        out[uid] = sorted(sha256(f) for f in files)
    return out


def files_by_study(o) -> dict[str, list[bytes]]:
    """{StudyInstanceUID: the files an Orthanc holds}."""
    http, out = o.http(), {}
    for sid in http.get_json("/studies"):
        study = http.get_json(f"/studies/{sid}")
        files = [http.get(f"/instances/{i['ID']}/file") for i in http.get_json(f"/studies/{sid}/instances")]
        out[study["MainDicomTags"]["StudyInstanceUID"]] = files
    return out


def file_digests(o) -> dict[str, list[str]]:
    """{StudyInstanceUID: sorted sha256 of the whole files}."""
    return {uid: sorted(sha256(f) for f in files) for uid, files in files_by_study(o).items()}


def dataset_digests(o) -> dict[str, list[str]]:
    """{StudyInstanceUID: sorted sha256 of each file's data set, i.e. without its file meta header}."""
    return {uid: sorted(dataset_sha256(f) for f in files) for uid, files in files_by_study(o).items()}


def orthanc_study_id(o, study_uid: str) -> str:
    return json.loads(o.http().request("POST", "/tools/lookup", study_uid.encode(), "text/plain"))[0]["ID"]


def wait_run(o, run_id: int, timeout: float = 300) -> dict:
    """Wait for a recorded run (restore, snapshot, drill) to finish; return it."""

    def finished():
        run = o.http().get_json(f"/backup/runs/{run_id}")
        return run if run["state"] in ("ok", "failed") else None

    return wait_until(finished, timeout, f"run {run_id}", 0.5)  # type: ignore[return-value]
