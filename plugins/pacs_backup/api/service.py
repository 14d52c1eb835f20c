"""Assembly of the engine from configuration, independent of Orthanc.

The Orthanc entry module creates one :class:`BackupService` with a ``get`` function (the SDK's
``RestApiGet``) and forwards Orthanc's events to it. Tests build the same service with an HTTP getter.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from pacs_backup import __version__
from pacs_backup.clients.object_store import ObjectStore
from pacs_backup.clients.orthanc_source import Getter, OrthancReader
from pacs_backup.contracts.documents import RefusedDoc, StatusDoc
from pacs_backup.contracts.errors import BackupError, ConfigError
from pacs_backup.contracts.retry import RetryPolicy
from pacs_backup.dicom.guard import screen
from pacs_backup.jobs.drives import DriveRegistry, DriveWatch
from pacs_backup.jobs.placement import Placement, placement_of
from pacs_backup.jobs.scheduler import OffsiteScheduler
from pacs_backup.jobs.snapshots import OffsiteContext
from pacs_backup.rclone.config import default_path, with_default
from pacs_backup.replication.cloud_pacs import CloudPacs, CloudQueue, CloudSender
from pacs_backup.replication.dicomweb import DicomWeb
from pacs_backup.replication.dimse_peer import DimsePeer
from pacs_backup.replication.group_copy import GroupSender
from pacs_backup.replication.group_deliveries import GroupDeliveries
from pacs_backup.replication.group_feed import GroupFeed
from pacs_backup.replication.group_queue import GroupQueue
from pacs_backup.replication.outbox import Outbox
from pacs_backup.replication.referrals import Referral, ReferralQueue
from pacs_backup.replication.replicator import Replicator, ReplicatorOptions
from pacs_backup.replication.throttle import Throttle
from pacs_backup.settings.config import CLOUD_PACS_COPY, Settings, load_settings
from pacs_backup.settings.limits import Limits, load_limits
from pacs_backup.settings.upload_overrides import UploadLimits, upload_limits_of
from pacs_backup.sources.registry import SourceRegistry
from pacs_backup.state.catalog import Catalog
from pacs_backup.state.history import RunLog
from pacs_backup.state.migrate import SchemaTooNew

from .access import Access, load_access
from .copies import copy_sources
from .loopback import LoopbackFirst, loopback_client
from .status_doc import build_status

log = logging.getLogger(__name__)

Poster = Callable[[str, bytes], bytes]


class InProcessOrthanc:
    """Restore target inside the plugin: the same calls as OrthancHttp, through the SDK."""

    def __init__(self, get: Getter, post: Poster) -> None:
        self._get, self._post = get, post

    def upload(self, dicom: bytes) -> dict[str, Any]:
        answer = json.loads(self._post("/instances", dicom))
        if not isinstance(answer, dict):
            raise BackupError("Orthanc did not accept the file as one DICOM instance.")
        return answer

    def get_json(self, uri: str) -> Any:
        return json.loads(self._get(uri))


OUTBOX_FILENAME = "pacs-backup-outbox.sqlite"


class BackupService:
    """The plugin's whole behaviour: configuration, replication and status.

    A configuration error does not raise: it is kept, logged in one line, and shown by
    :meth:`status`, so that Orthanc keeps serving images while the installer fixes the setting.
    """

    def __init__(
        self,
        get: Getter,
        storage_dir: Path,
        env: Mapping[str, str] | None = None,
        config_json: Callable[[], str] = lambda: "{}",
        post: Poster | None = None,
        put: Poster | None = None,
    ) -> None:
        self.storage_dir = storage_dir
        self.rclone_default = default_path(storage_dir)  # a pasted rclone configuration, when no file is set
        self.replicator: Replicator | None = None
        self.offsite: OffsiteScheduler | None = None
        self.placement: Placement | None = None
        self.catalog: Catalog | None = None
        self.cloud: CloudSender | None = None
        self.group: GroupSender | None = None  # the group copy, when this clinic is in a group (GROUP_*)
        self.group_feed: GroupFeed | None = None  # its catalog feed and heartbeat to the group service
        self.group_deliveries: GroupDeliveries | None = None  # studies of other clinics brought into this PACS
        self.upload_limits: UploadLimits | None = None  # upload timetables in force (.env's or the dashboard's)
        self.copies: SourceRegistry | None = None  # every copy as a source of studies (api/copies.py)
        self.referrals: dict[str, Referral] = {}  # referring clinics a study can be sent to, by name
        self.config_error: str | None = None
        self.settings: Settings | None = None
        self._growth_cache: tuple[float, tuple[int, int, float | None]] | None = None
        self.refused = 0  # DICOM files refused by screen_instance since start
        self.last_refused: RefusedDoc | None = None
        # Who may call the routes: read first, so that it holds also while the rest is misconfigured.
        self.access: Access = load_access(os.environ if env is None else env, config_json())
        # The limits on incoming files also hold while the rest is misconfigured (defaults if they are wrong).
        self.limits = _limits(os.environ if env is None else env)
        try:
            self.settings = load_settings(storage_dir / OUTBOX_FILENAME, os.environ if env is None else env)
        except ConfigError as exc:
            self.config_error = str(exc)
            log.error("PACS backup is NOT running: %s", exc)
            return
        if not self.settings.enabled:
            log.warning("PACS backup is disabled (BACKUP_ENABLED=false): instances are not copied")
            return
        s = self.settings = replace(self.settings, targets=with_default(self.settings.targets, self.rclone_default))
        if s.cloud_pacs is not None and s.cloud_pacs.dicom is not None and (post is None or put is None):
            self.config_error = "CLOUD_PACS_DICOM works only inside Orthanc (the plugin sends through it)."
            log.error("PACS backup is NOT running: %s", self.config_error)
            return
        try:
            outbox = Outbox(s.outbox_path)  # the first to open the database: a newer release's is refused
        except SchemaTooNew as exc:
            self.config_error = str(exc)
            log.error("PACS backup is NOT running: %s", exc)
            return
        # Restores send images over Orthanc's own port when they can: in process they run one at a time.
        loopback = loopback_client(config_json(), self.access.roles)
        restores_into = LoopbackFirst(loopback, InProcessOrthanc(get, post)) if post else None
        reader = OrthancReader(get, storage_dir=storage_dir)  # reads files straight from storage when it can
        store = ObjectStore(s.store, pool_size=max(4, s.workers * 2))
        self.catalog = Catalog(s.outbox_path)
        ctx = OffsiteContext(
            reader=reader,
            catalog=self.catalog,
            store=store,
            storage_dir=storage_dir,
            config_json=config_json,
            orthanc=restores_into,
            prefix=s.store.prefix,
            retention=s.retention,
        )
        self.upload_limits = limits = upload_limits_of(s)
        ctx.upload_of = upload_of = lambda t: limits.schedule(t.name)  # each run asks the rule in force then
        self.placement = placement_of(s)
        self.offsite = OffsiteScheduler(
            ctx,
            s.targets,
            RunLog(s.outbox_path),
            drill_sample=s.drill_sample,
            minio_drill_interval_s=s.minio_drill_hours * 3600.0,
            first_run_delay_s=s.first_run_delay_s,
            drives=DriveWatch(DriveRegistry(s.outbox_path), storage_dir, ctx.restic),
            placement=self.placement,
        )
        self.offsite.upload_of = upload_of  # when a snapshot may start, and the window the status shows
        if s.cloud_pacs is not None:
            client: CloudPacs
            cloud_upload = functools.partial(limits.schedule, CLOUD_PACS_COPY)  # may change while it runs
            throttle = Throttle(cloud_upload)
            if s.cloud_pacs.dicom is not None and post is not None and put is not None:
                client = DimsePeer(s.cloud_pacs.dicom, get, post, put, throttle=throttle)
            else:
                assert s.cloud_pacs.url is not None  # noqa: S101 - load_cloud_pacs sets one of them
                client = DicomWeb(s.cloud_pacs.url, s.cloud_pacs.username, s.cloud_pacs.password, throttle=throttle)
            self.cloud = CloudSender(
                CloudQueue(s.outbox_path),
                client,
                reader,
                store,
                RetryPolicy(s.retry_base_s, s.retry_cap_s),
                upload=cloud_upload,
            )
            self.offsite.cloud = self.cloud
        if s.group is not None:
            self._start_group(s, reader, store)
        for peer in s.referral_peers:
            if peer.dicom is not None and (post is None or put is None):
                continue  # DICOM peers send through Orthanc: only inside it (technician commands need none)
            remote: CloudPacs = (
                DimsePeer(peer.dicom, get, post, put, modality=f"pacs-backup-referral-{peer.name}", called=peer.label)  # type: ignore[arg-type]
                if peer.dicom is not None
                else DicomWeb(str(peer.url), peer.username, peer.password)
            )
            queue = ReferralQueue(s.outbox_path, peer.name)
            retry = RetryPolicy(s.retry_base_s, s.retry_cap_s)
            sender = CloudSender(queue, remote, reader, store, retry, remote=peer.label)
            self.referrals[peer.name] = Referral(peer, queue, sender)
        self.replicator = Replicator(
            outbox,
            reader,
            store,
            ReplicatorOptions(
                workers=s.workers,
                prefix=s.store.prefix,
                retry=RetryPolicy(s.retry_base_s, s.retry_cap_s),
                reconcile_every_s=s.reconcile_hours * 3600.0,
                retention=s.retention,
            ),
            catalog=self.catalog,
        )
        # Every copy as a read-only source of studies (GET /backup/copies...); empties the view cache.
        self.copies = copy_sources(s, storage_dir, get, post, ctx, self.offsite.drives, self.cloud)
        ctx.after_snapshot = self.copies.after_snapshot  # the first look at a new snapshot: one restic run
        self.offsite.manifest_of = self.copies.manifests.entries  # a study's restore reads no manifest again

    def _start_group(self, s: Settings, reader: OrthancReader, store: ObjectStore) -> None:
        """The group copy (and, with a group service, its feed); the scheduler runs its drill."""
        assert s.group is not None and self.offsite is not None  # noqa: S101 - the caller's check
        feed = s.group.service_url is not None
        queue = GroupQueue(s.outbox_path, s.group.clinic_id, s.store.prefix, feed=feed)
        retry = RetryPolicy(s.retry_base_s, s.retry_cap_s)
        manifest = s.outbox_path.with_name("pacs-backup-group-manifest.jsonl")
        self.group = GroupSender(s.group, queue, reader, store, manifest, retry, retention=s.retention)
        self.offsite.group = self.group
        if feed:
            self.group_feed = GroupFeed(s.outbox_path, s.group, self.status, retry)
            if self.offsite.ctx.orthanc is not None:  # restores go into the PACS (only inside Orthanc)
                self.group_deliveries = GroupDeliveries(s.group, self.offsite.runs, self.offsite.ctx.orthanc)

    def on_new_instance(self, orthanc_id: str) -> None:
        """Forward a NEW_INSTANCE change. Never raises."""
        if self.replicator is not None:
            self.replicator.on_new_instance(orthanc_id)

    def start(self) -> None:
        """Start the engine's threads (Orthanc has started)."""
        if self.replicator is not None:
            log.warning(
                "PACS backup %s started: copying to bucket %s with %d workers",
                __version__,
                self.replicator.store.bucket,
                self.replicator.options.workers,
            )
            self.replicator.start()
        if self.offsite is not None:
            self.offsite.start()
        if self.copies is not None:
            self.copies.warm_in_background()
        if self.cloud is not None:
            self.cloud.start()
        if self.group is not None:
            self.group.start()
        if self.group_feed is not None:
            self.group_feed.start()
        if self.group_deliveries is not None:
            self.group_deliveries.start()
        for referral in self.referrals.values():
            referral.sender.start()

    def stop(self) -> None:
        """Stop the threads (Orthanc is stopping). Unfinished work stays in the outbox."""
        for referral in self.referrals.values():
            referral.sender.stop()
        if self.group_deliveries is not None:
            self.group_deliveries.stop()
        if self.group_feed is not None:
            self.group_feed.stop()
        if self.group is not None:
            self.group.stop()
        if self.cloud is not None:
            self.cloud.stop()
        if self.offsite is not None:
            self.offsite.stop()
        if self.replicator is not None:
            self.replicator.stop()

    def status(self) -> StatusDoc:
        """Return ``GET /backup/status`` (api/status_doc.py puts it together)."""
        return build_status(self)

    def growth(self, now: float) -> tuple[int, int, float | None]:
        """The catalog's growth, recomputed at most every 5 minutes (a sum over every copy)."""
        if self.catalog is None:
            return 0, 0, None
        if self._growth_cache is None or now - self._growth_cache[0] > 300:
            self._growth_cache = (now, self.catalog.growth(now))
        return self._growth_cache[1]

    # --- REST API under /backup/ (the entry module forwards requests here) ---------------------
    def scheduler(self) -> OffsiteScheduler:
        """The running scheduler, or a 409 sentence saying why there is none."""
        if self.offsite is None:
            raise BackupError(self.config_error or "Backup is disabled (BACKUP_ENABLED=false).")
        return self.offsite

    def outbox_or_fail(self) -> Outbox:
        """The copy queue, or a 409 sentence saying why there is none."""
        if self.replicator is None:
            raise BackupError(self.config_error or "Backup is disabled (BACKUP_ENABLED=false).")
        return self.replicator.outbox

    def catalog_or_fail(self) -> Catalog:
        """The catalog, or a 409 sentence saying why there is none."""
        if self.catalog is None:
            raise BackupError(self.config_error or "Backup is disabled (BACKUP_ENABLED=false).")
        return self.catalog

    # --- instances arriving (Orthanc's received-instance filter) ---------------------------------
    def screen_instance(self, dicom: bytes) -> str | None:
        """Return why a received file must be refused, or None to store it. Never raises.

        Fails closed: a file the screen cannot check (a limit reached, damaged deflated data, or a fault
        of the screen itself) is refused with a reason, never kept unchecked."""
        try:
            reason = screen(dicom, self.limits).refusal
        except Exception:  # the traceback goes to the log; the file is refused, not kept
            log.exception("could not screen a received instance; refusing it")
            reason = (
                "Refused a DICOM file that the backup plugin could not check (Orthanc's log has the details): "
                "files are stored only once they are checked. Send it again; if it is refused again, ask the "
                "technician."
            )
        if reason is None:
            return None
        self.refused += 1
        self.last_refused = {"at": time.time(), "reason": reason}
        return reason


def _limits(env: Mapping[str, str]) -> Limits:
    """The configured limits, or the defaults when a value is wrong (load_settings reports it)."""
    try:
        return load_limits(env)
    except ConfigError:
        return Limits()
