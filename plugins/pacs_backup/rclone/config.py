"""The rclone configuration of the cloud-storage targets, pasted in the dashboard (``PUT /backup/rclone-config``).

The dashboard runs in its own container, so the plugin writes the file: the one the rclone targets use
(``<NAME>_RESTIC_RCLONE_CONFIG``), or, when that is not set, :data:`FILENAME` next to Orthanc's storage
folder (on its data volume, outside the snapshots). The text is checked against an allow-list
(:mod:`pacs_backup.rclone.providers`): INI sections of allowed types, each option allowed for its type and its
value of the option's shape, remotes that wrap others naming only remotes of the same file, a size limit.
Whoever may paste a configuration must not be able to run programs inside the PACS's container, and rclone
has many ways to start one (sftp ``ssh``, the ``*_command`` options, connection strings that bring any option
back). The same check runs again before each use (:mod:`pacs_backup.rclone.sandbox`), so a file written some
other way is refused with a sentence rather than run. The answer names the remotes and their types, never a
value.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from pacs_backup.contracts.errors import BackupError, BadRequest
from pacs_backup.settings.targets import TargetSettings

from .providers import CLOUDS, PROVIDERS, REMOTE_NAME, refs_of, value_problem

FILENAME = "pacs-backup-rclone.conf"
ENV = "RCLONE_CONFIG"  # rclone's own variable (set for restic from <NAME>_RESTIC_RCLONE_CONFIG)
MAX_CONFIG_BYTES = 32 * 1024
MAX_REMOTES = 50
MAX_WRAP_DEPTH = 4  # crypt over chunker over alias over drive is 3
_REMOTE = REMOTE_NAME
_KEY = re.compile(r"[A-Za-z0-9_]{1,64}")
_TYPE = re.compile(r"[a-z0-9]{1,32}")
# Options with which rclone (or a library it uses) starts a program named in the configuration.
_RUNS_PROGRAMS = frozenset({"ssh", "credential_process", "shared_credentials_file"})
# Characters that split lines for some readers and not for others, or that nobody types.
_FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f\x85\u2028\u2029]")
_SUPPORTED = ", ".join(f"{t} ({PROVIDERS[t].title})" for t in CLOUDS)


@dataclass(frozen=True)
class Remote:
    """One remote of an rclone configuration: its name and backend type (never its values)."""

    name: str
    type: str

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "type": self.type}


@dataclass
class Section:
    """One ``[remote]`` of a configuration as written: its line, and its ``(line, option, value)`` lines."""

    name: str
    number: int
    lines: list[tuple[int, str, str]] = field(default_factory=list)

    def get(self, key: str) -> tuple[int, str] | None:
        return next(((n, v) for n, k, v in self.lines if k == key), None)


def runs_programs(key: str) -> bool:
    """True for an option that would let rclone run a program (refused)."""
    k = key.lower()
    return k in _RUNS_PROGRAMS or "command" in k or k.endswith("_process")


def sections(text: str) -> list[Section]:
    """The sections of a configuration, read the strict way rclone's reader agrees with.

    Raises:
        BadRequest: a line that is not a comment, a ``[remote]`` or an ``option = value``; a program-running
            or file-reading option (in file order, before anything else about its remote is looked at).
    """
    if len(text.encode("utf-8")) > MAX_CONFIG_BYTES:
        raise BadRequest(f"The rclone configuration is too large (more than {MAX_CONFIG_BYTES // 1024} KB).")
    if "RCLONE_ENCRYPT_V" in text:
        raise BadRequest(
            "This rclone configuration is encrypted; paste an unencrypted one (restic encrypts the backups "
            "itself, and the file is kept readable by the backup service only)."
        )
    found: list[Section] = []
    for number, raw in enumerate(text.removeprefix("\ufeff").replace("\r\n", "\n").split("\n"), 1):
        if _FORBIDDEN.search(raw):
            where = f" (in [{found[-1].name}])" if found else ""
            raise BadRequest(
                f"Line {number} of the rclone configuration holds control characters or line breaks{where}."
            )
        line = raw.strip(" \t")
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            name = line[1:-1].strip(" \t") if line.endswith("]") else ""
            if not _REMOTE.fullmatch(name):
                raise BadRequest(
                    f"Line {number} is not a remote name; use letters, digits, '_', '-' or '.' "
                    "in square brackets, e.g. [clinicdrive]."
                )
            if any(s.name == name for s in found):
                raise BadRequest(f"Line {number}: the remote [{name}] is there twice.")
            if len(found) >= MAX_REMOTES:
                raise BadRequest(f"The rclone configuration has more than {MAX_REMOTES} remotes.")
            found.append(Section(name, number))
            continue
        key, sep, value = line.partition("=")
        key = key.strip(" \t")
        if not sep or not _KEY.fullmatch(key):
            raise BadRequest(f"Line {number} of the rclone configuration is not 'option = value' nor a [remote].")
        if not found:
            raise BadRequest(f"Line {number}: the option {key!r} comes before any [remote].")
        current = found[-1]
        if runs_programs(key):
            raise BadRequest(
                f"Line {number}: the option {key!r} in [{current.name}] makes rclone run a program, which is not "
                "allowed here. "
                "Remove it (use a password, key or token instead)."
            )
        if key.lower().endswith("_file"):
            raise BadRequest(
                f"Line {number}: the option {key!r} in [{current.name}] makes rclone read a file of this computer, "
                "which is not allowed here"
                + ("; paste the key itself as key_pem." if key.lower() == "key_file" else ".")
            )
        if current.get(key) is not None:
            raise BadRequest(f"Line {number}: the option {key!r} is there twice in [{current.name}].")
        current.lines.append((number, key, value.strip(" \t")))
    if not found:
        raise BadRequest("The rclone configuration has no remote; it starts with a line like [clinicdrive].")
    return found


def _kind(section: Section) -> str:
    """The section's type, checked: one the appliance allows."""
    typed = section.get("type")
    if typed is None or not _TYPE.fullmatch(typed[1]):
        raise BadRequest(
            f"Line {typed[0] if typed else section.number}: the remote [{section.name}] has no valid 'type' "
            f"(e.g. type = drive; allowed: {_SUPPORTED})."
        )
    number, kind = typed
    if kind not in PROVIDERS:
        raise BadRequest(
            f"Line {number}: [{section.name}] is of type {kind!r}, which this appliance does not allow for cloud "
            f"storage; use one of: {_SUPPORTED}."
        )
    return kind


