"""Video's domain logic: who sees which video, listing and search, editing and deletion,
processing state driven by the media worker's events, and live-stream metadata.
No GraphQL in here; uploads (tus and direct) live in `uploads.py`."""

from __future__ import annotations

import logging
import secrets
import unicodedata
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from sqlalchemy import and_, delete, func, or_, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col

from subgraphs.kernel.bus import Bus
from subgraphs.kernel.db import Database, utcnow
from subgraphs.kernel.errors import (
    BadUserInput,
    DomainError,
    Forbidden,
    NotFound,
    Unauthenticated,
)
from subgraphs.kernel.outbox import first_delivery
from subgraphs.kernel.pagination import decode_cursor, encode_cursor, page_size
from subgraphs.kernel.settings import Settings
from subgraphs.kernel.storage import Storage
from subgraphs.kernel.tokens import AccessClaims
from subgraphs.video import events
from subgraphs.video.media import PlayableVideo
from subgraphs.video.models import (
    Category,
    DeletedAccount,
    LiveStream,
    Upload,
    Video,
    VideoTag,
    inbox,
)
from subgraphs.video.search import SearchIndex, fold, words

log = logging.getLogger(__name__)

VISIBILITIES = ("PUBLIC", "UNLISTED", "PRIVATE")
STATUSES = ("UPLOADING", "PROCESSING", "READY", "FAILED")
TERMINAL_STATUSES = frozenset({"READY", "FAILED"})
LIVE_STATUSES = ("OFFLINE", "LIVE", "ENDED")
UPLOADER_ROLES = ("CREATOR", "ADMIN")
GROUP = "video"

TITLE_MAX = 100
DESCRIPTION_MAX = 5000
TAGS_MAX = 15
TAG_MAX = 30
FILENAME_MAX = 255
SEARCH_MAX = 200
FAILURE_REASON_MAX = 1000
SUGGESTIONS_DEFAULT = 10
SUGGESTIONS_MAX = 20
LIVE_STREAMS_MAX = 100

# Containers and raw streams the worker's FFmpeg can probe; anything else is refused up front.
MEDIA_EXTENSIONS = frozenset(
    {
        "mp4", "m4v", "mov", "qt", "mkv", "webm", "avi", "wmv", "flv", "mpg", "mpeg", "mpe",
        "ts", "mts", "m2ts", "3gp", "3g2", "ogv", "ogg", "mxf", "vob", "dv", "h264", "hevc",
        "m4a", "mp3", "aac", "wav", "flac", "opus", "oga",
    }
)  # fmt: skip

Order = Literal["NEWEST", "OLDEST", "TITLE"]
ORDERS: tuple[Order, ...] = ("NEWEST", "OLDEST", "TITLE")


class UploadTooLarge(DomainError):
    code = "UPLOAD_TOO_LARGE"


class QuotaExceeded(DomainError):
    code = "QUOTA_EXCEEDED"


# --- validation ------------------------------------------------------------------------------


def _has_control_chars(value: str, allow_newlines: bool = False) -> bool:
    allowed = {"\n", "\r", "\t"} if allow_newlines else set()
    return any(unicodedata.category(ch) == "Cc" and ch not in allowed for ch in value)


def validate_title(title: str, field: str = "title") -> str:
    title = " ".join(title.split())
    if not title:
        raise BadUserInput("Title cannot be empty.", field=field)
    if len(title) > TITLE_MAX:
        raise BadUserInput(f"Title must be at most {TITLE_MAX} characters.", field=field)
    if _has_control_chars(title):
        raise BadUserInput("Title contains control characters.", field=field)
    return title


def validate_description(description: str | None) -> str:
    description = (description or "").strip()
    if len(description) > DESCRIPTION_MAX:
        raise BadUserInput(
            f"Description must be at most {DESCRIPTION_MAX} characters.", field="description"
        )
    if _has_control_chars(description, allow_newlines=True):
        raise BadUserInput("Description contains control characters.", field="description")
    return description


def validate_tags(tags: Sequence[str] | None) -> tuple[str, ...]:
    """Tags trimmed, in order, without duplicates that differ only in case or accents."""
    cleaned: dict[str, str] = {}
    for tag in tags or ():
        tag = " ".join(tag.split())
        if not tag:
            raise BadUserInput("Tags cannot be empty.", field="tags")
        if len(tag) > TAG_MAX:
            raise BadUserInput(f"Each tag must be at most {TAG_MAX} characters.", field="tags")
        if _has_control_chars(tag) or "," in tag:
            raise BadUserInput("Tags cannot contain commas or control characters.", field="tags")
        cleaned.setdefault(fold(tag), tag)
    if len(cleaned) > TAGS_MAX:
        raise BadUserInput(f"A video can have at most {TAGS_MAX} tags.", field="tags")
    return tuple(cleaned.values())


