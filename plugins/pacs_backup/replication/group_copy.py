"""The group copy: every backed-up instance also goes to the group's object store, under ``<clinic-id>/``.

The group store is any S3 with versioning and object lock, reached with the same client code as the local
bucket (:class:`~pacs_backup.clients.object_store.ObjectStore`) and this clinic's own keys, which may write
and read only its prefix. The queue (:mod:`.group_queue`) is emptied by the cloud PACS copy's sender
(:class:`~.cloud_pacs.CloudSender`: batches, backoff, a pause while the store cannot be reached, nothing
dropped): each instance's exact bytes (from the PACS when it still holds exactly them, else the local
bucket) are written with their sha256 and checked by reading the object's size and sha256 back. The
clinic's manifest goes beside them, ``<clinic-id>/catalog/manifest.jsonl``, rewritten after changes at
most every GROUP_MANIFEST_SECONDS, so the group (and a disaster recovery) can find studies by patient.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pacs_backup.clients.object_store import ObjectStore
from pacs_backup.clients.orthanc_source import OrthancReader
from pacs_backup.contracts.documents import GroupDoc
from pacs_backup.contracts.errors import BackupError, CloudRefused, CloudUnavailable, StoreUnavailable
from pacs_backup.contracts.keys import study_prefix
from pacs_backup.contracts.retry import RetryPolicy
from pacs_backup.settings.group import GroupSettings
from pacs_backup.settings.retention import RetentionRule, lock_until
from pacs_backup.state.manifest import BUCKET_MANIFEST_KEY, sha256_hex, write_manifest

from .cloud_pacs import CloudSender, Outgoing, Pending
from .group_queue import GroupQueue

if TYPE_CHECKING:
    from pacs_backup.restore.uploads import OrthancTarget, Progress, RestoreReport

    from .cloud_pacs import SentStudy

log = logging.getLogger(__name__)


def manifest_key(clinic: str) -> str:
    """Where the clinic's manifest is kept in the group store."""
    return f"{clinic}/{BUCKET_MANIFEST_KEY}"


class GroupStore:
    """The group store as the sender's remote: writes an instance by its key and checks it by a look-up.

    Errors: :class:`CloudUnavailable` when the store cannot be reached (not counted against an image),
    :class:`CloudRefused` when it refused or holds other bytes than were sent.
    """

    def __init__(self, store: ObjectStore, clinic: str) -> None:
        self.store, self.clinic = store, clinic

    @property
    def shown(self) -> str:
        s = self.store.settings
        return f"{s.endpoint}/{s.bucket}/{self.clinic}/"

    def copy(self, key: str, data: bytes, sha256: str, orthanc_id: str, retain_until: datetime | None = None) -> None:
        """Make ``key`` hold exactly ``data`` (nothing is written when it already does), checked by a look-up;
        a new copy is locked until ``retain_until`` when given (else for GROUP_LOCK_DAYS)."""
        try:
            held = self.store.stat(key)
            if held is None or held.sha256 != sha256 or held.size != len(data):
                self.store.put_verified(key, data, sha256, orthanc_id, retain_until=retain_until)
                held = self.store.stat(key)
        except StoreUnavailable as exc:
            raise CloudUnavailable(str(exc)) from None
        except BackupError as exc:
            raise CloudRefused(str(exc)) from None
        if held is None or held.sha256 != sha256 or held.size != len(data):
            raise CloudRefused(f"The group store did not confirm the copy of {key} (size or sha256 differs).")

    def send(self, items: Sequence[Outgoing]) -> None:
        for o in items:
            self.copy(o.key, o.data, o.sha256, o.orthanc_id or "")

    def instances_of(self, study_uid: str) -> set[str]:
        """The SOPInstanceUIDs (as in the keys) the group store holds of a study of this clinic."""
        try:
            keys = list(self.store.list_keys(study_prefix(study_uid, self.clinic)))
        except StoreUnavailable as exc:
            raise CloudUnavailable(str(exc)) from None
        return {k.rsplit("/", 1)[-1].removesuffix(".dcm") for k in keys}

    def restore(
        self, study_uid: str, orthanc: OrthancTarget, sent: SentStudy, progress: Progress | None = None
    ) -> RestoreReport:
        raise BackupError(
            f"Restore study {study_uid} from the group store with scripts/restore-study --from group "
            "(or from the local bucket, which holds the same images)."
        )


