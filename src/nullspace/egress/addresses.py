"""Which resolved addresses the proxy may connect to.

Checked on the address the proxy is about to connect to, after its own resolution, so a name
that resolves to a public address once and a private one next time (DNS rebinding) is caught
on the connection that would have reached the private one.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Iterable

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

METADATA = ipaddress.ip_address("169.254.169.254")


def parse_networks(items: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(item, strict=False) for item in items)


def forbidden_reason(address: IPAddress, allow_private: tuple[Network, ...] = ()) -> str | None:
    """Why the proxy must not connect to `address`, or None if it may.

    Refused: every address that is not globally routable (private, loopback, link-local — cloud
    metadata at 169.254.169.254 —, CGNAT, multicast, reserved, documentation ranges) unless the
    operator listed its network in `allow_private`, and always the host's own addresses.
    """
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address == METADATA:
        return f"{address} is the cloud metadata address"
    if address.is_loopback or address.is_unspecified:
        return f"{address} is a loopback address"
    if address.is_link_local:
        return f"{address} is a link-local address"
    if address.is_multicast:
        return f"{address} is a multicast address"
    if is_host_address(address):
        return f"{address} is an address of the sandbox host"
    if not address.is_global and not any(address in net for net in allow_private):
        return f"{address} is a private or reserved address"
    return None


def is_host_address(address: IPAddress) -> bool:
    """Whether `address` is assigned to this host: binding to it works only if it is (EADDRNOTAVAIL
    otherwise). Asked at connect time, so addresses added after start are covered."""
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((str(address), 0))
        except OSError as exc:
            return exc.errno != errno.EADDRNOTAVAIL
    return True
