"""The on-disk cache of studies fetched from snapshots to be looked at, with a size cap.

A snapshot is read study by study: the first look at a study has restic write only that study's files
(into a private temporary folder, then moved into the cache whole); later looks read them from here.
When the cache passes its cap (``BACKUP_VIEW_CACHE_MB``) the studies looked at least recently are
removed. The folder is owner-only (0700, files 0600) and emptied when the plugin starts: it holds
patient images and is never a copy of anything.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

Fetch = Callable[[Path], None]  # writes a study's files into the folder it is given


@dataclass
class _Study:
    size: int
    used_at: float
    lock: threading.Lock


class ViewCache:
    """Studies on disk under ``root``, at most ``cap_bytes`` (beyond it, least recently used go). Thread-safe."""

    def __init__(self, root: Path, cap_bytes: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.root = root
        self.cap_bytes = cap_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._studies: dict[str, _Study] = {}
        self._fetching: dict[str, threading.Lock] = {}
        self.fetches = 0  # studies fetched since start (a look served from the cache does not count)
        if root.exists():
            shutil.rmtree(root, ignore_errors=True)  # cleaned at start: nothing is kept across restarts
        root.mkdir(parents=True, mode=0o700, exist_ok=True)
        root.chmod(0o700)

    def size(self) -> int:
        """Bytes the cached studies take."""
        with self._lock:
            return sum(s.size for s in self._studies.values())

    def holds(self, key: str) -> bool:
        with self._lock:
            return key in self._studies

    def read(self, key: str, name: str, fetch: Fetch) -> bytes:
        """The bytes of file ``name`` of study ``key``, fetching the study first when it is not here.

        Concurrent reads of a study that is not here fetch it once: the others wait for that fetch.

        Raises:
            FileNotFoundError: the study was fetched but has no such file.
            whatever ``fetch`` raises (nothing is kept then).
        """
        with self._lock:
            gate = self._fetching.setdefault(key, threading.Lock())  # kept: a Lock per study looked at
        while True:
            with gate:
                entry = self._present(key)
                if entry is None:
                    entry = self._fetch(key, fetch)
                with entry.lock:  # held while reading, so an eviction never removes a file being read
                    with self._lock:
                        current = self._studies.get(key) is entry
                    if current:
                        return (self.root / key / name).read_bytes()
            # evicted between the look-up and the read: fetched again

    def _present(self, key: str) -> _Study | None:
        with self._lock:
            entry = self._studies.get(key)
            if entry is not None:
                entry.used_at = self._clock()
            return entry

    def _fetch(self, key: str, fetch: Fetch) -> _Study:
        tmp = Path(tempfile.mkdtemp(prefix=".fetch-", dir=self.root))  # 0700, on the cache's file system
        try:
            fetch(tmp)
            size = 0
            for path in tmp.rglob("*"):
                if path.is_file():
                    path.chmod(0o600)
                    size += path.stat().st_size
            final = self.root / key
            final.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
            if final.exists():
                shutil.rmtree(final)
            tmp.rename(final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        entry = _Study(size, self._clock(), threading.Lock())
        with self._lock:
            self.fetches += 1
            self._studies[key] = entry
        self._evict(keep=key)
        return entry

    def _evict(self, keep: str) -> None:
        """Remove the least recently used studies (never ``keep``, nor one being read) until under the cap."""
        while True:
            with self._lock:
                total = sum(s.size for s in self._studies.values())
                if total <= self.cap_bytes:
                    return
                victims = sorted((s.used_at, k) for k, s in self._studies.items() if k != keep)
                chosen = None
                for _, k in victims:
                    if self._studies[k].lock.acquire(blocking=False):
                        chosen = k
                        break
                if chosen is None:
                    return  # only the study just fetched (larger than the cap alone) or studies being read
                entry = self._studies.pop(chosen)
            try:
                shutil.rmtree(self.root / chosen, ignore_errors=True)
                log.info("view cache: removed %s (%d bytes) to stay under %d bytes", chosen, entry.size, self.cap_bytes)
            finally:
                entry.lock.release()
