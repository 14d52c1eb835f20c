"""Start rclone as the unprivileged user of the cloud-storage targets: restic's ``rclone.program``.

restic (which must stay root to read the PACS's files) starts this with Python's isolated mode::

    python3 -I -S drop.py --home H --config C --rclone R [--uid U --gid G] -- serve restic ... remote:folder

When it runs as root it drops every group, takes the user and group ``U``/``G`` (never 0) for good, and checks
that root cannot be taken back; in every case it sets no-new-privileges (a set-user-id program cannot give
privileges back), starts rclone with a fresh environment (nothing of restic's: no repository password, no
keys; only the configuration copy ``C`` and the home ``H`` that holds rclone's cache) from ``H``, and exits 1
with a sentence on standard error when any step fails. Standard library only: it runs before the package
is importable.
"""

from __future__ import annotations

import ctypes
import os
import sys

PR_SET_NO_NEW_PRIVS = 38
_OPTIONS = ("--home", "--config", "--rclone", "--uid", "--gid")


def _fail(sentence: str) -> None:
    sys.stderr.write(f"rclone was not started: {sentence}\n")
    sys.exit(1)


def _options(argv: list[str]) -> tuple[dict[str, str], list[str]]:
    if "--" not in argv:
        _fail("its arguments end with '--' followed by rclone's own.")
    end = argv.index("--")
    head, rest = argv[:end], argv[end + 1 :]
    if len(head) % 2 or any(k not in _OPTIONS for k in head[::2]):
        _fail(f"it takes only {', '.join(_OPTIONS)}, each with a value.")
    return dict(zip(head[::2], head[1::2], strict=True)), rest


def _drop(uid: int, gid: int) -> None:
    if uid == 0 or gid == 0:
        _fail("the cloud storage user must not be root.")
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getresuid() != (uid, uid, uid) or os.getresgid() != (gid, gid, gid) or os.getgroups():
        _fail("the user could not be changed.")
    try:
        os.setuid(0)
    except PermissionError:
        return
    _fail("root could be taken back after dropping it.")


def main(argv: list[str]) -> None:
    opts, rest = _options(argv)
    home, config, rclone = opts.get("--home", ""), opts.get("--config", ""), opts.get("--rclone", "")
    if not (os.path.isabs(home) and os.path.isabs(config) and os.path.isabs(rclone)):
        _fail("--home, --config and --rclone must be absolute paths.")
    os.umask(0o077)
    if os.geteuid() == 0:
        if "--uid" not in opts or "--gid" not in opts:
            _fail("running as root, it needs the user (--uid, --gid) to run rclone as.")
        _drop(int(opts["--uid"]), int(opts["--gid"]))
    if ctypes.CDLL(None, use_errno=True).prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        _fail("no-new-privileges could not be set.")
    try:
        os.chdir(home)
    except OSError as exc:
        _fail(f"its home {home} cannot be entered ({exc.strerror}).")
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": home,
        "XDG_CACHE_HOME": os.path.join(home, ".cache"),
        "XDG_CONFIG_HOME": os.path.join(home, ".config"),
        "TMPDIR": os.path.dirname(config),
        "RCLONE_CONFIG": config,
        "LANG": "C.UTF-8",
    }
    try:
        os.execve(rclone, [rclone, *rest], env)  # noqa: S606 - an argument list, no shell
    except OSError as exc:
        _fail(f"{rclone} could not be run ({exc.strerror}).")


if __name__ == "__main__":
    main(sys.argv[1:])