def _check_options(section: Section, kind: str) -> None:
    provider = PROVIDERS[kind]
    for number, key, value in section.lines:
        if key == "type":
            continue
        shape = provider.options.get(key)
        where = f"Line {number}: [{section.name}] ({kind})"
        if shape is None:
            allowed = ", ".join(provider.options) or "no option besides type"
            raise BadRequest(f"{where} cannot have the option {key!r} here; allowed: {allowed}.")
        if not value and not provider.wraps.get(key):
            continue  # an empty value leaves rclone's default
        problem = value_problem(shape, value)
        if problem:
            raise BadRequest(f"{where}: the value of {key!r} {problem}.")
    for key in provider.wraps:
        if section.get(key) is None:
            raise BadRequest(
                f"Line {section.number}: [{section.name}] ({kind}) needs '{key} = name:folder' naming another "
                "remote of this file."
            )


def _check_wrapping(found: list[Section], kinds: dict[str, str]) -> None:
    """Each wrapping remote names only remotes of this file, without loops, at most MAX_WRAP_DEPTH deep."""
    by_name = {s.name: s for s in found}
    wrapped: dict[str, list[tuple[int, str]]] = {}
    for s in found:
        refs = wrapped[s.name] = []
        for number, key, value in s.lines:
            for ref in refs_of(kinds[s.name], key, value):
                name = ref.partition(":")[0]
                if name not in by_name:
                    raise BadRequest(
                        f"Line {number}: [{s.name}] ({kinds[s.name]}) wraps the remote {name!r}, which is not "
                        f"defined in this file; a wrapping remote may only name remotes of the same file."
                    )
                refs.append((number, name))

    depth: dict[str, int] = {}  # how many wrapping remotes deep each remote goes (memo: no exponential walk)

    def walk(name: str, stack: list[str]) -> int:
        if name in depth:
            return depth[name]
        deepest = 0
        for number, inner in wrapped[name]:
            chain = [*stack, name]
            if inner in chain:
                loop = " -> ".join([*chain[chain.index(inner) :], inner])
                raise BadRequest(f"Line {number}: [{name}] wraps itself ({loop}); remove the loop.")
            deepest = max(deepest, 1 + walk(inner, chain))
            if deepest > MAX_WRAP_DEPTH:
                raise BadRequest(
                    f"Line {number}: [{name}] wraps remotes more than {MAX_WRAP_DEPTH} deep; name the storage more "
                    "directly."
                )
        depth[name] = deepest
        return deepest

    for s in found:
        walk(s.name, [])


