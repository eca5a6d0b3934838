"""Video's GraphQL surface: the `Video` and `LiveStream` entities, `User.videos`, listing and
search, uploads, the `videoProcessing` subscription, and the media URLs of billing's
`PlaybackSession`. Thin: decisions live in `service.py`, `uploads.py` and `paid.py`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any

import strawberry
from starlette.datastructures import UploadFile
from strawberry.dataloader import DataLoader
from strawberry.file_uploads import Upload as UploadScalar
from strawberry.types import Info

from subgraphs.kernel.bus import Bus
from subgraphs.kernel.errors import BadUserInput, Unauthenticated
from subgraphs.kernel.graphql import RequestContext, subgraph_schema
from subgraphs.kernel.tokens import AccessClaims, TokenVerifier, bearer_token
from subgraphs.kernel.types import Long, PageInfo
from subgraphs.video import events, models
from subgraphs.video.media import MediaSigner, media_token, media_url
from subgraphs.video.paid import PaidAccess, SessionStream, stream_token
from subgraphs.video.service import (
    ProcessingState,
    VideoChanges,
    VideoDraft,
    VideoFilter,
    VideoPage,
    VideoService,
    can_manage,
    require_uploader,
    video_media,
    video_tags,
)
from subgraphs.video.service import Storyboard as StoryboardMedia
from subgraphs.video.uploads import UploadService

if TYPE_CHECKING:
    from subgraphs.kernel.graphql import Schema

UPLOAD_CHUNK = 1024 * 1024
# A processing subscription with no event for this long re-reads the video's state.
RECHECK_SECONDS = 15.0


@dataclass
class VideoContext(RequestContext):
    service: VideoService = field(kw_only=True)
    uploads: UploadService = field(kw_only=True)
    signer: MediaSigner = field(kw_only=True)
    paid: PaidAccess = field(kw_only=True)
    bus: Bus = field(kw_only=True)
    tokens: TokenVerifier = field(kw_only=True)
    public_url: str = field(kw_only=True)
    ingest_url: str = field(kw_only=True)
    # graphql-transport-ws `connection_init` payload, set by Strawberry on WebSockets.
    connection_params: dict[str, Any] | None = field(default=None, kw_only=True)

    async def subscriber(self) -> AccessClaims | None:
        """The viewer of a subscription: from the upgrade request's Authorization header or,
        as browsers cannot set headers on WebSockets, from `connection_init`'s payload."""
        viewer = self.viewer
        if viewer is not None or not self.connection_params:
            return viewer
        raw = self.connection_params.get("authorization") or self.connection_params.get(
            "Authorization"
        )
        if not isinstance(raw, str) or not raw.strip():
            return None
        token = bearer_token(raw) if " " in raw.strip() else raw.strip()
        if not token:
            return None
        # Every resolver of this connection's operations sees the viewer from now on.
        self._viewer = await self.tokens.verify(token)
        return self._viewer


VideoInfo = Info[VideoContext, None]


@strawberry.enum(
    description="Who can find and watch a video. PUBLIC: listed, searched and playable by "
    "all; UNLISTED: playable by anyone who has its id, never listed or searched; PRIVATE: its "
    "owner and admins only."
)
class Visibility(Enum):
    PUBLIC = "PUBLIC"
    UNLISTED = "UNLISTED"
    PRIVATE = "PRIVATE"


@strawberry.enum
class VideoStatus(Enum):
    UPLOADING = "UPLOADING"
    PROCESSING = "PROCESSING"
    READY = "READY"
    FAILED = "FAILED"


@strawberry.enum
class VideoOrder(Enum):
    NEWEST = "NEWEST"
    OLDEST = "OLDEST"
    TITLE = "TITLE"


@strawberry.enum
class LiveStreamStatus(Enum):
    OFFLINE = "OFFLINE"
    LIVE = "LIVE"
    ENDED = "ENDED"


# --- loaders ----------------------------------------------------------------------------------


