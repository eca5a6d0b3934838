"""Playback media at `/media/<videoId>/<token>/<path>`: HLS playlists, segments, poster and
storyboard, streamed from storage (a local directory or a private S3 bucket) with ranges.

The token is a path segment, so relative URIs inside playlists and the WebVTT index keep it.
`public` opens PUBLIC and UNLISTED READY videos (checked against the current visibility on
every request); `<expiresUnix>[.<claim>…].<signature>` is an HMAC-SHA256 over the video id, the
expiry and the claims; a playback token (billing's ES256 JWT) is checked against billing's
published keys. Who may watch is decided by a chain of `MediaGate`s (`paid.py` adds the one for
priced videos) without reworking the route.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import math
import os
import re
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse

from subgraphs.kernel.playback import InvalidPlaybackToken, PlaybackTokenVerifier
from subgraphs.kernel.settings import Settings
from subgraphs.kernel.storage import InvalidKey, ObjectNotFound, Storage, guess_content_type
from subgraphs.kernel.storage.keys import validate_key

PUBLIC_TOKEN = "public"  # noqa: S105 - a path segment, not a secret
# Signed expiries are rounded up to this, so a player's URLs stay the same for a while and
# caches can share them.
EXPIRY_GRANULARITY = 300
MIN_KEY_BYTES = 32
KEY_FILE = "media-signing.key"
_CLAIM = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_EXPIRY = re.compile(r"[0-9]{1,12}")
MAX_CLAIMS = 2

# What the route serves: the worker's outputs, nothing else under the prefix (media.json is
# internal bookkeeping).
SERVED_EXTENSIONS = frozenset({".m3u8", ".ts", ".m4s", ".mp4", ".aac", ".jpg", ".webp", ".vtt"})
_MUTABLE_EXTENSIONS = frozenset({".m3u8", ".vtt"})
PUBLIC_MAX_AGE = 300
PLAYLIST_MAX_AGE = 60


# --- signing --------------------------------------------------------------------------------


class TokenRejected(Exception):
    """The token is malformed, forged or expired (HTTP 403)."""


@dataclass(frozen=True)
class MediaGrant:
    """What a verified token grants: `public`; a signature valid until `expires_at`, with any
    claims minted into it; or a billing playback session's token (`session_id`, `viewer_id`)
    valid until `expires_at`."""

    kind: Literal["public", "signed", "playback"]
    expires_at: int | None = None
    claims: tuple[str, ...] = ()
    session_id: str | None = None
    viewer_id: str | None = None


class MediaSigner:
    """Mints and checks the expiring tokens of media URLs."""

    def __init__(self, key: bytes, *, ttl: int) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"a media signing key needs at least {MIN_KEY_BYTES} bytes")
        self._key = key
        self.ttl = ttl

    def _signature(self, video_id: str, expires: int, claims: Sequence[str]) -> str:
        message = "\n".join([video_id, str(expires), *claims]).encode()
        digest = hmac.new(self._key, message, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(digest).decode().rstrip("=")

    def sign(self, video_id: str, *, claims: Sequence[str] = (), now: float | None = None) -> str:
        for claim in claims:
            if not _CLAIM.fullmatch(claim):
                raise ValueError(f"invalid token claim {claim!r}")
        moment = time.time() if now is None else now
        expires = math.ceil((moment + self.ttl) / EXPIRY_GRANULARITY) * EXPIRY_GRANULARITY
        return ".".join([str(expires), *claims, self._signature(video_id, expires, claims)])

    def verify(self, video_id: str, token: str, *, now: float | None = None) -> MediaGrant:
        if token == PUBLIC_TOKEN:
            return MediaGrant("public")
        parts = token.split(".")
        # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
        if not 2 <= len(parts) <= 2 + MAX_CLAIMS or not _EXPIRY.fullmatch(parts[0]):
            raise TokenRejected("malformed media token")
        expires, claims, signature = int(parts[0]), tuple(parts[1:-1]), parts[-1]
        if not all(_CLAIM.fullmatch(claim) for claim in claims):
            raise TokenRejected("malformed media token")
        expected = self._signature(video_id, expires, claims)
        if not hmac.compare_digest(expected.encode(), signature.encode()):
            raise TokenRejected("media token signature is invalid")
        if expires <= (time.time() if now is None else now):
            raise TokenRejected("media token has expired")
        return MediaGrant("signed", expires_at=expires, claims=claims)


def load_signing_key(settings: Settings) -> bytes:
    """REELGRAPH_MEDIA_SIGNING_KEY, else a random key kept in DATA_DIR/video (created once,
    atomically, mode 0600), so replicas sharing the data dir sign alike."""
    if settings.media_signing_key:
        return settings.media_signing_key.encode()
    path = settings.data_dir.resolve() / "video" / KEY_FILE
    with contextlib.suppress(FileNotFoundError):
        return _read_key(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{KEY_FILE}.{uuid.uuid4().hex}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, base64.b64encode(secrets.token_bytes(MIN_KEY_BYTES)) + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        # link() never replaces: of replicas racing here, the first key written wins.
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    finally:
        tmp.unlink()
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    try:
        key = base64.b64decode(path.read_bytes().strip(), validate=True)
    except binascii.Error:
        raise ValueError(f"{path} does not hold a base64 media signing key") from None
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"{path} holds a media signing key shorter than {MIN_KEY_BYTES} bytes")
    return key


# --- URLs the API hands out -------------------------------------------------------------------


def media_token(signer: MediaSigner, video_id: str, visibility: str) -> str:
    """The token a viewer allowed to see the video gets: `public` unless it is PRIVATE."""
    return PUBLIC_TOKEN if visibility in ("PUBLIC", "UNLISTED") else signer.sign(video_id)


def media_url(public_url: str, video_id: str, token: str, path: str) -> str:
    return f"{public_url}/media/{video_id}/{token}/{path}"


def is_playback_token(token: str) -> bool:
    """A JWT in compact form (its header is base64url JSON, `eyJ…`), not `public` or a signed
    `<expires>….<signature>` token, which starts with digits."""
    return token.startswith("eyJ") and token.count(".") == 2


_SIGNED_SEGMENT = re.compile(r"^(/media/[^/]+/)(?!public/)[^/]+")


def redact_token(path: str) -> str:
    """A request path fit for logs: a signed token opens private media until it expires."""
    return _SIGNED_SEGMENT.sub(r"\1[token]", path)


# --- who may watch ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PlayableVideo:
    """What the media route knows about a video: enough to decide, nothing to show."""

    id: str
    owner_id: str
    visibility: str
    status: str
    # What billing last announced (0: free), and the poster, which stays open as a preview.
    price_per_minute: int = 0
    poster: str | None = None


class MediaDenied(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class MediaGate(Protocol):
    """One rule a request for a video's media must pass; raises `MediaDenied` if it does not."""

    async def check(self, video: PlayableVideo, grant: MediaGrant, request: Request) -> None: ...


