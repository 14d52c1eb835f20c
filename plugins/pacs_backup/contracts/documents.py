"""The documents the plugin's REST API gives out, typed: what the dashboard, the scripts and the tests
read. Adding a key is compatible; removing or renaming one is a change of the interface."""

from __future__ import annotations

from typing import Any, Literal, NotRequired, TypedDict

from .runs import RunKind, RunState

LightColour = Literal["green", "amber", "red"]  # a traffic light: fine, needs attention, broken
OverallState = Literal["ok", "degraded", "error"]  # the status's one word (see jobs.health.overall_state)


class Forecast(TypedDict):
    """Size now, growth per month, size in 12 months, and (with a quota) months until it is full."""

    size_bytes: int
    growth_bytes_per_month: int
    in_12_months_bytes: int
    quota_bytes: int | None
    months_until_full: float | None
    light: LightColour  # amber: full within the warning months; red: full, or within a month
    advice: str | None


class RunDoc(TypedDict):
    """One snapshot, drill or restore run (``GET /backup/runs/<id>``)."""

    id: int
    target: str
    kind: RunKind
    state: RunState
    queued_at: float
    started_at: float | None
    finished_at: float | None
    duration_s: float | None
    # What the run did: the ``to_json`` of its kind's summary (contracts.runs), ``{}`` when it recorded
    # none. Read it with ``SnapshotSummary.from_json`` etc., never by its keys.
    summary: dict[str, Any]
    error: str | None  # a sentence for a person when it failed


class DriveDoc(TypedDict):
    """An external-drive target: which drive is plugged in, its drives, which to swap next."""

    connected: bool
    sentence: str
    repository_id: str | None
    drives: list[dict[str, Any]]
    swap_next: str | None
    light: LightColour
    advice: str | None


class PlacementDoc(TypedDict, total=False):
    """Whether a copy survives the loss of this box (jobs.placement); absent until it is decided."""

    same_box: bool  # on this box: protects against mistakes, not against fire or theft
    same_box_reason: str  # why, for a technician ("rest-server is a service of this appliance's ...")
    treated_as_offsite: bool  # on this box, but BACKUP_TREAT_AS_OFFSITE names it (tests and trials)


class TargetDoc(PlacementDoc, total=False):
    """One copy made by snapshots or drills: an offsite target, or ``minio`` (drills only)."""

    repository: str  # with any password masked
    next_snapshot_at: float
    next_drill_at: float
    forecast: Forecast
    drive: DriveDoc
    last_snapshot: RunDoc | None
    last_good_snapshot_age_s: float | None
    last_drill: RunDoc | None
    last_good_drill_age_s: float | None
    window: str  # its upload timetable as set, e.g. '06:00,0 20:00,off' (absent: uploads at any time, unlimited)
    next_window: float | None  # when uploads are next allowed (None: allowed now)


class ErrorDoc(TypedDict):
    """The last error of a part: a sentence, and when (None: a setting, not an event)."""

    message: str
    at: float | None


class RefusedDoc(TypedDict):
    """The last DICOM file refused on arrival, and why."""

    at: float
    reason: str


class LagDoc(TypedDict):
    """Seconds from arrival in the PACS to a verified copy, over the recent copies."""

    samples: NotRequired[int]
    p50: float | None
    p99: float | None


class StoreDoc(TypedDict):
    """The object store holding the local copy, and its protection."""

    endpoint: str
    bucket: str
    reachable: bool
    versioning: bool | None  # None: not checked yet
    object_lock: bool | None
    warnings: list[str]
    refused: NotRequired[str]  # copying has not started: the bucket lacks what the settings ask (one sentence)
    forecast: NotRequired[Forecast]


class DiskDoc(TypedDict):
    """The disk holding the PACS's images."""

    path: str
    free_bytes: int
    total_bytes: int
    forecast: Forecast


class CloudQueueDoc(TypedDict):
    """The cloud PACS's queue: waiting, sent and verified, being tried again."""

    depth: int
    verified: int
    failing: int
    oldest_pending_age_s: float | None


class CloudDoc(CloudQueueDoc):
    """The cloud PACS copy: its queue, whether it answers, and whether it is on this box."""

    url: str  # with any password masked
    reachable: bool | None  # None: not tried yet
    unreachable_since: float | None
    last_error: ErrorDoc | None
    lag_s: LagDoc
    window: NotRequired[str]  # its upload timetable (CLOUD_PACS_UPLOAD_LIMIT), as in TargetDoc
    next_window: NotRequired[float | None]  # when sending may start again (None: it may now)
    same_box: NotRequired[bool]  # as in PlacementDoc
    same_box_reason: NotRequired[str]
    treated_as_offsite: NotRequired[bool]


