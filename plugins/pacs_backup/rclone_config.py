"""The rclone configuration of the cloud-storage targets, pasted in the dashboard (``PUT /backup/rclone-config``).

The dashboard runs in its own container, so the plugin writes the file: the one the rclone targets use
(``<NAME>_RESTIC_RCLONE_CONFIG``), or, when that is not set, :data:`FILENAME` next to Orthanc's storage
folder (on its data volume, outside the snapshots). The text is checked first: INI sections, each with
a ``type``; a size limit; and no option that makes rclone run a program (sftp ``ssh`` and the
``*_command`` options such as webdav ``bearer_token_command``, sftp ``server_command`` /
``md5sum_command`` / ``sha1sum_command``, the ``password_command`` of an encrypted configuration), because
whoever may paste a configuration must not be able to run programs inside the PACS's container. The
answer names the remotes and their types, never a value.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from .config import TargetSettings
from .errors import BackupError, BadRequest

FILENAME = "pacs-backup-rclone.conf"
ENV = "RCLONE_CONFIG"  # rclone's own variable (set for restic from <NAME>_RESTIC_RCLONE_CONFIG)
MAX_CONFIG_BYTES = 32 * 1024
MAX_REMOTES = 50
_REMOTE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+@-]{0,63}")
_KEY = re.compile(r"[A-Za-z0-9_]{1,64}")
_TYPE = re.compile(r"[a-z0-9]{1,32}")
# Options with which rclone (or a library it uses) starts a program named in the configuration.
_RUNS_PROGRAMS = frozenset({"ssh", "credential_process", "shared_credentials_file"})


@dataclass(frozen=True)
class Remote:
    """One remote of an rclone configuration: its name and backend type (never its values)."""

    name: str
    type: str

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "type": self.type}


def runs_programs(key: str) -> bool:
    """True for an option that would let rclone run a program (refused)."""
    k = key.lower()
    return k in _RUNS_PROGRAMS or "command" in k or k.endswith("_process")


def parse(text: str) -> list[Remote]:
    """The remotes of an rclone configuration, checked.

    Raises:
        BadRequest: with a sentence saying what is wrong and on which line.
    """
    if len(text.encode("utf-8")) > MAX_CONFIG_BYTES:
        raise BadRequest(f"The rclone configuration is too large (more than {MAX_CONFIG_BYTES // 1024} KB).")
    if "RCLONE_ENCRYPT_V" in text:
        raise BadRequest(
            "This rclone configuration is encrypted; paste an unencrypted one (restic encrypts the backups "
            "itself, and the file is kept readable by the backup service only)."
        )
    remotes: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if any(ord(c) < 32 and c != "\t" for c in line) or "\x7f" in line:
            raise BadRequest(f"Line {number} of the rclone configuration holds control characters.")
        if line.startswith("["):
            name = line[1:-1].strip() if line.endswith("]") else ""
            if not _REMOTE.fullmatch(name):
                raise BadRequest(
                    f"Line {number}: {line[:40]!r} is not a remote name; use letters, digits, '_', '-' or '.' "
                    "in square brackets, e.g. [clinicdrive]."
                )
            if name in remotes:
                raise BadRequest(f"Line {number}: the remote [{name}] is there twice.")
            if len(remotes) >= MAX_REMOTES:
                raise BadRequest(f"The rclone configuration has more than {MAX_REMOTES} remotes.")
            current = remotes[name] = {}
            continue
        key, sep, value = line.partition("=")
        key = key.strip()
        if not sep or not _KEY.fullmatch(key):
            raise BadRequest(f"Line {number} of the rclone configuration is not 'option = value' nor a [remote].")
        if current is None:
            raise BadRequest(f"Line {number}: the option {key!r} comes before any [remote].")
        if runs_programs(key):
            raise BadRequest(
                f"Line {number}: the option {key!r} makes rclone run a program, which is not allowed here. "
                "Remove it (use a password or key instead); nothing was saved."
            )
        current[key.lower()] = value.strip()
    if not remotes:
        raise BadRequest("The rclone configuration has no remote; it starts with a line like [clinicdrive].")
    out = []
    for name, options in remotes.items():
        kind = options.get("type", "")
        if not _TYPE.fullmatch(kind):
            raise BadRequest(f"The remote [{name}] has no valid 'type' (e.g. type = drive, dropbox, b2, webdav).")
        out.append(Remote(name, kind))
    return out


def default_path(storage_dir: Path) -> Path:
    """Where a pasted configuration goes when no target names a file: beside the storage folder."""
    return storage_dir.parent / FILENAME


def is_rclone(target: TargetSettings) -> bool:
    return target.repository.startswith("rclone:")


def with_default(targets: tuple[TargetSettings, ...], path: Path) -> tuple[TargetSettings, ...]:
    """The targets, each rclone target without RCLONE_CONFIG reading ``path``."""
    return tuple(replace(t, env={**t.env, ENV: str(path)}) if is_rclone(t) and ENV not in t.env else t for t in targets)


def config_file(targets: tuple[TargetSettings, ...], default: Path, target: str | None = None) -> Path:
    """The file a pasted configuration is written to: the one the (named) rclone targets use.

    Raises:
        BadRequest: ``target`` is not an rclone target, or the rclone targets use different files.
    """
    rclone = [t for t in targets if is_rclone(t)]
    if target is not None:
        rclone = [t for t in rclone if t.name == target]
        if not rclone:
            raise BadRequest(f"{target!r} is not a cloud-storage target (a repository starting with rclone:).")
    files = {t.env.get(ENV, str(default)) for t in rclone}
    if len(files) > 1:
        raise BadRequest("The cloud-storage targets use different rclone files; say which target this one is for.")
    return Path(files.pop()) if files else default


def remotes_in(path: Path) -> list[Remote]:
    """The remotes configured in ``path`` now (none when it does not exist or cannot be read)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    names: list[Remote] = []
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1].strip()
            names.append(Remote(current, ""))
        elif current is not None and line.partition("=")[0].strip().lower() == "type":
            names[-1] = Remote(current, line.partition("=")[2].strip()[:32])
    return names


def save(path: Path, text: str) -> list[Remote]:
    """Check ``text`` and write it to ``path`` owner-only (0600), replacing the file atomically.

    Raises:
        BadRequest: the text is refused (see :func:`parse`); the file is left as it was.
        BackupError: the file could not be written.
    """
    remotes = parse(text)
    body = text if text.endswith("\n") else text + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".rclone-", dir=path.parent)  # mode 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(body)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise BackupError(f"The rclone configuration could not be saved in {path} ({exc.strerror}).") from None
    return remotes
