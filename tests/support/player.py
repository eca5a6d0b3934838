"""A real player for tests: hls.js (pinned, from npm) in Debian's headless Chromium.

`play(master_url)` opens a page that plays the URL with hls.js and waits until the video's
`currentTime` passes a mark, recording the variants hls.js parsed and every error it raised.
The page is served from its own origin (`player_origin()`), so media served elsewhere needs
CORS, as it does for the web client; `serve_directory` serves a folder of HLS files and the
page from one origin for tests that have no server of their own.
"""

from __future__ import annotations

import functools
import http.server
import threading
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.federation.npm import ensure_installed

HLS_JS_VERSION = "1.7.4"
# Debian's Chromium, headless and quiet: it must never reach for the (closed) network itself.
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>player</title></head>
<body>
<video id="video" muted playsinline width="640"></video>
<script src="/hls.min.js"></script>
<script>
  const state = {errors: [], levels: null, currentTime: 0, ended: false, supported: Hls.isSupported()};
  window.__player = state;
  const src = new URLSearchParams(location.search).get("src");
  const video = document.getElementById("video");
  const hls = new Hls({enableWorker: true});
  hls.on(Hls.Events.MANIFEST_PARSED, (_event, data) => {
    state.levels = data.levels.map((l) => ({width: l.width, height: l.height, bitrate: l.bitrate,
      codecs: [l.videoCodec, l.audioCodec].filter(Boolean).join(","), frameRate: l.frameRate}));
    video.play().catch((e) => state.errors.push({type: "play", details: String(e), fatal: true}));
  });
  hls.on(Hls.Events.ERROR, (_event, data) => {
    state.errors.push({type: data.type, details: data.details, fatal: data.fatal});
  });
  video.addEventListener("timeupdate", () => { state.currentTime = video.currentTime; });
  video.addEventListener("ended", () => { state.ended = true; });
  hls.loadSource(src);
  hls.attachMedia(video);
</script>
</body></html>
"""


@dataclass
class Playback:
    current_time: float
    ended: bool
    levels: list[dict[str, Any]] | None
    errors: list[dict[str, Any]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    @property
    def fatal_errors(self) -> list[dict[str, Any]]:
        return [e for e in self.errors if e.get("fatal")]


@functools.cache
def hls_js() -> bytes:
    installed = ensure_installed("hlsjs", {"dependencies": {"hls.js": HLS_JS_VERSION}})
    return (installed / "node_modules" / "hls.js" / "dist" / "hls.min.js").read_bytes()


class _Handler(http.server.SimpleHTTPRequestHandler):
    """The player page and hls.js at fixed paths; anything else from `directory`, if any."""

    def __init__(self, *args: Any, directory: str | None = None, **kwargs: Any) -> None:
        self._has_directory = directory is not None
        super().__init__(*args, directory=directory or "/nonexistent", **kwargs)

    def do_GET(self) -> None:
        path = urllib.parse.urlsplit(self.path).path
        if path == "/player.html":
            self._send(PAGE.encode(), "text/html; charset=utf-8")
        elif path == "/hls.min.js":
            self._send(hls_js(), "text/javascript")
        elif self._has_directory:
            super().do_GET()
        else:
            self.send_error(404)

    def _send(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def guess_type(self, path: Any) -> str:
        name = str(path)
        if name.endswith(".m3u8"):
            return "application/vnd.apple.mpegurl"
        if name.endswith(".ts"):
            return "video/mp2t"
        return super().guess_type(path)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def _serve(directory: Path | None) -> Iterator[str]:
    hls_js()  # install before the clock of any caller starts
    handler = functools.partial(_Handler, directory=str(directory) if directory else None)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@contextmanager
def player_origin() -> Iterator[str]:
    """An origin serving only the player page; media comes from elsewhere (CORS applies)."""
    with _serve(None) as origin:
        yield origin


@contextmanager
def serve_directory(directory: Path) -> Iterator[str]:
    """The player page and the files under `directory`, from one origin."""
    with _serve(directory) as origin:
        yield origin


def play(origin: str, master_url: str, *, until: float = 2.0, timeout: float = 90.0) -> Playback:
    """Play `master_url` from the player page at `origin` until currentTime > `until`."""
    from playwright import sync_api

    page_url = f"{origin}/player.html?src={urllib.parse.quote(master_url, safe='')}"
    requests: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.on("request", lambda request: requests.append(request.url))
            page.goto(page_url)
            deadline = time.monotonic() + timeout
            state: dict[str, Any] = {}
            while time.monotonic() < deadline:
                state = page.evaluate("() => window.__player")
                fatal = [e for e in state["errors"] if e.get("fatal")]
                if state["currentTime"] > until or fatal or state["ended"]:
                    break
                time.sleep(0.25)
            return Playback(
                current_time=float(state.get("currentTime", 0.0)),
                ended=bool(state.get("ended")),
                levels=state.get("levels"),
                errors=list(state.get("errors", [])),
                requests=requests,
            )
        finally:
            browser.close()
