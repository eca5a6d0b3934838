"""GraphiQL served by the router itself, with no CDN: the page, its CSP, and its static files.

The bundle in `static/` is built from `src/` (pinned `graphiql` and friends, esbuild) and
committed, so neither installs nor CI need npm: `make graphiql` rebuilds it. A browser's
`GET /graphql` (Accept: text/html, no `query` parameter) gets `graphiql_page()`; the page loads
`<base>/static/graphiql.js` and `.css` from `static_mount()` and talks GraphQL to `<base>` over
HTTP and graphql-transport-ws on the same origin.
"""

from __future__ import annotations

import hashlib
import html
import re
import secrets
from functools import cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

__all__ = [
    "ASSETS",
    "STATIC_DIR",
    "content_security_policy",
    "graphiql_page",
    "static_mount",
    "wants_graphiql",
]

STATIC_DIR = Path(__file__).resolve().parent / "static"
ASSETS = ("graphiql.js", "graphiql.css")

# host[:port] as a browser sends it in Host; anything else is left out of the CSP.
_HOST = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$")


def wants_graphiql(request: Request) -> bool:
    """A browser navigating to the endpoint: GET, Accept names text/html, no `query` param."""
    return (
        request.method == "GET"
        and "query" not in request.query_params
        and "text/html" in request.headers.get("accept", "").lower()
    )


@cache
def _asset_version(name: str) -> str:
    """A short content hash, so a new bundle is never served from a stale browser cache."""
    return hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]


def content_security_policy(host: str | None = None, nonce: str | None = None) -> str:
    """Everything same-origin. `data:` only for the fonts and images inlined in the CSS.

    'self' covers same-origin ws:/wss: in CSP Level 3 browsers; given the request's Host, the
    policy also names ws://host and wss://host for browsers that predate that rule. No
    'unsafe-inline': the one <style> element GraphiQL adds at run time (its dialogs' scroll
    lock) carries the page's `nonce`.
    """
    style = ["'self'"]
    if nonce and re.fullmatch(r"[A-Za-z0-9_-]+", nonce):
        style.append(f"'nonce-{nonce}'")
    connect = ["'self'"]
    if host and _HOST.fullmatch(host):
        connect += [f"ws://{host}", f"wss://{host}"]
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            f"style-src {' '.join(style)}",
            "img-src 'self' data:",
            "font-src 'self' data:",
            f"connect-src {' '.join(connect)}",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def graphiql_page(base_path: str = "/graphql", *, host: str | None = None) -> HTMLResponse:
    """The HTML shell: loads the bundle from `<base_path>/static`, GraphQL at `base_path`.

    Pass `host=request.url.netloc` to name the same-origin WebSocket URLs in the CSP too.
    Each call draws a fresh style nonce, so build the page per request.
    """
    nonce = secrets.token_urlsafe(18)
    base = base_path.rstrip("/") or ""
    endpoint = html.escape(base or "/", quote=True)
    js = html.escape(f"{base}/static/graphiql.js?v={_asset_version('graphiql.js')}", quote=True)
    css = html.escape(f"{base}/static/graphiql.css?v={_asset_version('graphiql.css')}", quote=True)
    body = f"""<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Reelgraph GraphiQL</title>
    <link rel="icon" href="data:,">
    <link rel="stylesheet" href="{css}">
    <script defer src="{js}" nonce="{nonce}"></script>
  </head>
  <body>
    <div id="graphiql" data-endpoint="{endpoint}">Loading GraphiQL…</div>
  </body>
</html>
"""
    return HTMLResponse(
        body,
        headers={
            "Content-Security-Policy": content_security_policy(host, nonce),
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache",
        },
    )


def static_mount(base_path: str = "/graphql") -> Mount:
    """`<base_path>/static/graphiql.{js,css}` (ETag/Last-Modified from StaticFiles)."""
    return Mount(
        f"{base_path.rstrip('/')}/static",
        app=StaticFiles(directory=STATIC_DIR),
        name="graphiql-static",
    )
