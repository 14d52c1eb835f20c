"""``python -m pacs_dashboard group ...``: the group service's commands for the group's administrator.

Read the same environment as the group service (GROUP_DATABASE_URL, GROUP_STORE_*, GROUP_READER_*).

Exit codes: 0 done; 2 a setting is wrong or missing; 3 the catalog or the group store refused or is unreachable,
or the clinic is unknown.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict

from minio.error import S3Error
from urllib3.exceptions import HTTPError

from pacs_backup.contracts.errors import BackupError, ConfigError
from pacs_backup.settings.store import StoreSettings

from .catalog import Catalog
from .heartbeats import group_status
from .reconcile import rebuild, reconcile
from .settings import load_group_settings
from .store import GroupStore
from .tokens import add_clinic, revoke_clinic


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m pacs_dashboard group", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    add = sub.add_parser("add-clinic", help="register a clinic (or give it a new token) and print its token once")
    add.add_argument("clinic", help="the clinic's id, e.g. north (its prefix in the group store)")
    add.add_argument("--label", default="", help="the clinic's name as people say it")
    revoke = sub.add_parser("revoke-clinic", help="refuse a clinic's token from now on (its studies stay)")
    revoke.add_argument("clinic")
    sub.add_parser("clinics", help="list the clinics with their last heartbeat (JSON)")
    sub.add_parser("reconcile", help="add what the group store holds and the catalog lacks, now")
    sub.add_parser("rebuild", help="empty the catalog and fill it again from the group store alone")
    return p


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_group_settings(os.environ)
        if args.command in ("reconcile", "rebuild") and settings.store is None:
            raise ConfigError("This command reads the group store: set GROUP_READER_ACCESS_KEY and _SECRET_KEY.")
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        catalog = Catalog(settings.database_url, keep=1)
        try:
            return _run(args, catalog, settings.quiet_minutes, settings.store)
        finally:
            catalog.close()
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except (S3Error, HTTPError) as exc:
        print(f"error: the group store refused or did not answer: {type(exc).__name__}", file=sys.stderr)
        return 3


def _run(args: argparse.Namespace, catalog: Catalog, quiet_minutes: float, store: StoreSettings | None) -> int:
    if args.command == "add-clinic":
        token = add_clinic(catalog, args.clinic, args.label)
        print(f"# The clinic's token for the group service, shown this once: paste it into {args.clinic}'s .env")
        print(f"GROUP_SERVICE_TOKEN={token}")
    elif args.command == "revoke-clinic":
        revoke_clinic(catalog, args.clinic)
        print(f"The token of clinic {args.clinic} is refused from now on.")
    elif args.command == "clinics":
        print(json.dumps(group_status(catalog, quiet_minutes), indent=2, default=str))
    elif store is not None:  # reconcile, rebuild (main() checked the store is set)
        run = reconcile if args.command == "reconcile" else rebuild
        for report in run(catalog, GroupStore(store)):
            print(json.dumps(asdict(report)))
    return 0
