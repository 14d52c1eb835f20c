"""The technician commands that talk to no running PACS: the recovery sheet, retention on a trusted host,
and the snippet that loads this installed plugin into an existing Orthanc."""

from __future__ import annotations

import argparse
import json
import os
import time
from datetime import UTC, datetime

from pacs_backup.clients.restic import Restic
from pacs_backup.jobs.machine import this_machine
from pacs_backup.jobs.placement import target_verdict
from pacs_backup.jobs.retention import forget_with_retention
from pacs_backup.settings import recovery_sheet as sheet
from pacs_backup.settings.retention import load_retention
from pacs_backup.settings.targets import load_target

from .exits import EXIT_OK, EXIT_USAGE, Fail
from .text import Progress, duration


def orthanc_snippet(a: argparse.Namespace) -> int:
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


def forget_snapshots(a: argparse.Namespace) -> int:
    target = load_target(os.environ, "offsite", "RESTIC_")
    if target is None:
        raise Fail(EXIT_USAGE, "RESTIC_REPOSITORY is not set; give the repository whose old snapshots to forget.")
    policy = ", ".join(f"{v} {k}" if k != "within" else f"everything within {v}" for k, v in target.keep.items())
    print(f"Keeping {policy} of {target.repository}; forgetting the other snapshots.")
    started = time.monotonic()
    rule = load_retention(os.environ)
    print(rule.sentence + " Snapshots that hold the fullest copy of such a study are kept.")
    with Progress("forgetting" if a.no_prune else "forgetting and pruning", every_s=30.0):
        # No catalog here: what each snapshot holds is read from its own manifest.
        decided = forget_with_retention(
            Restic.for_target(target), target.keep, rule, datetime.now().date(), prune=not a.no_prune
        )
    freed = "their data is kept (--no-prune)" if a.no_prune else "their data is pruned"
    print(f"Done in {duration(time.monotonic() - started)}: {decided.sentence} Forgotten snapshots: {freed}.")
    return EXIT_OK


def recovery_sheet(a: argparse.Namespace) -> int:
    target = load_target(os.environ, "offsite", "RESTIC_")
    if target is None:
        raise Fail(EXIT_USAGE, "RESTIC_REPOSITORY is not set; there is no offsite copy to describe.")
    written = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    # Said on the sheet whatever BACKUP_TREAT_AS_OFFSITE says: the sheet is for the day the box is gone.
    placed = target_verdict(target, this_machine())
    facts = sheet.sheet_facts(
        os.environ, target, a.clinic, written, a.without_password, placed.why if placed.same_box else None
    )
    text = sheet.render(sheet.install_kind(os.environ, a.install), facts)
    if a.output:
        fd = os.open(a.output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        print(f"Recovery sheet written to {a.output}: print it, keep it in the clinic safe, then delete the file.")
    else:
        print(text)
    return EXIT_OK