def validate_visibility(visibility: str) -> str:
    if visibility not in VISIBILITIES:
        raise BadUserInput(
            f"Visibility must be one of {', '.join(VISIBILITIES)}.", field="visibility"
        )
    return visibility


def validate_filename(filename: str) -> str:
    filename = filename.strip()
    # Only the name matters: a browser may send a path.
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    if not name or len(name) > FILENAME_MAX or _has_control_chars(name):
        raise BadUserInput(
            f"Filename must be 1 to {FILENAME_MAX} characters without control characters.",
            field="filename",
        )
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    if extension not in MEDIA_EXTENSIONS:
        raise BadUserInput(
            "Filename must have a video or audio extension (such as .mp4, .mov, .mkv, .webm).",
            field="filename",
        )
    return name


def validate_category_id(category_id: str) -> str:
    category_id = category_id.strip()
    if not category_id or len(category_id) > 40:
        raise BadUserInput("Unknown category.", field="categoryId")
    return category_id


def parse_uuid(value: str, field: str) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except (ValueError, AttributeError, TypeError):
        raise BadUserInput("Not a valid id.", field=field) from None


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(str(value))
    except (ValueError, AttributeError, TypeError):
        return False
    return True


@dataclass(frozen=True)
class VideoDraft:
    """A new video's metadata, validated."""

    title: str
    description: str
    category_id: str
    tags: tuple[str, ...]
    visibility: str
    filename: str

    @staticmethod
    def of(
        *,
        title: str,
        description: str | None,
        category_id: str,
        tags: Sequence[str] | None,
        visibility: str,
        filename: str,
    ) -> VideoDraft:
        return VideoDraft(
            title=validate_title(title),
            description=validate_description(description),
            category_id=validate_category_id(category_id),
            tags=validate_tags(tags),
            visibility=validate_visibility(visibility),
            filename=validate_filename(filename),
        )


@dataclass(frozen=True)
class VideoChanges:
    """Fields an owner may change; only those named in `changed` are touched."""

    title: str | None = None
    description: str | None = None
    category_id: str | None = None
    tags: Sequence[str] | None = None
    visibility: str | None = None
    changed: frozenset[str] = frozenset()


@dataclass(frozen=True)
class VideoFilter:
    category_id: str | None = None
    owner_id: str | None = None
    search: str | None = None
    tags: Sequence[str] | None = None


@dataclass(frozen=True)
class VideoPage:
    videos: Sequence[Video]
    cursors: Sequence[str]
    has_next_page: bool
    total_count: int


@dataclass(frozen=True)
class Rendition:
    name: str
    width: int
    height: int
    bandwidth: int
    average_bandwidth: int | None
    codecs: str
    frame_rate: float | None


@dataclass(frozen=True)
class Storyboard:
    image: str
    vtt: str
    tile_width: int
    tile_height: int
    columns: int
    rows: int
    interval_seconds: float


@dataclass(frozen=True)
class VideoMedia:
    """The playable outputs of a READY video, paths relative to `videos/<id>/`."""

    master: str
    renditions: tuple[Rendition, ...]
    thumbnail: str | None
    storyboard: Storyboard | None
    has_video: bool = True
    has_audio: bool = True


@dataclass(frozen=True)
class ProcessingState:
    video_id: str
    status: str
    progress: float
    failure_reason: str | None

    @staticmethod
    def of(video: Video) -> ProcessingState:
        return ProcessingState(
            video.id, video.status, video.processing_progress, video.failure_reason
        )

    @staticmethod
    def from_payload(payload: Mapping[str, Any]) -> ProcessingState | None:
        status = payload.get("status")
        progress = payload.get("progress")
        if status not in STATUSES or not isinstance(progress, int | float):
            return None
        reason = payload.get("failureReason")
        return ProcessingState(
            str(payload.get("videoId")),
            str(status),
            float(progress),
            reason if isinstance(reason, str) else None,
        )

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_STATUSES


# --- reading stored JSON ------------------------------------------------------------------------


def video_tags(video: Video) -> list[str]:
    loaded = orjson.loads(video.tags)
    return [str(tag) for tag in loaded] if isinstance(loaded, list) else []


def video_media(video: Video) -> VideoMedia | None:
    if video.status != "READY" or not video.media:
        return None
    return _parse_media(orjson.loads(video.media))


class InvalidMediaReport(ValueError):
    """A `media.ready` document that does not describe playable media."""


def _relative_path(value: Any) -> str:
    if not isinstance(value, str) or not value or value.startswith("/") or ".." in value.split("/"):
        raise InvalidMediaReport(f"bad media path {value!r}")
    return value


