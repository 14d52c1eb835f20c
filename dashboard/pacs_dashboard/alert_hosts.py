"""Which hosts an alert address typed on the Alerts page may reach, and holding Apprise to them.

An administrator's browser (or whoever rides on its session) must not be able to make the box talk to
machines on the clinic's network or to the box itself. So each Apprise address is read with Apprise's own
parsing to find every host it will contact: the mail server of a mailto:// address (smtp= included),
ntfy.sh or the ntfy server named, a Gotify server, a webhook's host, Slack's, Discord's and Telegram's own
servers. A service whose hosts cannot be told this way is refused.

- A host must be the service's own public server (PUBLIC_HOSTS) or be listed in DASHBOARD_WEBHOOK_HOSTS.
- Every address the host's name resolves to must be a public internet address, or lie inside an address
  or network listed in DASHBOARD_WEBHOOK_HOSTS (``192.168.1.20``, ``192.168.1.0/24``): the box itself
  (127.0.0.0/8, ::1), private, link-local, shared and reserved ranges need that explicit allow.
- Checked when the address is added or changed, and again at each connection while sending (the name may
  point elsewhere by then; a redirect or a proxy would go to a host not named): guarded() holds every
  name lookup Apprise makes in that thread to the hosts found and the addresses allowed.

The heartbeat address typed on the same page is held to the same rules (heartbeat.py), with
DASHBOARD_HEARTBEAT_HOSTS as its list. The technician's own APPRISE_URLS and DASHBOARD_HEARTBEAT_URL are
trusted as set and not held to this.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# The services' own public servers, by Apprise's class: they need no listing (their addresses are
# still checked). The hosts of every other service come from the address itself.
_FIXED = {
    "NotifySlack": ("hooks.slack.com", "hooks.slack-gov.com", "slack.com"),
    "NotifyDiscord": ("discord.com",),
    "NotifyTelegram": ("api.telegram.org",),
}
_HOST_FROM_URL = {"NotifyJSON", "NotifyXML", "NotifyForm", "NotifyGotify"}
NTFY_CLOUD = "ntfy.sh"


def _mail_providers() -> frozenset[str]:
    """The mail servers of the providers Apprise knows by their domain (gmail.com -> smtp.gmail.com)."""
    try:
        from apprise.plugins.email.templates import EMAIL_TEMPLATES
    except ImportError:  # another Apprise layout: such addresses then need listing
        return frozenset()
    return frozenset(str(t[2]["smtp_host"]).lower() for t in EMAIL_TEMPLATES if t[2].get("smtp_host"))


@lru_cache(maxsize=1)
def public_hosts() -> dict[str, frozenset[str]]:
    hosts = {cls: frozenset(names) for cls, names in _FIXED.items()}
    hosts["NotifyNtfy"] = frozenset({NTFY_CLOUD})
    hosts["NotifyEmail"] = _mail_providers()
    return hosts


def normal(host: str | bytes) -> str:
    """A host as compared: lower case, no brackets, zone or final dot, international names in ASCII."""
    text = host.decode("ascii", "replace") if isinstance(host, bytes) else str(host)
    text = text.strip().lower().removeprefix("[").removesuffix("]").partition("%")[0].rstrip(".")
    try:
        return text.encode("idna").decode("ascii")
    except UnicodeError:
        return text


def ip_of(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(normal(host))
    except ValueError:
        return None


def is_public(ip: IPAddress) -> bool:
    """A public internet address: not this box, the clinic's network, link-local, shared or reserved."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


@dataclass(frozen=True)
class Allowed:
    """DASHBOARD_WEBHOOK_HOSTS read: host names, and addresses or networks that are explicitly allowed."""

    names: frozenset[str]
    networks: tuple[Network, ...]

    @classmethod
    def of(cls, entries: Iterable[str]) -> Allowed:
        names, networks = set(), []
        for entry in entries:
            name = normal(entry)
            if not name:
                continue
            try:
                networks.append(ipaddress.ip_network(name, strict=False))
            except ValueError:
                names.add(name)
            else:
                if "/" not in name:
                    names.add(name)
        return cls(frozenset(names), tuple(networks))

    def has_address(self, ip: IPAddress) -> bool:
        mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
        return any(ip in net or (mapped is not None and mapped in net) for net in self.networks)

    def has_host(self, host: str) -> bool:
        ip = ip_of(host)
        return normal(host) in self.names or (ip is not None and self.has_address(ip))

    def reaches(self, ip: IPAddress) -> bool:
        return is_public(ip) or self.has_address(ip)


