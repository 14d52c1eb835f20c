"""How restic's rclone is started for a cloud-storage target: checked configuration, unprivileged user.

Before each restic run against an ``rclone:`` repository, :func:`guarded`:

1. reads the target's rclone configuration and checks it again with the allow-list
   (:func:`pacs_backup.rclone.config.parse`), and checks that the repository names one of its remotes, so a
   file written some other way (by an older version, by hand) is refused with a sentence, never run;
2. copies it into a fresh folder of the unprivileged user :data:`USER` (its home, which holds rclone's cache);
3. gives restic ``-o rclone.program=...``: restic (root, it reads the PACS's files) starts
   :mod:`pacs_backup.rclone.drop`, which becomes that user (no groups, no-new-privileges), clears the
   environment and starts rclone. When the plugin does not run as root, rclone runs as the plugin's own user
   (it is already unprivileged), still from a copy and with a cleared environment;
4. afterwards, keeps a token that rclone renewed during the run (OAuth: Google Drive, Dropbox, OneDrive), but only
   when the copy still passes the check and differs from the file only by its tokens, and removes the folder.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from pacs_backup.contracts.errors import BackupError, BadRequest

from .config import ENV, MAX_CONFIG_BYTES, Section, parse, repository_remote, sections, write_private

USER = "pacs-rclone"
DROP = Path(__file__).resolve().with_name("drop.py")
COPY = "rclone.conf"  # the run's copy of the configuration, in the run's folder
STALE_S = 12 * 3600.0  # a run's folder left this long (the plugin was killed mid-run) is removed
_SAFE = re.compile(r"[A-Za-z0-9_./+@=-]+")  # restic splits rclone.program at spaces and quotes
_WRITE_BACK = threading.Lock()


class RcloneRefused(BackupError):
    """rclone was not started for a cloud-storage target (its configuration, its user or a program is wrong)."""


def config_path(env: Mapping[str, str]) -> Path:
    """The configuration rclone would read: RCLONE_CONFIG, else rclone's own default place under HOME."""
    if env.get(ENV):
        return Path(env[ENV])
    return Path(env.get("HOME") or os.environ.get("HOME") or "/root") / ".config" / "rclone" / "rclone.conf"


def checked_text(path: Path, repository: str) -> str:
    """The configuration in ``path``, checked for ``repository`` (``rclone:<remote>:<folder>``).

    Raises:
        RcloneRefused: missing, unreadable, refused by the allow-list, or without the repository's remote.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RcloneRefused(
            f"There is no rclone configuration at {path}; paste one on the dashboard's Settings page."
        ) from None
    except (OSError, UnicodeDecodeError):
        raise RcloneRefused(f"The rclone configuration at {path} cannot be read.") from None
    try:
        names = {r.name for r in parse(text)}
        remote = repository_remote(repository)
    except BadRequest as exc:
        raise RcloneRefused(
            f"The rclone configuration at {path} is refused, so rclone was not started: {exc} Paste a new one on "
            "the dashboard's Settings page."
        ) from None
    if remote not in names:
        raise RcloneRefused(f"The rclone configuration at {path} has no remote [{remote}], which the target uses.")
    return text


def _program(name: str, found: str | None) -> str:
    if not found or not _SAFE.fullmatch(found):
        raise RcloneRefused(f"The program {name} is not installed here (or its path has spaces or quotes).")
    return found


def _python() -> str:
    exe = sys.executable
    if exe and re.fullmatch(r"python3(?:\.[0-9]+)?", os.path.basename(exe)) and os.access(exe, os.X_OK):
        return _program("python3", exe)
    return _program(
        "python3", shutil.which("python3") or ("/usr/bin/python3" if Path("/usr/bin/python3").exists() else None)
    )


def _user_home() -> tuple[int, int, Path]:
    """The unprivileged user and its home (created 0700 when missing). Only called as root."""
    try:
        pw = pwd.getpwnam(USER)
    except KeyError:
        raise RcloneRefused(
            f"The user {USER} does not exist, and cloud storage is never run as root: create it "
            "(the appliance's image has it; natively, dev/setup user)."
        ) from None
    home = Path(pw.pw_dir)
    if (
        pw.pw_uid == 0
        or pw.pw_gid == 0
        or not home.is_absolute()
        or home == Path("/")
        or not _SAFE.fullmatch(str(home))
    ):
        raise RcloneRefused(f"The user {USER} must not be root and needs a home folder of its own for its cache.")
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.lstat(home)
        if home.is_symlink() or st.st_uid not in (0, pw.pw_uid):
            raise RcloneRefused(f"The home folder {home} of {USER} belongs to another user.")
        os.chown(home, pw.pw_uid, pw.pw_gid)
        os.chmod(home, 0o700)
        for old in home.glob("run-*"):  # copies left by runs that were killed (they hold account tokens)
            if old.is_dir() and not old.is_symlink() and time.time() - old.lstat().st_mtime > STALE_S:
                shutil.rmtree(old, ignore_errors=True)
    except OSError as exc:
        raise RcloneRefused(f"The home folder {home} of {USER} cannot be prepared ({exc.strerror}).") from None
    return pw.pw_uid, pw.pw_gid, home


def _read_copy(run_dir: int) -> str | None:
    """The run's copy as rclone left it (None when it is not a small regular file any more)."""
    try:
        fd = os.open(COPY, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=run_dir)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        data = f.read(MAX_CONFIG_BYTES + 1)
    try:
        return data.decode("utf-8") if len(data) <= MAX_CONFIG_BYTES else None
    except UnicodeDecodeError:
        return None


