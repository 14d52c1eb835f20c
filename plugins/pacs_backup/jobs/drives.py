"""External drives (USB) as snapshot targets: used only when the drive is really there.

A drive's repository path (e.g. ``/mnt/backup-drive/pacs``) exists whether or not a drive is plugged
in: without the drive it is a folder on the box's own disk, and writing there would report a backup
that a flood takes with the box. So before any run the path must be on a mounted file system other
than the one holding Orthanc's data, and hold a repository this appliance prepared (recognised by
restic's repository id). Otherwise the drive is "not connected" - never a write in its place.
Preparing a drive is one explicit step (:func:`prepare`); several drives may rotate on one target.

What is mounted there must also be a disk: a path through a symlink (it may point anywhere), a file system
in memory (tmpfs), a container's own layers (overlay) or a network share (NFS, SMB, SSHFS) is refused with
a sentence, as is the disk that holds Orthanc's data, under whatever name it is mounted again.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pacs_backup.clients.restic import Restic
from pacs_backup.contracts.documents import DriveDoc, LightColour
from pacs_backup.contracts.errors import BackupError
from pacs_backup.settings.targets import TargetSettings
from pacs_backup.state.schema import open_plugin_db


class DriveNotConnected(BackupError):
    """The drive is not plugged in, not prepared, or holds another backup; nothing was written."""


@dataclass(frozen=True)
class DriveState:
    """What is at a drive target's path right now."""

    connected: bool
    sentence: str  # for a person: why not, or which drive is plugged in
    repository_id: str | None = None
    mount_point: str | None = None


def is_local_path(repository: str) -> bool:
    """A repository given as a plain path (a drive, or a folder) rather than ``rest:``, ``s3:``..."""
    return repository.startswith("/")


def mount_point(path: Path) -> Path:
    """The mount point of the file system holding ``path`` (or its nearest existing parent)."""
    p = path
    while not p.exists():
        p = p.parent
    p = p.resolve()
    while not os.path.ismount(p):
        p = p.parent
    return p


def _device(path: Path) -> int:
    p = path
    while not p.exists():
        p = p.parent
    return p.stat().st_dev


MOUNTINFO = Path("/proc/self/mountinfo")
IN_MEMORY = frozenset({"tmpfs", "ramfs", "devtmpfs"})
LAYERED = frozenset({"overlay", "aufs", "fuse-overlayfs", "fuse.fuse-overlayfs"})
NETWORK = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "fuse.sshfs", "sshfs", "9p", "virtiofs", "fuse.rclone", "davfs"}
    | {"fuse.davfs2", "ceph", "glusterfs", "fuse.glusterfs", "afs", "lustre"}
)


@dataclass(frozen=True)
class Mount:
    """One line of /proc/self/mountinfo: where, what kind of file system, from which device."""

    point: str
    fstype: str
    source: str


def _unescape(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), field)  # mountinfo writes a space as \040


def mounts(text: str | None = None) -> list[Mount]:
    """The mounts of this process (``text``: mountinfo's content; read when None, [] when unreadable)."""
    if text is None:
        try:
            text = MOUNTINFO.read_text(errors="replace")
        except OSError:
            return []
    table = []
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields[6:] or len(fields) < 10:
            continue
        sep = fields.index("-", 6)
        if len(fields) < sep + 3:
            continue
        table.append(Mount(_unescape(fields[4]), fields[sep + 1], _unescape(fields[sep + 2])))
    return table


def mount_of(path: str, table: list[Mount]) -> Mount | None:
    """The mount holding ``path`` (an absolute path without symlinks): the longest mount point above it,
    the last mounted when several share it."""
    best = None
    for m in table:
        if (m.point == "/" or path == m.point or path.startswith(m.point.rstrip("/") + "/")) and (
            best is None or len(m.point) >= len(best.point)
        ):
            best = m
    return best


