"""Pass-through route configuration: `PREFIX=TARGET` pairs (`REELGRAPH_ROUTER_ROUTES` or
`--route`), checked when the router starts, their targets resolved to upstream origins, and
which request paths a route will carry at all."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from supergraph.execute import SubgraphEndpoint

ROUTES_ENV = "REELGRAPH_ROUTER_ROUTES"
TIMEOUT_ENV = "REELGRAPH_ROUTER_ROUTE_TIMEOUT"
DEFAULT_TIMEOUT = 30.0
# Prefix segments are plain path words: nothing a client or upstream could read two ways.
_SEGMENT = re.compile(r"^[A-Za-z0-9._~-]+$")
_DEFAULT_PORTS = {"http": 80, "https": 443}
# Enough decoding passes to see through double and triple percent-encoding.
_DECODE_PASSES = 3


class RouteConfigError(ValueError):
    """The pass-through configuration cannot be served; the router refuses to start."""


@dataclass(frozen=True)
class Route:
    prefix: str
    # A subgraph name of the supergraph, or an absolute http(s) URL.
    target: str

    def matches(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self.prefix + "/")


@dataclass(frozen=True)
class Upstream:
    """Where one route's requests go: TARGET's origin and base path, plus the request path."""

    origin: str  # scheme://host[:port]
    base_path: str  # "" or "/base", no trailing slash
    label: str  # the subgraph name or the origin, for logs

    @property
    def origin_key(self) -> tuple[str, str, int]:
        return origin_key(self.origin)


def origin_key(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) with default ports filled in, to compare origins."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme, 0)


def configured_routes(environ: Mapping[str, str], cli_routes: Sequence[str] = ()) -> list[str]:
    """The `PREFIX=TARGET` entries: `--route` options when given, else the environment."""
    if cli_routes:
        return list(cli_routes)
    return [entry for entry in environ.get(ROUTES_ENV, "").split(",") if entry.strip()]


def route_timeout(environ: Mapping[str, str]) -> float:
    raw = environ.get(TIMEOUT_ENV, "")
    try:
        timeout = float(raw) if raw.strip() else DEFAULT_TIMEOUT
    except ValueError:
        raise RouteConfigError(f"{TIMEOUT_ENV} must be a number of seconds, not {raw!r}.") from None
    if not timeout > 0:
        raise RouteConfigError(f"{TIMEOUT_ENV} must be more than 0 seconds.")
    return timeout


def parse_routes(entries: Iterable[str], reserved: Iterable[str]) -> tuple[Route, ...]:
    """Checks every entry; `reserved` are the router's own paths, which no route may shadow."""
    routes: list[Route] = []
    reserved = tuple(reserved)
    for entry in entries:
        for raw in entry.split(","):
            if not raw.strip():
                continue
            prefix, sep, target = (part.strip() for part in raw.partition("="))
            if not sep or not target:
                raise RouteConfigError(f"Pass-through route {raw.strip()!r} is not PREFIX=TARGET.")
            prefix = _check_prefix(prefix, raw.strip())
            for path in reserved:
                if _overlaps(prefix, path):
                    raise RouteConfigError(
                        f"Pass-through route {raw.strip()!r} overlaps the router's own {path}."
                    )
            if any(route.prefix == prefix for route in routes):
                raise RouteConfigError(f"Pass-through prefix {prefix} is configured twice.")
            if "://" in target:
                _check_url(target, raw.strip())
            routes.append(Route(prefix, target))
    return tuple(routes)


def resolve_routes(
    routes: Iterable[Route], endpoints: Mapping[str, SubgraphEndpoint]
) -> dict[str, Upstream]:
    """Each route's upstream. A subgraph target uses the origin of the subgraph's URL as the
    router calls it (so `REELGRAPH_SUBGRAPH_<NAME>_URL` overrides apply)."""
    upstreams: dict[str, Upstream] = {}
    for route in routes:
        if "://" in route.target:
            origin, base_path = _split_url(route.target)
            upstreams[route.prefix] = Upstream(origin, base_path, origin)
            continue
        endpoint = endpoints.get(route.target)
        if endpoint is None:
            known = ", ".join(sorted(endpoints)) or "none"
            raise RouteConfigError(
                f"Pass-through route {route.prefix}={route.target}: the supergraph has no "
                f"subgraph {route.target!r} (subgraphs: {known})."
            )
        try:
            origin, _ = _split_url(_check_url(endpoint.url, f"subgraph {route.target!r}"))
        except RouteConfigError:
            raise RouteConfigError(
                f"Pass-through route {route.prefix}={route.target}: the subgraph's URL "
                f"{endpoint.url!r} is not an absolute http(s) URL."
            ) from None
        upstreams[route.prefix] = Upstream(origin, "", route.target)
    return upstreams


def match(routes: Iterable[Route], path: str) -> Route | None:
    """The route with the longest prefix covering `path`, if any."""
    best: Route | None = None
    for route in routes:
        if route.matches(path) and (best is None or len(route.prefix) > len(best.prefix)):
            best = route
    return best


def unsafe_path(raw_path: bytes) -> str | None:
    """Why a request path must not go upstream (dot segments, NUL, backslashes, in any
    percent-encoding), or None when it is fine."""
    layer = raw_path.decode("latin-1")
    for _ in range(_DECODE_PASSES + 1):
        if "\x00" in layer:
            return "The path contains a NUL byte."
        if "\\" in layer:
            return "The path contains a backslash."
        # `..;/` is a dot segment to servers that strip path parameters.
        if any(segment.split(";", 1)[0] in (".", "..") for segment in layer.split("/")):
            return "The path contains a '.' or '..' segment."
        decoded = unquote(layer, encoding="latin-1")
        if decoded == layer:
            return None
        layer = decoded
    return "The path is percent-encoded too many times."


def _check_prefix(prefix: str, entry: str) -> str:
    if prefix.endswith("/") and prefix != "/":
        prefix = prefix.rstrip("/")
    segments = prefix.split("/")
    if (
        not prefix.startswith("/")
        or len(segments) < 2
        or not all(_SEGMENT.match(s) and s not in (".", "..") for s in segments[1:])
    ):
        raise RouteConfigError(
            f"Pass-through route {entry!r}: the prefix must be an absolute path of plain "
            "segments (letters, digits, '-', '_', '.', '~'), such as /media, and not '/'."
        )
    return prefix


def _check_url(url: str, context: str) -> str:
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a malformed port
    except ValueError:
        raise RouteConfigError(f"Pass-through route {context!r}: {url!r} is not a URL.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RouteConfigError(
            f"Pass-through route {context!r}: the target must be a subgraph name or an "
            "absolute http(s) URL."
        )
    if parts.username is not None or parts.password is not None:
        raise RouteConfigError(
            f"Pass-through route {context!r}: credentials in the target URL are not supported."
        )
    if parts.query or parts.fragment:
        raise RouteConfigError(
            f"Pass-through route {context!r}: the target URL must not have a query or fragment."
        )
    return url


def _split_url(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}", parts.path.rstrip("/")


def _overlaps(a: str, b: str) -> bool:
    return a == b or a.startswith(b + "/") or b.startswith(a + "/")
