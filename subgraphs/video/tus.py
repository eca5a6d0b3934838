"""The tus 1.0 resumable upload protocol at `/uploads`: core, creation, creation-with-upload,
termination, expiration and checksum. Protocol only: decisions are `uploads.py`'s.

Every request but OPTIONS needs the uploader's bearer token. `createUpload` makes the upload
resource (`uploadUrl` is `<public URL>/uploads/<id>`); a client may also create one here with
POST: naming an existing session in the `uploadId` metadata, or describing a new video with
`filename`, `title`, `categoryId` (and optionally `description`, `tags` comma-separated,
`visibility`).
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from email.utils import format_datetime

from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Route

from subgraphs.kernel.errors import (
    BadUserInput,
    Conflict,
    DomainError,
    Forbidden,
    NotFound,
    Unauthenticated,
)
from subgraphs.kernel.http import drain
from subgraphs.kernel.tokens import AccessClaims, TokenVerifier, bearer_token
from subgraphs.video.models import Upload
from subgraphs.video.service import QuotaExceeded, UploadTooLarge, VideoDraft, require_uploader
from subgraphs.video.uploads import (
    CHECKSUM_ALGORITHMS,
    Checksum,
    ChecksumMismatch,
    PartTooSmall,
    TooManyUploads,
    UploadExpired,
    UploadService,
)

TUS_VERSION = "1.0.0"
EXTENSIONS = "creation,creation-with-upload,termination,expiration,checksum"
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
MAX_METADATA_BYTES = 4096
_DIGITS = re.compile(r"[0-9]{1,19}")
_METADATA_KEY = re.compile(r"[^\s,]+")

PublicUrl = Callable[[Request], str]


class TusError(Exception):
    """A protocol-level refusal, answered with `status` and a plain-text reason."""

    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers or {}


# Domain errors as tus answers. 460 is the checksum extension's "Checksum Mismatch".
_STATUS: list[tuple[type[DomainError], int]] = [
    (UploadExpired, 410),
    (ChecksumMismatch, 460),
    (UploadTooLarge, 413),
    (QuotaExceeded, 413),
    (PartTooSmall, 400),
    (TooManyUploads, 429),
    (Unauthenticated, 401),
    (Forbidden, 403),
    (NotFound, 404),
    (Conflict, 409),
    (BadUserInput, 400),
]


def _http_date(moment: datetime) -> str:
    return format_datetime(moment, usegmt=True)


def parse_metadata(header: str | None) -> dict[str, str]:
    """`Upload-Metadata`: comma-separated `key base64value` pairs (the value may be absent)."""
    if header is None or not header.strip():
        return {}
    if len(header.encode()) > MAX_METADATA_BYTES:
        raise TusError(400, "Upload-Metadata is too long.")
    pairs: dict[str, str] = {}
    for item in header.split(","):
        key, _, value = item.strip().partition(" ")
        if not _METADATA_KEY.fullmatch(key) or key in pairs:
            raise TusError(400, "Upload-Metadata is malformed.")
        try:
            pairs[key] = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise TusError(400, f"Upload-Metadata value of {key!r} is not base64 UTF-8.") from None
    return pairs


def parse_checksum(header: str | None) -> Checksum | None:
    if header is None:
        return None
    algorithm, _, encoded = header.strip().partition(" ")
    if algorithm not in CHECKSUM_ALGORITHMS:
        raise TusError(400, f"Checksum algorithm {algorithm!r} is not supported.")
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except binascii.Error:
        raise TusError(400, "Upload-Checksum is not base64.") from None
    if len(digest) != CHECKSUM_ALGORITHMS[algorithm]().digest_size:
        raise TusError(400, f"Upload-Checksum is not a {algorithm} digest.")
    return Checksum(algorithm, digest)


def _integer_header(request: Request, name: str) -> int | None:
    value = request.headers.get(name)
    if value is None:
        return None
    # ASCII digits and HTTP whitespace only: str.isdigit() and str.strip() accept more.
    digits = value.strip(" \t")
    if not _DIGITS.fullmatch(digits):
        raise TusError(400, f"{name} must be a non-negative integer.")
    return int(digits)


class _Body:
    """A request body as it arrives; notes when the client went away half-way."""

    def __init__(self, request: Request) -> None:
        self.request = request
        self.was_interrupted = False

    def interrupted(self) -> bool:
        return self.was_interrupted

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self.request.stream():
                if chunk:
                    yield chunk
        except ClientDisconnect:
            # What arrived is kept: the client resumes from the offset a HEAD reports.
            self.was_interrupted = True
        # Read to the end (or the client left): nothing left to drain.
        self.request.state.body_done = True


class TusEndpoints:
    """Routes of the tus protocol over an `UploadService`."""

    def __init__(
        self,
        uploads: UploadService,
        verifier: TokenVerifier,
        *,
        public_url: PublicUrl,
        max_size: int,
    ) -> None:
        self.uploads = uploads
        self.verifier = verifier
        self.public_url = public_url
        self.max_size = max_size

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/uploads", self._wrap(self.collection), methods=["OPTIONS", "POST"]),
            Route(
                "/uploads/{upload_id}",
                self._wrap(self.resource),
                methods=["OPTIONS", "HEAD", "PATCH", "DELETE", "POST"],
            ),
        ]

    def _wrap(
        self, handler: Callable[[Request], Awaitable[Response]]
    ) -> Callable[..., Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                response = await handler(request)
            except TusError as error:
                response = PlainTextResponse(
                    error.reason, status_code=error.status, headers=error.headers
                )
            except DomainError as error:
                status = next((s for kind, s in _STATUS if isinstance(error, kind)), 400)
                headers = {"www-authenticate": "Bearer"} if status == 401 else {}
                response = PlainTextResponse(error.message, status_code=status, headers=headers)
            if response.status_code >= 400 and not getattr(request.state, "body_done", False):
                await drain(request.receive)
            response.headers["tus-resumable"] = TUS_VERSION
            response.headers["cache-control"] = "no-store"
            return response

        return endpoint

    # Dispatch -----------------------------------------------------------------------------

    async def collection(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return self._options()
        self._check_version(request)
        return await self._create(request, await self._viewer(request))

    async def resource(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return self._options()
        method = request.method
        if method == "POST":
            # For clients that cannot send PATCH or DELETE.
            method = request.headers.get("x-http-method-override", "").upper()
            if method not in ("PATCH", "DELETE"):
                raise TusError(405, "Use PATCH, HEAD or DELETE on an upload.")
        self._check_version(request)
        viewer = await self._viewer(request)
        upload_id = str(request.path_params["upload_id"])
        if method == "HEAD":
            return self._state(await self.uploads.session_for(viewer, upload_id), head=True)
        if method == "DELETE":
            await self.uploads.terminate(viewer, upload_id)
            return Response(status_code=204)
        return await self._patch(request, viewer, upload_id)

    # Operations ---------------------------------------------------------------------------

    def _options(self) -> Response:
        return Response(
            status_code=204,
            headers={
                "tus-version": TUS_VERSION,
                "tus-extension": EXTENSIONS,
                "tus-max-size": str(self.max_size),
                "tus-checksum-algorithm": ",".join(CHECKSUM_ALGORITHMS),
            },
        )

    async def _create(self, request: Request, viewer: AccessClaims) -> Response:
        if request.headers.get("upload-defer-length") is not None:
            raise TusError(400, "Upload-Defer-Length is not supported: send Upload-Length.")
        length = _integer_header(request, "upload-length")
        if length is None:
            raise TusError(400, "Upload-Length is required.")
        if length > self.max_size:
            raise TusError(413, f"Upload-Length exceeds Tus-Max-Size ({self.max_size}).")
        raw_metadata = request.headers.get("upload-metadata")
        metadata = parse_metadata(raw_metadata)
        with_body = _offset_body(request)
        if "uploadId" in metadata:
            upload = await self.uploads.session_for(viewer, metadata["uploadId"])
            if upload.length != length:
                raise TusError(400, f"Upload-Length must be the session's size ({upload.length}).")
        else:
            require_uploader(viewer)
            draft = VideoDraft.of(
                title=metadata.get("title") or "",
                description=metadata.get("description"),
                category_id=metadata.get("categoryId") or "",
                tags=[t for t in metadata.get("tags", "").split(",") if t.strip()],
                visibility=metadata.get("visibility") or "PUBLIC",
                filename=metadata.get("filename") or "",
            )
            _, upload = await self.uploads.create(
                viewer, draft, length, upload_metadata=raw_metadata
            )
        headers = {"location": f"{self.public_url(request)}/uploads/{upload.id}"}
        if with_body and upload.offset == 0:
            upload = await self._append(request, viewer, upload.id, 0)
            headers["upload-offset"] = str(upload.offset)
        if upload.completed_at is None:
            headers["upload-expires"] = _http_date(upload.expires_at)
        return Response(status_code=201, headers=headers)

    async def _patch(self, request: Request, viewer: AccessClaims, upload_id: str) -> Response:
        if not _offset_body(request):
            raise TusError(415, f"PATCH needs Content-Type: {OFFSET_CONTENT_TYPE}.")
        offset = _integer_header(request, "upload-offset")
        if offset is None:
            raise TusError(400, "Upload-Offset is required.")
        upload = await self._append(request, viewer, upload_id, offset)
        return self._state(upload, head=False)

    async def _append(
        self, request: Request, viewer: AccessClaims, upload_id: str, offset: int
    ) -> Upload:
        checksum = parse_checksum(request.headers.get("upload-checksum"))
        body = _Body(request)
        return await self.uploads.append(
            viewer,
            upload_id,
            offset=offset,
            body=body.chunks(),
            interrupted=body.interrupted,
            content_length=_integer_header(request, "content-length"),
            checksum=checksum,
        )

    def _state(self, upload: Upload, *, head: bool) -> Response:
        headers = {"upload-offset": str(upload.offset)}
        if head:
            headers["upload-length"] = str(upload.length)
            if upload.upload_metadata:
                headers["upload-metadata"] = upload.upload_metadata
        if upload.completed_at is None and upload.offset < upload.length:
            headers["upload-expires"] = _http_date(upload.expires_at)
        return Response(status_code=200 if head else 204, headers=headers)

    # Checks ---------------------------------------------------------------------------------

    @staticmethod
    def _check_version(request: Request) -> None:
        if request.headers.get("tus-resumable") != TUS_VERSION:
            raise TusError(
                412,
                f"Tus-Resumable must be {TUS_VERSION}.",
                headers={"tus-version": TUS_VERSION},
            )

    async def _viewer(self, request: Request) -> AccessClaims:
        token = bearer_token(request.headers.get("authorization"))
        if token is None:
            raise Unauthenticated("Uploads need an Authorization: Bearer token.")
        return await self.verifier.verify(token)


def _offset_body(request: Request) -> bool:
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return content_type == OFFSET_CONTENT_TYPE