def _videos_loader(info: VideoInfo) -> DataLoader[str, models.Video | None]:
    loader: DataLoader[str, models.Video | None] | None = info.context.loaders.get("videos")
    if loader is None:
        context = info.context
        viewer = context.viewer

        async def load(ids: list[str]) -> list[models.Video | None]:
            return await context.service.videos_by_id(viewer, ids)

        loader = DataLoader(load_fn=load)
        info.context.loaders["videos"] = loader
    return loader


def _streams_loader(info: VideoInfo) -> DataLoader[str, models.LiveStream | None]:
    key = "live_streams"
    loader: DataLoader[str, models.LiveStream | None] | None = info.context.loaders.get(key)
    if loader is None:
        loader = DataLoader(load_fn=info.context.service.live_streams_by_id)
        info.context.loaders[key] = loader
    return loader


# --- types -------------------------------------------------------------------------------------


@strawberry.federation.type(keys=["id"], description="A person with an account (owned by auth).")
class User:
    id: strawberry.ID

    @strawberry.field(
        description="Newest first. The user and admins see every video of theirs; others see "
        "the PUBLIC READY ones."
    )
    async def videos(
        self, info: VideoInfo, first: int | None = None, after: str | None = None
    ) -> VideoConnection:
        page = await info.context.service.owner_videos(
            info.context.viewer, str(self.id), first=first, after=after
        )
        return VideoConnection.of(page, after)

    @strawberry.field(description="The user's live streams, newest first (at most 100).")
    async def live_streams(self, info: VideoInfo) -> list[LiveStream]:
        rows = await info.context.service.owner_live_streams(str(self.id))
        return [LiveStream.from_row(row) for row in rows]

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> User:
        return User(id=id)


@strawberry.type(description="A topic videos are filed under. Ids are stable slugs.")
class Category:
    id: strawberry.ID
    name: str

    @strawberry.field(description="The same as id: a stable, URL-safe name.")
    def slug(self) -> str:
        return str(self.id)

    @staticmethod
    def from_row(row: models.Category) -> Category:
        return Category(id=strawberry.ID(row.id), name=row.name)


@strawberry.type(description="One rung of the HLS ladder, as the master playlist lists it.")
class Rendition:
    name: str
    width: int
    height: int
    bandwidth: int = strawberry.field(description="Peak bits per second.")
    average_bandwidth: int | None = strawberry.field(description="Average bits per second.")
    codecs: str = strawberry.field(description="RFC 6381 codecs, e.g. avc1.64001f,mp4a.40.2.")
    frame_rate: float | None


@strawberry.type(description="Scrub previews: a sprite of tiles and its WebVTT index.")
class Storyboard:
    image_url: str
    vtt_url: str
    tile_width: int
    tile_height: int
    columns: int
    rows: int
    interval_seconds: float


def _media_base(info: VideoInfo, row: models.Video, *, stream: bool = False) -> str | None:
    # Rows reach the schema only after `can_view`, so a token is minted only for viewers
    # allowed to see the video. The stream (not the poster) of a priced video is its
    # owner's and admins'; others play it through a playback session.
    if row.status != "READY":
        return None
    if stream:
        manager = can_manage(info.context.viewer, row.owner_id)
        token = stream_token(info.context.signer, row, manager=manager)
    else:
        token = media_token(info.context.signer, row.id, row.visibility)
    return media_url(info.context.public_url, row.id, token, "") if token else None


def _storyboard(base: str, board: StoryboardMedia) -> Storyboard:
    return Storyboard(
        image_url=base + board.image,
        vtt_url=base + board.vtt,
        tile_width=board.tile_width,
        tile_height=board.tile_height,
        columns=board.columns,
        rows=board.rows,
        interval_seconds=board.interval_seconds,
    )


