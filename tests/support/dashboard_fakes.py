"""Stand-ins for the plugin's REST API and sample documents, for the dashboard's tests (no programs).

:class:`FakeBackend` implements :class:`pacs_dashboard.backend_api.BackendApi`; mypy (strict, pyproject.toml)
checks it against the protocol, so a call the dashboard makes cannot be missing here or take other types.
"""

from __future__ import annotations

import io
import re
import secrets
import time
from datetime import datetime
from typing import Any, cast

import pydicom

from pacs_backup.contracts.documents import RunDoc, StatusDoc
from pacs_backup.contracts.errors import ConfigError
from pacs_backup.settings.bandwidth import parse_schedule
from pacs_backup.settings.upload_overrides import UploadLimitDoc, check_rule
from pacs_backup.sources.base import (
    CopyDamaged,
    CopyInstance,
    CopyStudy,
    SourceDoc,
    SourceKind,
    SourceUnavailable,
    StudyMatch,
)
from pacs_backup.state.catalog import StudySummary
from pacs_backup.state.manifest import ManifestEntry
from pacs_dashboard.backend_api import (
    BackendApi,
    BackendRefused,
    HoldingDoc,
    NotInBackend,
    PacsDown,
    PacsStudy,
    PreparedDrive,
    RcloneConfigDoc,
    ReferralPeerDoc,
    ReferralRequestDoc,
    ReferralsDoc,
    StudyDoc,
)

# Made afresh for each test run: no password is written in the project, not even a test's.
PASSWORD = "test-" + secrets.token_urlsafe(18)


def drill_run(now: float, checked: int = 5, **over: Any) -> RunDoc:
    """A restore test's run (only the keys the dashboard reads, and ``over``)."""
    run: dict[str, Any] = {
        "id": 2,
        "kind": "drill",
        "state": "ok",
        "finished_at": now - 60,
        "queued_at": now - 70,
        "error": None,
        "summary": {"checked": checked, "identical": checked, "mismatches": []},
    }
    run.update(over)
    return cast(RunDoc, run)


def healthy_status(**over: Any) -> StatusDoc:
    """A status where every part is fine (only the keys the dashboard reads, and ``over``)."""
    now = time.time()
    run: dict[str, Any] = {
        "id": 1,
        "state": "ok",
        "finished_at": now - 60,
        "queued_at": now - 70,
        "error": None,
        "summary": {},
    }
    st: dict[str, Any] = {
        "state": "ok",
        "enabled": True,
        "outbox_depth": 0,
        "oldest_pending_age_s": None,
        "replicated": 10,
        "replicated_bytes": 10_000,
        "failed": 0,
        "quarantined": 0,
        "lag_s": {"p50": 0.1, "p99": 0.3},
        "store": {"reachable": True},
        "disk": {"free_bytes": 50e9, "total_bytes": 100e9},
        "offsite": {
            "offsite": {
                "last_snapshot": dict(run, kind="snapshot"),
                "last_good_snapshot_age_s": 60,
                "last_drill": drill_run(now),
                "next_snapshot_at": now + 3000,
            },
            "minio": {"last_drill": drill_run(now)},
        },
    }
    st.update(over)
    return cast(StatusDoc, st)


# A study as the plugin's catalog describes it (GET /backup/studies rows), and its images.
STUDY: StudySummary = {
    "study_uid": "1.2.3",
    "patient_name": "DOE^JANE",
    "display_name": "DOE, JANE",
    "patient_id": "P1",
    "accession": "A1",
    "owner": "",
    "species": "",
    "breed": "",
    "study_date": "20261127",
    "description": "Chest",
    "modalities": "CR",
    "series": 1,
    "instances": 2,
    "last_copied_at": 1_795_000_000.0,
}
BELLA: StudySummary = {
    "study_uid": "1.2.840.99.7",
    "patient_name": "Smith^Bella",
    "display_name": "Smith, Bella",
    "patient_id": "VET-7",
    "accession": "XR-7",
    "owner": "Smith^John",
    "species": "Dog",
    "breed": "Labrador",
    "study_date": "20261126",
    "description": "Thorax",
    "modalities": "DX",
    "series": 1,
    "instances": 3,
    "last_copied_at": 1_795_000_100.0,
}
PNG = b"\x89PNG\r\n\x1a\n fake"