def parse(text: str) -> list[Remote]:
    """The remotes of an rclone configuration, checked against the allow-list.

    Raises:
        BadRequest: with a sentence saying what is wrong and on which line (never a value).
    """
    found = sections(text)
    kinds = {s.name: _kind(s) for s in found}
    for s in found:
        _check_options(s, kinds[s.name])
    _check_wrapping(found, kinds)
    return [Remote(s.name, kinds[s.name]) for s in found]


def repository_remote(repository: str) -> str:
    """The remote an ``rclone:<remote>:<folder>`` repository names.

    Raises:
        BadRequest: not a plain remote name (a connection string, options after a comma...).
    """
    name, sep, _ = repository.removeprefix("rclone:").partition(":")
    if not repository.startswith("rclone:") or not sep or not _REMOTE.fullmatch(name):
        raise BadRequest(
            "The repository of a cloud-storage target must be rclone:<remote>:<folder> with the name of a remote of "
            "its rclone configuration (no connection string)."
        )
    return name


def default_path(storage_dir: Path) -> Path:
    """Where a pasted configuration goes when no target names a file: beside the storage folder."""
    return storage_dir.parent / FILENAME


def is_rclone(target: TargetSettings) -> bool:
    return target.repository.startswith("rclone:")


def with_default(targets: tuple[TargetSettings, ...], path: Path) -> tuple[TargetSettings, ...]:
    """The targets, each rclone target without RCLONE_CONFIG reading ``path``."""
    return tuple(replace(t, env={**t.env, ENV: str(path)}) if is_rclone(t) and ENV not in t.env else t for t in targets)


def remote_names(targets: tuple[TargetSettings, ...]) -> list[str]:
    """The remote names the rclone targets' repositories name (``rclone:<name>:<folder>``)."""
    wanted = {t.repository.removeprefix("rclone:").partition(":")[0] for t in targets if is_rclone(t)}
    return sorted(w for w in wanted if _REMOTE.fullmatch(w))


def readers_of(targets: tuple[TargetSettings, ...], path: Path, only: str | None = None) -> list[TargetSettings]:
    """The rclone targets (or the one named ``only``) that read the configuration in ``path``."""
    return [t for t in targets if is_rclone(t) and t.env.get(ENV) == str(path) and only in (None, t.name)]


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
    """The remotes configured in ``path`` now (none when it does not exist or cannot be read), checked or not."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []
    names: list[Remote] = []
    current = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("[") and line.endswith("]"):
            current = line[1:-1].strip()[:64]
            names.append(Remote(current, ""))
        elif current is not None and line.partition("=")[0].strip().lower() == "type":
            names[-1] = Remote(current, line.partition("=")[2].strip()[:32])
    return names


def refusal_of(path: Path) -> str | None:
    """Why the configuration in ``path`` would be refused before use (None: fine, or no file yet)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError):
        return "The rclone configuration cannot be read."
    try:
        parse(text)
    except BadRequest as exc:
        return str(exc)
    return None


def write_private(path: Path, body: str) -> None:
    """Write ``body`` to ``path`` owner-only (0600), replacing the file atomically.

    Raises:
        BackupError: the file could not be written.
    """
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


def save(path: Path, text: str) -> list[Remote]:
    """Check ``text`` and write it to ``path`` owner-only (0600), replacing the file atomically.

    Raises:
        BadRequest: the text is refused (see :func:`parse`); the file is left as it was.
        BackupError: the file could not be written.
    """
    try:
        remotes = parse(text)
    except BadRequest as exc:
        raise BadRequest(f"{exc} Nothing was saved.") from None
    body = text.removeprefix("\ufeff").replace("\r\n", "\n")
    write_private(path, body if body.endswith("\n") else body + "\n")
    return remotes
