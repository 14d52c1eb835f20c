"""Read-only access to the backup copies in the bucket, for when the PACS (and the plugin in it) is down:
a study's images are listed under its key prefix and a picture is drawn from a copy with the plugin's
own pure-Python renderer, with the plugin's limits on previews (memory, size, how many at once; see
pacs_backup.settings.limits). The dashboard's account may only list and read (see store_setup.reader_policy).
"""

from __future__ import annotations

import os
import threading
import time
from typing import TYPE_CHECKING

from pacs_backup.contracts.keys import study_prefix
from pacs_backup.dicom.preview import render_copy
from pacs_backup.settings.limits import Limits, load_limits
from pacs_backup.settings.store import StoreSettings

if TYPE_CHECKING:
    from pacs_backup.clients.object_store import ObjectStore

_CACHE_S = 60.0


class BucketReader:
    def __init__(self, settings: StoreSettings, store: ObjectStore | None = None, limits: Limits | None = None) -> None:
        if store is None:  # imported here: the S3 client is needed only when the account is configured
            from pacs_backup.clients.object_store import ObjectStore

            store = ObjectStore(settings, timeout_s=20.0, pool_size=4)
        self.settings, self.store = settings, store
        self.limits = limits or load_limits(os.environ)  # BACKUP_PREVIEW_* as in the plugin (ConfigError)
        self._lock = threading.Lock()
        self._keys: dict[str, tuple[float, list[str]]] = {}

    def study_keys(self, study_uid: str) -> list[str]:
        """The keys of a study's copies, in a stable order (series, then image). Raises BackupError."""
        now = time.monotonic()
        with self._lock:
            hit = self._keys.get(study_uid)
        if hit and now - hit[0] < _CACHE_S:
            return hit[1]
        keys = sorted(self.store.list_keys(study_prefix(study_uid, self.settings.prefix)))
        with self._lock:
            if len(self._keys) > 256:
                self._keys.clear()
            self._keys[study_uid] = (now, keys)
        return keys

    def series_counts(self, study_uid: str) -> list[tuple[str, int]]:
        """``(series folder, images)`` of a study, from its keys."""
        counts: dict[str, int] = {}
        for key in self.study_keys(study_uid):
            series = key.rsplit("/", 2)[-2]
            counts[series] = counts.get(series, 0) + 1
        return sorted(counts.items())

    def preview(self, study_uid: str, position: int, size: int = 256) -> bytes:
        """A PNG of the study's image at ``position`` (1-based). Raises IndexError when there is none,
        NoPreview when it cannot be drawn (BadImage: damaged or too large), PreviewsBusy when every preview
        slot stayed taken, BackupError when the bucket cannot be read."""
        keys = self.study_keys(study_uid)
        if not 1 <= position <= len(keys):
            raise IndexError(position)
        return render_copy(self.store, keys[position - 1], size, self.limits)
