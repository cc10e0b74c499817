"""Who a request came from, believing forwarded headers only from configured proxies.

One rule for every component: the peer's address is the client, unless the peer is a trusted
proxy; then the right-most ``X-Forwarded-For`` entry that is not itself a trusted proxy.
``X-Forwarded-Host`` / ``-Proto`` are likewise read only from a trusted peer."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def networks(specs: Iterable[str]) -> list[Network]:
    return [ipaddress.ip_network(s, strict=False) for s in specs]


def parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def is_trusted(peer: str | None, trusted: list[Network]) -> bool:
    addr = parse_ip(peer) if peer else None
    return addr is not None and any(addr in net for net in trusted)


def client_ip(peer: str | None, forwarded_for: str | None, trusted: list[Network]) -> str | None:
    """The client's address: the peer, unless the peer is a trusted proxy, in which case the
    right-most X-Forwarded-For entry that is not itself a trusted proxy."""
    if peer is None:
        return None
    if not forwarded_for or not is_trusted(peer, trusted):
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        hop_addr = parse_ip(hop)
        if hop_addr is None:
            return hop  # garbage from an untrusted hop: matches no allowed network
        if not any(hop_addr in net for net in trusted):
            return hop
    return hops[0] if hops else peer


def first_value(value: str | None) -> str:
    """The first entry of a comma-separated forwarded header (the client-side proxy's)."""
    return (value or "").split(",")[0].strip()
