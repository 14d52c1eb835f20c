"""Loop-mounted file system images standing in for USB drives (needs root, as CI and `make test` have)."""

from __future__ import annotations

import subprocess
from pathlib import Path


class LoopDrive:
    """An ext4 image that can be plugged in at (mounted on) a folder and unplugged again."""

    def __init__(self, image: Path, size_mb: int = 64) -> None:
        self.image = image
        self.mounted_at: Path | None = None
        subprocess.run(["truncate", "-s", f"{size_mb}M", str(image)], check=True)
        subprocess.run(["mkfs.ext4", "-q", "-F", str(image)], check=True)

    def plug(self, where: Path, read_only: bool = False) -> None:
        where.mkdir(parents=True, exist_ok=True)
        options = "loop,ro" if read_only else "loop"
        subprocess.run(["mount", "-o", options, str(self.image), str(where)], check=True)
        self.mounted_at = where

    def unplug(self) -> None:
        if self.mounted_at is not None:
            subprocess.run(["umount", str(self.mounted_at)], check=True)
            self.mounted_at = None