def instances_of(row: StudySummary) -> list[ManifestEntry]:
    return [
        {
            "study_uid": row["study_uid"],
            "series_uid": row["study_uid"] + ".1",
            "sop_uid": f"{row['study_uid']}.1.{n}",
            "modality": row["modalities"],
            "patient_name": row["patient_name"],
            "patient_id": row["patient_id"],
            "owner": row["owner"],
            "species": row["species"],
            "breed": row["breed"],
            "description": row["description"],
            "study_date": row["study_date"],
            "accession": row["accession"],
            "orthanc_id": f"oid-{row['study_uid']}-{n}",
            "path": f"{n:02d}/{n:02d}/oid-{row['study_uid']}-{n}",
            "sha256": f"sha-{n}",
            "size": 0,
            "key": f"dicom/{row['study_uid']}/{row['study_uid']}.1/{row['study_uid']}.1.{n}.dcm",
        }
        for n in range(row["instances"])
    ]


class FakeBackend:
    """The plugin's REST API as the dashboard's Backend offers it; ``down = True`` makes the PACS not answer."""

    def __init__(self) -> None:
        self.status_value = healthy_status()
        self.error: str | None = None
        self.down = False
        self.referral_peers: list[ReferralPeerDoc] = []  # none set up unless a test adds some
        self.referral_requests: list[ReferralRequestDoc] = []
        self.restores: list[tuple[str, str, str | None]] = []
        self.catalog: list[StudySummary] = [STUDY.copy(), BELLA.copy()]
        self.holdings: dict[str, list[HoldingDoc]] = {}  # study uid -> GET /backup/studies/<uid>/snapshots
        self.in_pacs: dict[str, PacsStudy] = {}  # study uid -> {"id", "images"}
        self.pacs_files: dict[str, bytes] = {}  # orthanc id -> bytes
        self.run_value = RunDoc(
            id=7,
            state="running",
            target="minio",
            kind="restore",
            queued_at=1_795_000_200.0,
            started_at=None,
            finished_at=None,
            duration_s=None,
            summary={"study_uid": "1.2.3", "done": 1, "total": 2},
            error=None,
        )
        self.missing: set[str] = set()  # study uids the plugin says are not in the backups
        self.run_list: list[RunDoc] = []  # GET /backup/runs: snapshots, drills and restores, newest first
        self.asked: list[str] = []
        # Every copy as a source (GET /backup/copies...): add_copy puts a file in one.
        self.copy_docs: dict[str, SourceDoc] = {}
        self.copy_files: dict[str, list[tuple[CopyInstance, bytes, CopyStudy]]] = {}
        self.copy_damaged: set[tuple[str, str]] = set()  # (source, SOP instance UID) whose bytes do not match
        self.copy_unavailable: dict[str, str] = {}  # source -> the sentence why it cannot be read now
        self.copy_reads: list[tuple[str, str]] = []  # (source, SOP instance UID) of every read
        # Upload timetables (GET/PUT /backup/upload-limits): .env's by copy, and those set in the dashboard.
        self.upload_env: dict[str, str] = {"offsite": "08:00,2Mbit 18:00,off"}
        self.upload_overrides: dict[str, str] = {}

    def _up(self, what: str) -> None:
        self.asked.append(what)
        if self.down:
            raise PacsDown("The PACS is not answering right now.")

    def status(self) -> tuple[StatusDoc | None, str | None]:
        self.asked.append("status")
        if self.down:
            return None, "Orthanc at http://127.0.0.1:1 cannot be reached ([Errno 111] Connection refused)."
        return (None, self.error) if self.error else (self.status_value, None)

    def runs(self, kind: str | None = None, limit: int = 100) -> list[RunDoc]:
        self._up("runs")
        return [r for r in self.run_list if kind is None or r["kind"] == kind][:limit]

    def run(self, run_id: int) -> RunDoc:
        self._up("run")
        run = self.run_value.copy()
        run["id"] = run_id
        return run

    def trigger(self, kind: str, target: str | None = None) -> list[int]:
        self._up("trigger")
        return [1]

    def studies(self, q: str, date_from: str, date_to: str, modality: str) -> list[StudySummary]:
        self._up("studies")
        words = q.lower().replace("^", " ").replace(",", " ").split()
        return [r for r in self.catalog if all(w in (r["patient_name"] + " " + r["owner"]).lower() for w in words)]

    def changed_studies(self, since: float, limit: int, after: str = "") -> list[StudySummary]:
        self._up("changed_studies")
        changed = [r for r in self.catalog if r["last_copied_at"] > since]
        return sorted(changed, key=lambda r: r["last_copied_at"])[:limit]

    def study(self, uid: str) -> StudyDoc:
        self._up("study")
        row = next((r for r in self.catalog if r["study_uid"] == uid), None)
        if row is None:
            row = STUDY.copy()
            row["study_uid"] = uid
        if uid in self.missing:
            raise NotInBackend("This study is not in the backups.")
        return {"study_uid": uid, "instances": instances_of(row)}

    def study_snapshots(self, uid: str) -> list[HoldingDoc]:
        self._up("study_snapshots")
        return list(self.holdings.get(uid, []))

    def backup_preview(self, uid: str, position: int, size: int = 256) -> bytes:
        self._up("backup_preview")
        return PNG

    def restore(self, study_uid: str, source: str, snapshot: str | None) -> int:
        self._up("restore")
        self.restores.append((study_uid, source, snapshot))
        return 7

    def pacs_study(self, study_uid: str) -> PacsStudy | None:
        self._up("pacs_study")
        return self.in_pacs.get(study_uid)

    def instance_file(self, orthanc_id: str) -> bytes | None:
        self._up("instance_file")
        return self.pacs_files.get(orthanc_id)

    def instance_in_pacs(self, study_uid: str) -> str | None:
        found = self.in_pacs.get(study_uid)
        return found["id"] if found else None

    def preview(self, orthanc_id: str) -> bytes:
        self._up("preview")
        return PNG

    def referrals(self, study_uid: str) -> ReferralsDoc:
        self._up("referrals")
        asked = [r for r in self.referral_requests if r["study_uid"] == study_uid]
        return {"peers": list(self.referral_peers), "requests": asked}

    def send_referral(self, peer: str, study_uid: str, user: str) -> int:
        self._up("send_referral")
        label = next((p["label"] for p in self.referral_peers if p["name"] == peer), None)
        if label is None:
            raise NotInBackend(f"There is no referring clinic {peer!r}.")
        self.referral_requests.insert(
            0,
            {
                "peer": peer,
                "label": label,
                "study_uid": study_uid,
                "requested_by": user,
                "requested_at": 1_790_000_000.0,
                "instances": 3,
                "verified": 0,
                "state": "sending",
                "last_error": None,
            },
        )
        return 3

    def prepare_drive(self, target: str, label: str) -> PreparedDrive:
        self._up("prepare_drive")
        return {"repository_id": "0123456789abcdef", "runs": [1]}

    def rclone_config(self) -> RcloneConfigDoc:
        self._up("rclone_config")
        return {"targets": [], "remotes": []}

    def put_rclone_config(self, text: str) -> RcloneConfigDoc:
        self._up("put_rclone_config")
        return {"targets": [], "remotes": [], "message": "The cloud storage configuration is saved."}

    def upload_limits(self) -> list[UploadLimitDoc]:
        self._up("upload_limits")
        return [self._upload_doc(copy) for copy in self.upload_env]

    def set_upload_limit(self, copy: str, rule: str) -> UploadLimitDoc:
        self._up("set_upload_limit")
        if copy not in self.upload_env:
            raise BackendRefused(f"There is no offsite copy {copy!r} with an upload timetable; known: offsite.")
        try:
            schedule = check_rule(rule) if rule.strip() else None
        except ConfigError as exc:
            raise BackendRefused(str(exc)) from None
        if schedule is None:
            self.upload_overrides.pop(copy, None)
        else:
            self.upload_overrides[copy] = schedule.rule
        return self._upload_doc(copy)

    def _upload_doc(self, copy: str) -> UploadLimitDoc:
        env = parse_schedule("RESTIC_UPLOAD_LIMIT", self.upload_env[copy])
        override = self.upload_overrides.get(copy)
        force = parse_schedule("rule", override) if override else env
        opens = force.next_window(datetime.now())
        return {
            "copy": copy,
            "env_rule": env.rule,
            "override": override,
            "rule": "" if force.unlimited else force.rule,
            "text": force.text,
            "next_window": None if opens is None else opens.timestamp(),
        }

    def test_rclone_connection(self) -> RcloneConfigDoc:
        self._up("test_rclone_connection")
        return {"targets": [], "remotes": [], "tests": [], "message": "No cloud-storage target: nothing to test."}

    # --- every copy as a source --------------------------------------------------------------------------
    def add_copy(self, source: str, data: bytes, kind: str = "") -> CopyInstance:
        """Put the DICOM file ``data`` into the copy ``source`` (made when new)."""
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, force=True)
        if source not in self.copy_docs:
            shown = kind or ("offsite" if source.startswith("offsite") else source.split("-")[0])
            self.copy_docs[source] = SourceDoc(
                name=source,
                kind=cast(SourceKind, shown),
                label=f"Copy {source}",
                available=True,
                reason="",
                taken_at="",
            )
        inst = CopyInstance(
            study_uid=str(ds.StudyInstanceUID),
            series_uid=str(ds.SeriesInstanceUID),
            sop_uid=str(ds.SOPInstanceUID),
            size=len(data),
            sha256="",
            ref=f"{source}/{ds.SOPInstanceUID}",
        )
        study = CopyStudy(
            study_uid=str(ds.StudyInstanceUID),
            patient_id=str(ds.get("PatientID", "")),
            patient_name=str(ds.get("PatientName", "")),
            study_date=str(ds.get("StudyDate", "")),
            description=str(ds.get("StudyDescription", "")),
            accession=str(ds.get("AccessionNumber", "")),
            modalities=str(ds.get("Modality", "")),
            series=1,
            instances=1,
        )
        self.copy_files.setdefault(source, []).append((inst, data, study))
        return inst

    def _copy(self, source: str) -> list[tuple[CopyInstance, bytes, CopyStudy]]:
        self._up("copy")
        if source in self.copy_unavailable:
            raise SourceUnavailable(self.copy_unavailable[source])
        if source not in self.copy_docs:
            raise NotInBackend("There is no such backup copy.")
        return self.copy_files.get(source, [])

    def copies(self, study_uid: str | None = None) -> list[SourceDoc]:
        self._up("copies")
        return [
            d
            for name, d in self.copy_docs.items()
            if study_uid is None or any(i["study_uid"] == study_uid for i, _, _ in self.copy_files.get(name, []))
        ]

    def copy_studies(self, source: str, match: StudyMatch) -> list[CopyStudy]:
        studies: dict[str, CopyStudy] = {}
        series: dict[str, set[str]] = {}
        for inst, _, study in self._copy(source):
            uid = inst["study_uid"]
            if uid not in studies:
                studies[uid] = study.copy()
                studies[uid]["instances"] = 0
            studies[uid]["instances"] += 1
            series.setdefault(uid, set()).add(inst["series_uid"])
            studies[uid]["series"] = len(series[uid])
        found = [
            s
            for s in studies.values()
            if (not match.study_uid or s["study_uid"] == match.study_uid)
            and (not match.patient_id or s["patient_id"] == match.patient_id)
        ]
        return found[match.offset : match.offset + match.limit]

    def copy_instances(self, source: str, study_uid: str) -> list[CopyInstance]:
        found = [inst for inst, _, _ in self._copy(source) if inst["study_uid"] == study_uid]
        if not found:
            raise NotInBackend("This copy does not hold this study.")
        return found

    def copy_instance(self, source: str, study_uid: str, sop_uid: str) -> bytes:
        self.copy_reads.append((source, sop_uid))
        for inst, data, _ in self._copy(source):
            if inst["study_uid"] == study_uid and inst["sop_uid"] == sop_uid:
                if (source, sop_uid) in self.copy_damaged:
                    raise CopyDamaged("The image does not match the checksum recorded when it was backed up.")
                return data
        raise NotInBackend("This copy does not hold this image.")


def _conforms(backend: FakeBackend) -> BackendApi:
    """Where mypy checks that the stand-in offers every call of BackendApi, with the same types."""
    return backend


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)