def kind_refusal(repository: Path, held: Mount, data: Mount | None) -> str | None:
    """Why the file system ``held`` (the mount holding ``repository``) is not a backup drive, or None.
    ``data``: the mount holding Orthanc's data."""
    where = f"{repository} is on {held.point}, a"
    if held.fstype in IN_MEMORY:
        return f"{where} file system in memory ({held.fstype}), emptied at every restart: it is not a backup drive."
    if held.fstype in LAYERED:
        return (
            f"{where} container's own file system ({held.fstype}), on this box's disk: it is not a backup drive. "
            "Give the container the drive's folder (a bind mount of where the drive is mounted)."
        )
    if held.fstype in NETWORK:
        return (
            f"{where} network share ({held.fstype}), not a plugged-in drive. A share is its own kind of target: "
            "set the target's <NAME>_RESTIC_DRIVE=false to use the folder as it is, or use an SFTP or "
            "rest-server target on that server."
        )
    if data is not None and held.source.startswith("/dev/") and held.source == data.source:
        return (
            f"{repository} is on {held.source}, the disk that holds the PACS's own data (mounted again at "
            f"{held.point}): it is not a backup drive. Plug in the backup drive."
        )
    return None


def placement(repository: Path, data_dir: Path, table: list[Mount] | None = None) -> str | None:
    """None when ``repository`` is on a mounted disk of its own; else why it is not a drive (a sentence).

    ``table``: the mounts (read from /proc/self/mountinfo when None)."""
    plain = os.path.normpath(os.path.abspath(repository))
    real = os.path.realpath(repository)
    if real != plain:
        return (
            f"The backup drive path {repository} goes through a symbolic link (to {real}): it may point anywhere, "
            "so it is not used as a drive. Give the folder where the drive is really mounted."
        )
    mount = mount_point(repository)
    if str(mount) == "/" or _device(repository) == _device(data_dir):
        return f"The backup drive is not connected: {repository} is on this box's own disk. Plug in the backup drive."
    table = mounts() if table is None else table
    held = mount_of(real, table)
    if held is not None and held.fstype in IN_MEMORY and not repository.parent.exists():
        # e.g. /run/media/<user>/<label> with the drive unplugged: the folder went away with it
        return f"The backup drive is not connected: {repository.parent} does not exist. Plug in the backup drive."
    return None if held is None else kind_refusal(repository, held, mount_of(os.path.realpath(data_dir), table))


def repository_id(restic: Restic) -> str:
    """The id restic gave the repository when it was made (``restic cat config``)."""
    return str(json.loads(restic.cat_config()).get("id", ""))


