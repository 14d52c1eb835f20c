"""Reading instances out of Orthanc through its REST API.

The same reader works inside the plugin (``orthanc.RestApiGet``, no network) and in scripts and
tests (HTTP with a password): it only needs a ``get(uri) -> bytes`` function that raises
:class:`SourceGone` for a missing resource and :class:`SourceError` for anything else.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import CorruptInstance, SourceError

Getter = Callable[[str], bytes]


@dataclass(frozen=True)
class InstanceUids:
    """The three UIDs that place an instance in the key layout."""

    study: str
    series: str
    sop: str


class OrthancReader:
    """Read instance files and their UIDs. Thread-safe."""

    def __init__(self, get: Getter, series_cache_size: int = 2048) -> None:
        self._get = get
        self._series: OrderedDict[str, tuple[str, str]] = OrderedDict()
        self._cache_size = series_cache_size
        self._lock = threading.Lock()

    def _json(self, uri: str) -> Any:
        raw = self._get(uri)
        try:
            return json.loads(raw)
        except ValueError as exc:
            raise SourceError(f"Orthanc returned something unreadable for {uri}.") from exc

    def read_file(self, orthanc_id: str) -> bytes:
        """Return the exact bytes Orthanc stored for the instance. Raises SourceGone / SourceError."""
        return self._get(f"/instances/{orthanc_id}/file")

    def uids(self, orthanc_id: str) -> InstanceUids:
        """Return the instance's study, series and SOP instance UIDs.

        Raises:
            SourceGone: the instance was deleted. CorruptInstance: a UID is missing.
        """
        inst = self._json(f"/instances/{orthanc_id}")
        sop = (inst.get("MainDicomTags") or {}).get("SOPInstanceUID")
        series_id = inst.get("ParentSeries")
        if not sop or not series_id:
            raise CorruptInstance(f"Instance {orthanc_id} has no SOPInstanceUID or series in Orthanc.")
        with self._lock:
            cached = self._series.get(series_id)
        if cached is None:
            series = self._json(f"/series/{series_id}")
            series_uid = (series.get("MainDicomTags") or {}).get("SeriesInstanceUID")
            study = self._json(f"/studies/{series.get('ParentStudy')}")
            study_uid = (study.get("MainDicomTags") or {}).get("StudyInstanceUID")
            if not series_uid or not study_uid:
                raise CorruptInstance(f"Instance {orthanc_id} has no SeriesInstanceUID or StudyInstanceUID.")
            cached = (series_uid, study_uid)
            with self._lock:
                # Orthanc ids are hashes of the UIDs, so a cached mapping never goes stale.
                self._series[series_id] = cached
                while len(self._series) > self._cache_size:
                    self._series.popitem(last=False)
        return InstanceUids(study=cached[1], series=cached[0], sop=str(sop))

    def list_instances(self, since: int, limit: int) -> list[str]:
        """Return up to ``limit`` instance ids starting at index ``since`` of Orthanc's listing."""
        ids = self._json(f"/instances?since={since}&limit={limit}")
        if not isinstance(ids, list):
            raise SourceError("Orthanc's instance listing is not a list.")
        return [str(i) for i in ids]