@strawberry.federation.type(keys=["id"], description="An uploaded video.")
class Video:
    id: strawberry.ID
    title: str
    description: str
    tags: list[str]
    visibility: Visibility
    status: VideoStatus
    processing_progress: float = strawberry.field(
        description="0 to 1 while PROCESSING; 1 once READY."
    )
    duration_seconds: float | None
    created_at: datetime
    published_at: datetime | None = strawberry.field(description="When it became READY.")
    _row: strawberry.Private[models.Video]

    @strawberry.field
    def owner(self) -> User:
        return User(id=strawberry.ID(self._row.owner_id))

    @strawberry.field
    async def category(self, info: VideoInfo) -> Category:
        (row,) = await info.context.service.categories_by_id([self._row.category_id])
        assert row is not None, "videos reference existing categories"
        return Category.from_row(row)

    @strawberry.field(description="Why processing failed: the owner and admins only, else null.")
    def failure_reason(self, info: VideoInfo) -> str | None:
        if not can_manage(info.context.viewer, self._row.owner_id):
            return None
        return self._row.failure_reason

    @strawberry.field(
        description="The HLS master playlist, once READY. Null for a priced video unless you "
        "own it or are an admin: play it with startPlayback's PlaybackSession.hlsUrl."
    )
    def hls_url(self, info: VideoInfo) -> str | None:
        media = video_media(self._row)
        base = _media_base(info, self._row, stream=True)
        return base + media.master if media and base else None

    @strawberry.field(description="The poster image, once READY (null for audio-only media).")
    def thumbnail_url(self, info: VideoInfo) -> str | None:
        media = video_media(self._row)
        base = _media_base(info, self._row)
        return base + media.thumbnail if media and media.thumbnail and base else None

    @strawberry.field(description="The HLS ladder, highest first; empty until READY.")
    def renditions(self) -> list[Rendition]:
        media = video_media(self._row)
        if media is None:
            return []
        return [
            Rendition(
                name=r.name,
                width=r.width,
                height=r.height,
                bandwidth=r.bandwidth,
                average_bandwidth=r.average_bandwidth,
                codecs=r.codecs,
                frame_rate=r.frame_rate,
            )
            for r in media.renditions
        ]

    @strawberry.field(
        description="Scrub previews, once READY (null for audio-only media). Like hlsUrl, "
        "null for a priced video unless you own it or are an admin."
    )
    def storyboard(self, info: VideoInfo) -> Storyboard | None:
        media = video_media(self._row)
        base = _media_base(info, self._row, stream=True)
        if media is None or media.storyboard is None or base is None:
            return None
        return _storyboard(base, media.storyboard)

    @classmethod
    async def resolve_reference(cls, info: VideoInfo, id: strawberry.ID) -> Video | None:
        row = await _videos_loader(info).load(str(id))
        return Video.from_row(row) if row else None

    @staticmethod
    def from_row(row: models.Video) -> Video:
        return Video(
            id=strawberry.ID(row.id),
            title=row.title,
            description=row.description,
            tags=video_tags(row),
            visibility=Visibility(row.visibility),
            status=VideoStatus(row.status),
            processing_progress=row.processing_progress,
            duration_seconds=row.duration_seconds,
            created_at=row.created_at,
            published_at=row.published_at,
            _row=row,
        )


@strawberry.federation.type(
    keys=["id"],
    description="A playback session (owned by billing); video adds the media URLs that play "
    "it, which carry the session's playback token.",
)
class PlaybackSession:
    id: strawberry.ID
    playback_token: str | None = strawberry.federation.field(external=True, default=None)
    _stream: strawberry.Private[SessionStream | None] = None

    def _base(self, info: VideoInfo) -> str | None:
        if self._stream is None:
            return None
        video_id = self._stream.video.id
        return media_url(info.context.public_url, video_id, self._stream.token, "")

    @strawberry.federation.field(
        requires=["playbackToken"],
        description="The HLS master playlist with this session's playback token; null once "
        "the token no longer grants the video. Every heartbeat returns a newer token: put it "
        "in place of the token segment of each media request (docs/video.md).",
    )
    def hls_url(self, info: VideoInfo) -> str | None:
        media = video_media(self._stream.video) if self._stream else None
        base = self._base(info)
        return base + media.master if media and base else None

    @strawberry.federation.field(
        requires=["playbackToken"],
        description="Scrub previews with this session's playback token (null for audio-only "
        "media, or once the token no longer grants the video).",
    )
    def storyboard(self, info: VideoInfo) -> Storyboard | None:
        media = video_media(self._stream.video) if self._stream else None
        base = self._base(info)
        if media is None or media.storyboard is None or base is None:
            return None
        return _storyboard(base, media.storyboard)

    @classmethod
    async def resolve_reference(
        cls, info: VideoInfo, id: strawberry.ID, **representation: Any
    ) -> PlaybackSession:
        token = representation.get("playbackToken")
        stream = await info.context.paid.session_stream(token if isinstance(token, str) else None)
        return PlaybackSession(
            id=id, playback_token=stream.token if stream else None, _stream=stream
        )