class DriveRegistry:
    """The drives prepared for each target (their repository ids), kept in the plugin's database."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = open_plugin_db(path)

    def add(self, target: str, repo_id: str, label: str, now: float) -> None:
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO drives (target, repository_id, label, prepared_at, last_seen_at, "
                "last_snapshot_at) VALUES (?, ?, ?, ?, NULL, NULL)",
                (target, repo_id, label, now),
            )

    def known(self, target: str) -> dict[str, dict[str, float | str | None]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT repository_id, label, prepared_at, last_seen_at, last_snapshot_at "
                "FROM drives WHERE target = ? ORDER BY prepared_at",
                (target,),
            ).fetchall()
        return {
            r[0]: {"label": r[1], "prepared_at": r[2], "last_seen_at": r[3], "last_snapshot_at": r[4]} for r in rows
        }

    def seen(self, target: str, repo_id: str, now: float, snapshot: bool = False) -> None:
        column = "last_snapshot_at" if snapshot else "last_seen_at"
        with self._lock:
            self._db.execute(
                f"UPDATE drives SET {column} = ? WHERE target = ? AND repository_id = ?",  # noqa: S608
                (now, target, repo_id),
            )


def inspect(target: str, restic: Restic, repository: Path, data_dir: Path, registry: DriveRegistry) -> DriveState:
    """Is a drive prepared for ``target`` plugged in at ``repository``? Reads only; never writes."""
    misplaced = placement(repository, data_dir)
    if misplaced:
        return DriveState(False, misplaced)
    mount = str(mount_point(repository))
    if not (repository / "config").is_file():
        return DriveState(
            False,
            f"The drive at {mount} has no backup of this appliance yet: prepare it first (scripts/prepare-drive).",
            mount_point=mount,
        )
    try:
        repo_id = repository_id(restic)
    except BackupError as exc:
        return DriveState(False, f"The drive at {mount} could not be opened: {exc}", mount_point=mount)
    known = registry.known(target)
    if repo_id not in known:
        return DriveState(
            False,
            f"The drive at {mount} holds another backup (id {repo_id[:8]}); prepare it for "
            "this appliance first, or plug in one of its own drives.",
            repo_id,
            mount,
        )
    label = str(known[repo_id]["label"] or repo_id[:8])
    return DriveState(True, f"Drive {label} is plugged in.", repo_id, mount)


def prepare(
    target: str,
    restic: Restic,
    repository: Path,
    data_dir: Path,
    registry: DriveRegistry,
    label: str,
    now: float | None = None,
) -> str:
    """Make a new, encrypted repository on a plugged-in drive and remember it for ``target``.

    Returns:
        The repository id.
    Raises:
        DriveNotConnected: the path is not on a drive of its own, or already holds a repository.
    """
    misplaced = placement(repository, data_dir)
    if misplaced:
        raise DriveNotConnected(misplaced)
    if (repository / "config").exists():
        raise DriveNotConnected(
            f"{repository} already holds a backup; it was not touched. Use another drive, or "
            "remove that folder yourself if the drive may be erased."
        )
    mount = mount_point(repository)
    if os.statvfs(mount).f_flag & os.ST_RDONLY:
        raise DriveNotConnected(
            f"The drive at {mount} can only be read here: its file system (often NTFS, from a Windows "
            "computer) cannot be written by this box. Format it as ext4 or exFAT, or ask your technician."
        )
    restic.init()
    repo_id = repository_id(restic)
    registry.add(target, repo_id, label, time.time() if now is None else now)
    return repo_id


class DriveWatch:
    """Watches the drive targets: which drive is plugged in, and when one appears (polled, no udev)."""

    def __init__(
        self,
        registry: DriveRegistry,
        data_dir: Path,
        restic_for: Callable[[TargetSettings], Restic],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self._data_dir = data_dir
        self._restic_for = restic_for
        self._clock = clock
        self._last: dict[str, tuple[tuple[int, int, float] | None, DriveState]] = {}

    def _signature(self, repository: Path) -> tuple[int, int, float] | None:
        """Cheap fingerprint of what is mounted at the path (device, config inode and time)."""
        if placement(repository, self._data_dir):
            return None
        try:
            st = (repository / "config").stat()
        except OSError:
            return (_device(repository), 0, 0.0)
        return (st.st_dev, st.st_ino, st.st_mtime)

    def state(self, target: TargetSettings, force: bool = False) -> DriveState:
        """The drive state of ``target``; restic is asked only when what is mounted changed."""
        repository = Path(target.repository)
        signature = self._signature(repository)
        cached = self._last.get(target.name)
        if not force and cached is not None and cached[0] == signature:
            return cached[1]
        state = inspect(target.name, self._restic_for(target), repository, self._data_dir, self.registry)
        self._last[target.name] = (signature, state)
        if state.connected and state.repository_id:
            self.registry.seen(target.name, state.repository_id, self._clock())
        return state

    def appeared(self, target: TargetSettings) -> bool:
        """True once each time a prepared drive becomes connected."""
        before = self._last.get(target.name)
        now = self.state(target)
        was = before is not None and before[1].connected and before[1].repository_id == now.repository_id
        return now.connected and not was

    def status(self, target: TargetSettings, last_good_age_s: float | None) -> DriveDoc:
        """The drive part of a target's status: plugged in or not, its drives, which to swap next, a light."""
        state = self.state(target)
        drives = [{"repository_id": rid, **info} for rid, info in self.registry.known(target.name).items()]
        waiting = [d for d in drives if d["repository_id"] != state.repository_id]
        swap = min(waiting, key=lambda d: float(d["last_snapshot_at"] or 0), default=None)
        age_days = None if last_good_age_s is None else last_good_age_s / 86400
        light: LightColour
        if age_days is None:
            light = "amber"  # no snapshot on a drive yet
        else:
            light = (
                "green"
                if age_days < target.drive_amber_days
                else "amber"
                if age_days < target.drive_red_days
                else "red"
            )
        return DriveDoc(
            connected=state.connected,
            sentence=state.sentence,
            repository_id=state.repository_id,
            drives=drives,
            swap_next=str(swap["label"]) if swap else None,
            light=light,
            advice=None if light == "green" else "Plug in the backup drive.",
        )