class GroupSender(CloudSender):
    """The thread that copies the group queue to the group store, and keeps the clinic's manifest there.

    ``store`` (as for every sender) is the local bucket, where bytes the PACS no longer holds are read;
    the group store is ``target.store``."""

    def __init__(
        self,
        settings: GroupSettings,
        queue: GroupQueue,
        reader: OrthancReader,
        local: ObjectStore | None,
        manifest_path: Path,
        retry: RetryPolicy | None = None,
        clock: Any = time.time,
        retention: RetentionRule | None = None,
    ) -> None:
        self.target = GroupStore(ObjectStore(settings.store, pool_size=4), settings.clinic_id)
        super().__init__(queue, self.target, reader, local, retry, clock, remote="the group store")
        self.settings, self.group_queue, self.retention = settings, queue, retention
        self.manifest_path = manifest_path
        self.manifest_at: float | None = None
        self._manifest_due = False

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="pacs-backup-group-copy", daemon=True)
        self._thread.start()

    def _deliver(self, batch: list[Pending]) -> set[str]:
        """Copy and check each instance by its key (the group store holds no study index to ask)."""
        self._maybe_manifest(self._clock())
        for p in batch:
            out = self._load(p)
            self.target.copy(p.key, out.data, p.sha256, p.orthanc_id, self._retain_until(p))
            self._manifest_due = True
        return {p.sop_uid for p in batch}

    def _retain_until(self, p: Pending) -> datetime | None:
        """As the clinic's own copies: the later of GROUP_LOCK_DAYS and the day the retention rule lets the study
        go (its date from the catalog); None without a rule."""
        if self.retention is None:
            return None
        now = datetime.fromtimestamp(self._clock(), UTC)
        return lock_until(now, self.target.store.settings.lock_days, self.retention, self.group_queue.study_date(p))

    def _idle(self, now: float) -> None:
        self._maybe_manifest(now)

    def _maybe_manifest(self, now: float) -> None:
        if self._manifest_due and (self.manifest_at is None or now - self.manifest_at >= self.settings.manifest_s):
            self.write_manifest(now)

    def write_manifest(self, now: float) -> None:
        """Write the clinic's manifest (every instance verified in the group store) beside its images."""
        self._manifest_due = False
        try:
            count = write_manifest(self.group_queue.entries(), self.manifest_path, {"created_at": now})
            data = self.manifest_path.read_bytes()
            self.target.store.put_verified(manifest_key(self.settings.clinic_id), data, sha256_hex(data), "manifest")
        except (BackupError, OSError) as exc:
            self._manifest_due = True  # tried again at the next interval
            self.manifest_at = now
            log.warning("the clinic's manifest was not written to the group store: %s", exc)
            return
        self.manifest_at = now
        log.info("the clinic's manifest (%d images) written to the group store", count)

    def status(self) -> GroupDoc:  # type: ignore[override]
        stats = self.queue.stats(self._clock())
        s = self.settings.store
        return {
            "clinic": self.settings.clinic_id,
            "endpoint": s.endpoint,
            "bucket": s.bucket,
            "reachable": self.reachable,
            "unreachable_since": self.unreachable_since,
            "depth": stats["depth"],
            "verified": stats["verified"],
            "failing": stats["failing"],
            "oldest_pending_age_s": stats["oldest_pending_age_s"],
            "last_error": self.last_error,
            "lag_s": self.lag(),
            "manifest_at": self.manifest_at,
        }