class GroupFeedDoc(TypedDict):
    """The feed of verified catalog rows to the group service, and the heartbeat."""

    url: str
    depth: int  # rows waiting to be acknowledged by the group service
    held: int  # of those, rows it refused on their own: kept, tried again daily
    last_sent_at: float | None
    last_heartbeat_at: float | None
    last_error: ErrorDoc | None


class GroupDrillsDoc(TypedDict):
    """The group store's restore tests (run by the scheduler as for the local bucket)."""

    last_drill: RunDoc | None
    last_good_drill_age_s: float | None
    next_drill_at: float


class GroupDoc(CloudQueueDoc):
    """The group copy: this clinic's instances in the group store under ``<clinic>/`` (settings/group.py)."""

    clinic: str
    endpoint: str
    bucket: str
    reachable: bool | None  # None: not tried yet
    unreachable_since: float | None
    last_error: ErrorDoc | None
    lag_s: LagDoc
    manifest_at: float | None  # when the clinic's manifest was last written to the group store
    last_drill: NotRequired[RunDoc | None]  # the group store's own restore tests (GroupDrillsDoc)
    last_good_drill_age_s: NotRequired[float | None]
    next_drill_at: NotRequired[float]
    feed: NotRequired[GroupFeedDoc]  # absent: no group service is configured


class ReplicationDoc(TypedDict, total=False):
    """The replication part of the status (``Replicator.status``): every key is there while backup runs."""

    outbox_depth: int
    oldest_pending_age_s: float | None
    replicated: int
    replicated_bytes: int
    failed: int
    quarantined: int
    last_error: ErrorDoc | None  # in the status also while backup is not running: why
    last_replicated_at: float | None
    lag_s: LagDoc
    store: StoreDoc
    last_reconcile: dict[str, Any] | None
    workers: int


class RetentionDoc(TypedDict):
    """How long every copy keeps a study (settings/retention.py), and whether the bucket's lock covers it."""

    years: int
    preset: str | None
    rule: str  # the rule as staff read it, with where its number comes from
    lock_note: NotRequired[str]  # the bucket's object lock is shorter than the rule: what that means


CopyKind = Literal["bucket", "offsite", "cloud_storage", "drive", "cloud_pacs"]  # what a restore source is


class RecoveryTimeDoc(TypedDict):
    """How long getting every image back from one copy would take, from this box's own biggest recent
    restore from it (jobs.recovery_time). The measured fields are None while it was never measured."""

    copy: str  # the copy's name as a restore source: ``minio``, a target's name, ``cloud-pacs``
    kind: CopyKind
    measured: bool
    seconds_per_gb: float | None
    measured_on: float | None  # when the measured restore finished
    measured_bytes: int | None
    measured_instances: int | None
    run_id: int | None  # the measured restore (``GET /backup/runs/<id>``)
    archive_bytes: int  # the clinic's backed-up images now (the catalog's total)
    estimate_s: float | None  # for all of them, at the measured rate
    sentence: str  # in plain words, or what to do to measure it


class StatusDoc(ReplicationDoc):
    """``GET /backup/status``. While backup is not running (a bad setting, BACKUP_ENABLED=false) it holds
    only these keys (``enabled`` false, ``last_error`` saying why) and none of the replication part."""

    version: str
    time: float
    state: OverallState
    enabled: bool
    last_snapshot: RunDoc | None  # the newest of any target
    last_drill: RunDoc | None
    refused_instances: int  # since Orthanc started
    last_refused: RefusedDoc | None
    config_error: NotRequired[str]
    offsite: NotRequired[dict[str, TargetDoc]]
    offsite_warning: NotRequired[str]  # no offsite target is configured, or every copy is on this box
    retention: NotRequired[RetentionDoc]
    cloud_pacs: NotRequired[CloudDoc]
    group: NotRequired[GroupDoc]  # this clinic is in a group of clinics
    disk: NotRequired[DiskDoc | None]  # None: the storage folder could not be measured
    recovery_time: NotRequired[list[RecoveryTimeDoc]]  # one per copy a study can be restored from