@strawberry.type
class VideoEdge:
    cursor: str
    node: Video


@strawberry.type
class VideoConnection:
    edges: list[VideoEdge]
    page_info: PageInfo
    total_count: int

    @staticmethod
    def of(page: VideoPage, after: str | None) -> VideoConnection:
        edges = [
            VideoEdge(cursor=cursor, node=Video.from_row(row))
            for row, cursor in zip(page.videos, page.cursors, strict=True)
        ]
        return VideoConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                has_previous_page=after is not None,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
            total_count=page.total_count,
        )


@strawberry.type(
    name="UploadSession",
    description="A resumable (tus 1.0) upload of a new video's file: PATCH its bytes to "
    "uploadUrl with the same bearer token. Called UploadSession, not Upload, because `Upload` "
    "is the GraphQL multipart file scalar that uploadVideo takes.",
)
class UploadSession:
    id: strawberry.ID
    video: Video
    upload_url: str = strawberry.field(description="The tus upload resource.")
    expires_at: datetime = strawberry.field(
        description="When an unfinished upload is deleted; each accepted PATCH extends it."
    )


@strawberry.federation.type(keys=["id"], description="A live broadcast's metadata.")
class LiveStream:
    id: strawberry.ID
    title: str
    status: LiveStreamStatus
    created_at: datetime
    _row: strawberry.Private[models.LiveStream]

    @strawberry.field(description="Where to send RTMP, with the stream key.")
    def ingest_url(self, info: VideoInfo) -> str:
        return info.context.ingest_url

    @strawberry.field
    def owner(self) -> User:
        return User(id=strawberry.ID(self._row.owner_id))

    @strawberry.field(description="The secret that authorises ingest: the owner only, else null.")
    def stream_key(self, info: VideoInfo) -> str | None:
        viewer = info.context.viewer
        if viewer is None or viewer.subject != self._row.owner_id:
            return None
        return self._row.stream_key

    @classmethod
    async def resolve_reference(cls, info: VideoInfo, id: strawberry.ID) -> LiveStream | None:
        row = await _streams_loader(info).load(str(id))
        return LiveStream.from_row(row) if row else None

    @staticmethod
    def from_row(row: models.LiveStream) -> LiveStream:
        return LiveStream(
            id=strawberry.ID(row.id),
            title=row.title,
            status=LiveStreamStatus(row.status),
            created_at=row.created_at,
            _row=row,
        )


@strawberry.type(description="A step of a video's processing: progress, then READY or FAILED.")
class VideoProcessingEvent:
    video_id: strawberry.ID
    status: VideoStatus
    progress: float
    failure_reason: str | None

    @strawberry.field(description="The video as it is now.")
    async def video(self, info: VideoInfo) -> Video | None:
        # Not through the request's loader: a WebSocket's context lives as long as the
        # connection, and each event must see the video as it is at that event.
        viewer = await info.context.subscriber()
        (row,) = await info.context.service.videos_by_id(viewer, [str(self.video_id)])
        return Video.from_row(row) if row else None

    @staticmethod
    def of(state: ProcessingState) -> VideoProcessingEvent:
        return VideoProcessingEvent(
            video_id=strawberry.ID(state.video_id),
            status=VideoStatus(state.status),
            progress=state.progress,
            failure_reason=state.failure_reason,
        )


# --- inputs ------------------------------------------------------------------------------------


@strawberry.input
class VideoFilterInput:
    category_id: strawberry.ID | None = None
    owner_id: strawberry.ID | None = None
    search: str | None = strawberry.field(
        default=None, description="Every word must match (the last as a prefix)."
    )
    tags: list[str] | None = strawberry.field(
        default=None, description="Videos carrying every one of these tags."
    )