def _number(value: Any, kind: type[int] | type[float], *, optional: bool = False) -> Any:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidMediaReport(f"expected a number, got {value!r}")
    return kind(value)


def _parse_media(document: Any) -> VideoMedia:
    if not isinstance(document, dict):
        raise InvalidMediaReport("media document must be an object")
    renditions = []
    for item in document.get("renditions") or []:
        if not isinstance(item, dict):
            raise InvalidMediaReport("rendition must be an object")
        renditions.append(
            Rendition(
                name=str(item.get("name") or ""),
                width=_number(item.get("width"), int),
                height=_number(item.get("height"), int),
                bandwidth=_number(item.get("bandwidth"), int),
                average_bandwidth=_number(item.get("averageBandwidth"), int, optional=True),
                codecs=str(item.get("codecs") or ""),
                frame_rate=_number(item.get("frameRate"), float, optional=True),
            )
        )
    board = document.get("storyboard")
    storyboard = None
    if isinstance(board, dict):
        storyboard = Storyboard(
            image=_relative_path(board.get("image")),
            vtt=_relative_path(board.get("vtt")),
            tile_width=_number(board.get("tileWidth"), int),
            tile_height=_number(board.get("tileHeight"), int),
            columns=_number(board.get("columns"), int),
            rows=_number(board.get("rows"), int),
            interval_seconds=_number(board.get("intervalSeconds"), float),
        )
    thumbnail = document.get("thumbnail")
    return VideoMedia(
        master=_relative_path(document.get("master")),
        renditions=tuple(renditions),
        thumbnail=_relative_path(thumbnail) if thumbnail is not None else None,
        storyboard=storyboard,
        has_video=bool(document.get("hasVideo", True)),
        has_audio=bool(document.get("hasAudio", True)),
    )