def renewed(original: str, after: str) -> str | None:
    """``original`` with the tokens rclone renewed in ``after``; None when nothing but tokens may change."""
    try:
        parse(after)
        old, new = sections(original), sections(after)
    except BadRequest:
        return None

    def shape(found: list[Section]) -> list[tuple[str, list[tuple[str, str]]]]:
        return [(s.name, sorted((k, v) for _, k, v in s.lines if k != "token" and v)) for s in found]

    if shape(old) != shape(new):
        return None
    lines = original.removeprefix("\ufeff").replace("\r\n", "\n").split("\n")
    changed = False
    for before, now in zip(old, new, strict=True):
        was, fresh = before.get("token"), now.get("token")
        if was is None or fresh is None or was[1] == fresh[1]:
            continue
        lines[was[0] - 1] = f"token = {fresh[1]}"
        changed = True
    return "\n".join(lines) if changed else None


def _write_back(path: Path, original: str, run_dir: int) -> None:
    after = _read_copy(run_dir)
    if after is None or after == original:
        return
    body = renewed(original, after)
    if body is None:
        return
    with _WRITE_BACK:
        try:
            if path.read_text(encoding="utf-8") != original:  # a new configuration was pasted meanwhile
                return
            write_private(path, body)
        except (OSError, UnicodeDecodeError, BackupError):
            return


@contextmanager
def guarded(repository: str, env: Mapping[str, str]) -> Iterator[tuple[list[str], dict[str, str]]]:
    """Restic's extra options and environment for one run against an ``rclone:`` repository (see the module).

    Raises:
        RcloneRefused: with a sentence; restic and rclone are not started.
    """
    path = config_path(env)
    original = checked_text(path, repository)
    rclone = _program("rclone", shutil.which("rclone", path=env.get("PATH") or os.environ.get("PATH")))
    drop = _program("the cloud storage starter", str(DROP) if DROP.is_file() else None)
    python = _python()
    owner: tuple[int, int] | None = None
    if os.geteuid() == 0:
        uid, gid, home = _user_home()
        owner = (uid, gid)
        run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=home))
        who = ["--uid", str(uid), "--gid", str(gid)]
    else:
        run_dir = Path(tempfile.mkdtemp(prefix="pacs-rclone-"))
        home, who = run_dir, []
    # Everything in the run's folder goes through a descriptor of it: the user owns the home folder, and
    # could put a link in its place between two calls that name it by path.
    folder = os.open(run_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    written = False
    try:
        if os.fstat(folder).st_uid != os.geteuid():
            raise RcloneRefused(f"The folder {run_dir} changed while it was prepared; rclone was not started.")
        fd = os.open(COPY, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=folder)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(original)
            if owner:
                os.fchown(f.fileno(), *owner)
        written = True
        if owner:
            os.fchown(folder, *owner)
        copy = run_dir / COPY
        for part in (str(home), str(copy)):
            _program("rclone's folder", part)
        program = [python, "-I", "-S", drop, "--home", str(home), "--config", str(copy), "--rclone", rclone, *who, "--"]
        child_env = {k: v for k, v in env.items() if k != ENV}
        yield ["-o", "rclone.program=" + " ".join(program)], child_env
    finally:
        if written:  # a token renewed during a run that failed later is kept too
            _write_back(path, original, folder)
        os.close(folder)
        shutil.rmtree(run_dir, ignore_errors=True)  # fd-based: follows no link the user may have put there
