"""A real player plays a priced video past its first playback token's expiry: hls.js in
headless Chromium loads `PlaybackSession.hlsUrl` through our router, while the test
heartbeats as a client would and hands the player each newer token, which hls.js puts into
every media request (`xhrSetup`), as docs/video.md tells clients to."""

from __future__ import annotations

import asyncio
import functools
import http.server
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from jose import jwt

from tests.paid.conftest import CLIP_SECONDS, DEADLINE, Paid
from tests.support.player import CHROMIUM, CHROMIUM_ARGS, hls_js

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="needs Debian's Chromium: apt-get install -y chromium"
)

START = "mutation S($v: ID!) { startPlayback(videoId: $v) { id playbackToken expiresAt hlsUrl } }"
HEARTBEAT = (
    "mutation H($s: ID!, $p: Float!) { playbackHeartbeat(sessionId: $s, positionSeconds: $p) "
    "{ playbackToken } }"
)
# What a web client does: keep the newest token, and put it into every media request.
PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>paid player</title></head>
<body>
<video id="video" muted playsinline width="320"></video>
<script src="/hls.min.js"></script>
<script>
  const params = new URLSearchParams(location.search);
  const state = {errors: [], currentTime: 0, ended: false};
  window.__player = state;
  window.__token = params.get("token");
  const TOKEN_SEGMENT = /(\\/media\\/[^/]+\\/)[^/]+\\//;
  const video = document.getElementById("video");
  const hls = new Hls({
    // A small buffer, so segments are fetched as playback goes (past the first token's life).
    maxBufferLength: 2,
    maxMaxBufferLength: 3,
    xhrSetup: (xhr, url) => {
      xhr.open("GET", url.replace(TOKEN_SEGMENT, `$1${window.__token}/`), true);
    },
  });
  hls.on(Hls.Events.MANIFEST_PARSED, () => {
    video.play().catch((e) => state.errors.push({type: "play", details: String(e), fatal: true}));
  });
  hls.on(Hls.Events.ERROR, (_event, data) => {
    state.errors.push({type: data.type, details: data.details, fatal: data.fatal});
  });
  video.addEventListener("timeupdate", () => { state.currentTime = video.currentTime; });
  video.addEventListener("ended", () => { state.ended = true; });
  hls.loadSource(params.get("src"));
  hls.attachMedia(video);
</script>
</body></html>
"""


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if path == "/player.html":
            body, kind = PAGE.encode(), "text/html; charset=utf-8"
        elif path == "/hls.min.js":
            body, kind = hls_js(), "text/javascript"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def _player_origin(origin: str) -> Iterator[str]:
    """The page at `origin` (the one the router allows by CORS)."""
    hls_js()  # installed before any clock starts
    port = int(urllib.parse.urlsplit(origin).port or 0)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), functools.partial(_Page))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield origin
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


async def test_hls_js_plays_a_priced_video_past_its_first_token_with_heartbeats(
    paid: Paid,
) -> None:
    from playwright.async_api import async_playwright

    owner, viewer = await paid.register(), await paid.register("VIEWER")
    video_id = await paid.priced_video(owner, 1)
    await paid.deposit(viewer, 1_000)
    responses: list[tuple[float, str, int]] = []

    with _player_origin(paid.paid.player_origin) as origin:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                page = await browser.new_page()
                # The session starts once the browser is up, as a viewer presses play: until
                # the player's position moves, heartbeats do not extend the first token.
                body = await paid.router.execute(START, {"v": video_id}, token=viewer.token)
                assert "errors" not in body, body
                session = body["data"]["startPlayback"]
                first_token = session["playbackToken"]
                first_expiry = int(jwt.get_unverified_claims(first_token)["exp"])
                query = urllib.parse.urlencode({"src": session["hlsUrl"], "token": first_token})
                page.on(
                    "response",
                    lambda r: (
                        responses.append((time.time(), r.url, r.status))
                        if "/media/" in r.url
                        else None
                    ),
                )
                await page.goto(f"{origin}/player.html?{query}")
                state: dict[str, Any] = {}
                deadline = time.monotonic() + DEADLINE + CLIP_SECONDS
                # Play until well past the first token's expiry, heartbeating every second.
                while time.monotonic() < deadline:
                    state = await page.evaluate("() => window.__player")
                    if any(e["fatal"] for e in state["errors"]) or state["ended"]:
                        break
                    if state["currentTime"] > CLIP_SECONDS - 2 and time.time() > first_expiry:
                        break
                    beat = await paid.router.execute(
                        HEARTBEAT,
                        {"s": session["id"], "p": state["currentTime"]},
                        token=viewer.token,
                    )
                    assert "errors" not in beat, beat
                    token = beat["data"]["playbackHeartbeat"]["playbackToken"]
                    await page.evaluate("(token) => { window.__token = token; }", token)
                    await asyncio.sleep(1)
            finally:
                await browser.close()

    assert [e for e in state["errors"] if e["fatal"]] == [], state["errors"]
    assert state["currentTime"] > CLIP_SECONDS - 2, state
    assert all(status in (200, 206) for _, _, status in responses), responses
    late = [url for moment, url, _ in responses if moment > first_expiry and url.endswith(".ts")]
    assert late, "no segment was fetched after the first token expired"
    assert all(f"/{first_token}/" not in url for url in late)
