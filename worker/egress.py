"""Where deliveries may go: a guard against server-side request forgery (SSRF).

A routes file, or a compromised configuration source, could point a target at the cloud metadata
service (169.254.169.254), at Redis on localhost or at an intranet host, and the worker would POST signed
bodies there. So before each request the target's host is resolved and every address it resolves to is
checked: private, loopback, link-local, multicast, reserved and unspecified addresses are refused unless
APOLOGY_ALLOW_PRIVATE_TARGETS is on or APOLOGY_TARGET_ALLOWLIST names the host or its network. A
non-empty allow-list also limits every target, public or not, to what it names.

A refusal is a permanent DeliveryError (the delivery is dead-lettered with the reason); a host that does
not resolve is a transient one (retried). The check runs before connecting, so a DNS answer that changes
between the check and the connection (rebinding) is not covered; RELIABILITY.md says so.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from worker.errors import ConfigError, DeliveryError

Resolve = Callable[[str, int], list[str]]
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
ALLOW_PRIVATE_ENV = "APOLOGY_ALLOW_PRIVATE_TARGETS"
ALLOWLIST_ENV = "APOLOGY_TARGET_ALLOWLIST"


def system_resolve(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for host (an IP literal resolves to itself)."""
    return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})


def internal(ip: Address) -> bool:
    """Not a public unicast address: nothing a webhook receiver on the internet would live at."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    # is_global is False for private, shared (100.64/10), documentation and other special ranges too.
    return (not ip.is_global or ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
            or ip.is_reserved or ip.is_unspecified)


@dataclass(frozen=True)
class Egress:
    """The outbound policy; `check(url)` raises DeliveryError for a URL a delivery must not go to."""

    allow_private: bool = False
    hosts: frozenset[str] = frozenset()  # exact names, or "*.example.com" for any subdomain
    networks: tuple[Network, ...] = ()
    resolve: Resolve = field(default=system_resolve, compare=False)

    @classmethod
    def from_settings(cls, allow_private: bool, allowlist: str | None, resolve: Resolve = system_resolve
                      ) -> Egress:
        hosts, networks = parse_allowlist(allowlist or "")
        return cls(allow_private, hosts, networks, resolve)

    @property
    def limited(self) -> bool:
        return bool(self.hosts or self.networks)

    def check(self, url: str) -> None:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".").lower()
        if parts.scheme not in ("http", "https") or not host:
            raise DeliveryError(f"refusing to send to {url!r}: not an http(s) URL with a host", permanent=True)
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise DeliveryError(f"refusing to send to {host}: the port is not a number", permanent=True) from None
        named = self._names(host)
        try:
            addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in self.resolve(host, port)]
        except (OSError, UnicodeError) as exc:
            raise DeliveryError(f"cannot resolve {host}: {exc}") from None
        except ValueError as exc:
            raise DeliveryError(f"{host} resolved to something that is not an address: {exc}") from None
        if not addresses:
            raise DeliveryError(f"cannot resolve {host}: no addresses")
        for ip in addresses:
            listed = named or any(ip in net for net in self.networks if net.version == ip.version)
            if self.limited and not listed:
                raise DeliveryError(f"refusing to send to {host} ({ip}): not on {ALLOWLIST_ENV}", permanent=True)
            if internal(ip) and not (self.allow_private or listed):
                raise DeliveryError(
                    f"refusing to send to {host}: it resolves to {ip}, a private, loopback or link-local "
                    f"address; set {ALLOW_PRIVATE_ENV}=true or add it to {ALLOWLIST_ENV} if that is intended",
                    permanent=True)

    def _names(self, host: str) -> bool:
        return host in self.hosts or any(
            pattern.startswith("*.") and host.endswith(pattern[1:]) for pattern in self.hosts)


def parse_allowlist(text: str | Iterable[str]) -> tuple[frozenset[str], tuple[Network, ...]]:
    """Comma-separated host names (`hooks.example.com`, `*.example.com`), addresses and networks."""
    entries = [e.strip() for e in (text.split(",") if isinstance(text, str) else text)]
    hosts: set[str] = set()
    networks: list[Network] = []
    for entry in filter(None, entries):
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
            continue
        except ValueError:
            pass
        name = entry.rstrip(".").lower()
        bare = name.removeprefix("*.")
        if not bare or any(not part or not all(c.isalnum() or c in "-_" for c in part) for part in bare.split(".")):
            raise ConfigError(f"{ALLOWLIST_ENV}: {entry!r} is neither a host name, *.suffix, address nor network")
        hosts.add(name)
    return frozenset(hosts), tuple(networks)
