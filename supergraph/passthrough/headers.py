"""What crosses the router on a pass-through route: hop-by-hop headers stay behind both ways,
the forwarding headers are the router's own, and an upstream `Location` becomes public."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.types import Scope

from subgraphs.kernel.proxies import TrustedProxies
from supergraph.passthrough.routes import Upstream, origin_key

# RFC 9110 §7.6.1, plus the proxy ones clients still send.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"transfer-encoding",
        b"te",
        b"trailer",
        b"upgrade",
        b"proxy-authorization",
        b"proxy-authenticate",
        b"proxy-connection",
    }
)
# Set by the router from what it saw; a client's own values would be believed upstream.
# `expect` is answered by the router's server, not passed on.
_REQUEST_REPLACED = frozenset(
    {
        b"host",
        b"expect",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"forwarded",
        b"x-real-ip",
        b"x-request-id",
    }
)
# The router's server writes its own Date; CORS on these routes is the router's policy alone.
_RESPONSE_REPLACED = frozenset({b"date"})
_CORS_PREFIX = b"access-control-"
_REWRITTEN = frozenset({b"location", b"content-location"})
_HOST = re.compile(r"^[A-Za-z0-9.\-_~]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")


@dataclass(frozen=True)
class Forwarding:
    """How the client reached the router, as upstream is told it."""

    chain: tuple[str, ...]  # X-Forwarded-For, the client's own hop last
    proto: str
    host: str

    @property
    def public_origin(self) -> str:
        return f"{self.proto}://{self.host}"


def forwarding(scope: Scope, trusted_proxies: TrustedProxies) -> Forwarding:
    """A trusted proxy in front of the router vouches for the chain, scheme and host it
    reports; anyone else's claims are dropped and the router reports what it saw itself."""
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    client = scope.get("client")
    peer = client[0] if client else "unknown"
    trusted = peer in trusted_proxies
    chain: list[str] = []
    if trusted:
        for hop in _values(headers, b"x-forwarded-for"):
            chain.extend(h.strip() for h in hop.split(",") if h.strip())
    chain.append(peer)
    proto = str(scope.get("scheme", "http"))
    claimed_proto = _first(headers, b"x-forwarded-proto") if trusted else None
    if claimed_proto in ("http", "https"):
        proto = claimed_proto
    host = _first(headers, b"x-forwarded-host") if trusted else None
    if host is None or not _HOST.match(host):
        host = _first(headers, b"host")
    if host is None or not _HOST.match(host):
        server = scope.get("server") or ("localhost", None)
        host = server[0] if server[1] is None else f"{server[0]}:{server[1]}"
    return Forwarding(tuple(chain), proto, host)


def request_headers(
    headers: Iterable[tuple[bytes, bytes]], via: Forwarding, request_id: str
) -> list[tuple[str, str]]:
    """The client's end-to-end headers, then the forwarding headers and the request id."""
    headers = list(headers)
    dropped = HOP_BY_HOP | _REQUEST_REPLACED | _connection_tokens(headers)
    sent = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers if k not in dropped]
    sent += [
        ("x-forwarded-for", ", ".join(via.chain)),
        ("x-forwarded-proto", via.proto),
        ("x-forwarded-host", via.host),
        ("x-request-id", request_id),
    ]
    return sent


def response_headers(
    headers: Iterable[tuple[bytes, bytes]], upstream: Upstream, via: Forwarding
) -> list[tuple[bytes, bytes]]:
    """Upstream's end-to-end headers, with its own-origin `Location`s made public."""
    headers = list(headers)
    dropped = HOP_BY_HOP | _RESPONSE_REPLACED | _connection_tokens(headers)
    kept: list[tuple[bytes, bytes]] = []
    for name, value in headers:
        name = name.lower()
        if name in dropped or name.startswith(_CORS_PREFIX):
            continue
        if name in _REWRITTEN:
            value = public_location(value.decode("latin-1"), upstream, via).encode("latin-1")
        kept.append((name, value))
    return kept


def public_location(value: str, upstream: Upstream, via: Forwarding) -> str:
    """An absolute URL on the upstream's origin (under its base path), moved to the router's
    public origin; anything else, relative URLs included, is left alone."""
    try:
        parts = urlsplit(value)
        if not parts.scheme or not parts.netloc or origin_key(value) != upstream.origin_key:
            return value
    except ValueError:
        return value
    path = parts.path
    if upstream.base_path:
        if path != upstream.base_path and not path.startswith(upstream.base_path + "/"):
            return value
        path = path[len(upstream.base_path) :] or "/"
    query = f"?{parts.query}" if parts.query else ""
    fragment = f"#{parts.fragment}" if parts.fragment else ""
    return f"{via.public_origin}{path}{query}{fragment}"


def _values(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> list[str]:
    return [v.decode("latin-1") for k, v in headers if k.lower() == name]


def _first(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    values = _values(headers, name)
    if not values:
        return None
    # A proxy chain lists the client-facing value first.
    first = values[0].split(",")[0].strip()
    return first or None


def _connection_tokens(headers: Iterable[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """Headers the sender named in `Connection` are hop-by-hop too (RFC 9110 §7.6.1)."""
    tokens: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            tokens.update(t.strip().lower() for t in value.split(b",") if t.strip())
    return frozenset(tokens)