class VisibilityGate:
    """READY videos only; `public` opens PUBLIC and UNLISTED ones, PRIVATE ones need a signed
    token (or a playback token of the owner's own session). A video the token does not open
    answers like a missing one."""

    async def check(self, video: PlayableVideo, grant: MediaGrant, request: Request) -> None:
        if video.status != "READY":
            raise MediaDenied(404, "not found")
        if grant.kind == "signed" or video.visibility in ("PUBLIC", "UNLISTED"):
            return
        # Billing's view of visibility can lag video's: a session opened just before the video
        # went private must not open it, unless it is the owner's.
        if grant.kind == "playback" and grant.viewer_id == video.owner_id:
            return
        raise MediaDenied(404, "not found")


VideoLookup = Callable[[str], Awaitable[PlayableVideo | None]]


# --- ranges ----------------------------------------------------------------------------------


# `bytes=first-last` with optional whitespace around the parts; one range only.
_BYTE_RANGE = re.compile(
    r"[ \t]*bytes[ \t]*=[ \t]*([0-9]*)[ \t]*-[ \t]*([0-9]*)[ \t]*", re.I | re.A
)
# Beyond any object's size, and int() of it stays cheap however many digits were sent.
_HUGE_POSITION = 10**18


class Unsatisfiable(Exception):
    """A Range header none of whose ranges overlaps the object (HTTP 416)."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The single byte range `[start, end)` a Range header asks for, None for the whole object.

    Malformed headers and multi-range requests are ignored (RFC 9110 allows serving the whole
    representation); a well-formed range that misses the object raises `Unsatisfiable`.
    """
    if not header:
        return None
    # ASCII digits only (headers arrive as Latin-1, where "\xb2" is "²" and isdigit() is true).
    match = _BYTE_RANGE.fullmatch(header)
    if match is None:
        return None
    first, last = match.group(1), match.group(2)
    if not first:
        if not last:
            return None
        suffix = _position(last)
        if suffix == 0 or size == 0:
            raise Unsatisfiable
        return max(0, size - suffix), size
    start = _position(first)
    if last and _position(last) < start:
        return None
    if start >= size:
        raise Unsatisfiable
    end = size if not last else min(_position(last) + 1, size)
    return start, end


def _position(digits: str) -> int:
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) <= 18 else _HUGE_POSITION


def _etag(size: int, modified_at: float) -> str:
    return f'"{size:x}-{int(modified_at * 1_000_000):x}"'


def _matches(header: str, etag: str) -> bool:
    candidates = [c.strip() for c in header.split(",")]
    weak = etag.removeprefix("W/")
    return any(c == "*" or c.removeprefix("W/") == weak for c in candidates)


# --- the route -------------------------------------------------------------------------------