def hosts_of(plugin: Any) -> tuple[str, ...] | None:
    """Every host the Apprise ``plugin`` object will contact, or None when that cannot be told."""
    kind = type(plugin).__name__
    if kind in _FIXED:
        return _FIXED[kind]
    if kind == "NotifyEmail":
        found = getattr(plugin, "smtp_host", None)
    elif kind == "NotifyNtfy":
        found = NTFY_CLOUD if getattr(plugin, "mode", None) == "cloud" else getattr(plugin, "host", None)
    elif kind in _HOST_FROM_URL:
        found = getattr(plugin, "host", None)
    else:
        return None
    return (normal(found),) if isinstance(found, str) and normal(found) else None


@lru_cache(maxsize=512)
def reading(url: str) -> tuple[str, tuple[str, ...]] | None:
    """(Apprise's class, the hosts) of an alert address, or None when Apprise cannot read it or the hosts
    cannot be told. Parsing only: nothing is contacted."""
    import apprise

    plugin = apprise.Apprise.instantiate(url)
    hosts = hosts_of(plugin) if plugin is not None else None
    return None if hosts is None else (type(plugin).__name__, hosts)


def unlisted(kind: str, hosts: Iterable[str], allowed: Allowed) -> str | None:
    """The first host that is neither the service's own public server nor listed, or None."""
    own = public_hosts().get(kind, frozenset())
    return next((h for h in hosts if h not in own and not allowed.has_host(h)), None)


def resolve(host: str) -> list[IPAddress]:
    """The addresses ``host`` has now (empty when the name cannot be resolved)."""
    try:
        found = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    return [ipaddress.ip_address(str(info[4][0]).partition("%")[0]) for info in found]


def not_reachable(hosts: Iterable[str], allowed: Allowed) -> tuple[str, IPAddress] | None:
    """(host, address) of the first host resolving to an address that needs an explicit allow, or None.
    A name that cannot be resolved now passes here: it is checked again at each connection."""
    for host in hosts:
        for ip in resolve(host):
            if not allowed.reaches(ip):
                return host, ip
    return None


# --- holding a send to its hosts ---------------------------------------------------------------------
@dataclass
class Guard:
    hosts: frozenset[str]
    allowed: Allowed
    refused: str | None = field(default=None)


_local = threading.local()
_install_lock = threading.Lock()
_real_getaddrinfo = socket.getaddrinfo


def _guarded_getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
    guard: Guard | None = getattr(_local, "guard", None)
    if guard is None or host is None:
        return _real_getaddrinfo(host, port, *args, **kwargs)
    name = normal(host)
    if name not in guard.hosts:
        guard.refused = f"it tried to reach {name}, which the address does not name (a redirect or a proxy)"
        raise socket.gaierror(socket.EAI_NONAME, "refused by the dashboard's alert host rules")
    found = _real_getaddrinfo(host, port, *args, **kwargs)
    for info in found:
        ip = ipaddress.ip_address(str(info[4][0]).partition("%")[0])
        if not guard.allowed.reaches(ip):
            guard.refused = f"{name} is at {ip}, on this box or the clinic's own network, which is not allowed"
            raise socket.gaierror(socket.EAI_NONAME, "refused by the dashboard's alert host rules")
    return found


def _install() -> None:
    """Route name lookups through the guard (a plain pass-through in threads that are not sending)."""
    with _install_lock:
        if socket.getaddrinfo is not _guarded_getaddrinfo:
            socket.getaddrinfo = _guarded_getaddrinfo


@contextmanager
def guarded(guard: Guard | None) -> Iterator[Guard | None]:
    """While inside, every connection this thread opens must go to ``guard``'s hosts and addresses."""
    if guard is None:
        yield None
        return
    _install()
    _local.guard = guard
    try:
        yield guard
    finally:
        _local.guard = None
