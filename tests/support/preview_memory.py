"""How much memory drawing previews adds to a process: run in a fresh interpreter, print JSON.

    python -m tests.support.preview_memory FILE [FILE...]          # in parallel, as the plugin serves them
    python -m tests.support.preview_memory --whole FILE [FILE...]  # each file read whole first (the old way)
    python -m tests.support.preview_memory --size 1024 FILE         # the largest picture the routes draw

Each FILE stands for an object in the bucket: it is read through a stand-in for the S3 client that streams
the file, as ``render_copy`` reads a copy. ``--whole`` reads each file into memory and hands the bytes to
``render_png`` (how previews were served before the limits; it also works with the renderer of before).
The figure is the growth of the process's peak resident memory (ru_maxrss) while the previews are drawn.
"""

from __future__ import annotations

import json
import resource
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pacs_backup.clients import object_store  # the S3 client is loaded in a serving process already
from pacs_backup.dicom import preview


class FileStore:
    """An object store whose keys are file paths, read as a stream as the S3 store's ``reading`` gives it."""

    @contextmanager
    def reading(self, key: str) -> Iterator[Callable[[int], bytes]]:
        with open(key, "rb") as f:
            yield f.read

    def get(self, key: str) -> bytes:
        with open(key, "rb") as f:
            return f.read()


def _peak_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main(argv: list[str]) -> None:
    whole = "--whole" in argv
    size = int(argv[argv.index("--size") + 1]) if "--size" in argv else 256
    paths = [a for i, a in enumerate(argv) if not a.startswith("--") and (i == 0 or argv[i - 1] != "--size")]
    store, outcomes = FileStore(), [""] * len(paths)

    def draw(i: int, path: str) -> None:
        try:
            if whole:
                png = preview.render_png(store.get(path), size=size)
            else:
                png = preview.render_copy(store, path, size, preview.Limits())
            outcomes[i] = f"png {int.from_bytes(png[16:20], 'big')}x{int.from_bytes(png[20:24], 'big')}"
        except Exception as exc:  # every outcome is reported, whatever it is
            outcomes[i] = f"{type(exc).__name__}: {exc}"

    assert object_store.ObjectStore
    base = _peak_kb()
    threads = [threading.Thread(target=draw, args=(i, p)) for i, p in enumerate(paths)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print(json.dumps({"added_mb": round((_peak_kb() - base) / 1024, 1), "outcomes": outcomes}))


if __name__ == "__main__":
    main(sys.argv[1:])
