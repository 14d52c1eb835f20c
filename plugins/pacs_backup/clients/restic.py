"""A thin wrapper of the restic program: one repository, JSON output, exit codes as named errors."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pacs_backup.contracts.errors import BackupError
from pacs_backup.contracts.redact import mask_url_credentials
from pacs_backup.rclone.sandbox import guarded
from pacs_backup.settings.bandwidth import UNLIMITED, BandwidthSchedule
from pacs_backup.settings.targets import TargetSettings

from .restic_program import (
    _CODES,
    RepositoryLocked,
    RepositoryMissing,
    RepositoryUnreachable,
    ResticCancelled,
    ResticError,
    ResticPartial,
    WrongPassword,
    find_restic,
    repository_address,
)
from .runner import Completed, run, stream

__all__ = [  # the errors and helpers of restic_program.py are imported from here too
    "RepositoryLocked",
    "RepositoryMissing",
    "RepositoryUnreachable",
    "Restic",
    "ResticCancelled",
    "ResticError",
    "ResticPartial",
    "SnapshotInfo",
    "WrongPassword",
    "find_restic",
    "repository_address",
]


@dataclass(frozen=True)
class SnapshotInfo:
    """One snapshot as ``restic snapshots --json`` lists it."""

    id: str
    short_id: str
    time: str
    paths: tuple[str, ...]
    tags: tuple[str, ...]


# Snapshot lists by (repository, tag), for callers that accept a list a little old (a study's page). This
# process forgets a repository's lists whenever it changes that repository (backup, forget, init); the age
# bounds how late a snapshot made elsewhere (another box, a technician's restic) shows.
_LISTS: dict[tuple[str, str | None], tuple[float, list[SnapshotInfo]]] = {}
_LISTS_LOCK = threading.Lock()


def _snapshot(s: dict[str, Any]) -> SnapshotInfo:
    return SnapshotInfo(
        id=s["id"],
        short_id=s.get("short_id", s["id"][:8]),
        time=s["time"],
        paths=tuple(s.get("paths", [])),
        tags=tuple(s.get("tags") or []),
    )


class Restic:
    """Run restic against one repository. The password is passed by file or environment, never argv."""

    def __init__(
        self,
        repository: str,
        *,
        password: str | None = None,
        password_file: Path | None = None,
        binary: str | None = None,
        cache_dir: Path | None = None,
        extra_env: Mapping[str, str] | None = None,
        timeout_s: float = 6 * 3600,
        retry_lock: str = "2m",
        upload: BandwidthSchedule | None = None,
        now: Callable[[], datetime] = datetime.now,
    ) -> None:
        if not password and not password_file:
            raise BackupError("The backup repository needs a password (RESTIC_PASSWORD or RESTIC_PASSWORD_FILE).")
        self.repository = mask_url_credentials(repository)  # for messages: never the password
        self._url = repository
        self._binary = binary or find_restic()
        self._timeout = timeout_s
        self._retry_lock = retry_lock
        self._upload = upload or UNLIMITED
        self._now = now  # local time, for the upload timetable
        self._env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": os.environ.get("HOME", "/tmp"),  # noqa: S108
            "RESTIC_REPOSITORY": repository,
            **(extra_env or {}),
        }
        self._secrets = [v for k, v in (extra_env or {}).items() if "SECRET" in k or "PASSWORD" in k or "KEY" in k]
        if password_file is not None:
            self._env["RESTIC_PASSWORD_FILE"] = str(password_file)
        else:
            assert password is not None  # noqa: S101 - checked above
            self._env["RESTIC_PASSWORD"] = password
            self._secrets.append(password)
        if cache_dir is not None:
            self._env["RESTIC_CACHE_DIR"] = str(cache_dir)
        else:
            self._env["RESTIC_CACHE_DIR"] = str(Path(self._env["HOME"]) / ".cache" / "restic")

    @classmethod
    def for_target(cls, target: TargetSettings, cache_dir: Path | None = None) -> Restic:
        """The one way to build a client for a configured target (password, backend keys, lock wait)."""
        return cls(
            target.repository,
            password=target.password,
            password_file=target.password_file,
            extra_env=target.env,
            cache_dir=cache_dir,
            retry_lock=target.retry_lock,
            upload=target.upload,
        )

    def _run(
        self,
        args: Sequence[str],
        *,
        json_out: bool = True,
        timeout_s: float | None = None,
        ok_codes: tuple[int, ...] = (0,),
        lock: bool | None = True,
    ) -> Completed:
        """Run restic. ``lock``: True waits for another process's lock; False takes the usual shared lock without
        waiting; None takes none (``--no-lock``), for reading the list of snapshots, the config and one file:
        writing and removing the lock file costs about 0.18 s of a 0.7 s run."""
        argv = list(args)
        if json_out:
            argv.append("--json")
        if lock:
            argv += ["--retry-lock", self._retry_lock]
        elif lock is None:
            argv.append("--no-lock")
        timeout = timeout_s or self._timeout
        done = self._launch(argv, lambda a, env: run(a, env=env, timeout_s=timeout, secrets=self._secrets))
        return self._checked(done, ok_codes)

    def _launch(self, args: Sequence[str], start: Callable[[list[str], dict[str, str]], Completed]) -> Completed:
        """Start restic with ``args``; for an rclone repository, only after its configuration passed the check,
        with rclone started as the unprivileged user (see :mod:`pacs_backup.rclone.sandbox`)."""
        if not self._url.startswith("rclone:"):
            return start([self._binary, *args], self._env)
        with guarded(self._url, self._env) as (options, env):
            return start([self._binary, *options, *self.rclone_options(), *args], env)

    def rclone_options(self) -> list[str]:
        """rclone's own upload timetable for an ``rclone:`` repository (``--bwlimit``, which follows the
        timetable during a long run), given through restic's ``rclone.args`` beside restic's default ones."""
        timetable = self._upload.rclone_timetable()
        if timetable is None or not self._url.startswith("rclone:"):
            return []
        # restic splits rclone.args like a shell (quotes keep the timetable one argument), and reads each -o
        # as a CSV field (the timetable's commas): so the option is quoted as CSV, its quotes doubled.
        option = f'rclone.args=serve restic --stdio --b2-hard-delete --bwlimit "{timetable}"'
        return ["-o", '"' + option.replace('"', '""') + '"']

    def upload_options(self) -> list[str]:
        """restic's ``--limit-upload`` (KiB/s) for a snapshot starting now: the rate in force (outside the
        window, the slowest one); none for an ``rclone:`` repository, whose rclone follows the timetable."""
        kib = None if self._url.startswith("rclone:") else self._upload.restic_kib(self._now())
        return [] if kib is None else ["--limit-upload", str(kib)]

    def _checked(self, done: Completed, ok_codes: tuple[int, ...] = (0,)) -> Completed:
        """``done`` when its exit code is fine, else the named error for restic's code."""
        if done.returncode in ok_codes:
            return done
        cls, sentence = _CODES.get(done.returncode, (ResticError, f"restic exited with code {done.returncode}"))
        detail = done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ""
        where = f" ({self.repository})"
        raise cls(f"{sentence[0].upper()}{sentence[1:]}{where}" + (f": {detail}" if detail else "") + ".")

    # --- repository ------------------------------------------------------------------------------
    def check_reachable(self, timeout_s: float = 10.0) -> None:
        """Fail fast when a network repository's server does not accept connections.

        Raises:
            RepositoryUnreachable: with the address and the reason.
        """
        address = repository_address(self._url)
        if address is None:
            return
        try:
            socket.create_connection(address, timeout=timeout_s).close()
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise RepositoryUnreachable(
                f"The backup repository at {address[0]}:{address[1]} cannot be reached "
                f"({reason}); check the network and the offsite server."
            ) from None

    def exists(self) -> bool:
        """True when a repository answers at the address (and the password opens it)."""
        self.check_reachable()
        try:
            self._run(["cat", "config"], json_out=False, lock=None, timeout_s=300)
        except RepositoryMissing:
            return False
        return True

    def probe(self) -> str:
        """Test the connection: a sentence saying whether the repository answers (a BackupError when not)."""
        self.check_reachable()
        try:
            self._run(["cat", "config"], json_out=False, lock=None, timeout_s=120)
        except RepositoryMissing:
            return f"{self.repository} answers; there is no backup repository there yet (the first snapshot makes it)."
        return f"{self.repository} answers, and the password opens its backup repository."

    def cat_config(self) -> bytes:
        """The repository's config (JSON with its id); raises RepositoryMissing when there is none."""
        return self._run(["cat", "config"], json_out=False, lock=None, timeout_s=120).stdout

    def init(self) -> None:
        """Create the repository."""
        self._changed()
        self._run(["init"], timeout_s=300, lock=False)

    def ensure(self) -> bool:
        """Create the repository if it does not exist yet. Returns True when it was created."""
        if self.exists():
            return False
        self.init()
        return True

    # --- snapshots -------------------------------------------------------------------------------
    def backup(
        self, paths: Sequence[str], *, tags: Sequence[str] = (), host: str = "pacs", excludes: Sequence[str] = ()
    ) -> dict[str, Any]:
        """Take a snapshot of ``paths``; return restic's JSON summary (snapshot_id, files_new, ...).

        Raises:
            ResticPartial: exit 3 (the summary is lost with it; callers record the failure).
        """
        args = ["backup", *paths, "--host", host, *self.upload_options()]
        for t in tags:
            args += ["--tag", t]
        for e in excludes:
            args += ["--exclude", e]
        self._changed()
        try:
            done = self._run(args)
        finally:
            self._changed()
        for line in reversed(done.stdout.decode("utf-8", "replace").splitlines()):
            try:
                msg = json.loads(line)
            except ValueError:
                continue
            if isinstance(msg, dict) and msg.get("message_type") == "summary":
                return msg
        raise ResticError("restic finished without a summary; the snapshot cannot be confirmed.")

    def snapshots(self, tag: str | None = None, max_age_s: float = 0.0) -> list[SnapshotInfo]:
        """Return the snapshots, oldest first; a list read at most ``max_age_s`` ago by this process when
        there is one (each restic run costs its key derivation, about 0.7 s)."""
        key = (self._url, tag)
        if max_age_s > 0:
            with _LISTS_LOCK:
                kept = _LISTS.get(key)
            if kept is not None and time.monotonic() - kept[0] <= max_age_s:
                return list(kept[1])
        self.check_reachable()
        args = ["snapshots"] + (["--tag", tag] if tag else [])
        data = json.loads(self._run(args, lock=None).stdout or b"[]")
        found = [_snapshot(s) for s in data or []]
        with _LISTS_LOCK:
            _LISTS[key] = (time.monotonic(), found)
        return list(found)

    def _changed(self) -> None:
        """This process changed the repository: its remembered snapshot lists are stale."""
        with _LISTS_LOCK:
            for key in [k for k in _LISTS if k[0] == self._url]:
                del _LISTS[key]

    def dump(self, snapshot: str, path: str) -> bytes:
        """Return the bytes of one file of a snapshot."""
        return self._run(["dump", snapshot, path], json_out=False, lock=None).stdout

    def restore(
        self,
        snapshot: str,
        target: Path,
        includes: Sequence[str] = (),
        on_file: Callable[[str], None] | None = None,
    ) -> None:
        """Restore a snapshot (or only ``includes``) under ``target``.

        Args:
            on_file: called with each file's path in the snapshot as soon as restic has written all
                of it, while the rest is still being restored (so a caller can start using it).
        """
        args = ["restore", snapshot, "--target", str(target)]
        for inc in includes:
            args += ["--include", inc]
        if on_file is None:
            self._run(args, json_out=False, lock=False)
            return

        def line(raw: bytes) -> None:
            try:
                msg = json.loads(raw)
            except ValueError:
                return
            if (
                isinstance(msg, dict)
                and msg.get("message_type") == "verbose_status"
                and msg.get("action") == "restored"
            ):
                on_file(str(msg.get("item", "")))

        self._checked(
            self._launch(
                [*args, "--json", "--verbose=2"],
                lambda a, env: stream(a, env=env, timeout_s=self._timeout, on_line=line, secrets=self._secrets),
            )
        )

    def check(self, read_data_subset: str | None = None) -> None:
        """Check the repository's structure, and read a subset of the data (e.g. ``3/30``)."""
        args = ["check"] + ([f"--read-data-subset={read_data_subset}"] if read_data_subset else [])
        self._run(args, json_out=False)

    def forget(self, keep: Mapping[str, str], prune: bool = True) -> None:
        """Apply the keep policy alone (``{"daily": "7"}`` -> ``--keep-daily 7``). The appliance forgets through
        :func:`pacs_backup.jobs.retention.forget_with_retention`, which also keeps studies within their years."""
        args = ["forget"] + [a for k, v in keep.items() for a in (f"--keep-{k}", v)]
        if prune:
            args += ["--prune", *self.upload_options()]  # pruning uploads the packs it rewrites
        try:
            self._run(args, json_out=False)
        finally:
            self._changed()

    def forget_plan(self, keep: Mapping[str, str]) -> tuple[list[SnapshotInfo], list[SnapshotInfo]]:
        """``(kept, removed)``: what ``forget`` with the policy ``keep`` would do (restic's dry run)."""
        args = ["forget", "--dry-run"] + [a for k, v in keep.items() for a in (f"--keep-{k}", v)]
        groups = json.loads(self._run(args).stdout or b"[]") or []
        kept = [_snapshot(s) for g in groups for s in g.get("keep") or []]
        return kept, [_snapshot(s) for g in groups for s in g.get("remove") or []]

    def forget_ids(self, snapshots: Sequence[str], prune: bool = True) -> None:
        """Forget exactly ``snapshots`` (chosen by the caller's policy), then prune their data."""
        if snapshots:
            prune_args = ["--prune", *self.upload_options()] if prune else []
            try:
                self._run(["forget", *snapshots, *prune_args], json_out=False)
            finally:
                self._changed()

    def delete_snapshot(self, snapshot: str) -> None:
        """Remove one snapshot (only possible where the credentials allow deletions)."""
        try:
            self._run(["forget", snapshot], json_out=False)
        finally:
            self._changed()
