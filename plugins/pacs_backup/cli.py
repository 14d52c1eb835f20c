"""Technician commands (``scripts/*`` are thin wrappers): restore, disaster recovery, snapshots, drills.

Connection settings come from the same variables as ``.devstack/stack.env`` (ORTHANC_URL,
ORTHANC_USERNAME, ORTHANC_PASSWORD, MINIO_*, RESTIC_REPOSITORY, RESTIC_PASSWORD_FILE), so
``set -a; . .devstack/stack.env; set +a`` is enough.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from . import recovery_sheet
from .config import load_store_settings, load_target, load_targets
from .errors import SourceError
from .exits import EXIT_FAILED, EXIT_NOT_FOUND, EXIT_OK, EXIT_UNREACHABLE, EXIT_USAGE, Fail, run_command
from .object_store import ObjectStore
from .orthanc_http import OrthancHttp, RequestRefused
from .restic import Restic
from .restore import (
    bucket_manifest,
    restore_from_bucket,
    restore_from_snapshot,
    snapshot_time,
    snapshots_holding,
    studies_matching,
)
from .restore_uploads import RestoreReport

EXIT_CODES = """exit codes:
  0  done, and every restored instance verified (or the job succeeded)
  1  the job failed, or at least one instance did not verify (listed above the summary)
  2  bad arguments or configuration (the message names what to fix)
  3  a service could not be reached (Orthanc, object store or backup repository)
  4  nothing matched (no such study, patient or snapshot)"""


def _orthanc() -> OrthancHttp:
    url = os.environ.get("ORTHANC_URL")
    if not url:
        raise Fail(EXIT_USAGE, "ORTHANC_URL is not set (e.g. http://127.0.0.1:8042); load .devstack/stack.env.")
    try:
        return OrthancHttp(url, os.environ.get("ORTHANC_USERNAME"), os.environ.get("ORTHANC_PASSWORD"))
    except ValueError as exc:
        raise Fail(EXIT_USAGE, f"ORTHANC_URL: {exc}") from None


def _store() -> tuple[ObjectStore, str]:
    settings = load_store_settings(os.environ)
    return ObjectStore(settings), settings.prefix


def _restic(target: str) -> Restic:
    if target == "offsite":
        t = load_target(os.environ, "offsite", "RESTIC_")
        if t is None:
            raise Fail(EXIT_USAGE, "RESTIC_REPOSITORY is not set; give the offsite repository address.")
    else:
        t = next((x for x in load_targets(os.environ) if x.name == target), None)
        if t is None:
            raise Fail(EXIT_USAGE, f"Target {target!r} is not configured (BACKUP_EXTRA_TARGETS).")
    return Restic.for_target(t)


def _date(value: str) -> datetime:
    try:
        d = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date; use YYYY-MM-DD or YYYY-MM-DDTHH:MM") from None
    if len(value) == 10:  # a day means "as it was at the end of that day"
        d = d.replace(hour=23, minute=59, second=59)
    return d if d.tzinfo else d.replace(tzinfo=UTC)


def _progress(label: str) -> Callable[[int, int], None]:
    last = [0.0]

    def show(done: int, total: int) -> None:
        now = time.monotonic()
        if done == total or now - last[0] > 1.0:
            last[0] = now
            print(f"\r{label}: {done}/{total} instances ({100 * done // max(total, 1)}%)", end="", flush=True)
            if done == total:
                print()

    return show


def _print_report(report: RestoreReport) -> int:
    for item, reason in report.failures:
        print(f"NOT VERIFIED  {item}: {reason}")
    print(f"\nVerification report ({report.source})")
    print(f"  instances restored and verified: {report.verified} of {report.total}")
    print(f"  not verified:                    {len(report.failures)}")
    if report.total == 0:
        return EXIT_NOT_FOUND
    print("  result: " + ("OK, every instance is back and identical" if report.ok else "INCOMPLETE, see above"))
    return EXIT_OK if report.ok else EXIT_FAILED


# --- commands ------------------------------------------------------------------------------------
def _bucket_studies(
    orthanc: OrthancHttp, store: ObjectStore, patient_id: str | None, accession: str | None
) -> list[str]:
    """Studies of a patient id / accession in the bucket: the plugin's catalog knows every copy from the
    moment it is made; the manifest kept in the bucket is the way when the plugin cannot answer."""
    query = urllib.parse.urlencode({k: v for k, v in (("patient_id", patient_id), ("accession", accession)) if v})
    try:
        found = orthanc.get_json(f"/backup/studies?{query}")
        if isinstance(found, list):
            return [str(s) for s in found]
    except SourceError as exc:
        print(f"note: the backup plugin could not be asked ({exc}); using the bucket's own list", file=sys.stderr)
    return studies_matching(bucket_manifest(store), patient_id, accession)


def cmd_restore_study(a: argparse.Namespace) -> int:
    if a.list_snapshots:
        return _list_snapshots(a)
    orthanc = _orthanc()
    if not (a.study or a.patient_id or a.accession):
        raise Fail(EXIT_USAGE, "Give a StudyInstanceUID, --patient-id or --accession.")
    progress = _progress("restoring")
    if a.source == "minio":
        store, prefix = _store()
        studies = [a.study] if a.study else _bucket_studies(orthanc, store, a.patient_id, a.accession)
        if not studies:
            raise Fail(EXIT_NOT_FOUND, "No study in the bucket matches that patient id / accession.")
        print(f"Restoring {len(studies)} study(ies) from bucket {store.bucket} into {orthanc.url}")
        report = restore_from_bucket(store, orthanc, studies, prefix, a.as_of, progress)
    else:
        restic = _restic(a.target)
        print(f"Looking for the snapshot(s) of {restic.repository} that hold it...")
        report = restore_from_snapshot(
            restic, orthanc, [a.study] if a.study else None, a.as_of, a.snapshot, progress, a.patient_id, a.accession
        )
        print(f"Restoring from {report.source} into {orthanc.url}")
    return _print_report(report)


def _list_snapshots(a: argparse.Namespace) -> int:
    if not a.study or a.source != "offsite":
        raise Fail(EXIT_USAGE, "--list-snapshots needs --from offsite and a StudyInstanceUID.")
    restic = _restic(a.target)
    held = snapshots_holding(restic, a.study, a.as_of)
    if not held:
        raise Fail(EXIT_NOT_FOUND, f"No snapshot of {restic.repository} holds study {a.study}.")
    print(f"Snapshots of {restic.repository} holding study {a.study} (newest first):")
    for h in held:
        when = snapshot_time(h.snapshot).astimezone().strftime("%Y-%m-%d %H:%M %Z")
        print(f"  {h.snapshot.short_id}  {when}  {h.instances} instance(s)")
    print("Restore from one of them with --snapshot ID (default: the newest that holds the most of it).")
    return EXIT_OK


def cmd_disaster_recovery(a: argparse.Namespace) -> int:
    orthanc = _orthanc()
    existing = len(orthanc.get_json("/instances?since=0&limit=1"))
    if existing and not a.into_non_empty:
        raise Fail(
            EXIT_USAGE,
            f"The Orthanc at {orthanc.url} already holds instances; disaster recovery rebuilds "
            "into an empty PACS. Add --into-non-empty to merge anyway (nothing is overwritten).",
        )
    progress = _progress("recovering")
    if a.source == "minio":
        store, prefix = _store()
        print(f"Rebuilding the PACS at {orthanc.url} from bucket {store.bucket}")
        report = restore_from_bucket(store, orthanc, None, prefix, a.as_of, progress)
    else:
        restic = _restic(a.target)
        print(f"Rebuilding the PACS at {orthanc.url} from {restic.repository}")
        report = restore_from_snapshot(restic, orthanc, None, a.as_of, a.snapshot, progress)
    return _print_report(report)


def _wait_runs(orthanc: OrthancHttp, ids: list[int], timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    results: dict[int, dict[str, Any]] = {}
    while time.monotonic() < deadline and len(results) < len(ids):
        for run_id in ids:
            run = orthanc.get_json(f"/backup/runs/{run_id}")
            if run["state"] in ("ok", "failed"):
                results[run_id] = run
        time.sleep(1)
    code = EXIT_OK
    for run_id in ids:
        run = results.get(run_id)
        if run is None:
            print(f"run {run_id}: still running after {timeout_s:.0f} s; see /backup/runs/{run_id}")
            code = EXIT_FAILED
            continue
        print(f"{run['kind']} of {run['target']}: {run['state'].upper()} in {run['duration_s']} s")
        if run["error"]:
            print(f"  problem: {run['error']}")
        for k, v in run["summary"].items():
            print(f"  {k}: {json.dumps(v) if isinstance(v, list | dict) else v}")
        if run["state"] != "ok":
            code = EXIT_FAILED
    return code


def _trigger(kind: str, a: argparse.Namespace) -> int:
    orthanc = _orthanc()
    payload = {"target": a.target} if a.target else {}
    try:
        ids = orthanc.post_json(f"/backup/{kind}", payload)["runs"]
    except RequestRefused as exc:
        raise Fail(EXIT_USAGE if exc.status == 400 else EXIT_FAILED, str(exc)) from None
    except SourceError as exc:
        raise Fail(EXIT_UNREACHABLE, str(exc)) from None
    print(f"queued run(s) {', '.join(map(str, ids))}")
    return EXIT_OK if a.no_wait else _wait_runs(orthanc, ids, a.timeout)


def cmd_snapshot_now(a: argparse.Namespace) -> int:
    return _trigger("snapshots", a)


def cmd_verify_backups(a: argparse.Namespace) -> int:
    return _trigger("drills", a)


def cmd_prepare_drive(a: argparse.Namespace) -> int:
    orthanc = _orthanc()
    payload = {"target": a.target, **({"label": a.label} if a.label else {})}
    try:
        answer = orthanc.post_json("/backup/drives", payload)
    except RequestRefused as exc:
        raise Fail(EXIT_USAGE if exc.status == 400 else EXIT_FAILED, str(exc)) from None
    print(
        f"Drive prepared for {a.target}: repository {answer['repository_id'][:8]} "
        f"({a.label or 'no label'}); a first snapshot to it is queued (run {', '.join(map(str, answer['runs']))})."
    )
    print("Label the drive with that name; the appliance recognises it whenever it is plugged in.")
    return EXIT_OK


def cmd_orthanc_snippet(a: argparse.Namespace) -> int:
    """What to add to an existing Orthanc to load this installed plugin (paths of this installation)."""
    import importlib.util
    import site
    import sysconfig

    spec = importlib.util.find_spec("orthanc_entry")
    if spec is None or not spec.origin:
        raise Fail(EXIT_USAGE, "The plugin's entry module is not installed here; install the pacs-backup package.")
    paths = [sysconfig.get_paths()["purelib"], *site.getsitepackages()]
    snippet: dict[str, object] = {"PythonScript": spec.origin}
    if not a.debian:
        # Debian's packages already load every plugin of /usr/share/orthanc/plugins and keep files
        # uncompressed, and Orthanc refuses a key set in two files: there only PythonScript changes.
        snippet = {"Plugins": [a.python_plugin], **snippet, "StorageCompression": False}
    print(
        json.dumps(
            {"orthanc_configuration": snippet, "environment": {"PYTHONPATH": ":".join(dict.fromkeys(paths))}}, indent=2
        )
    )
    return EXIT_OK


def cmd_quarantine(a: argparse.Namespace) -> int:
    orthanc = _orthanc()
    if a.requeue:
        count = orthanc.post_json("/backup/quarantine/requeue", {})["requeued"]
        print(f"{count} set-aside instance(s) queued to be copied again")
        return EXIT_OK
    rows = orthanc.get_json("/backup/quarantine?limit=10000")
    if not rows:
        print("No instance is set aside: every instance Orthanc stored was copied or is in the queue.")
        return EXIT_OK
    print(f"{len(rows)} instance(s) set aside (not copied), with the reason:")
    for row in rows:
        print(f"  {row['orthanc_id']}  {row['reason']}")
    print("Fix the cause (e.g. the instance lacked its UIDs), then run: scripts/quarantine --requeue")
    return EXIT_FAILED


def cmd_forget_snapshots(a: argparse.Namespace) -> int:
    target = load_target(os.environ, "offsite", "RESTIC_")
    if target is None:
        raise Fail(EXIT_USAGE, "RESTIC_REPOSITORY is not set.")
    restic = Restic.for_target(target)
    print(f"Applying retention {target.keep} to {target.repository}")
    restic.forget(target.keep, prune=not a.no_prune)
    print("done")
    return EXIT_OK


def cmd_recovery_sheet(a: argparse.Namespace) -> int:
    target = load_target(os.environ, "offsite", "RESTIC_")
    if target is None:
        raise Fail(EXIT_USAGE, "RESTIC_REPOSITORY is not set; there is no offsite copy to describe.")
    written = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    facts = recovery_sheet.sheet_facts(os.environ, target, a.clinic, written, a.without_password)
    sheet = recovery_sheet.render(recovery_sheet.install_kind(os.environ, a.install), facts)
    if a.output:
        fd = os.open(a.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(sheet)
        print(f"recovery sheet written to {a.output}: print it and keep it in the clinic safe")
    else:
        print(sheet)
    return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    p = argparse.ArgumentParser(prog="pacs-backup", formatter_class=fmt, epilog=EXIT_CODES)
    sub = p.add_subparsers(dest="command", required=True)

    def command(
        name: str, func: Callable[[argparse.Namespace], int], what: str, description: str
    ) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, formatter_class=fmt, epilog=EXIT_CODES, help=what, description=description)
        sp.set_defaults(func=func)
        return sp

    def source(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--from",
            dest="source",
            choices=("minio", "offsite"),
            required=True,
            help="restore from the object store bucket or from an offsite snapshot",
        )
        sp.add_argument("--as-of", type=_date, help="restore the state at this date (YYYY-MM-DD[THH:MM], UTC)")
        sp.add_argument("--snapshot", help="with --from offsite: a snapshot id instead of the newest")
        sp.add_argument("--target", default="offsite", help="with --from offsite: which target (default offsite)")

    sp = command(
        "restore-study",
        cmd_restore_study,
        "bring one study back into Orthanc, verified",
        "Restore one study (by StudyInstanceUID, patient id or accession number) "
        "into the Orthanc at ORTHANC_URL, and verify every instance.",
    )
    sp.add_argument("study", nargs="?", help="StudyInstanceUID")
    sp.add_argument("--patient-id")
    sp.add_argument("--accession")
    sp.add_argument(
        "--list-snapshots",
        action="store_true",
        help="with --from offsite: list the snapshots that hold the study, and restore nothing",
    )
    source(sp)

    sp = command(
        "disaster-recovery",
        cmd_disaster_recovery,
        "rebuild a whole PACS into an empty Orthanc",
        "Rebuild every study into the (empty) Orthanc at ORTHANC_URL from the bucket "
        "or from the offsite repository alone, then verify every instance.",
    )
    source(sp)
    sp.add_argument("--into-non-empty", action="store_true", help="allow an Orthanc that already holds images")

    for name, func, what in (
        ("snapshot-now", cmd_snapshot_now, "take an offsite snapshot now"),
        ("verify-backups", cmd_verify_backups, "run a restore drill now and print it"),
    ):
        sp = command(
            name,
            func,
            what,
            what.capitalize() + " through the plugin at ORTHANC_URL, wait for it and print the result.",
        )
        sp.add_argument("--target", help="only this target (offsite, minio, or an extra target's name)")
        sp.add_argument("--no-wait", action="store_true", help="queue it and return at once")
        sp.add_argument("--timeout", type=float, default=3 * 3600, help="seconds to wait (default 3 h)")

    sp = command(
        "orthanc-snippet",
        cmd_orthanc_snippet,
        "print what an existing Orthanc needs to load this installed plugin",
        "Print (JSON) the Orthanc configuration keys and the environment that load "
        "the plugin from this installation; see docs/install-existing-orthanc.md.",
    )
    sp.add_argument(
        "--python-plugin",
        default="/usr/share/orthanc/plugins/libOrthancPython.so",
        help="path of Orthanc's Python plugin (default: Debian's)",
    )
    sp.add_argument(
        "--debian",
        action="store_true",
        help="for Debian's orthanc packages: only the PythonScript value, to set in /etc/orthanc/python.json",
    )

    sp = command(
        "prepare-drive",
        cmd_prepare_drive,
        "make a plugged-in external drive a backup drive of this appliance",
        "Create an encrypted repository on the drive plugged in for a drive target "
        "(a <NAME>_RESTIC_REPOSITORY that is a path), remember it, and queue a first "
        "snapshot. A drive that already holds a backup is never touched.",
    )
    sp.add_argument("--target", required=True, help="the drive target's name (from BACKUP_EXTRA_TARGETS)")
    sp.add_argument("--label", help="a name written on the drive, e.g. 'Drive A'")

    sp = command(
        "quarantine",
        cmd_quarantine,
        "list the instances set aside (not copied) and why; --requeue to try them again",
        "List the instances the plugin at ORTHANC_URL set aside instead of copying "
        "(exit 1 when there are any), or queue them again with --requeue.",
    )
    sp.add_argument("--requeue", action="store_true", help="copy every set-aside instance again")

    sp = command(
        "forget-snapshots",
        cmd_forget_snapshots,
        "apply the retention policy (on a trusted host with delete rights)",
        "Apply RESTIC_KEEP to RESTIC_REPOSITORY. Meant for a trusted host: the "
        "appliance's own append-only credentials cannot delete snapshots.",
    )
    sp.add_argument("--no-prune", action="store_true", help="forget without pruning data")

    sp = command(
        "recovery-sheet",
        cmd_recovery_sheet,
        "print the sheet that lets a technician rebuild the PACS after losing the box",
        "Print (or write with --output, mode 0600) the recovery sheet: offsite "
        "repository, its password and the exact commands.",
    )
    sp.add_argument("--clinic", default="(clinic name)", help="clinic name printed on the sheet")
    sp.add_argument("--output", help="write to this file instead of printing")
    sp.add_argument("--without-password", action="store_true", help="leave the password off the sheet")
    kind = sp.add_mutually_exclusive_group()
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
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the exit code. Errors print one sentence, never a traceback."""
    args = _parser().parse_args(argv)
    return run_command(lambda: int(args.func(args)), "interrupted; nothing already restored is undone")


if __name__ == "__main__":
    sys.exit(main())
