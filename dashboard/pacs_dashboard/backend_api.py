"""What the dashboard asks of the backup engine: :class:`BackendApi`, the documents it answers with, and the
errors it raises, each with a sentence fit for a page.

:class:`pacs_dashboard.backend.Backend` implements it over the plugin's REST API on Orthanc (the one source of
truth); the tests' stand-in (tests/support/dashboard_fakes.py) implements it too, and mypy checks both
against it. Pages, the monitor thread and the status keeper depend on this protocol, never on the client.
"""

from __future__ import annotations

from typing import Protocol, TypedDict

from pacs_backup.contracts.documents import RunDoc, StatusDoc
from pacs_backup.contracts.errors import BackupError
from pacs_backup.settings.upload_overrides import UploadLimitDoc
from pacs_backup.sources.base import CopyInstance, CopyStudy, SourceDoc, StudyMatch
from pacs_backup.state.catalog import StudySummary
from pacs_backup.state.manifest import ManifestEntry


# --- the documents (the plugin's routes build these; the status and runs are pacs_backup.contracts) -------
class StudyDoc(TypedDict):
    """``GET /backup/studies/<uid>``: every catalogued image of one study, by series then image."""

    study_uid: str
    instances: list[ManifestEntry]


class HoldingDoc(TypedDict):
    """One offsite snapshot holding (part of) a study (``GET /backup/studies/<uid>/snapshots``)."""

    target: str
    id: str
    short_id: str
    time: str  # ISO 8601, as restic gives it
    instances: int


class SnapshotDoc(TypedDict):
    """One snapshot of a target (``GET /backup/snapshots?target=``), newest first."""

    id: str
    short_id: str
    time: str


class PacsStudy(TypedDict):
    """A study as the PACS holds it now: Orthanc's id and how many images it has."""

    id: str
    images: int


class ReferralPeerDoc(TypedDict):
    """A referring clinic a study can be sent to (``REFERRAL_PEERS`` of the plugin)."""

    name: str
    label: str


class ReferralRequestDoc(TypedDict):
    """A study asked to go to a referring clinic, and how far it got (the plugin's ``ReferralDoc``)."""

    peer: str
    label: str
    study_uid: str
    requested_by: str
    requested_at: float
    instances: int
    verified: int
    state: str  # sending, verified or failing
    last_error: str | None


class ReferralsDoc(TypedDict):
    peers: list[ReferralPeerDoc]
    requests: list[ReferralRequestDoc]


class PreparedDrive(TypedDict):
    """``POST /backup/drives``: the new drive's repository id and the runs started on it."""

    repository_id: str
    runs: list[int]


class RemoteDoc(TypedDict):
    """One remote of the cloud-storage (rclone) configuration: its name and type, never its options."""

    name: str
    type: str


class ConnectionTest(TypedDict):
    """A cloud-storage target's connection test: whether it answered, and the sentence saying so."""

    target: str
    ok: bool
    message: str


class RcloneConfigDoc(TypedDict, total=False):
    """``GET``/``PUT /backup/rclone-config``: the remotes, the targets using them, and (PUT) what was done."""

    targets: list[str]
    remotes: list[RemoteDoc]
    remote_names: list[str]  # the remote names the targets expect
    refused: str  # why the file in place would not be used
    tests: list[ConnectionTest]  # with a connection test
    message: str


# --- the errors: every failure is one of these, ``str()`` a sentence for a page ----------------------------
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


# --- the protocol ------------------------------------------------------------------------------------------
class BackendApi(Protocol):
    """Every call the dashboard makes to the backup engine. Each raises a :class:`BackendError` (or, for the
    pictures, the plugin's BadImage / PreviewsBusy) unless it says otherwise."""

    def status(self) -> tuple[StatusDoc | None, str | None]:
        """``(status, None)``, or ``(None, why)`` when the PACS or the plugin does not answer (never raises)."""
        ...

    def runs(self, kind: str | None = None, limit: int = 100) -> list[RunDoc]:
        """Snapshots, restore tests and restores, newest first; ``kind`` one of snapshot, drill, restore."""
        ...

    def run(self, run_id: int) -> RunDoc: ...

    def trigger(self, kind: str, target: str | None = None) -> list[int]:
        """Start ``snapshots`` or ``drills`` now (of one copy, or all): the runs queued."""
        ...

    def studies(self, q: str, date_from: str, date_to: str, modality: str) -> list[StudySummary]: ...

    def changed_studies(self, since: float, limit: int, after: str = "") -> list[StudySummary]:
        """Studies whose catalog row changed after ``(since, after)`` (epoch seconds, study UID), oldest first."""
        ...

    def study(self, uid: str) -> StudyDoc: ...

    def study_snapshots(self, uid: str) -> list[HoldingDoc]: ...

    def backup_preview(self, uid: str, position: int, size: int = 256) -> bytes:
        """A PNG of the study's ``position``-th image (1-based), drawn from its backup copy."""
        ...

    def restore(self, study_uid: str, source: str, snapshot: str | None) -> int:
        """Start restoring a study into the PACS from ``source`` (and ``snapshot``): the run's id."""
        ...

    def pacs_study(self, study_uid: str) -> PacsStudy | None:
        """The study as the PACS holds it now, or None when the PACS does not hold it."""
        ...

    def instance_file(self, orthanc_id: str) -> bytes | None:
        """The file of one image in the PACS, or None when the PACS does not hold it."""
        ...

    def instance_in_pacs(self, study_uid: str) -> str | None:
        """Orthanc's id of one image of the study when it is in the PACS, else None (never raises)."""
        ...

    def preview(self, orthanc_id: str) -> bytes:
        """A PNG of one image as it is in the PACS."""
        ...

    def prepare_drive(self, target: str, label: str) -> PreparedDrive: ...

    def referrals(self, study_uid: str) -> ReferralsDoc:
        """The referring clinics, and what was asked to go to them of this study (newest first)."""
        ...

    def send_referral(self, peer: str, study_uid: str, user: str) -> int:
        """Queue the study for the clinic; returns how many images will be sent."""
        ...

    def rclone_config(self) -> RcloneConfigDoc: ...

    def put_rclone_config(self, text: str) -> RcloneConfigDoc:
        """Hand a configuration to the plugin, which checks it and writes it."""
        ...

    def test_rclone_connection(self) -> RcloneConfigDoc:
        """Test each cloud-storage target's connection (its ``tests`` and ``message``)."""
        ...

    def upload_limits(self) -> list[UploadLimitDoc]:
        """Each offsite copy's upload timetable: .env's, the one set here, the one in force, its next window."""
        ...

    def set_upload_limit(self, copy: str, rule: str) -> UploadLimitDoc:
        """Set a copy's upload timetable (an empty rule: .env's). BackendRefused with the plugin's sentence."""
        ...

    # --- every copy as a read-only source of studies (GET /backup/copies...) ---------------------------------
    def copies(self, study_uid: str | None = None) -> list[SourceDoc]:
        """The copies that can be read as sources (those holding ``study_uid`` when given)."""
        ...

    def copy_studies(self, source: str, match: StudyMatch) -> list[CopyStudy]:
        """Studies the copy ``source`` holds that match. Raises SourceUnavailable besides BackendErrors."""
        ...

    def copy_instances(self, source: str, study_uid: str) -> list[CopyInstance]:
        """Every instance of the study in the copy (NotInBackend when it holds none)."""
        ...

    def copy_instance(self, source: str, study_uid: str, sop_uid: str) -> bytes:
        """One instance's exact bytes from the copy. Raises CopyDamaged and SourceUnavailable besides
        BackendErrors."""
        ...
