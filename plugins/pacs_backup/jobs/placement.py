"""Where each copy is: can it survive the loss of this box (fire, flood, theft)?

A copy is on the same box when its host is loopback, one of this machine's own addresses or names, a
service of this appliance's own Compose stack, or when it is a folder on a disk of this box that is not a
backup drive (drives are taken away in rotation, so they count as away; a network share counts by its
server). An rclone remote of type ``local`` is a folder of this box; a wrapping remote (alias, crypt...) is
where the remote it wraps is. Such a copy protects against mistakes (a deleted study, a damaged PACS), not
against losing the box: the status says ``same_box`` per copy, the dashboard's light is amber and the
recovery sheet says so.

The decision is pure: :func:`repository_verdict`, :func:`host_verdict` and :func:`url_verdict` take a
:class:`Machine` (its addresses, names, mounts and a name lookup), which :func:`this_machine` reads from
``/proc`` and the resolver. :class:`Placement` keeps the verdicts of the configured copies, decided off
the request path (a name lookup can take seconds) and again every hour.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Final
from urllib.parse import urlsplit

from pacs_backup.contracts.documents import CloudDoc, PlacementDoc, TargetDoc
from pacs_backup.contracts.errors import BadRequest
from pacs_backup.rclone.config import sections
from pacs_backup.rclone.providers import PROVIDERS, refs_of
from pacs_backup.rclone.sandbox import config_path
from pacs_backup.settings.cloud_peer import CloudPacsSettings
from pacs_backup.settings.config import CLOUD_PACS_COPY, Settings
from pacs_backup.settings.targets import TargetSettings

from .machine import IPAddress, Machine, Mount, address, this_machine

log = logging.getLogger(__name__)

# The services of docker-compose.yml (tests/unit/test_placement.py keeps this equal to the file): each is
# reachable by its name from the others, and each runs on this box.
COMPOSE_SERVICES: Final = frozenset(
    {"dashboard", "store", "offsite-auth", "orthanc", "postgres", "proxy", "rest-server", "store-setup"}
)
# Other names Compose gives a service on its network: the object store answers as "minio" too (its older name,
# still in installations' MINIO_ENDPOINT).
COMPOSE_ALIASES: Final = frozenset({"minio"})
# Compose also names each container <project>-<service>-<n> (older releases: with underscores).
_CONTAINER = re.compile(r"(?P<base>.+)[-_][0-9]+")
# Names that always mean this machine (or, from a container, the box it runs on).
_THIS_BOX_NAMES: Final = frozenset(
    {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback", "host.docker.internal"}
)
# File systems whose folders are on another machine: the server named in the mount's source decides.
_NETWORK_FS: Final = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "fuse.sshfs", "sshfs", "ceph", "glusterfs", "fuse.glusterfs"}
)
_CLOUD_FS: Final = frozenset({"fuse.rclone", "fuse.s3fs", "davfs", "fuse.davfs2", "fuse.gcsfuse", "fuse.goofys"})
_CLOUD_SCHEMES: Final = {
    "b2": "Backblaze B2",
    "azure": "Azure",
    "gs": "Google Cloud Storage",
    "swift": "OpenStack Swift",
}
_MAX_WRAP = 6
REFRESH_S = 3600.0
LOCAL_BUCKET = "minio"  # the local copy's name (its verdict is shown, never judged: it is the local copy)


@dataclass(frozen=True)
class Verdict:
    """Whether a copy is on this box, and why, in words for a technician."""

    same_box: bool
    why: str


# --- hosts --------------------------------------------------------------------------------------------


def _mine(addr: IPAddress, machine: Machine) -> str | None:
    """Why ``addr`` is this machine, or None."""
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if addr.is_loopback:
        return "loopback: this machine itself"
    if addr.is_unspecified:
        return "the unspecified address, which reaches this machine itself"
    if addr in machine.addresses:
        return "one of this machine's own addresses"
    return None


def _compose_container(name: str) -> bool:
    """``<project>-<service>-<n>``: a container of one of this stack's services."""
    container = _CONTAINER.fullmatch(name)
    base = container.group("base") if container else ""
    return any(base.endswith(("-" + s, "_" + s)) for s in COMPOSE_SERVICES)


