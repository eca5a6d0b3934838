"""GraphiQL served offline: the committed bundle, the page and its CSP, and a real headless
Chromium that runs a query and a subscription through the router over the test bed while never
asking any other origin for anything.

Until `supergraph/server.py` serves GraphiQL itself, the browser test puts a small Starlette app
in front of the router process: it serves `graphiql_page()` and `static_mount()` as the router
will, and proxies `/graphql` (HTTP and graphql-transport-ws) to the router. Once the router
answers a browser's `GET /graphql` with the page, the test drives the router directly.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from supergraph.graphiql import (
    ASSETS,
    STATIC_DIR,
    content_security_policy,
    graphiql_page,
    static_mount,
    wants_graphiql,
)
from tests.support.player import CHROMIUM, CHROMIUM_ARGS

SCREENSHOT = Path("/tmp/graphiql.png")

# URLs that occur in the bundle as text (XML namespaces, error-message and doc links, the
# GitHub logo link), never as something the page loads. A new host here means a new
# dependency put a URL in the bundle: look at it before adding it.
KNOWN_TEXT_URL_HOSTS = {
    "www.w3.org",
    "react.dev",
    "yarnpkg.com",
    "github.com",
    "en.wikipedia.org",
    "commonmark.org",
    "codemirror.net",
}
CDN_HINT = re.compile(
    r"cdn|unpkg|jsdelivr|fonts\.googleapis|fonts\.gstatic|esm\.sh|skypack|cloudflare", re.I
)
URL = re.compile(r"""(?:https?|wss?)://([^/\s"'`)\\$:]*)""")


# -- the committed bundle ---------------------------------------------------------------------


def test_assets_are_committed_and_non_trivial() -> None:
    sizes = {name: (STATIC_DIR / name).stat().st_size for name in ASSETS}
    assert sizes["graphiql.js"] > 500_000, sizes
    assert sizes["graphiql.css"] > 20_000, sizes
    js = (STATIC_DIR / "graphiql.js").read_text()
    assert "graphql-transport-ws" in js  # graphql-ws is bundled, not loaded later
    assert "graphiql-container" in js
    assert (STATIC_DIR / "graphiql.css").read_text().count(".graphiql-container") > 5


def test_assets_fetch_nothing_from_another_origin() -> None:
    js = (STATIC_DIR / "graphiql.js").read_text()
    css = (STATIC_DIR / "graphiql.css").read_text()
    hosts = {m.group(1).lower() for m in URL.finditer(js + css)} - {""}
    assert not {h for h in hosts if CDN_HINT.search(h)}, hosts
    assert hosts <= KNOWN_TEXT_URL_HOSTS, hosts - KNOWN_TEXT_URL_HOSTS
    # The stylesheet pulls in nothing: no @import, every url() is an inlined data: URI.
    assert "@import" not in css
    refs = re.findall(r"url\(\s*['\"]?([^'\")]*)", css)
    assert refs and all(ref.startswith("data:") for ref in refs), {
        r[:40] for r in refs if not r.startswith("data:")
    }
    # No dynamic loading of scripts or workers from URLs.
    assert "importScripts(" not in js
    assert not re.search(r"""import\(\s*["'`]https?:""", js)


def test_lockfile_pins_what_the_bundle_was_built_from() -> None:
    import json

    src = STATIC_DIR.parent / "src"
    package = json.loads((src / "package.json").read_text())
    lock = json.loads((src / "package-lock.json").read_text())
    for section in ("dependencies", "devDependencies"):
        for name, version in package[section].items():
            assert re.fullmatch(r"\d+\.\d+\.\d+", version), (name, version)
            assert lock["packages"][f"node_modules/{name}"]["version"] == version, name


# -- the Python pieces ------------------------------------------------------------------------


def _request(method: str, path: str, accept: str) -> Request:
    path, _, query = path.partition("?")
    scope: dict[str, Any] = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query.encode(),
        "headers": [(b"accept", accept.encode())],
    }
    return Request(scope)


def test_wants_graphiql() -> None:
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    assert wants_graphiql(_request("GET", "/graphql", browser))
    assert not wants_graphiql(_request("GET", "/graphql?query={ping}", browser))
    assert not wants_graphiql(_request("POST", "/graphql", browser))
    assert not wants_graphiql(_request("GET", "/graphql", "application/json"))
    assert not wants_graphiql(_request("GET", "/graphql", "*/*"))


