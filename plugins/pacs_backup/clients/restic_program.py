"""The restic program: where it is, its exit codes as named errors, and where a repository's server is."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from urllib.parse import urlsplit

from pacs_backup.contracts.errors import BackupError


class ResticError(BackupError):
    """restic failed (exit code 1 or any code it does not document)."""


class ResticPartial(ResticError):
    """Exit 3: the snapshot was made but some files could not be read."""


class RepositoryMissing(ResticError):
    """Exit 10: no repository at that address (yet)."""


class RepositoryLocked(ResticError):
    """Exit 11: another process holds the repository lock."""


class WrongPassword(ResticError):
    """Exit 12: the password does not open the repository."""


class ResticCancelled(ResticError):
    """Exit 130: interrupted."""


class RepositoryUnreachable(ResticError):
    """The repository's server does not answer (checked before running restic, which retries for long)."""


def repository_address(repository: str) -> tuple[str, int] | None:
    """Return ``(host, port)`` of a network repository (rest:, s3:, sftp:), or None for a local path."""
    scheme, _, rest = repository.partition(":")
    if scheme == "rest" or (scheme == "s3" and "://" in rest):
        url = urlsplit(rest)
        if not url.hostname:
            return None
        return url.hostname, url.port or (443 if url.scheme == "https" else 80)
    if scheme == "s3":
        host, _, port = rest.split("/", 1)[0].partition(":")
        return host, int(port) if port.isdigit() else 443
    if scheme == "sftp":
        if rest.startswith("//"):
            url = urlsplit("sftp:" + rest)
            return (url.hostname, url.port or 22) if url.hostname else None
        return rest.split(":", 1)[0].rsplit("@", 1)[-1], 22
    return None


_CODES: dict[int, tuple[type[ResticError], str]] = {
    1: (ResticError, "restic failed"),
    3: (ResticPartial, "the snapshot is incomplete: some files could not be read"),
    10: (RepositoryMissing, "there is no backup repository at that address"),
    11: (RepositoryLocked, "the backup repository is locked by another process"),
    12: (WrongPassword, "the password does not open the backup repository"),
    130: (ResticCancelled, "restic was interrupted"),
}


def find_restic() -> str:
    """Return the restic program: RESTIC_BINARY, the project's .tools/bin, or PATH."""
    explicit = os.environ.get("RESTIC_BINARY")
    if explicit:
        return explicit
    bundled = Path(__file__).resolve().parents[3] / ".tools" / "bin" / "restic"  # <project>/.tools
    if bundled.exists():
        return str(bundled)
    return shutil.which("restic") or "restic"