def host_verdict(host: str, machine: Machine) -> Verdict:
    """Is ``host`` (a name or an address, with or without brackets) this box?"""
    name = host.strip().lower().removeprefix("[").removesuffix("]").rstrip(".")
    if not name:
        return Verdict(False, "the address names no host, so where it is cannot be told")
    addr = address(name)
    if addr is not None:
        why = _mine(addr, machine)
        return Verdict(True, f"{name} is {why}") if why else Verdict(False, f"{name} is another machine's address")
    if name in _THIS_BOX_NAMES or name.endswith(".localhost"):
        return Verdict(True, f"{name} is this machine itself")
    if name in machine.names:
        return Verdict(True, f"{name} is this machine's own name")
    if name in COMPOSE_SERVICES or name in COMPOSE_ALIASES or _compose_container(name):
        return Verdict(True, f"{name} is a service of this appliance's own Compose stack, on this box")
    try:
        found = list(machine.resolve(name))
    except OSError:
        return Verdict(False, f"{name} could not be looked up now; it is taken to be another machine")
    for a in found:
        why = _mine(a, machine)
        if why:
            return Verdict(True, f"{name} resolves to {a}, {why}")
    return Verdict(False, f"{name} is another machine")


def url_verdict(url: str, machine: Machine) -> Verdict:
    """Is the host of ``url`` (``scheme://[user@]host[:port]/...``) this box?"""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return Verdict(False, "the address cannot be read; it is taken to be another machine")
    if parts.scheme.endswith("+unix"):
        return Verdict(True, "a socket of this machine")
    return host_verdict(host or "", machine)


# --- folders ------------------------------------------------------------------------------------------


def _mount_of(path: str, mounts: Sequence[Mount]) -> Mount | None:
    best: Mount | None = None
    for m in mounts:
        point = m.point.rstrip("/") or "/"
        inside = path == point or path.startswith(point + "/") or point == "/"
        if inside and (best is None or len(point) > len(best.point.rstrip("/") or "/")):
            best = m
    return best


def _share_host(m: Mount) -> str | None:
    """The server of a network mount: ``server:/export``, ``//server/share``, ``user@server:/path``."""
    src = m.source
    if src.startswith("//"):
        return src[2:].partition("/")[0]
    src = src.rpartition("@")[2] if "@" in src.partition(":")[0] else src
    if src.startswith("["):
        return src[1:].partition("]")[0]
    host, colon, _ = src.partition(":")
    return host if colon else None


def path_verdict(path: str, machine: Machine, *, drive: bool = False) -> Verdict:
    """A folder: a backup drive is away in rotation; a network share is where its server is; any other
    folder is on a disk of this box."""
    if drive:
        return Verdict(False, f"{path} is a backup drive, taken away from the box in rotation")
    full = os.path.normpath(path if path.startswith("/") else "/" + path)
    m = _mount_of(full, machine.mounts)
    if m is not None and m.fstype in _NETWORK_FS:
        host = _share_host(m)
        if host:
            server = host_verdict(host, machine)
            return Verdict(server.same_box, f"{path} is a network share ({m.fstype}) of {host}: {server.why}")
        return Verdict(False, f"{path} is a network share ({m.fstype}) of another machine")
    if m is not None and m.fstype in _CLOUD_FS:
        return Verdict(False, f"{path} is cloud storage mounted as a folder ({m.fstype})")
    return Verdict(True, f"{path} is a folder on a disk of this box, not a backup drive")


# --- rclone remotes -----------------------------------------------------------------------------------