async def test_page_and_static_files() -> None:
    def page(request: Request) -> Response:
        return graphiql_page(host=request.url.netloc)

    app = Starlette(routes=[Route("/graphql", page), static_mount()])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:4000") as client:
        response = await client.get("/graphql", headers={"accept": "text/html"})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/html")
        csp = response.headers["content-security-policy"]
        (nonce,) = re.findall(r'<script defer src="[^"]+" nonce="([\w-]+)">', response.text)
        assert csp == content_security_policy("127.0.0.1:4000", nonce)
        directives = dict(d.split(" ", 1) for d in csp.split("; "))
        assert directives["default-src"] == "'self'"
        assert directives["script-src"] == "'self'"
        assert directives["style-src"] == f"'self' 'nonce-{nonce}'"
        assert directives["connect-src"] == "'self' ws://127.0.0.1:4000 wss://127.0.0.1:4000"
        assert "unsafe" not in csp
        assert "<script>" not in response.text and "<style" not in response.text
        assert "style=" not in response.text
        assert 'data-endpoint="/graphql"' in response.text
        again = await client.get("/graphql", headers={"accept": "text/html"})
        assert nonce not in again.text  # a fresh nonce per page
        for name in ASSETS:
            (src,) = re.findall(rf'"(/graphql/static/{re.escape(name)}\?v=\w+)"', response.text)
            asset = await client.get(src)
            assert asset.status_code == 200
            assert asset.content == (STATIC_DIR / name).read_bytes()
        assert (await client.get("/graphql/static/../__init__.py")).status_code == 404
    # A forged Host or nonce cannot add directives.
    assert "evil" not in content_security_policy("x; script-src evil", "n; script-src evil")


# -- a real browser ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def graphiql_origin(testbed_router: str) -> Iterator[str]:
    page = httpx.get(testbed_router, headers={"accept": "text/html"}, timeout=10)
    assert page.headers.get("content-type", "").startswith("text/html"), page.text[:200]
    yield testbed_router.removesuffix("/graphql")  # the router serves GraphiQL itself


def _editor_text(page: Any, selector: str) -> str:
    text: str = page.eval_on_selector(f"{selector} .CodeMirror", "e => e.CodeMirror.getValue()")
    return text


def _run(page: Any, operation: str) -> None:
    editor = page.locator(".graphiql-query-editor .CodeMirror")
    editor.click()
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.type(operation)
    page.keyboard.press("Escape")  # close any autocomplete hint
    assert _editor_text(page, ".graphiql-query-editor") == operation
    page.locator("button.graphiql-execute-button").click()


@pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"),  # CI installs it: fail there
    reason="needs Debian's Chromium: apt-get install -y chromium",
)
def test_graphiql_in_headless_chromium(graphiql_origin: str) -> None:
    from playwright import sync_api as playwright_sync

    origin = urlsplit(graphiql_origin)
    requests: list[str] = []
    sockets: list[str] = []
    frames: list[str] = []
    errors: list[str] = []

    with playwright_sync.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.on("request", lambda request: requests.append(request.url))
            page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
            page.on(
                "console",
                lambda msg: errors.append(f"console: {msg.text}") if msg.type == "error" else None,
            )

            def on_websocket(ws: Any) -> None:
                sockets.append(ws.url)
                ws.on("framereceived", lambda payload: frames.append(str(payload)))

            page.on("websocket", on_websocket)
            page.add_init_script(
                "window.__csp = [];"
                "document.addEventListener('securitypolicyviolation', e =>"
                " window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
            )

            response = page.goto(f"{graphiql_origin}/graphql", wait_until="load")
            assert response is not None and response.status == 200
            assert "default-src 'self'" in response.headers["content-security-policy"]
            page.wait_for_selector(".graphiql-query-editor .CodeMirror", timeout=15_000)

            # The schema arrived by introspection: the docs list the three root types.
            page.get_by_role("button", name="Show Documentation Explorer").click()
            docs = page.locator(".graphiql-doc-explorer")
            docs.get_by_text("Subscription", exact=True).wait_for(timeout=10_000)
            page.get_by_role("button", name="Hide Documentation Explorer").click()

            _run(page, "{ ping books(first: 1) { title } }")
            result = page.locator(".graphiql-response .CodeMirror")
            result.filter(has_text='"pong"').wait_for(timeout=10_000)
            body = _editor_text(page, ".graphiql-response")
            assert '"ping": "pong"' in body and '"title"' in body, body

            _run(page, "subscription { reviewAdded(count: 2) { id } }")
            result.filter(has_text='"reviewAdded"').wait_for(timeout=10_000)
            deadline = time.monotonic() + 10
            while sum('"type":"complete"' in f for f in frames) < 1:
                assert time.monotonic() < deadline, frames
                page.wait_for_timeout(50)
            nexts = [f for f in frames if '"type":"next"' in f]
            assert len(nexts) == 2 and all('"reviewAdded"' in f for f in nexts), frames
            assert '"id"' in _editor_text(page, ".graphiql-response")

            page.screenshot(path=str(SCREENSHOT), full_page=True)

            # Dialogs add a <style> element at run time: the CSP nonce lets it in.
            page.get_by_role("button", name="Open settings dialog").click()
            page.get_by_role("dialog").get_by_text("Persist headers").wait_for(timeout=5_000)
            page.keyboard.press("Escape")
            violations = page.evaluate("window.__csp")
        finally:
            browser.close()

    assert violations == [], violations
    assert errors == [], errors
    assert sockets == [f"ws://{origin.netloc}/graphql"], sockets
    foreign = [
        url
        for url in requests
        if not url.startswith("data:") and urlsplit(url).netloc != origin.netloc
    ]
    assert requests and not foreign, foreign
    # The page, its two assets, and GraphQL over HTTP (introspection + the query).
    paths = {urlsplit(url).path for url in requests if not url.startswith("data:")}
    assert paths == {"/graphql", "/graphql/static/graphiql.js", "/graphql/static/graphiql.css"}