class MediaEndpoint:
    """`GET`/`HEAD /media/{video_id}/{token}/{path}`."""

    def __init__(
        self,
        storage: Storage,
        signer: MediaSigner,
        lookup: VideoLookup,
        gates: Sequence[MediaGate] = (VisibilityGate(),),
        playback: PlaybackTokenVerifier | None = None,
    ) -> None:
        self.storage = storage
        self.signer = signer
        self.lookup = lookup
        self.gates = tuple(gates)
        # Without one, playback tokens are refused like any other bad token.
        self.playback = playback

    async def handle(self, request: Request) -> Response:
        try:
            return await self._serve(request)
        except MediaDenied as denied:
            return PlainTextResponse(
                denied.reason, status_code=denied.status, headers={"cache-control": "no-store"}
            )

    async def _serve(self, request: Request) -> Response:
        params = request.path_params
        video_id, token, path = str(params["video_id"]), str(params["token"]), str(params["path"])
        try:
            video_id = str(uuid.UUID(video_id))
        except ValueError:
            raise MediaDenied(404, "not found") from None
        key = _media_key(video_id, path)
        grant = await self._grant(video_id, token)
        video = await self.lookup(video_id)
        if video is None:
            raise MediaDenied(404, "not found")
        for gate in self.gates:
            await gate.check(video, grant, request)
        try:
            info = await self.storage.stat(key)
        except ObjectNotFound:
            raise MediaDenied(404, "not found") from None
        return await self._respond(request, key, info.size, info.modified_at, grant)

    async def _grant(self, video_id: str, token: str) -> MediaGrant:
        """What the token grants for this video, or 403 (before the video is looked up, so a
        refusal says nothing about whether it exists)."""
        if self.playback is not None and is_playback_token(token):
            try:
                granted = await self.playback.verify(token, video_id=video_id)
            except InvalidPlaybackToken as refused:
                raise MediaDenied(403, refused.message) from None
            return MediaGrant(
                "playback",
                expires_at=granted.expires_at,
                session_id=granted.session_id,
                viewer_id=granted.viewer_id,
            )
        try:
            return self.signer.verify(video_id, token)
        except TokenRejected as rejected:
            raise MediaDenied(403, str(rejected)) from None

    async def _respond(
        self, request: Request, key: str, size: int, modified_at: float, grant: MediaGrant
    ) -> Response:
        etag = _etag(size, modified_at)
        headers = {
            "accept-ranges": "bytes",
            "etag": etag,
            "cache-control": _cache_control(key, grant),
            "x-content-type-options": "nosniff",
        }
        content_type = guess_content_type(key)
        if_none_match = request.headers.get("if-none-match")
        if if_none_match and _matches(if_none_match, etag):
            return Response(status_code=304, headers=headers)
        range_header = request.headers.get("range")
        if_range = request.headers.get("if-range")
        if if_range is not None and if_range.strip() != etag:
            range_header = None  # the client's copy is stale: send the whole object
        try:
            byte_range = parse_range(range_header, size)
        except Unsatisfiable:
            return Response(
                status_code=416, headers={**headers, "content-range": f"bytes */{size}"}
            )
        status = 200
        start, end = 0, size
        if byte_range is not None:
            start, end = byte_range
            status = 206
            headers["content-range"] = f"bytes {start}-{end - 1}/{size}"
        headers["content-length"] = str(end - start)
        if request.method == "HEAD":
            return Response(status_code=status, headers=headers, media_type=content_type)
        body = await self._body(key, start, end)
        return StreamingResponse(body, status_code=status, headers=headers, media_type=content_type)

    async def _body(self, key: str, start: int, end: int) -> AsyncIterator[bytes]:
        """The byte stream, with its first chunk read now: an object deleted since `stat`
        still answers 404 instead of failing after the headers went out."""
        if end <= start:
            return _chunks(b"", _empty())
        chunks = self.storage.read(key, start=start, end=end)
        try:
            first = await anext(chunks, b"")
        except ObjectNotFound:
            raise MediaDenied(404, "not found") from None
        return _chunks(first, chunks)


async def _empty() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover - makes this an async generator


async def _chunks(first: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    if first:
        yield first
    async for chunk in rest:
        yield chunk


def _media_key(video_id: str, path: str) -> str:
    """The storage key of `path` under the video's prefix; 400 for anything that could leave
    it, 404 for files the route does not serve."""
    if not path or path.startswith("/") or len(path) > 512:
        raise MediaDenied(400, "bad media path")
    key = f"videos/{video_id}/{path}"
    try:
        validate_key(key)
    except InvalidKey:
        raise MediaDenied(400, "bad media path") from None
    if os.path.splitext(path)[1].lower() not in SERVED_EXTENSIONS:
        raise MediaDenied(404, "not found")
    return key


def _cache_control(key: str, grant: MediaGrant) -> str:
    max_age = (
        PLAYLIST_MAX_AGE
        if os.path.splitext(key)[1].lower() in _MUTABLE_EXTENSIONS
        else PUBLIC_MAX_AGE
    )
    if grant.kind == "public":
        # Short, so a video made private stops being served by shared caches soon too.
        return f"public, max-age={max_age}"
    remaining = max(0, (grant.expires_at or 0) - int(time.time()))
    return f"private, max-age={min(max_age, remaining)}"