def _media_document(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The part of `media.ready` worth keeping, checked."""
    media = _parse_media(payload)
    document = {
        key: payload.get(key)
        for key in ("master", "renditions", "thumbnail", "storyboard", "hasVideo", "hasAudio")
    }
    document["master"] = media.master
    return document


# --- who sees what ----------------------------------------------------------------------------


def can_manage(viewer: AccessClaims | None, owner_id: str) -> bool:
    return viewer is not None and (viewer.subject == owner_id or viewer.is_admin)


def can_view(viewer: AccessClaims | None, video: Video) -> bool:
    """Owners and admins see everything; others see READY videos that are not PRIVATE."""
    if can_manage(viewer, video.owner_id):
        return True
    return video.status == "READY" and video.visibility in ("PUBLIC", "UNLISTED")


def _listed() -> list[ColumnElement[bool]]:
    return [col(Video.visibility) == "PUBLIC", col(Video.status) == "READY"]


def require_uploader(viewer: AccessClaims) -> None:
    if viewer.role not in UPLOADER_ROLES:
        raise Forbidden("Only creators can upload videos.", reason="CREATOR_ROLE_REQUIRED")


def owner_lock_key(owner_id: str) -> int:
    # An advisory lock per owner serialises what admits the owner's new videos (the quota,
    # open uploads, account deletion) across replicas on PostgreSQL.
    return int.from_bytes(uuid.UUID(owner_id).bytes[:8], "big", signed=True)


def cursor_position(after: str, order: Order) -> tuple[str | datetime, str]:
    """The sort key and video id behind a `videos` cursor for `order`.

    Cursors are opaque, so anything we could not have issued (another ordering, a key of the
    wrong type, a time without a zone or out of range, an id that is not a UUID) is
    `BadUserInput` here, before it can reach the database as a value it cannot bind.
    """
    kind, position, video_id = decode_cursor(after, 3)
    if not isinstance(kind, str) or kind not in ORDERS:
        raise BadUserInput("Invalid cursor.", field="after")
    if kind != order:
        raise BadUserInput("The cursor belongs to another ordering.", field="after")
    if not isinstance(video_id, str) or not is_uuid(video_id) or not isinstance(position, str):
        raise BadUserInput("Invalid cursor.", field="after")
    if order == "TITLE":
        # A title key is a folded title: at most TITLE_MAX characters, none of them control
        # characters (PostgreSQL refuses NUL in text).
        if len(position) > TITLE_MAX or _has_control_chars(position):
            raise BadUserInput("Invalid cursor.", field="after")
        return position, str(uuid.UUID(video_id))
    try:
        moment = datetime.fromisoformat(position)
        if moment.utcoffset() is None:
            raise ValueError("a cursor's time carries its zone")
        # Overflows for times at the very ends of the calendar.
        moment = moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise BadUserInput("Invalid cursor.", field="after") from None
    return moment, str(uuid.UUID(video_id))


# --- the service -----------------------------------------------------------------------------


@dataclass
class VideoService:
    db: Database
    storage: Storage
    search: SearchIndex
    settings: Settings
    bus: Bus
    _categories: list[Category] | None = field(default=None, init=False)

    # Reads -------------------------------------------------------------------------------------

    async def categories(self) -> list[Category]:
        # Seeded by migrations and never changed while running: read once.
        if self._categories is None:
            async with self.db.transaction() as session:
                rows = (
                    (await session.execute(select(Category).order_by(col(Category.position))))
                    .scalars()
                    .all()
                )
            self._categories = list(rows)
        return self._categories

    async def categories_by_id(self, ids: Sequence[str]) -> list[Category | None]:
        known = {c.id: c for c in await self.categories()}
        return [known.get(i) for i in ids]

    async def videos_by_id(
        self, viewer: AccessClaims | None, ids: Sequence[str]
    ) -> list[Video | None]:
        """The videos `viewer` may see; hidden ones are None, exactly like missing ones."""
        valid = [i for i in ids if is_uuid(i)]
        async with self.db.transaction() as session:
            rows = (
                (await session.execute(select(Video).where(col(Video.id).in_(valid))))
                .scalars()
                .all()
            )
        found = {v.id: v for v in rows if can_view(viewer, v)}
        return [found.get(i) for i in ids]

    async def playable(self, video_id: str) -> PlayableVideo | None:
        async with self.db.transaction() as session:
            video = await session.get(Video, video_id)
        if video is None:
            return None
        media = video_media(video) if video.price_per_minute > 0 else None
        return PlayableVideo(
            video.id,
            video.owner_id,
            video.visibility,
            video.status,
            price_per_minute=video.price_per_minute,
            poster=media.thumbnail if media else None,
        )

    async def list_videos(
        self, *, filter: VideoFilter, order: Order, first: int | None, after: str | None
    ) -> VideoPage:
        """PUBLIC READY videos, filtered, in `order`."""
        conditions = _listed()
        if filter.category_id is not None:
            conditions.append(col(Video.category_id) == filter.category_id)
        if filter.owner_id is not None:
            conditions.append(col(Video.owner_id) == parse_uuid(filter.owner_id, "ownerId"))
        for tag in validate_tags(filter.tags):
            tagged = select(col(VideoTag.video_id)).where(col(VideoTag.tag) == fold(tag))
            conditions.append(col(Video.id).in_(tagged))
        if filter.search is not None and filter.search.strip():
            if len(filter.search) > SEARCH_MAX:
                raise BadUserInput(
                    f"Search must be at most {SEARCH_MAX} characters.", field="search"
                )
            query_words = words(filter.search)
            if not query_words:
                # Only punctuation: nothing can match, and nothing is sent to the engine.
                return VideoPage([], [], False, 0)
            conditions.append(col(Video.id).in_(self.search.matching(query_words)))
        return await self._page(conditions, order, first, after)

    async def owner_videos(
        self, viewer: AccessClaims | None, owner_id: str, *, first: int | None, after: str | None
    ) -> VideoPage:
        """Every video of the owner for the owner and admins; PUBLIC READY ones for others."""
        if not is_uuid(owner_id):
            return VideoPage([], [], False, 0)
        conditions: list[ColumnElement[bool]] = [col(Video.owner_id) == str(uuid.UUID(owner_id))]
        if not can_manage(viewer, str(uuid.UUID(owner_id))):
            conditions += _listed()
        return await self._page(conditions, "NEWEST", first, after)

    async def _page(
        self,
        conditions: list[ColumnElement[bool]],
        order: Order,
        first: int | None,
        after: str | None,
    ) -> VideoPage:
        size = page_size(first)
        query = select(Video).where(*conditions)
        keys: tuple[Any, Any]
        if order == "TITLE":
            keys = (col(Video.title_key), col(Video.id))
            query = query.order_by(*keys)
        elif order == "OLDEST":
            keys = (col(Video.created_at), col(Video.id))
            query = query.order_by(*keys)
        else:
            keys = (col(Video.created_at), col(Video.id))
            query = query.order_by(keys[0].desc(), keys[1].desc())
        if after is not None:
            value, video_id = cursor_position(after, order)
            # Spelled out rather than a row-value comparison, so the value is bound with the
            # column's own type on every backend.
            first_key, id_key = keys
            if order == "NEWEST":
                query = query.where(
                    or_(first_key < value, and_(first_key == value, id_key < video_id))
                )
            else:
                query = query.where(
                    or_(first_key > value, and_(first_key == value, id_key > video_id))
                )
        async with self.db.transaction() as session:
            rows = (await session.execute(query.limit(size + 1))).scalars().all()
            total = (
                await session.execute(select(func.count()).select_from(Video).where(*conditions))
            ).scalar_one()
        page = rows[:size]
        return VideoPage(
            videos=page,
            cursors=[self.cursor_for(v, order) for v in page],
            has_next_page=len(rows) > size,
            total_count=int(total),
        )

    @staticmethod
    def cursor_for(video: Video, order: Order) -> str:
        if order == "TITLE":
            return encode_cursor(order, video.title_key, video.id)
        return encode_cursor(order, video.created_at.isoformat(), video.id)

    async def search_suggestions(self, prefix: str, limit: int | None) -> list[str]:
        """Titles of PUBLIC READY videos whose title matches `prefix` (typeahead)."""
        limit = SUGGESTIONS_DEFAULT if limit is None else limit
        if not 1 <= limit <= SUGGESTIONS_MAX:
            raise BadUserInput(f"limit must be between 1 and {SUGGESTIONS_MAX}.", field="limit")
        if len(prefix) > SEARCH_MAX:
            raise BadUserInput(f"prefix must be at most {SEARCH_MAX} characters.", field="prefix")
        query_words = words(prefix)
        if not query_words:
            return []
        latest = func.max(col(Video.published_at))
        query = (
            select(col(Video.title))
            .where(
                *_listed(), col(Video.id).in_(self.search.matching(query_words, titles_only=True))
            )
            .group_by(col(Video.title))
            .order_by(latest.desc(), col(Video.title))
            .limit(limit)
        )
        async with self.db.transaction() as session:
            return [str(title) for title in (await session.execute(query)).scalars().all()]

    # Writes shared with uploads.py ------------------------------------------------------------

    async def require_category(self, session: AsyncSession, category_id: str) -> None:
        if await session.get(Category, category_id) is None:
            raise BadUserInput("Unknown category.", field="categoryId")

    def check_size(self, size_bytes: int, *, limit: int | None = None) -> None:
        if size_bytes <= 0:
            raise BadUserInput("The file is empty.", field="sizeBytes")
        limit = min(
            limit or self.settings.video_max_upload_bytes, self.settings.video_max_upload_bytes
        )
        if size_bytes > limit:
            raise UploadTooLarge(
                f"The file is larger than the {limit} byte upload limit.", limitBytes=limit
            )

    async def lock_owner(self, session: AsyncSession, owner_id: str) -> None:
        """Hold the owner's lock until the transaction ends, so checks that admit a new video
        of theirs cannot race each other or the account's deletion. SQLite's write
        transactions are serial already (BEGIN IMMEDIATE)."""
        if not self.db.is_sqlite:
            await session.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": owner_lock_key(owner_id)}
            )

    async def require_account(self, session: AsyncSession, viewer: AccessClaims) -> None:
        """Refuse an account auth deleted: its tokens stay valid until they expire."""
        if await session.get(DeletedAccount, viewer.subject) is not None:
            raise Unauthenticated("This account no longer exists.")

    async def admit_owner(self, session: AsyncSession, viewer: AccessClaims) -> None:
        """Before a new video or stream of the viewer's: their lock, then their account."""
        await self.lock_owner(session, viewer.subject)
        await self.require_account(session, viewer)

    async def check_quota(self, session: AsyncSession, owner_id: str, size_bytes: int) -> None:
        """Refuse an upload that would take the owner past their quota. Inside the transaction
        that creates the video, under the owner's lock, so two uploads cannot both take the
        last free bytes."""
        quota = self.settings.video_user_quota_bytes
        if quota == 0:
            return
        await self.lock_owner(session, owner_id)
        used = (
            await session.execute(
                select(func.coalesce(func.sum(col(Video.size_bytes)), 0)).where(
                    col(Video.owner_id) == owner_id
                )
            )
        ).scalar_one()
        if int(used) + size_bytes > quota:
            raise QuotaExceeded(
                "This upload would exceed your storage quota.",
                quotaBytes=quota,
                usedBytes=int(used),
            )

    async def insert_video(
        self,
        session: AsyncSession,
        owner_id: str,
        draft: VideoDraft,
        *,
        size_bytes: int,
        status: str,
        video_id: str | None = None,
    ) -> Video:
        """A new video row with its tags and search entry, announced as `video.created`."""
        await self.require_category(session, draft.category_id)
        now = utcnow()
        video = Video(
            id=video_id or str(uuid.uuid4()),
            owner_id=owner_id,
            title=draft.title,
            title_key=fold(draft.title)[:TITLE_MAX],
            description=draft.description,
            category_id=draft.category_id,
            tags=orjson.dumps(list(draft.tags)).decode(),
            visibility=draft.visibility,
            status=status,
            filename=draft.filename,
            size_bytes=size_bytes,
            created_at=now,
            updated_at=now,
        )
        session.add(video)
        await session.flush()
        await self._write_tags(session, video.id, draft.tags)
        await self.search.put(
            session, video.id, title=video.title, description=video.description, tags=draft.tags
        )
        await events.video_created(session, video)
        return video

    async def _write_tags(self, session: AsyncSession, video_id: str, tags: Sequence[str]) -> None:
        await session.execute(delete(VideoTag).where(col(VideoTag.video_id) == video_id))
        for key in dict.fromkeys(fold(tag)[:TAG_MAX] for tag in tags):
            session.add(VideoTag(video_id=video_id, tag=key))
        await session.flush()

    async def start_processing(self, session: AsyncSession, video: Video) -> None:
        """The source is complete: hand it to the media worker (same transaction)."""
        video.status = "PROCESSING"
        video.processing_progress = 0.0
        video.updated_at = utcnow()
        session.add(video)
        await session.flush()
        await events.media_transcode(session, video.id)
        await events.video_updated(session, video)
        await events.video_processing(session, video)

    async def delete_rows(self, session: AsyncSession, video: Video) -> None:
        """Remove the video's rows and search entry and announce `video.deleted`; the
        `video.deleted` consumer empties its storage."""
        await self.search.remove(session, video.id)
        await session.execute(delete(Upload).where(col(Upload.video_id) == video.id))
        await session.execute(delete(VideoTag).where(col(VideoTag.video_id) == video.id))
        await session.execute(delete(Video).where(col(Video.id) == video.id))
        await events.video_deleted(session, video)

    async def purge_media(self, video_id: str) -> int:
        """Delete everything stored for the video. Raises if storage fails (the caller retries)."""
        video_id = str(uuid.UUID(video_id))
        removed = 0
        failure: Exception | None = None
        # Both prefixes are tried even if one fails, so a retry has as little left as possible.
        for prefix in (f"videos/{video_id}/", f"uploads/{video_id}/"):
            try:
                removed += await self.storage.delete_prefix(prefix)
            except Exception as error:
                failure = failure or error
        if failure is not None:
            raise failure
        return removed

    async def purge_media_quietly(self, video_id: str) -> None:
        # Best effort right away; the `video.deleted` consumer retries until it succeeds.
        try:
            await self.purge_media(video_id)
        except Exception:
            log.warning("media of deleted video %s not removed yet", video_id, exc_info=True)

    # Editing and deleting -----------------------------------------------------------------

    async def _managed(self, session: AsyncSession, viewer: AccessClaims, video_id: str) -> Video:
        video_id = parse_uuid(video_id, "id")
        await self.require_account(session, viewer)
        video = await session.get(Video, video_id)
        if video is None or not can_view(viewer, video):
            raise NotFound("Video not found.")
        if not can_manage(viewer, video.owner_id):
            raise Forbidden("Only the owner or an admin can change this video.")
        return video

    async def update_video(
        self, viewer: AccessClaims, video_id: str, changes: VideoChanges
    ) -> Video:
        values: dict[str, Any] = {}
        if "title" in changes.changed:
            values["title"] = validate_title(changes.title or "")
        if "description" in changes.changed:
            values["description"] = validate_description(changes.description)
        if "category_id" in changes.changed:
            if changes.category_id is None:
                raise BadUserInput("Category cannot be removed.", field="categoryId")
            values["category_id"] = validate_category_id(changes.category_id)
        if "tags" in changes.changed:
            values["tags"] = validate_tags(changes.tags)
        if "visibility" in changes.changed:
            if changes.visibility is None:
                raise BadUserInput("Visibility cannot be removed.", field="visibility")
            values["visibility"] = validate_visibility(changes.visibility)
        async with self.db.transaction() as session:
            video = await self._managed(session, viewer, video_id)
            announce = False
            if "title" in values and values["title"] != video.title:
                video.title = values["title"]
                video.title_key = fold(video.title)[:TITLE_MAX]
                announce = True
            if "description" in values:
                video.description = values["description"]
            if "category_id" in values:
                await self.require_category(session, values["category_id"])
                video.category_id = values["category_id"]
            if "tags" in values:
                video.tags = orjson.dumps(list(values["tags"])).decode()
                await self._write_tags(session, video.id, values["tags"])
            if "visibility" in values and values["visibility"] != video.visibility:
                video.visibility = values["visibility"]
                announce = True
            video.updated_at = utcnow()
            session.add(video)
            await session.flush()
            await self.search.put(
                session,
                video.id,
                title=video.title,
                description=video.description,
                tags=video_tags(video),
            )
            if announce:
                await events.video_updated(session, video)
        return video

    async def delete_video(self, viewer: AccessClaims, video_id: str) -> None:
        async with self.db.transaction() as session:
            video = await self._managed(session, viewer, video_id)
            await self.delete_rows(session, video)
        await self.purge_media_quietly(video.id)

    # Processing (the media worker's answers) -------------------------------------------------

    async def processing_state(self, viewer: AccessClaims, video_id: str) -> ProcessingState:
        """The video's processing state, for its owner and admins only."""
        async with self.db.transaction() as session:
            video = await session.get(Video, parse_uuid(video_id, "videoId"))
        if video is None or not can_view(viewer, video):
            raise NotFound("Video not found.")
        if not can_manage(viewer, video.owner_id):
            raise Forbidden("Only the owner or an admin can follow this video's processing.")
        return ProcessingState.of(video)

    async def record_progress(self, payload: Mapping[str, Any]) -> None:
        """`media.progress`: moves progress forward while PROCESSING, never anything else.
        Naturally idempotent (a duplicate or late value changes nothing), so no inbox row."""
        video_id, progress = payload.get("videoId"), payload.get("progress")
        if not isinstance(video_id, str) or not is_uuid(video_id):
            return
        if isinstance(progress, bool) or not isinstance(progress, int | float):
            return
        progress = min(max(float(progress), 0.0), 1.0)
        async with self.db.transaction() as session:
            result = await session.execute(
                update(Video)
                .where(
                    col(Video.id) == video_id,
                    col(Video.status) == "PROCESSING",
                    col(Video.processing_progress) < progress,
                )
                .values(processing_progress=progress, updated_at=utcnow())
            )
            if getattr(result, "rowcount", 0) == 1:
                await events.processing_progress(session, video_id, progress)

    async def mark_ready(self, message_id: str, payload: Mapping[str, Any]) -> None:
        """`media.ready`: PROCESSING → READY with the media; anything else is left alone."""

        async def ready(session: AsyncSession, video: Video) -> None:
            try:
                document = _media_document(payload)
                duration = _number(payload.get("durationSeconds"), float)
            except InvalidMediaReport as error:
                log.error("media.ready for %s is unusable: %s", video.id, error)
                await self._fail(
                    session, video, "INVALID_MEDIA_REPORT", "Processing produced no playable media."
                )
                return
            now = utcnow()
            video.status = "READY"
            video.processing_progress = 1.0
            video.duration_seconds = duration
            video.media = orjson.dumps(document).decode()
            video.published_at = now
            video.updated_at = now
            session.add(video)
            await session.flush()
            await events.video_ready(session, video)
            await events.video_updated(session, video)
            await events.video_processing(session, video)

        await self._finish_processing(events.MEDIA_READY, message_id, payload, ready)

    async def mark_failed(self, message_id: str, payload: Mapping[str, Any]) -> None:
        """`media.failed`: PROCESSING → FAILED with the reason; anything else is left alone."""
        code, reason = payload.get("code"), payload.get("reason")

        async def failed(session: AsyncSession, video: Video) -> None:
            await self._fail(
                session,
                video,
                str(code)[:40] if isinstance(code, str) and code else "TRANSCODE_FAILED",
                str(reason)[:FAILURE_REASON_MAX]
                if isinstance(reason, str) and reason.strip()
                else "Processing failed.",
            )

        await self._finish_processing(events.MEDIA_FAILED, message_id, payload, failed)

    async def _finish_processing(
        self,
        topic: str,
        message_id: str,
        payload: Mapping[str, Any],
        finish: Callable[[AsyncSession, Video], Awaitable[None]],
    ) -> None:
        """Apply the worker's final answer once (inbox), and only to a PROCESSING video: READY
        and FAILED are final, so late or repeated answers change nothing."""
        video_id = payload.get("videoId")
        if not isinstance(video_id, str) or not is_uuid(video_id):
            log.warning("%s without a valid videoId ignored", topic)
            return
        orphan = False
        async with self.db.transaction() as session:
            if not await first_delivery(session, inbox, GROUP, topic, message_id):
                return
            video = await self._for_update(session, video_id)
            if video is None:
                orphan = True
            elif video.status == "PROCESSING":
                await finish(session, video)
        if orphan:
            # The video was deleted while it was being processed: drop what the worker wrote.
            await self.purge_media(video_id)

    async def _fail(self, session: AsyncSession, video: Video, code: str, reason: str) -> None:
        video.status = "FAILED"
        video.failure_code = code
        video.failure_reason = reason
        video.updated_at = utcnow()
        session.add(video)
        await session.flush()
        await events.video_failed(session, video)
        await events.video_updated(session, video)
        await events.video_processing(session, video)

    async def _for_update(self, session: AsyncSession, video_id: str) -> Video | None:
        query = select(Video).where(col(Video.id) == video_id)
        if not self.db.is_sqlite:
            # Serialise against a concurrent update or deletion of the same video.
            query = query.with_for_update()
        return (await session.execute(query)).scalar_one_or_none()

    # Account deletion ------------------------------------------------------------------------

    async def delete_user_content(self, message_id: str, payload: Mapping[str, Any]) -> None:
        """`auth.user.deleted`: the user's videos and live streams go, media included."""
        user_id = payload.get("userId")
        if not isinstance(user_id, str) or not is_uuid(user_id):
            log.warning("auth.user.deleted without a valid userId ignored")
            return
        user_id = str(uuid.UUID(user_id))
        async with self.db.transaction() as session:
            topic = events.AUTH_USER_DELETED
            if not await first_delivery(session, inbox, GROUP, topic, message_id):
                return
            # Under the owner's lock: an upload admitted before this sees no tombstone and is
            # deleted below; one admitted after sees it and is refused.
            await self.lock_owner(session, user_id)
            if await session.get(DeletedAccount, user_id) is None:
                session.add(DeletedAccount(user_id=user_id, deleted_at=utcnow()))
            videos = (
                (await session.execute(select(Video).where(col(Video.owner_id) == user_id)))
                .scalars()
                .all()
            )
            for video in videos:
                await self.delete_rows(session, video)
            streams = (
                (
                    await session.execute(
                        select(LiveStream).where(col(LiveStream.owner_id) == user_id)
                    )
                )
                .scalars()
                .all()
            )
            for stream in streams:
                await session.delete(stream)
                await events.stream_deleted(session, stream)

    # Live streams ----------------------------------------------------------------------------

    async def create_live_stream(self, viewer: AccessClaims, title: str) -> LiveStream:
        if viewer.role not in UPLOADER_ROLES:
            raise Forbidden("Only creators can go live.", reason="CREATOR_ROLE_REQUIRED")
        title = validate_title(title)
        now = utcnow()
        stream = LiveStream(
            id=str(uuid.uuid4()),
            owner_id=viewer.subject,
            title=title,
            status="OFFLINE",
            stream_key=_new_stream_key(),
            created_at=now,
            updated_at=now,
        )
        async with self.db.transaction() as session:
            await self.admit_owner(session, viewer)
            session.add(stream)
            await session.flush()
            await events.stream_created(session, stream)
        return stream

    async def _managed_stream(
        self, session: AsyncSession, viewer: AccessClaims, stream_id: str
    ) -> LiveStream:
        stream_id = parse_uuid(stream_id, "id")
        await self.require_account(session, viewer)
        stream = await session.get(LiveStream, stream_id)
        if stream is None:
            raise NotFound("Live stream not found.")
        if not can_manage(viewer, stream.owner_id):
            raise Forbidden("Only the owner or an admin can change this live stream.")
        return stream

    async def rotate_stream_key(self, viewer: AccessClaims, stream_id: str) -> LiveStream:
        async with self.db.transaction() as session:
            stream = await self._managed_stream(session, viewer, stream_id)
            stream.stream_key = _new_stream_key()
            stream.updated_at = utcnow()
            session.add(stream)
        return stream

    async def delete_live_stream(self, viewer: AccessClaims, stream_id: str) -> None:
        async with self.db.transaction() as session:
            stream = await self._managed_stream(session, viewer, stream_id)
            await session.delete(stream)
            await events.stream_deleted(session, stream)

    async def live_streams_by_id(self, ids: Sequence[str]) -> list[LiveStream | None]:
        valid = [i for i in ids if is_uuid(i)]
        async with self.db.transaction() as session:
            rows = (
                (await session.execute(select(LiveStream).where(col(LiveStream.id).in_(valid))))
                .scalars()
                .all()
            )
        found = {s.id: s for s in rows}
        return [found.get(i) for i in ids]

    async def owner_live_streams(self, owner_id: str) -> list[LiveStream]:
        if not is_uuid(owner_id):
            return []
        async with self.db.transaction() as session:
            rows = (
                (
                    await session.execute(
                        select(LiveStream)
                        .where(col(LiveStream.owner_id) == str(uuid.UUID(owner_id)))
                        .order_by(col(LiveStream.created_at).desc(), col(LiveStream.id))
                        .limit(LIVE_STREAMS_MAX)
                    )
                )
                .scalars()
                .all()
            )
        return list(rows)


def _new_stream_key() -> str:
    return "live_" + secrets.token_urlsafe(24)