def _rclone_verdict(ref: str, remotes: Mapping[str, Mapping[str, str]] | None, machine: Machine, depth: int) -> Verdict:
    """Where an rclone ``remote:path`` (or a local path, or ``:type:path``) keeps its files."""
    if depth > _MAX_WRAP:
        return Verdict(False, "the rclone remotes wrap each other too deep to tell where they are")
    if ref.startswith("/") or (":" not in ref and ref):
        return path_verdict(ref, machine)
    name, _, path = ref.partition(":")
    if not name:  # an on-the-fly backend, ":local:/path" or ":sftp,host=...:"
        kind = path.partition(":")[0].partition(",")[0]
        if kind == "local":
            return path_verdict(path.partition(":")[2] or "/", machine)
        return Verdict(False, f"the rclone backend {kind!r} is taken to be another machine")
    if remotes is None:
        return Verdict(False, f"the rclone configuration cannot be read, so where [{name}] is cannot be told")
    options = remotes.get(name)
    if options is None:
        return Verdict(False, f"the rclone configuration has no remote [{name}], so where it is cannot be told")
    kind = options.get("type", "")
    if kind == "local":
        inner = path_verdict(path or "/", machine)
        if inner.same_box:
            return Verdict(True, f"[{name}] is an rclone remote of type local: a folder of this box")
        return Verdict(False, f"[{name}] is an rclone remote of type local, but {inner.why}")
    refs = [r for k, v in options.items() for r in refs_of(kind, k, v) if r != "="] if kind in PROVIDERS else []
    if refs:  # alias, crypt, chunker, compress, hasher, union, combine: where every wrapped remote is
        inner_verdicts = [_rclone_verdict(r, remotes, machine, depth + 1) for r in refs]
        if all(v.same_box for v in inner_verdicts):
            return Verdict(True, f"[{name}] ({kind}) keeps its files in {inner_verdicts[0].why}")
        away = next(v for v in inner_verdicts if not v.same_box)
        return Verdict(False, f"[{name}] ({kind}) keeps its files away: {away.why}")
    if options.get("host"):
        server = host_verdict(options["host"], machine)
        return Verdict(server.same_box, f"[{name}] ({kind}) is on {options['host']}: {server.why}")
    address = options.get("url") or options.get("endpoint")
    if address:
        server = url_verdict(address if "://" in address else "https://" + address, machine)
        return Verdict(server.same_box, f"[{name}] ({kind}) is at {address}: {server.why}")
    title = PROVIDERS[kind].title if kind in PROVIDERS else kind or "an unknown type"
    return Verdict(False, f"[{name}] is cloud storage ({title})")


def rclone_remotes(text: str) -> dict[str, dict[str, str]]:
    """The remotes of an rclone configuration and their options, as written (read the strict way).

    Raises:
        BadRequest: the text is not an rclone configuration the appliance reads.
    """
    return {s.name: {key: value for _, key, value in s.lines} for s in sections(text)}


# --- repositories -------------------------------------------------------------------------------------


def _sftp_host(rest: str) -> str:
    """``sftp:user@host:/path``, ``sftp:[::1]:/path`` or ``sftp://user@host:port//path`` -> host."""
    if rest.startswith("//"):
        return urlsplit("sftp:" + rest).hostname or ""
    if "@" in rest.split(":", 1)[0]:  # a user name before the host (the path may hold '@' too)
        rest = rest.split("@", 1)[1]
    if rest.startswith("["):
        return rest[1:].partition("]")[0]
    return rest.partition(":")[0]


def repository_verdict(
    repository: str,
    machine: Machine,
    *,
    drive: bool = False,
    rclone_config: Mapping[str, Mapping[str, str]] | None = None,
) -> Verdict:
    """Is a restic repository on this box? ``rest:``, ``s3:``, ``sftp:``, ``rclone:`` (``rclone_config``:
    its remotes, None when it cannot be read), ``b2:``/``azure:``/``gs:``/``swift:`` (a provider's cloud),
    ``local:`` or a plain folder (``drive``: a backup drive, away by definition)."""
    scheme, colon, rest = repository.partition(":")
    if repository.startswith("/") or not colon or len(scheme) == 1:  # a folder (or a Windows drive letter)
        return path_verdict(repository, machine, drive=drive)
    if scheme == "local":
        return path_verdict(rest, machine, drive=drive)
    if scheme == "rest":
        return url_verdict(rest, machine)
    if scheme == "s3":
        return url_verdict(rest if "://" in rest else "https://" + rest, machine)
    if scheme == "sftp":
        return host_verdict(_sftp_host(rest), machine)
    if scheme == "rclone":
        return _rclone_verdict(rest, rclone_config, machine, 0)
    if scheme in _CLOUD_SCHEMES:
        return Verdict(False, f"cloud storage ({_CLOUD_SCHEMES[scheme]})")
    return Verdict(False, f"a repository of kind {scheme!r}, taken to be on another machine")


