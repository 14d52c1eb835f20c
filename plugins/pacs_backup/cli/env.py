"""The technician scripts' connections, from the same variables as ``.devstack/stack.env``: the PACS
(ORTHANC_URL...), the bucket (MINIO_*), the snapshot targets (RESTIC_*, BACKUP_EXTRA_TARGETS) and the
group store (GROUP_*)."""

from __future__ import annotations

import os

from pacs_backup.clients.object_store import ObjectStore
from pacs_backup.clients.orthanc_http import OrthancHttp
from pacs_backup.clients.restic import Restic
from pacs_backup.contracts.errors import SourceError
from pacs_backup.settings.group import load_group
from pacs_backup.settings.store import load_store_settings
from pacs_backup.settings.targets import load_target, load_targets

from .exits import EXIT_UNREACHABLE, EXIT_USAGE, Fail


def orthanc() -> OrthancHttp:
    url = os.environ.get("ORTHANC_URL")
    if not url:
        raise Fail(EXIT_USAGE, "ORTHANC_URL is not set (e.g. http://127.0.0.1:8042); load .devstack/stack.env.")
    try:
        return OrthancHttp(url, os.environ.get("ORTHANC_USERNAME"), os.environ.get("ORTHANC_PASSWORD"))
    except ValueError as exc:
        raise Fail(EXIT_USAGE, f"ORTHANC_URL: {exc}") from None


def store() -> tuple[ObjectStore, str]:
    settings = load_store_settings(os.environ)
    return ObjectStore(settings), settings.prefix


def group_store() -> tuple[ObjectStore, str]:
    """This clinic's part of its group's store (GROUP_* variables, the clinic's own keys) and its prefix."""
    group = load_group(os.environ)
    if group is None:
        raise Fail(
            EXIT_USAGE,
            "GROUP_CLINIC_ID is not set; give the clinic's id and its group keys (GROUP_STORE_ENDPOINT, "
            "GROUP_STORE_BUCKET, GROUP_STORE_ACCESS_KEY, GROUP_STORE_SECRET_KEY), as on its recovery sheet.",
        )
    return ObjectStore(group.store), group.clinic_id


def no_such_target(name: str, known: list[str], kind: str = "target") -> Fail:
    """Exit 2 naming what exists: ``No target named 'x'; the targets are: offsite, usb.``"""
    if not known:
        return Fail(EXIT_USAGE, f"No {kind} named {name!r}; none is configured.")
    return Fail(EXIT_USAGE, f"No {kind} named {name!r}; the {kind}s are: {', '.join(known)}.")


def restic(target: str) -> Restic:
    """The snapshot target ``target`` (offsite, or a name of BACKUP_EXTRA_TARGETS)."""
    if target == "offsite":
        found = load_target(os.environ, "offsite", "RESTIC_")
        if found is None:
            raise Fail(EXIT_USAGE, "RESTIC_REPOSITORY is not set; give the offsite repository address.")
    else:
        targets = load_targets(os.environ)
        found = next((t for t in targets if t.name == target), None)
        if found is None:
            raise no_such_target(target, [t.name for t in targets])
    return Restic.for_target(found)


def plugin_targets(pacs: OrthancHttp, kind: str) -> list[str]:
    """The targets the plugin at ORTHANC_URL would run ``kind`` ('snapshot', 'drill', 'drive') for."""
    try:
        status = pacs.get_json("/backup/status")
    except SourceError as exc:
        raise Fail(EXIT_UNREACHABLE, str(exc)) from None
    targets = (status.get("offsite") or {}) if isinstance(status, dict) else {}
    if kind == "drive":
        return [name for name, doc in targets.items() if isinstance(doc, dict) and doc.get("drive")]
    return [name for name in targets if kind == "drill" or name != "minio"]