@strawberry.input
class CreateUploadInput:
    title: str
    category_id: strawberry.ID
    filename: str = strawberry.field(description="The file's name; its extension must be media.")
    size_bytes: Long = strawberry.field(description="The file's exact size in bytes.")
    description: str | None = None
    tags: list[str] | None = None
    visibility: Visibility = Visibility.PUBLIC


@strawberry.input
class UploadVideoInput:
    title: str
    category_id: strawberry.ID
    description: str | None = None
    tags: list[str] | None = None
    visibility: Visibility = Visibility.PUBLIC


@strawberry.input(description="Only the fields you send change.")
class UpdateVideoInput:
    title: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    category_id: strawberry.ID | None = strawberry.UNSET
    tags: list[str] | None = strawberry.UNSET
    visibility: Visibility | None = strawberry.UNSET


@strawberry.input
class CreateLiveStreamInput:
    title: str


# --- operations ---------------------------------------------------------------------------------


@strawberry.type
class Query:
    @strawberry.field(description="A video, or null if it does not exist or is hidden from you.")
    async def video(self, info: VideoInfo, id: strawberry.ID) -> Video | None:
        row = await _videos_loader(info).load(str(id))
        return Video.from_row(row) if row else None

    @strawberry.field(description="PUBLIC READY videos, newest first unless ordered otherwise.")
    async def videos(
        self,
        info: VideoInfo,
        first: int | None = None,
        after: str | None = None,
        filter: VideoFilterInput | None = None,
        order_by: VideoOrder = VideoOrder.NEWEST,
    ) -> VideoConnection:
        given = filter or VideoFilterInput()
        page = await info.context.service.list_videos(
            filter=VideoFilter(
                category_id=str(given.category_id) if given.category_id is not None else None,
                owner_id=str(given.owner_id) if given.owner_id is not None else None,
                search=given.search,
                tags=given.tags,
            ),
            order=order_by.value,
            first=first,
            after=after,
        )
        return VideoConnection.of(page, after)

    @strawberry.field(description="Typeahead: titles of PUBLIC videos matching the prefix.")
    async def search_suggestions(
        self, info: VideoInfo, prefix: str, limit: int | None = 10
    ) -> list[str]:
        return await info.context.service.search_suggestions(prefix, limit)

    @strawberry.field
    async def categories(self, info: VideoInfo) -> list[Category]:
        return [Category.from_row(row) for row in await info.context.service.categories()]

    @strawberry.field
    async def live_stream(self, info: VideoInfo, id: strawberry.ID) -> LiveStream | None:
        row = await _streams_loader(info).load(str(id))
        return LiveStream.from_row(row) if row else None


async def _file_chunks(file: UploadFile) -> AsyncIterator[bytes]:
    await file.seek(0)
    while chunk := await file.read(UPLOAD_CHUNK):
        yield chunk


