"""Who may tell us who the client is: `REELGRAPH_TRUSTED_PROXIES` (addresses and CIDR ranges)
and the client address read through them, for the subgraphs and the router alike."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from starlette.requests import HTTPConnection

DEFAULT_TRUSTED_PROXIES = "127.0.0.1,::1"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class InvalidTrustedProxies(ValueError):
    """`REELGRAPH_TRUSTED_PROXIES` names something that is not an address or a CIDR range; a
    process refuses to start rather than trust the wrong peers."""


@dataclass(frozen=True)
class TrustedProxies:
    """The peers whose `X-Forwarded-For` is believed: single addresses and whole ranges."""

    networks: tuple[IPNetwork, ...] = ()

    def __contains__(self, address: object) -> bool:
        """Whether `address` (a peer or a hop, as text) is one of ours. Anything that is not
        an IP address, such as `unknown` or a forged hop, is not."""
        if not isinstance(address, str) or not self.networks:
            return False
        try:
            ip: IPAddress = ipaddress.ip_address(address.strip())
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            # A dual-stack socket reports an IPv4 peer as ::ffff:a.b.c.d.
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.networks)


def parse_trusted_proxies(text: str) -> TrustedProxies:
    """Comma-separated addresses (`127.0.0.1`, `::1`) and CIDR ranges (`10.0.0.0/8`,
    `fd00::/8`); blank entries are skipped, so an empty setting trusts nobody. Raises
    `InvalidTrustedProxies` naming the first bad entry."""
    networks: list[IPNetwork] = []
    for raw in text.split(","):
        entry = raw.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=True))
        except ValueError as error:
            raise InvalidTrustedProxies(
                f"REELGRAPH_TRUSTED_PROXIES: {_why(entry, error)}"
            ) from None
    return TrustedProxies(tuple(networks))


def _why(entry: str, error: ValueError) -> str:
    if "has host bits set" in str(error):
        # `10.1.2.3/8` is either a typo for the range or for the address: say which we'd take.
        network = ipaddress.ip_network(entry, strict=False)
        return f"{entry!r} has bits set past its prefix length; the range is {network}"
    address, slash, prefix = entry.partition("/")
    if slash:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            pass
        else:
            return f"{entry!r} has an invalid prefix length {prefix!r}"
    return (
        f"{entry!r} is neither an IP address nor a CIDR range (e.g. 10.0.0.0/8); "
        "host names are not resolved"
    )


def client_ip(connection: HTTPConnection, trusted_proxies: TrustedProxies) -> str:
    """The caller's address: the peer, or the nearest untrusted hop a trusted proxy reported."""
    peer = connection.client.host if connection.client else "unknown"
    if peer not in trusted_proxies:
        return peer
    # Every header line: a proxy may add its own line instead of appending to the client's.
    forwarded = ",".join(connection.headers.getlist("x-forwarded-for"))
    if not forwarded:
        return peer
    hops = [hop.strip() for hop in forwarded.split(",") if hop.strip()]
    for hop in reversed(hops):
        if hop not in trusted_proxies:
            return hop
    return hops[0] if hops else peer