def target_verdict(target: TargetSettings, machine: Machine) -> Verdict:
    """The verdict of a snapshot target, reading its rclone configuration when it has one."""
    remotes: dict[str, dict[str, str]] | None = None
    if target.repository.startswith("rclone:"):
        try:
            remotes = rclone_remotes(config_path(target.env).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, BadRequest):
            remotes = None
    return repository_verdict(target.repository, machine, drive=target.drive, rclone_config=remotes)


def cloud_verdict(cloud: CloudPacsSettings, machine: Machine) -> Verdict:
    """The cloud PACS: its DICOMweb root's host, or its DICOM address's."""
    if cloud.dicom is not None:
        return host_verdict(cloud.dicom.host, machine)
    return url_verdict(cloud.url or "", machine)


# --- the configured copies ----------------------------------------------------------------------------


class Placement:
    """The verdict of each configured copy, decided by :meth:`refresh_if_due` (on a worker thread, never
    while answering a request) and kept; :meth:`doc` is what the status shows of a copy."""

    def __init__(
        self,
        copies: Mapping[str, Callable[[Machine], Verdict]],
        treated: frozenset[str] = frozenset(),
        machine: Callable[[], Machine] = this_machine,
        *,
        every_s: float = REFRESH_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.copies = dict(copies)
        self.treated = treated
        self._machine = machine
        self._every_s = every_s
        self._clock = clock
        self._verdicts: dict[str, Verdict] = {}
        self._decided_at: float | None = None
        self._lock = threading.Lock()

    def refresh_soon(self) -> None:
        """Decide again at the next :meth:`refresh_if_due` (an rclone configuration was pasted)."""
        self._decided_at = None

    def refresh_if_due(self) -> None:
        now = self._clock()
        if self._decided_at is not None and now - self._decided_at < self._every_s:
            return
        with self._lock:
            self._decided_at = now
            try:
                machine = self._machine()
                verdicts = {name: decide(machine) for name, decide in self.copies.items()}
            except Exception:  # a wrong guess here must never stop snapshots; tried again next time
                log.exception("could not tell where the copies are")
                return
            for name, v in verdicts.items():
                if v.same_box and name != LOCAL_BUCKET and self._verdicts.get(name) != v:
                    log.warning("the copy %s is on this box, not offsite: %s", name, v.why)
            self._verdicts = verdicts

    def verdict(self, name: str) -> Verdict | None:
        return self._verdicts.get(name)

    def place(self, name: str, doc: TargetDoc | CloudDoc) -> None:
        """Add to a copy's part of the status where it is (nothing until it is decided)."""
        v = self._verdicts.get(name)
        if v is not None:
            doc["same_box"], doc["same_box_reason"] = v.same_box, v.why
            if v.same_box and name in self.treated:
                doc["treated_as_offsite"] = True

    def doc(self, name: str) -> PlacementDoc:
        """``same_box``, why, and whether a setting treats it as offsite; empty until decided."""
        v = self._verdicts.get(name)
        if v is None:
            return {}
        doc: PlacementDoc = {"same_box": v.same_box, "same_box_reason": v.why}
        if v.same_box and name in self.treated:
            doc["treated_as_offsite"] = True
        return doc

    def none_away(self) -> bool:
        """True when every copy but the local bucket is decided to be on this box (none treated as offsite)."""
        docs = [self.doc(n) for n in self.copies if n != LOCAL_BUCKET]
        return bool(docs) and all(d.get("same_box") is True and not d.get("treated_as_offsite") for d in docs)


def placement_of(s: Settings) -> Placement:
    """The copies of these settings: every snapshot target, the local bucket (``minio``) and the cloud PACS."""
    copies: dict[str, Callable[[Machine], Verdict]] = {t.name: partial(target_verdict, t) for t in s.targets}
    scheme = "https" if s.store.secure else "http"
    copies[LOCAL_BUCKET] = partial(url_verdict, f"{scheme}://{s.store.endpoint}")
    if s.cloud_pacs is not None:
        copies[CLOUD_PACS_COPY] = partial(cloud_verdict, s.cloud_pacs)
    return Placement(copies, s.treat_as_offsite)