def _file_size(file: UploadFile) -> int:
    if file.size is not None:
        return file.size
    position = file.file.tell()
    file.file.seek(0, 2)
    size = file.file.tell()
    file.file.seek(position)
    return size


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Start a resumable upload of a new video (creators and admins). The video "
        "is UPLOADING until every byte has reached uploadUrl."
    )
    async def create_upload(self, info: VideoInfo, input: CreateUploadInput) -> UploadSession:
        viewer = info.context.require_viewer()
        require_uploader(viewer)
        draft = VideoDraft.of(
            title=input.title,
            description=input.description,
            category_id=str(input.category_id),
            tags=input.tags,
            visibility=input.visibility.value,
            filename=input.filename,
        )
        video, upload = await info.context.uploads.create(viewer, draft, int(input.size_bytes))
        return UploadSession(
            id=strawberry.ID(upload.id),
            video=Video.from_row(video),
            upload_url=f"{info.context.public_url}/uploads/{upload.id}",
            expires_at=upload.expires_at,
        )

    @strawberry.mutation(
        description="Upload a small file in this request (GraphQL multipart) and start "
        "processing it (creators and admins)."
    )
    async def upload_video(
        self, info: VideoInfo, file: UploadScalar, input: UploadVideoInput
    ) -> Video:
        viewer = info.context.require_viewer()
        require_uploader(viewer)
        if not isinstance(file, UploadFile):
            raise BadUserInput("file must be an uploaded file.", field="file")
        draft = VideoDraft.of(
            title=input.title,
            description=input.description,
            category_id=str(input.category_id),
            tags=input.tags,
            visibility=input.visibility.value,
            filename=file.filename or "",
        )
        row = await info.context.uploads.upload_direct(
            viewer, draft, _file_chunks(file), _file_size(file)
        )
        return Video.from_row(row)

    @strawberry.mutation(description="The owner or an admin.")
    async def update_video(
        self, info: VideoInfo, id: strawberry.ID, input: UpdateVideoInput
    ) -> Video:
        fields: dict[str, Any] = {
            "title": input.title,
            "description": input.description,
            "category_id": input.category_id,
            "tags": input.tags,
            "visibility": input.visibility,
        }
        changed = frozenset(k for k, v in fields.items() if v is not strawberry.UNSET)
        values = {k: fields[k] for k in changed}
        if isinstance(values.get("visibility"), Visibility):
            values["visibility"] = values["visibility"].value
        if values.get("category_id") is not None:
            values["category_id"] = str(values["category_id"])
        row = await info.context.service.update_video(
            info.context.require_viewer(), str(id), VideoChanges(changed=changed, **values)
        )
        return Video.from_row(row)

    @strawberry.mutation(
        description="The owner or an admin. Deletes the video, its search entry and its media."
    )
    async def delete_video(self, info: VideoInfo, id: strawberry.ID) -> bool:
        await info.context.service.delete_video(info.context.require_viewer(), str(id))
        return True

    @strawberry.mutation(description="Creators and admins. Metadata and a stream key.")
    async def create_live_stream(self, info: VideoInfo, input: CreateLiveStreamInput) -> LiveStream:
        row = await info.context.service.create_live_stream(
            info.context.require_viewer(), input.title
        )
        return LiveStream.from_row(row)

    @strawberry.mutation(description="The owner or an admin. The old key stops working.")
    async def rotate_stream_key(self, info: VideoInfo, id: strawberry.ID) -> LiveStream:
        row = await info.context.service.rotate_stream_key(info.context.require_viewer(), str(id))
        return LiveStream.from_row(row)

    @strawberry.mutation(description="The owner or an admin.")
    async def delete_live_stream(self, info: VideoInfo, id: strawberry.ID) -> bool:
        await info.context.service.delete_live_stream(info.context.require_viewer(), str(id))
        return True


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="The video's processing as it happens (its owner and admins): the current "
        "state first, then progress, then READY or FAILED, which ends the subscription."
    )
    async def video_processing(
        self, info: VideoInfo, video_id: strawberry.ID
    ) -> AsyncGenerator[VideoProcessingEvent, None]:
        viewer = await info.context.subscriber()
        if viewer is None:
            raise Unauthenticated("You must be signed in.")
        service = info.context.service
        await service.processing_state(viewer, str(video_id))
        # Subscribe before reading the state, so no change between the two is missed; every
        # replica's changes arrive through the bus, never through this process's memory.
        async with info.context.bus.subscribe(events.VIDEO_PROCESSING) as messages:
            state = await service.processing_state(viewer, str(video_id))
            yield VideoProcessingEvent.of(state)
            if state.finished:
                return
            stream = aiter(messages)
            while True:
                try:
                    message = await asyncio.wait_for(anext(stream), RECHECK_SECONDS)
                except StopAsyncIteration:
                    return  # the service is shutting down
                except TimeoutError:
                    # Quiet for a while: look again, so a deleted video (NOT_FOUND) or a
                    # change whose live event was lost still reaches the subscriber.
                    update = await service.processing_state(viewer, str(video_id))
                else:
                    if message.payload.get("videoId") != state.video_id:
                        continue
                    parsed = ProcessingState.from_payload(message.payload)
                    if parsed is None:
                        continue
                    update = parsed
                stale = update.status == state.status and update.progress <= state.progress
                if stale and not update.finished:
                    continue
                state = update
                yield VideoProcessingEvent.of(state)
                if state.finished:
                    return


schema: Schema = subgraph_schema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    types=[User, Video, LiveStream, PlaybackSession],
)
