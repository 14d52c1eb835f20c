"""``pacs-backup group add-clinic <id>`` and ``group add-reader``: the group admin's keys for the group store.

Run by the group's admin with the group store's root account (GROUP_STORE_ROOT_USER /
GROUP_STORE_ROOT_PASSWORD, or their ``_FILE`` forms), which is used for nothing else. The bucket
(GROUP_STORE_BUCKET) is made with versioning and object lock when it is missing. Each clinic gets keys
that write and read only under ``<clinic-id>/`` and never delete (settings/group_policy.py); the group
service gets a reader key. The lines to paste are printed on stdout, what was done on stderr. Running
it again for the same clinic gives it a new secret (the old one stops working).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import sys
from collections.abc import Mapping
from typing import Any

from minio import Minio

from pacs_backup.clients.bucket import prepare_bucket
from pacs_backup.clients.object_store import http_pool
from pacs_backup.clients.store_errors import CLIENT_ERRORS, ROOT_KEYS, store_error
from pacs_backup.contracts.errors import BackupError, StoreError
from pacs_backup.settings.env_values import raw, secret
from pacs_backup.settings.group import load_group_store, parse_clinic_id
from pacs_backup.settings.group_policy import (
    clinic_policy,
    clinic_policy_name,
    group_reader_policy,
    reader_policy_name,
)
from pacs_backup.settings.store import StoreSettings

from .exits import EXIT_OK
from .store_setup import AdminError, SetupSettings, _admin_error, _Setup

GROUP_ROOT_KEYS = ("the group store's root account", "GROUP_STORE_ROOT_USER and GROUP_STORE_ROOT_PASSWORD")
READER_KEY = "group-reader"


def clinic_access_key(clinic: str) -> str:
    """The access key of a clinic's account: ``grp-<id>``, or for an id too long for some S3 servers
    (20 characters at most) its start and a digest of the whole id."""
    if len(clinic) <= 16:
        return f"grp-{clinic}"
    return f"grp-{clinic[:7]}-{hashlib.sha256(clinic.encode()).hexdigest()[:8]}"


def _root_store(env: Mapping[str, str]) -> StoreSettings:
    user, password = secret(env, "GROUP_STORE_ROOT_USER"), secret(env, "GROUP_STORE_ROOT_PASSWORD")
    assert user is not None and password is not None  # noqa: S101 - required=True guarantees it
    return load_group_store(env, "", user, password)


def _grant(root: StoreSettings, access_key: str, name: str, policy: dict[str, Any]) -> tuple[str, list[str]]:
    """Make the bucket if missing (versioning, object lock) and the account with ``policy``; returns its
    new secret and what was done (for a person)."""
    client = Minio(
        root.endpoint,
        access_key=root.access_key,
        secret_key=root.secret_key,
        secure=root.secure,
        region=root.region,
        http_client=http_pool(),
    )
    secret_key = secrets.token_urlsafe(30)  # 40 characters: MinIO's longest secret
    setup = SetupSettings(
        endpoint=root.endpoint,
        secure=root.secure,
        region=root.region,
        root_user=root.access_key,
        root_password=root.secret_key,
        bucket=root.bucket,
        lock_mode=root.lock_mode,
        lock_days=root.lock_days,
        plugin_access_key=access_key,
        plugin_secret_key=secret_key,
    )
    step = f"prepare bucket {root.bucket}"
    try:
        report = prepare_bucket(client, root)
        step = f"create account {access_key}"
        created = _Setup(setup).account(access_key, secret_key, name, policy)
    except AdminError as exc:
        raise _group_words(_admin_error(exc, step)) from None
    except CLIENT_ERRORS as exc:
        raise _group_words(store_error(exc, step, GROUP_ROOT_KEYS, then="")) from None
    done = [
        f"bucket {root.bucket}: {'created' if report.created else 'present'}, versioning "
        f"{'on' if report.versioning else 'OFF'}, object lock {'on' if report.object_lock else 'OFF'}",
        *(f"warning: {w}" for w in report.warnings),
        f"account {access_key}: {'created' if created else 'given a new secret'}, policy {name}",
    ]
    return secret_key, done


def _group_words(exc: BackupError) -> BackupError:
    """The set-up step's sentence, naming the group store's variables instead of the local store's."""
    return type(exc)(str(exc).replace(ROOT_KEYS[1], GROUP_ROOT_KEYS[1]).replace(ROOT_KEYS[0], GROUP_ROOT_KEYS[0]))


def _connection_lines(env: Mapping[str, str], root: StoreSettings) -> list[str]:
    lines = [f"GROUP_STORE_ENDPOINT={raw(env, 'GROUP_STORE_ENDPOINT')}", f"GROUP_STORE_BUCKET={root.bucket}"]
    for name in ("GROUP_STORE_SECURE", "GROUP_STORE_REGION"):
        if raw(env, name) is not None:
            lines.append(f"{name}={raw(env, name)}")
    return lines


def add_clinic(a: argparse.Namespace, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    clinic = parse_clinic_id("clinic id", a.clinic)
    root = _root_store(env)
    access_key = clinic_access_key(clinic)
    if access_key == root.access_key:
        raise StoreError(f"Clinic {clinic}'s account would be the root account; choose another clinic id.")
    secret_key, done = _grant(
        root, access_key, clinic_policy_name(root.bucket, clinic), clinic_policy(root.bucket, clinic)
    )
    for line in done:
        print(f"  {line}", file=sys.stderr)
    url = raw(env, "GROUP_SERVICE_URL")
    print(
        f"# Clinic {clinic} in group store {root.bucket}: paste into the clinic's .env "
        "(its own keys: keep them secret)."
    )
    print(f"GROUP_CLINIC_ID={clinic}")
    for line in _connection_lines(env, root):
        print(line)
    print(f"GROUP_STORE_ACCESS_KEY={access_key}")
    print(f"GROUP_STORE_SECRET_KEY={secret_key}")
    print(
        f"GROUP_SERVICE_URL={url}"
        if url
        else "# GROUP_SERVICE_URL=https://... (the group service's address, when it runs)"
    )
    print(
        f"# GROUP_SERVICE_TOKEN=... is issued by the group service: `python -m pacs_dashboard group add-clinic "
        f"{clinic}` on the group service's host prints it (docs/groups.md); paste it here too."
    )
    return EXIT_OK


def add_reader(a: argparse.Namespace, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    root = _root_store(env)
    secret_key, done = _grant(root, READER_KEY, reader_policy_name(root.bucket), group_reader_policy(root.bucket))
    for line in done:
        print(f"  {line}", file=sys.stderr)
    print(f"# The group service's read-only key for group store {root.bucket}: paste into its .env (keep it secret).")
    for line in _connection_lines(env, root):
        print(line)
    print(f"GROUP_READER_ACCESS_KEY={READER_KEY}")
    print(f"GROUP_READER_SECRET_KEY={secret_key}")
    return EXIT_OK


def run(a: argparse.Namespace) -> int:
    return add_clinic(a) if a.action == "add-clinic" else add_reader(a)


def options(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(
        dest="action", required=True, metavar="ACTION", help="add-clinic CLINIC_ID or add-reader (each has --help)"
    )
    clinic = sub.add_parser(
        "add-clinic",
        help="make (or renew) a clinic's keys for the group store and print the lines its installer pastes",
    )
    clinic.add_argument("clinic", help="the clinic's id: 2-32 lowercase letters, digits or '-' (e.g. north)")
    sub.add_parser("add-reader", help="make (or renew) the group service's read-only key and print its lines")
