"""This machine as the kernel and the resolver see it: its own addresses and names, its mounts, and a name
lookup (read from ``/proc``), for deciding which copies are on this box (:mod:`placement`)."""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def address(text: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(text.partition("%")[0])
    except ValueError:
        return None


@dataclass(frozen=True)
class Mount:
    """One mounted file system: where, of which type, from what (a device, ``server:/export``...)."""

    point: str
    fstype: str
    source: str


def _no_lookup(host: str) -> Sequence[IPAddress]:
    raise OSError("no name lookup")


@dataclass(frozen=True)
class Machine:
    """What this machine is: its own addresses and names, its mounts, and how a name is looked up."""

    addresses: frozenset[IPAddress] = frozenset()
    names: frozenset[str] = frozenset()
    mounts: tuple[Mount, ...] = ()
    resolve: Callable[[str], Sequence[IPAddress]] = field(default=_no_lookup, compare=False)


def own_ipv4(fib_trie: str) -> set[IPAddress]:
    """This machine's IPv4 addresses from ``/proc/net/fib_trie`` (the ``/32 host LOCAL`` entries)."""
    found: set[IPAddress] = set()
    last: str | None = None
    for line in fib_trie.splitlines():
        text = line.strip()
        if text.startswith("|-- "):
            last = text[4:].strip()
        elif text.startswith("/32 host LOCAL") and last:
            addr = address(last)
            if addr is not None:
                found.add(addr)
    return found


def own_ipv6(if_inet6: str) -> set[IPAddress]:
    """This machine's IPv6 addresses from ``/proc/net/if_inet6`` (32 hex digits first on each line)."""
    found: set[IPAddress] = set()
    for line in if_inet6.splitlines():
        word = line.split()[0] if line.split() else ""
        if re.fullmatch(r"[0-9a-fA-F]{32}", word):
            found.add(ipaddress.IPv6Address(int(word, 16)))
    return found


def mounts_of(mountinfo: str) -> tuple[Mount, ...]:
    """The mounts in ``/proc/self/mountinfo`` (mount point, type, source; ``\\040`` read as a space)."""
    out = []
    for line in mountinfo.splitlines():
        head, sep, tail = line.partition(" - ")
        fields, more = head.split(), tail.split()
        if sep and len(fields) >= 5 and len(more) >= 2:
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
            out.append(Mount(point, more[0], more[1]))
    return tuple(out)


def _docker_gateway(route: str) -> set[IPAddress]:
    """Inside a container, the default gateway is the box the container runs on (``/proc/net/route``)."""
    found: set[IPAddress] = set()
    for line in route.splitlines()[1:]:
        cols = line.split()
        if len(cols) > 2 and cols[1] == "00000000" and re.fullmatch(r"[0-9A-Fa-f]{8}", cols[2]):
            found.add(ipaddress.IPv4Address(bytes.fromhex(cols[2])[::-1]))
    return found


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _lookup(host: str) -> list[IPAddress]:
    out = []
    for *_, sockaddr in socket.getaddrinfo(host, None, type=socket.SOCK_STREAM):
        addr = address(str(sockaddr[0]))
        if addr is not None:
            out.append(addr)
    return out


def this_machine() -> Machine:
    """This machine as the kernel and the resolver see it now."""
    addresses = own_ipv4(_read("/proc/net/fib_trie")) | own_ipv6(_read("/proc/net/if_inet6"))
    if Path("/.dockerenv").exists():
        addresses |= _docker_gateway(_read("/proc/net/route"))
    hostname = socket.gethostname().lower()
    names = {hostname, hostname.partition(".")[0]} - {""}
    return Machine(frozenset(addresses), frozenset(names), mounts_of(_read("/proc/self/mountinfo")), _lookup)
