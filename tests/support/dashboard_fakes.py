"""Stand-ins for the plugin's REST API and sample documents, for the dashboard's tests (no programs)."""

from __future__ import annotations

import re
import secrets
import time

# Made afresh for each test run: no password is written in the project, not even a test's.
PASSWORD = "test-" + secrets.token_urlsafe(18)


def drill_run(now, checked=5, **over):
    run = {
        "id": 2,
        "kind": "drill",
        "state": "ok",
        "finished_at": now - 60,
        "queued_at": now - 70,
        "error": None,
        "summary": {"checked": checked, "identical": checked, "mismatches": []},
    }
    run.update(over)
    return run


def healthy_status(**over):
    now = time.time()
    run = {"id": 1, "state": "ok", "finished_at": now - 60, "queued_at": now - 70, "error": None, "summary": {}}
    st = {
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
    return st


# A study as the plugin's catalog describes it (GET /backup/studies rows), and its images.
STUDY = {
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
BELLA = {
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


def instances_of(row):
    return [
        {
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
            "sha256": f"sha-{n}",
            "key": f"dicom/{row['study_uid']}/{row['study_uid']}.1/{row['study_uid']}.1.{n}.dcm",
        }
        for n in range(row["instances"])
    ]


class FakeBackend:
    """The plugin's REST API as the dashboard's Backend offers it; ``down = True`` makes the PACS not answer."""

    def __init__(self):
        self.status_value = healthy_status()
        self.error = None
        self.down = False
        self.restores = []
        self.catalog = [dict(STUDY), dict(BELLA)]
        self.holdings = {}  # study uid -> GET /backup/studies/<uid>/snapshots
        self.in_pacs = {}  # study uid -> {"id", "images"}
        self.pacs_files = {}  # orthanc id -> bytes
        self.run_value = {
            "id": 7,
            "state": "running",
            "target": "minio",
            "kind": "restore",
            "queued_at": 1_795_000_200.0,
            "summary": {"study_uid": "1.2.3", "done": 1, "total": 2},
        }
        self.missing = set()  # study uids the plugin says are not in the backups
        self.run_list = []  # GET /backup/runs: snapshots, drills and restores, newest first
        self.asked = []

    def _up(self, what):
        self.asked.append(what)
        if self.down:
            from pacs_dashboard.backend import PacsDown

            raise PacsDown("The PACS is not answering right now.")

    def status(self):
        self.asked.append("status")
        if self.down:
            return None, "Orthanc at http://127.0.0.1:1 cannot be reached ([Errno 111] Connection refused)."
        return (None, self.error) if self.error else (self.status_value, None)

    def runs(self, kind=None, limit=100):
        self._up("runs")
        return [r for r in self.run_list if kind is None or r["kind"] == kind][:limit]

    def run(self, run_id):
        self._up("run")
        return dict(self.run_value, id=run_id)

    def trigger(self, kind, target=None):
        self._up("trigger")
        return [1]

    def studies(self, q, a, b, m):
        self._up("studies")
        words = q.lower().replace("^", " ").replace(",", " ").split()
        return [r for r in self.catalog if all(w in (r["patient_name"] + " " + r["owner"]).lower() for w in words)]

    def changed_studies(self, since, limit, after=""):
        self._up("changed_studies")
        changed = [r for r in self.catalog if r["last_copied_at"] > since]
        return sorted(changed, key=lambda r: r["last_copied_at"])[:limit]

    def study(self, uid):
        self._up("study")
        row = next((r for r in self.catalog if r["study_uid"] == uid), dict(STUDY, study_uid=uid))
        if uid in self.missing:
            from pacs_dashboard.backend import NotInBackend

            raise NotInBackend("This study is not in the backups.")
        return {"study_uid": uid, "instances": instances_of(row)}

    def study_snapshots(self, uid):
        self._up("study_snapshots")
        return list(self.holdings.get(uid, []))

    def backup_preview(self, uid, position, size=256):
        self._up("backup_preview")
        return PNG

    def snapshots(self, target):
        self._up("snapshots")
        return []

    def restore(self, uid, source, snapshot):
        self._up("restore")
        self.restores.append((uid, source, snapshot))
        return 7

    def pacs_study(self, uid):
        self._up("pacs_study")
        return self.in_pacs.get(uid)

    def instance_file(self, oid):
        self._up("instance_file")
        return self.pacs_files.get(oid)

    def instance_in_pacs(self, uid):
        return (self.in_pacs.get(uid) or {}).get("id")

    def preview(self, oid):
        self._up("preview")
        return PNG

    def prepare_drive(self, target, label):
        self._up("prepare_drive")
        return {"repository_id": "0123456789abcdef", "runs": [1]}

    def rclone_config(self):
        self._up("rclone_config")
        return {"targets": [], "remotes": []}

    def put_rclone_config(self, text):
        self._up("put_rclone_config")
        return {"targets": [], "remotes": [], "message": "The cloud storage configuration is saved."}


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
