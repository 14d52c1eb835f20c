"""Technician commands: ``scripts/<command>`` (one command each) and the installed ``pacs-backup <command>``.

Connection settings come from the same variables as ``.devstack/stack.env`` (ORTHANC_URL,
ORTHANC_USERNAME, ORTHANC_PASSWORD, MINIO_*, RESTIC_REPOSITORY, RESTIC_PASSWORD_FILE), so
``set -a; . .devstack/stack.env; set +a`` is enough. Every command ends with an exit code of
:mod:`pacs_backup.cli.exits` (listed in its --help).
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from pacs_backup.settings import recovery_sheet

from . import group as cli_group
from . import jobs as cli_jobs
from . import misc as cli_misc
from . import restore as cli_restore
from .exits import epilog, run_command

Options = Callable[[argparse.ArgumentParser], None]


@dataclass(frozen=True)
class Command:
    """One technician command: what it runs, its words in --help, and its options."""

    name: str
    run: Callable[[argparse.Namespace], int]
    summary: str  # one line, in `pacs-backup --help`
    description: str
    options: Options
    exit_ok: str = "done"
    exit_failed: str = "the job failed (the message says what failed)"
    interrupted: str = "interrupted"


def _date(value: str) -> datetime:
    try:
        d = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date; use YYYY-MM-DD or YYYY-MM-DDTHH:MM") from None
    if len(value) == 10:  # a day means "as it was at the end of that day"
        d = d.replace(hour=23, minute=59, second=59)
    return d if d.tzinfo else d.replace(tzinfo=UTC)


def _seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds < 10**7:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds (e.g. 3600)")
    return seconds


def _json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the result as JSON (progress lines go to stderr)")


def _source(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--from",
        dest="source",
        choices=("minio", "offsite", "group"),
        required=True,
        help="where to restore from: the object store bucket (minio), a snapshot target (offsite), or this "
        "clinic's images in its group's store (group: GROUP_* variables, the clinic's own group keys)",
    )
    p.add_argument("--as-of", type=_date, metavar="DATE", help="the state at this date (YYYY-MM-DD[THH:MM], UTC)")
    p.add_argument("--snapshot", metavar="ID", help="with --from offsite: this snapshot instead of the newest")
    p.add_argument(
        "--target",
        default="offsite",
        metavar="NAME",
        help="with --from offsite: which snapshot target (default offsite; or a name of BACKUP_EXTRA_TARGETS)",
    )
    _json(p)


def _restore_study_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("study", nargs="?", type=cli_restore.study_uid, help="the StudyInstanceUID of the study")
    p.add_argument("--patient-id", metavar="ID", help="every study of this patient id, instead of one study")
    p.add_argument("--accession", metavar="NUMBER", help="the study (or studies) with this accession number")
    p.add_argument(
        "--list-snapshots",
        action="store_true",
        help="with --from offsite: list the snapshots that hold the study, and restore nothing",
    )
    _source(p)


def _disaster_options(p: argparse.ArgumentParser) -> None:
    _source(p)
    p.add_argument("--into-non-empty", action="store_true", help="allow a PACS that already holds images")


def _job_options(kind: str) -> Options:
    def add(p: argparse.ArgumentParser) -> None:
        names = "offsite, or a name of BACKUP_EXTRA_TARGETS" + (
            ", minio for the bucket, or group for the group store" if kind == "drill" else ""
        )
        p.add_argument("--target", metavar="NAME", help=f"only this target ({names}); default: every one")
        p.add_argument("--no-wait", action="store_true", help="queue it and return at once")
        p.add_argument(
            "--timeout", type=_seconds, default=3 * 3600, metavar="SECONDS", help="how long to wait (default 3 h)"
        )
        _json(p)

    return add


def _snippet_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--python-plugin",
        default="/usr/share/orthanc/plugins/libOrthancPython.so",
        metavar="PATH",
        help="path of Orthanc's Python plugin (default: Debian's)",
    )
    p.add_argument(
        "--debian",
        action="store_true",
        help="for Debian's orthanc packages: only the PythonScript value, to set in /etc/orthanc/python.json",
    )


def _drive_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--target", required=True, metavar="NAME", help="the drive target's name (from BACKUP_EXTRA_TARGETS)"
    )
    p.add_argument("--label", metavar="NAME", help="a name to write on the drive, e.g. 'Drive A'")


def _quarantine_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--requeue", action="store_true", help="copy every set-aside image again")
    _json(p)


def _forget_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--no-prune", action="store_true", help="forget snapshots but keep their data (faster; frees nothing)"
    )


def _sheet_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--clinic", default="(clinic name)", metavar="NAME", help="the clinic name printed on the sheet")
    p.add_argument("--output", metavar="FILE", help="write to this file (mode 0600) instead of printing")
    p.add_argument("--without-password", action="store_true", help="leave the password off the sheet")
    kind = p.add_mutually_exclusive_group()
    kind.add_argument(
        "--compose",
        dest="install",
        action="store_const",
        const=recovery_sheet.COMPOSE,
        help="steps for the Docker Compose appliance (the default inside its containers, "
        f"which set {recovery_sheet.INSTALL_VARIABLE}=compose)",
    )
    kind.add_argument(
        "--native",
        dest="install",
        action="store_const",
        const=recovery_sheet.NATIVE,
        help="steps for a native Debian install (the default elsewhere)",
    )


_RESTORED_OK = "done, and every restored image verified"
_RESTORE_FAILED = "at least one image did not verify (listed above the summary), or the restore failed"
_WAIT = "stopped waiting; the job carries on in the appliance (the dashboard shows how it ends)"
_KEEP = "interrupted; nothing already restored is undone"

COMMANDS = (
    Command(
        "restore-study",
        cli_restore.restore_study,
        "bring one study back into the PACS, verified",
        "Restore one study (by StudyInstanceUID, patient id or accession number) into the PACS at "
        "ORTHANC_URL, and verify every image.",
        _restore_study_options,
        _RESTORED_OK,
        _RESTORE_FAILED,
        _KEEP,
    ),
    Command(
        "disaster-recovery",
        cli_restore.disaster_recovery,
        "rebuild a whole PACS into an empty one",
        "Rebuild every study into the (empty) PACS at ORTHANC_URL from the bucket, from a snapshot "
        "target or from the group store alone, then verify every image.",
        _disaster_options,
        _RESTORED_OK,
        _RESTORE_FAILED,
        _KEEP,
    ),
    Command(
        "group",
        cli_group.run,
        "group of clinics: a clinic's keys for the group store (add-clinic), the group service's (add-reader)",
        "For the group's admin, with the group store's root account (GROUP_STORE_ENDPOINT, GROUP_STORE_BUCKET, "
        "GROUP_STORE_ROOT_USER / GROUP_STORE_ROOT_PASSWORD or *_FILE): `group add-clinic <clinic-id>` makes the "
        "bucket if missing (versioning, object lock) and the clinic's keys, which write and read only under "
        "<clinic-id>/ and never delete, and prints the lines its installer pastes; `group add-reader` makes the "
        "group service's read-only key. Running it again gives a new secret. See docs/groups.md.",
        cli_group.options,
        "the keys were made; the lines to paste are printed",
        "the group store refused (the message says what to do)",
    ),
    Command(
        "snapshot-now",
        lambda a: cli_jobs.queue_and_watch("snapshot", a),
        "take a snapshot now",
        "Ask the plugin at ORTHANC_URL for a snapshot of every target (or --target) now, follow it "
        "(queued, started, progress) and print the result.",
        _job_options("snapshot"),
        "every snapshot finished OK (or was queued, with --no-wait)",
        "a snapshot failed, or is still running after --timeout",
        _WAIT,
    ),
    Command(
        "verify-backups",
        lambda a: cli_jobs.queue_and_watch("drill", a),
        "run a restore test of every copy now",
        "Ask the plugin at ORTHANC_URL for a restore test (read a sample back and compare it) of the "
        "bucket and every snapshot target (or --target) now, follow it and print the result.",
        _job_options("drill"),
        "every restore test finished OK (or was queued, with --no-wait)",
        "a copy did not give back what it recorded, a test failed, or one is still running after --timeout",
        _WAIT,
    ),
    Command(
        "orthanc-snippet",
        cli_misc.orthanc_snippet,
        "print what an existing Orthanc needs to load this installed plugin",
        "Print (JSON) the Orthanc configuration keys and the environment that load the plugin from "
        "this installation; see docs/install-existing-orthanc.md.",
        _snippet_options,
    ),
    Command(
        "prepare-drive",
        cli_jobs.prepare_drive,
        "make a plugged-in external drive a backup drive of this appliance",
        "Create an encrypted repository on the drive plugged in for a drive target (a "
        "<NAME>_RESTIC_REPOSITORY that is a path), remember it, and queue a first snapshot. A drive "
        "that already holds a backup is never touched.",
        _drive_options,
        "the drive is prepared and its first snapshot queued",
        "the drive could not be prepared (not plugged in, the appliance's own disk, or it holds a backup)",
    ),
    Command(
        "quarantine",
        cli_jobs.quarantine,
        "list the images set aside (not copied) and why; --requeue to try them again",
        "List the images the plugin at ORTHANC_URL set aside instead of copying, or queue them again with --requeue.",
        _quarantine_options,
        "no image is set aside (or they were queued again, with --requeue)",
        "images are set aside (listed); fix the cause, then --requeue",
    ),
    Command(
        "forget-snapshots",
        cli_misc.forget_snapshots,
        "apply the retention policy (on a trusted host with delete rights)",
        "Apply RESTIC_KEEP to RESTIC_REPOSITORY. Meant for a trusted host: the appliance's own "
        "append-only credentials cannot delete snapshots.",
        _forget_options,
        interrupted="interrupted; restic's lock may be left: `restic unlock` removes it",
    ),
    Command(
        "recovery-sheet",
        cli_misc.recovery_sheet,
        "print the sheet that lets a technician rebuild the PACS after losing the box",
        "Print (or write with --output, mode 0600) the recovery sheet: offsite repository, its "
        "password and the exact commands.",
        _sheet_options,
    ),
)
BY_NAME = {c.name: c for c in COMMANDS}


def _parser_of(c: Command, make: Callable[..., argparse.ArgumentParser]) -> argparse.ArgumentParser:
    p = make(
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=textwrap.fill(c.description, 100),
        epilog=epilog(ok=c.exit_ok, failed=c.exit_failed),
    )
    c.options(p)
    p.set_defaults(command=c)
    return p


def parse(argv: list[str], script: bool = False) -> argparse.Namespace:
    """``script``: ``argv[0]`` names the command and the usage line names only it (``scripts/<command>``)."""
    if script and argv[:1] and argv[0] in BY_NAME:
        c = BY_NAME[argv[0]]
        return _parser_of(c, lambda **kw: argparse.ArgumentParser(prog=c.name, **kw)).parse_args(argv[1:])
    top = argparse.ArgumentParser(
        prog="pacs-backup",
        description="Technician commands of the PACS backup appliance; `pacs-backup COMMAND --help` for one.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=epilog(),
    )
    sub = top.add_subparsers(dest="name", required=True, metavar="COMMAND")
    parsers = {c.name: _parser_of(c, lambda c=c, **kw: sub.add_parser(c.name, help=c.summary, **kw)) for c in COMMANDS}
    args, extra = top.parse_known_args(argv)
    if extra:  # said by the command's own parser, so its usage line is the one shown
        parsers[args.name].error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: list[str] | None = None, script: bool = False) -> int:
    """Run one command; returns the exit code. Errors print one sentence, never a traceback."""
    args = parse(sys.argv[1:] if argv is None else argv, script)
    command: Command = args.command
    return run_command(lambda: int(command.run(args)), command.interrupted)


if __name__ == "__main__":  # scripts/lib/engine: `python -m pacs_backup.cli.main <command> ...`
    sys.exit(main(script=True))
