"""Engagement's GraphQL surface: fields on `Video`, `User` and `LiveStream`, comments, the
viewer's library, analytics, notifications and live chat, with subscriptions that read the
bus. Thin: every decision is made in `service/`."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar

import strawberry
from strawberry.dataloader import DataLoader
from strawberry.types import Info

from subgraphs.engagement import events, models
from subgraphs.engagement.service import EngagementService, VideoFacts
from subgraphs.engagement.service import views as view_rules
from subgraphs.kernel.bus import Bus
from subgraphs.kernel.graphql import RequestContext, subgraph_schema
from subgraphs.kernel.pagination import page_size
from subgraphs.kernel.types import PageInfo

if TYPE_CHECKING:
    from subgraphs.kernel.graphql import Schema

K = TypeVar("K")
V = TypeVar("V")


@dataclass
class EngagementContext(RequestContext):
    service: EngagementService = field(kw_only=True)
    bus: Bus = field(kw_only=True)


EngagementInfo = Info[EngagementContext, None]


def _loader(
    info: EngagementInfo, name: str, load: Callable[[list[K]], Awaitable[Sequence[V]]]
) -> DataLoader[K, V]:
    loader: DataLoader[K, V] | None = info.context.loaders.get(name)
    if loader is None:
        loader = DataLoader(load_fn=load)
        info.context.loaders[name] = loader
    return loader


def _video_facts(info: EngagementInfo, video_id: str) -> Awaitable[VideoFacts | None]:
    service, viewer = info.context.service, info.context.viewer

    async def load(ids: list[str]) -> list[VideoFacts | None]:
        return await service.videos_seen_by(viewer, ids)

    return _loader(info, "videos", load).load(video_id)


def _keyed(
    info: EngagementInfo, name: str, fetch: Callable[[list[str]], Awaitable[dict[str, Any]]]
) -> DataLoader[str, Any]:
    async def load(ids: list[str]) -> list[Any]:
        found = await fetch(ids)
        return [found.get(i) for i in ids]

    return _loader(info, name, load)


def _page_info(cursors: Sequence[str], has_next_page: bool, after: str | None) -> PageInfo:
    return PageInfo(
        has_next_page=has_next_page,
        has_previous_page=after is not None,
        start_cursor=cursors[0] if cursors else None,
        end_cursor=cursors[-1] if cursors else None,
    )


# --- enums ------------------------------------------------------------------------------


@strawberry.enum(name="Reaction", description="A viewer's reaction to a video.")
class ReactionKind(Enum):
    LIKE = "LIKE"
    DISLIKE = "DISLIKE"
    NONE = "NONE"


@strawberry.enum
class CommentOrder(Enum):
    NEWEST = "NEWEST"
    TOP = strawberry.enum_value("TOP", description="Most replies first, then newest.")


@strawberry.enum(description="How far back `topVideos` counts views.")
class ViewPeriod(Enum):
    DAY = "DAY"
    WEEK = "WEEK"
    MONTH = "MONTH"
    ALL = "ALL"


@strawberry.enum
class NotificationKind(Enum):
    NEW_VIDEO = "NEW_VIDEO"
    LIVE_STARTED = "LIVE_STARTED"


# --- entities other subgraphs own -------------------------------------------------------


@strawberry.federation.type(keys=["id"], description="A person with an account.")
class User:
    id: strawberry.ID

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> User:
        return User(id=id)

    async def _stats(self, info: EngagementInfo) -> models.UserStats | None:
        stats: models.UserStats | None = await _keyed(
            info, "user_stats", info.context.service.follows.stats
        ).load(str(self.id))
        return stats

    @strawberry.field
    async def follower_count(self, info: EngagementInfo) -> int:
        stats = await self._stats(info)
        return stats.follower_count if stats else 0

    @strawberry.field
    async def following_count(self, info: EngagementInfo) -> int:
        stats = await self._stats(info)
        return stats.following_count if stats else 0

    @strawberry.field(description="Whether the signed-in viewer follows this user.")
    async def viewer_follows(self, info: EngagementInfo) -> bool:
        viewer = info.context.viewer
        if viewer is None:
            return False
        follows = info.context.service.follows

        async def fetch(ids: list[str]) -> dict[str, bool]:
            followed = await follows.followed_by(viewer.subject, ids)
            return {i: i in followed for i in ids}

        return bool(await _keyed(info, "viewer_follows", fetch).load(str(self.id)))

    @strawberry.field(description="Whom the user follows, newest first. The user and admins only.")
    async def following(
        self, info: EngagementInfo, first: int | None = None, after: str | None = None
    ) -> FollowConnection | None:
        page = await info.context.service.follows.following(
            info.context.viewer, str(self.id), first=page_size(first), after=after
        )
        return FollowConnection(
            edges=[
                FollowEdge(cursor=c, node=User(id=strawberry.ID(u)))
                for u, c in zip(page.user_ids, page.cursors, strict=True)
            ],
            page_info=_page_info(page.cursors, page.has_next_page, after),
            total_count=page.total_count,
        )

    @strawberry.field(description="Watched videos, most recent first. The user only.")
    async def watch_history(
        self, info: EngagementInfo, first: int | None = None, after: str | None = None
    ) -> WatchHistoryConnection | None:
        page = await info.context.service.library.history(
            info.context.viewer, str(self.id), first=page_size(first), after=after
        )
        return WatchHistoryConnection(
            edges=[
                WatchHistoryEdge(cursor=c, node=WatchProgress.of(p))
                for p, c in zip(page.items, page.cursors, strict=True)
            ],
            page_info=_page_info(page.cursors, page.has_next_page, after),
            total_count=page.total_count,
        )

    @strawberry.field(
        description="Videos started and not finished, most recent first. The user only."
    )
    async def continue_watching(
        self, info: EngagementInfo, first: int | None = None
    ) -> list[WatchProgress] | None:
        items = await info.context.service.library.continue_watching(
            info.context.viewer, str(self.id), first=page_size(first, default=10)
        )
        return [WatchProgress.of(p) for p in items]

    @strawberry.field(description="The watch-later list, newest first. The user only.")
    async def watch_later(
        self, info: EngagementInfo, first: int | None = None, after: str | None = None
    ) -> SavedVideoConnection | None:
        return await _saved(info, str(self.id), "WATCH_LATER", first, after)

    @strawberry.field(description="Favorite videos, newest first. The user only.")
    async def favorites(
        self, info: EngagementInfo, first: int | None = None, after: str | None = None
    ) -> SavedVideoConnection | None:
        return await _saved(info, str(self.id), "FAVORITES", first, after)


async def _saved(
    info: EngagementInfo, user_id: str, name: str, first: int | None, after: str | None
) -> SavedVideoConnection:
    page = await info.context.service.library.saved(
        info.context.viewer, user_id, name, first=page_size(first), after=after
    )
    return SavedVideoConnection(
        edges=[
            SavedVideoEdge(cursor=c, node=Video(id=strawberry.ID(s.video_id)), added_at=s.added_at)
            for s, c in zip(page.items, page.cursors, strict=True)
        ],
        page_info=_page_info(page.cursors, page.has_next_page, after),
        total_count=page.total_count,
    )


@strawberry.federation.type(
    keys=["id"],
    description="A video. Its engagement is as visible as the video: zero and empty where "
    "the viewer may not see it.",
)
class Video:
    id: strawberry.ID

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> Video:
        return Video(id=id)

    async def _facts(self, info: EngagementInfo) -> VideoFacts | None:
        return await _video_facts(info, str(self.id))

    @strawberry.field
    async def like_count(self, info: EngagementInfo) -> int:
        facts = await self._facts(info)
        return facts.stats.like_count if facts else 0

    @strawberry.field
    async def dislike_count(self, info: EngagementInfo) -> int:
        facts = await self._facts(info)
        return facts.stats.dislike_count if facts else 0

    @strawberry.field(description="Comments and replies that are not deleted.")
    async def comment_count(self, info: EngagementInfo) -> int:
        facts = await self._facts(info)
        return facts.stats.comment_count if facts else 0

    @strawberry.field
    async def view_count(self, info: EngagementInfo) -> int:
        facts = await self._facts(info)
        return facts.stats.view_count if facts else 0

    @strawberry.field(description="The signed-in viewer's reaction; NONE when signed out.")
    async def viewer_reaction(self, info: EngagementInfo) -> ReactionKind:
        viewer = info.context.viewer
        if viewer is None or await self._facts(info) is None:
            return ReactionKind.NONE
        reactions = info.context.service.reactions

        async def fetch(ids: list[str]) -> dict[str, str]:
            return await reactions.viewer_reactions(viewer.subject, ids)

        kind = await _keyed(info, "viewer_reactions", fetch).load(str(self.id))
        return ReactionKind(kind or "NONE")

    @strawberry.field(description="Where the signed-in viewer stopped watching, if they did.")
    async def viewer_progress(self, info: EngagementInfo) -> WatchProgress | None:
        viewer = info.context.viewer
        if viewer is None or await self._facts(info) is None:
            return None
        library = info.context.service.library

        async def fetch(ids: list[str]) -> dict[str, view_rules.Progress]:
            return await library.progress_of(viewer.subject, ids)

        progress = await _keyed(info, "viewer_progress", fetch).load(str(self.id))
        return WatchProgress.of(progress) if progress else None

    async def _lists(self, info: EngagementInfo) -> set[str]:
        viewer = info.context.viewer
        if viewer is None or await self._facts(info) is None:
            return set()
        library = info.context.service.library

        async def fetch(ids: list[str]) -> dict[str, set[str]]:
            return await library.saved_lists(viewer.subject, ids)

        return set(await _keyed(info, "viewer_lists", fetch).load(str(self.id)) or ())

    @strawberry.field(description="Whether the video is on the signed-in viewer's watch later.")
    async def viewer_watch_later(self, info: EngagementInfo) -> bool:
        return "WATCH_LATER" in await self._lists(info)

    @strawberry.field(description="Whether the video is one of the signed-in viewer's favorites.")
    async def viewer_favorite(self, info: EngagementInfo) -> bool:
        return "FAVORITES" in await self._lists(info)

    @strawberry.field(description="Top-level comments; replies are under each comment.")
    async def comments(
        self,
        info: EngagementInfo,
        first: int | None = None,
        after: str | None = None,
        order_by: CommentOrder = CommentOrder.NEWEST,
    ) -> CommentConnection:
        size = page_size(first)
        if await self._facts(info) is None:
            return CommentConnection(edges=[], page_info=_page_info([], False, after))
        page = await info.context.service.comments.threads(
            str(self.id), order=order_by.value, first=size, after=after
        )
        return CommentConnection.of(page, after)


@strawberry.federation.type(keys=["id"], description="A live stream and its chat room.")
class LiveStream:
    id: strawberry.ID

    @classmethod
    def resolve_reference(cls, id: strawberry.ID) -> LiveStream:
        return LiveStream(id=id)

    @strawberry.field(description="Viewers watching now (signed-in viewers count once).")
    async def viewer_count(self, info: EngagementInfo) -> int:
        count = await _keyed(info, "viewer_counts", info.context.service.presence.counts).load(
            str(self.id)
        )
        return int(count or 0)

    @strawberry.field(description="Seconds each viewer waits between chat messages; 0 is off.")
    async def chat_slow_mode_seconds(self, info: EngagementInfo) -> int:
        room: models.ChatRoom | None = await _keyed(
            info, "rooms", info.context.service.chat.rooms
        ).load(str(self.id))
        return room.slow_mode_seconds if room else 0


# --- comments ---------------------------------------------------------------------------


@strawberry.type
class Comment:
    id: strawberry.ID
    video: Video
    parent_id: strawberry.ID | None
    body: str | None = strawberry.field(description="Null once the comment is deleted.")
    author: User | None = strawberry.field(description="Null once the comment is deleted.")
    created_at: datetime
    edited_at: datetime | None
    deleted: bool
    reply_count: int

    @strawberry.field(description="Replies, oldest first (replies have none).")
    async def replies(
        self, info: EngagementInfo, first: int | None = None, after: str | None = None
    ) -> CommentConnection:
        size = page_size(first)
        if self.parent_id is not None:
            return CommentConnection(edges=[], page_info=_page_info([], False, after))
        page = await info.context.service.comments.replies(str(self.id), first=size, after=after)
        return CommentConnection.of(page, after)

    @staticmethod
    def of(row: models.Comment) -> Comment:
        deleted = row.deleted_at is not None
        return Comment(
            id=strawberry.ID(row.id),
            video=Video(id=strawberry.ID(row.video_id)),
            parent_id=strawberry.ID(row.parent_id) if row.parent_id else None,
            body=None if deleted else row.body,
            author=User(id=strawberry.ID(row.author_id)) if row.author_id and not deleted else None,
            created_at=row.created_at,
            edited_at=row.edited_at,
            deleted=deleted,
            reply_count=row.reply_count,
        )


@strawberry.type
class CommentEdge:
    cursor: str
    node: Comment


@strawberry.type
class CommentConnection:
    edges: list[CommentEdge]
    page_info: PageInfo

    @staticmethod
    def of(page: Any, after: str | None) -> CommentConnection:
        return CommentConnection(
            edges=[
                CommentEdge(cursor=c, node=Comment.of(row))
                for row, c in zip(page.comments, page.cursors, strict=True)
            ],
            page_info=_page_info(page.cursors, page.has_next_page, after),
        )


# --- the viewer's library ---------------------------------------------------------------


@strawberry.type(description="How far a viewer got in a video.")
class WatchProgress:
    video: Video
    position_seconds: float
    duration_seconds: float | None
    completed: bool = strawberry.field(description="Watched past 95 % of the video.")
    watched_at: datetime

    @staticmethod
    def of(progress: view_rules.Progress) -> WatchProgress:
        return WatchProgress(
            video=Video(id=strawberry.ID(progress.video_id)),
            position_seconds=progress.position_seconds,
            duration_seconds=progress.duration_seconds,
            completed=progress.completed,
            watched_at=progress.watched_at,
        )


@strawberry.type
class WatchHistoryEdge:
    cursor: str
    node: WatchProgress


@strawberry.type
class WatchHistoryConnection:
    edges: list[WatchHistoryEdge]
    page_info: PageInfo
    total_count: int


@strawberry.type
class SavedVideoEdge:
    cursor: str
    node: Video
    added_at: datetime


@strawberry.type
class SavedVideoConnection:
    edges: list[SavedVideoEdge]
    page_info: PageInfo
    total_count: int


@strawberry.type
class FollowEdge:
    cursor: str
    node: User


@strawberry.type
class FollowConnection:
    edges: list[FollowEdge]
    page_info: PageInfo
    total_count: int


# --- analytics --------------------------------------------------------------------------


@strawberry.type
class VideoAnalytics:
    video: Video
    views: int
    unique_viewers: int
    watch_time_seconds: float
    average_view_duration_seconds: float = strawberry.field(
        description="Watch time divided by views."
    )
    completion_rate: float = strawberry.field(
        description="Share of viewing sessions that watched past 95 % of the video."
    )
    retention: list[float] = strawberry.field(
        description="Share of viewing sessions watching at 0 %, 5 %, … 95 % of the video "
        "(20 values; empty until the duration is known)."
    )


@strawberry.type
class TopVideo:
    video: Video
    views: int


@strawberry.type(description="Totals across the caller's videos.")
class CreatorDashboard:
    video_count: int
    views: int
    unique_viewers: int
    watch_time_seconds: float
    likes: int
    dislikes: int
    comments: int
    followers: int


@strawberry.type
class PlatformStats:
    users: int
    videos: int
    views: int
    watch_time_seconds: float
    likes: int
    dislikes: int
    comments: int
    follows: int
    live_streams: int
    live_viewers: int


# --- notifications ----------------------------------------------------------------------


@strawberry.type
class Notification:
    id: strawberry.ID
    kind: NotificationKind
    title: str
    actor: User
    created_at: datetime
    read: bool
    _subject: strawberry.Private[str]

    @strawberry.field(description="The new video, for NEW_VIDEO.")
    def video(self) -> Video | None:
        return (
            Video(id=strawberry.ID(self._subject))
            if self.kind is NotificationKind.NEW_VIDEO
            else None
        )

    @strawberry.field(description="The stream that went live, for LIVE_STARTED.")
    def stream(self) -> LiveStream | None:
        if self.kind is NotificationKind.LIVE_STARTED:
            return LiveStream(id=strawberry.ID(self._subject))
        return None

    @staticmethod
    def of(row: models.Notification) -> Notification:
        return Notification(
            id=strawberry.ID(str(row.id)),
            kind=NotificationKind(row.kind),
            title=row.title,
            actor=User(id=strawberry.ID(row.actor_id)),
            created_at=row.created_at,
            read=row.read_at is not None,
            _subject=row.subject_id,
        )


@strawberry.type
class NotificationEdge:
    cursor: str
    node: Notification


@strawberry.type
class NotificationConnection:
    edges: list[NotificationEdge]
    page_info: PageInfo
    unread_count: int


# --- chat -------------------------------------------------------------------------------


@strawberry.type
class ChatMessage:
    id: strawberry.ID
    stream: LiveStream
    body: str
    author: User | None
    created_at: datetime

    @staticmethod
    def of(row: models.ChatMessage) -> ChatMessage:
        return ChatMessage(
            id=strawberry.ID(row.id),
            stream=LiveStream(id=strawberry.ID(row.stream_id)),
            body=row.body,
            author=User(id=strawberry.ID(row.author_id)) if row.author_id else None,
            created_at=row.created_at,
        )


@strawberry.type(description="A chat message a moderator removed.")
class DeletedChatMessage:
    id: strawberry.ID
    stream: LiveStream


@strawberry.type
class ChatBan:
    stream: LiveStream
    user: User
    until: datetime | None = strawberry.field(description="Null: until the ban is lifted.")


class RecentIds:
    """Ids already delivered to one subscriber: the bus delivers at least once."""

    def __init__(self, size: int = 1000) -> None:
        self.size = size
        self._seen: OrderedDict[str, None] = OrderedDict()

    def first_time(self, key: str) -> bool:
        if key in self._seen:
            return False
        self._seen[key] = None
        if len(self._seen) > self.size:
            self._seen.popitem(last=False)
        return True


# --- roots ------------------------------------------------------------------------------


@strawberry.type
class Query:
    @strawberry.field(description="The signed-in user's notifications, newest first.")
    async def notifications(
        self, info: EngagementInfo, first: int | None = None, after: str | None = None
    ) -> NotificationConnection:
        page = await info.context.service.follows.notifications(
            info.context.viewer, first=page_size(first), after=after
        )
        return NotificationConnection(
            edges=[
                NotificationEdge(cursor=c, node=Notification.of(n))
                for n, c in zip(page.notifications, page.cursors, strict=True)
            ],
            page_info=_page_info(page.cursors, page.has_next_page, after),
            unread_count=page.unread_count,
        )

    @strawberry.field(
        description="The newest chat messages of a stream, oldest first (at most 100)."
    )
    async def chat_messages(
        self, info: EngagementInfo, stream_id: strawberry.ID, last: int = 50
    ) -> list[ChatMessage]:
        rows = await info.context.service.chat.history(str(stream_id), last)
        return [ChatMessage.of(row) for row in rows]

    @strawberry.field(description="The video's owner and admins only.")
    async def video_analytics(
        self, info: EngagementInfo, video_id: strawberry.ID
    ) -> VideoAnalytics:
        result = await info.context.service.views.analytics(info.context.viewer, str(video_id))
        return VideoAnalytics(
            video=Video(id=strawberry.ID(result.video_id)),
            views=result.views,
            unique_viewers=result.unique_viewers,
            watch_time_seconds=result.watch_time_seconds,
            average_view_duration_seconds=result.average_view_duration_seconds,
            completion_rate=result.completion_rate,
            retention=result.retention,
        )

    @strawberry.field(description="The most viewed public videos of the period.")
    async def top_videos(
        self, info: EngagementInfo, period: ViewPeriod = ViewPeriod.WEEK, first: int = 10
    ) -> list[TopVideo]:
        ranked = await info.context.service.views.top_videos(period.value, page_size(first))
        return [TopVideo(video=Video(id=strawberry.ID(v)), views=n) for v, n in ranked]

    @strawberry.field(description="Totals across the signed-in creator's videos.")
    async def creator_dashboard(self, info: EngagementInfo) -> CreatorDashboard:
        totals = await info.context.service.views.dashboard(info.context.viewer)
        return CreatorDashboard(**vars(totals))

    @strawberry.field(description="Admins only.")
    async def platform_stats(self, info: EngagementInfo) -> PlatformStats:
        totals = await info.context.service.views.platform(info.context.viewer)
        return PlatformStats(**vars(totals))


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Like, dislike, or take the reaction back (NONE).")
    async def react(
        self, info: EngagementInfo, video_id: strawberry.ID, reaction: ReactionKind
    ) -> Video:
        video = await info.context.service.reactions.react(
            info.context.viewer, str(video_id), reaction.value
        )
        return Video(id=strawberry.ID(video))

    @strawberry.mutation(description="Comment on a video, or reply to a comment (parentId).")
    async def add_comment(
        self,
        info: EngagementInfo,
        video_id: strawberry.ID,
        body: str,
        parent_id: strawberry.ID | None = None,
    ) -> Comment:
        row = await info.context.service.comments.add(
            info.context.viewer, str(video_id), body, str(parent_id) if parent_id else None
        )
        return Comment.of(row)

    @strawberry.mutation(description="The author only.")
    async def edit_comment(
        self, info: EngagementInfo, comment_id: strawberry.ID, body: str
    ) -> Comment:
        row = await info.context.service.comments.edit(info.context.viewer, str(comment_id), body)
        return Comment.of(row)

    @strawberry.mutation(description="The author, the video's owner or an admin.")
    async def delete_comment(self, info: EngagementInfo, comment_id: strawberry.ID) -> bool:
        return await info.context.service.comments.delete(info.context.viewer, str(comment_id))

    @strawberry.mutation(
        description="A progress ping from the player: the resume position, and views and "
        "watch time. Signed-out viewers send a clientId (16-64 of A-Z a-z 0-9 - _), kept by "
        "the client, so their views count once; a few client ids per client address count "
        "toward a video at a time."
    )
    async def record_watch_progress(
        self,
        info: EngagementInfo,
        video_id: strawberry.ID,
        position_seconds: float,
        client_id: str | None = None,
    ) -> WatchProgress:
        progress = await info.context.service.views.record(
            info.context.viewer,
            str(video_id),
            position_seconds,
            client_id,
            address=info.context.client_ip,
        )
        return WatchProgress.of(progress)

    @strawberry.mutation(description="Returns how many entries were removed.")
    async def clear_watch_history(self, info: EngagementInfo) -> int:
        return await info.context.service.library.clear_history(info.context.viewer)

    @strawberry.mutation(description="False when the video was not in the history.")
    async def remove_from_watch_history(
        self, info: EngagementInfo, video_id: strawberry.ID
    ) -> bool:
        return await info.context.service.library.remove_from_history(
            info.context.viewer, str(video_id)
        )

    @strawberry.mutation
    async def add_to_watch_later(self, info: EngagementInfo, video_id: strawberry.ID) -> Video:
        saved = await info.context.service.library.save(
            info.context.viewer, "WATCH_LATER", str(video_id)
        )
        return Video(id=strawberry.ID(saved))

    @strawberry.mutation(description="False when the video was not on the list.")
    async def remove_from_watch_later(self, info: EngagementInfo, video_id: strawberry.ID) -> bool:
        return await info.context.service.library.unsave(
            info.context.viewer, "WATCH_LATER", str(video_id)
        )

    @strawberry.mutation
    async def add_to_favorites(self, info: EngagementInfo, video_id: strawberry.ID) -> Video:
        saved = await info.context.service.library.save(
            info.context.viewer, "FAVORITES", str(video_id)
        )
        return Video(id=strawberry.ID(saved))

    @strawberry.mutation(description="False when the video was not on the list.")
    async def remove_from_favorites(self, info: EngagementInfo, video_id: strawberry.ID) -> bool:
        return await info.context.service.library.unsave(
            info.context.viewer, "FAVORITES", str(video_id)
        )

    @strawberry.mutation(description="Returns the followed user.")
    async def follow(self, info: EngagementInfo, user_id: strawberry.ID) -> User:
        followed = await info.context.service.follows.follow(info.context.viewer, str(user_id))
        return User(id=strawberry.ID(followed))

    @strawberry.mutation(description="Returns the user no longer followed.")
    async def unfollow(self, info: EngagementInfo, user_id: strawberry.ID) -> User:
        unfollowed = await info.context.service.follows.unfollow(info.context.viewer, str(user_id))
        return User(id=strawberry.ID(unfollowed))

    @strawberry.mutation(
        description="Mark the signed-in user's notifications read: those listed, or all. "
        "Returns how many changed."
    )
    async def mark_notifications_read(
        self, info: EngagementInfo, ids: list[strawberry.ID] | None = None
    ) -> int:
        return await info.context.service.follows.mark_read(
            info.context.viewer, [str(i) for i in ids] if ids is not None else None
        )

    @strawberry.mutation
    async def send_chat_message(
        self, info: EngagementInfo, stream_id: strawberry.ID, body: str
    ) -> ChatMessage:
        row = await info.context.service.chat.send(info.context.viewer, str(stream_id), body)
        return ChatMessage.of(row)

    @strawberry.mutation(description="The stream's owner or an admin.")
    async def delete_chat_message(self, info: EngagementInfo, id: strawberry.ID) -> bool:
        return await info.context.service.chat.delete(info.context.viewer, str(id))

    @strawberry.mutation(
        description="The stream's owner or an admin. Without durationSeconds the ban lasts "
        "until lifted."
    )
    async def ban_from_chat(
        self,
        info: EngagementInfo,
        stream_id: strawberry.ID,
        user_id: strawberry.ID,
        duration_seconds: int | None = None,
    ) -> ChatBan:
        ban = await info.context.service.chat.ban(
            info.context.viewer, str(stream_id), str(user_id), duration_seconds
        )
        return ChatBan(
            stream=LiveStream(id=strawberry.ID(ban.stream_id)),
            user=User(id=strawberry.ID(ban.user_id)),
            until=ban.until,
        )

    @strawberry.mutation(description="The stream's owner or an admin. False when not banned.")
    async def unban_from_chat(
        self, info: EngagementInfo, stream_id: strawberry.ID, user_id: strawberry.ID
    ) -> bool:
        return await info.context.service.chat.unban(
            info.context.viewer, str(stream_id), str(user_id)
        )

    @strawberry.mutation(description="The stream's owner or an admin; 0 turns slow mode off.")
    async def set_slow_mode(
        self, info: EngagementInfo, stream_id: strawberry.ID, seconds: int
    ) -> LiveStream:
        room = await info.context.service.chat.set_slow_mode(
            info.context.viewer, str(stream_id), seconds
        )
        return LiveStream(id=strawberry.ID(room.id))


@strawberry.type
class Subscription:
    @strawberry.subscription(description="Every chat message sent to the stream from now on.")
    async def chat_message_added(
        self, info: EngagementInfo, stream_id: strawberry.ID
    ) -> AsyncGenerator[ChatMessage, None]:
        room = await info.context.service.chat.room(str(stream_id))
        seen = RecentIds()
        async with info.context.bus.subscribe(events.CHAT_MESSAGE_ADDED) as messages:
            async for message in messages:
                payload = message.payload
                if payload.get("streamId") != room.id or not seen.first_time(
                    str(payload.get("messageId"))
                ):
                    continue
                yield ChatMessage(
                    id=strawberry.ID(payload["messageId"]),
                    stream=LiveStream(id=strawberry.ID(room.id)),
                    body=payload["body"],
                    author=User(id=strawberry.ID(payload["authorId"])),
                    created_at=datetime.fromisoformat(payload["createdAt"]),
                )

    @strawberry.subscription(description="Chat messages moderators remove, from now on.")
    async def chat_message_deleted(
        self, info: EngagementInfo, stream_id: strawberry.ID
    ) -> AsyncGenerator[DeletedChatMessage, None]:
        room = await info.context.service.chat.room(str(stream_id))
        seen = RecentIds()
        async with info.context.bus.subscribe(events.CHAT_MESSAGE_DELETED) as messages:
            async for message in messages:
                payload = message.payload
                if payload.get("streamId") != room.id or not seen.first_time(
                    str(payload.get("messageId"))
                ):
                    continue
                yield DeletedChatMessage(
                    id=strawberry.ID(payload["messageId"]),
                    stream=LiveStream(id=strawberry.ID(room.id)),
                )

    @strawberry.subscription(
        description="The stream's viewer count now, then each time it changes. Holding this "
        "subscription open is what makes the caller a viewer (signed out: up to a few per "
        "client address)."
    )
    async def viewer_count_changed(
        self, info: EngagementInfo, stream_id: strawberry.ID
    ) -> AsyncGenerator[int, None]:
        presence = info.context.service.presence
        # Subscribed before joining, so no change after our own join can be missed.
        async with info.context.bus.subscribe(events.CHAT_VIEWERS) as messages:
            joined = await presence.join(
                info.context.viewer, str(stream_id), address=info.context.client_ip
            )
            try:
                count, version = joined.viewer_count, joined.version
                yield count
                async for message in messages:
                    payload = message.payload
                    if (
                        payload.get("streamId") != joined.stream_id
                        or payload.get("version", 0) <= version
                    ):
                        continue
                    version = int(payload["version"])
                    if payload.get("viewerCount") != count:
                        count = int(payload["viewerCount"])
                        yield count
            finally:
                # The subscription is being cancelled: leaving must still finish.
                await asyncio.shield(presence.leave(joined.connection_id))

    @strawberry.subscription(description="The signed-in user's new notifications.")
    async def notification_added(self, info: EngagementInfo) -> AsyncGenerator[Notification, None]:
        me = info.context.require_viewer().subject
        seen = RecentIds()
        async with info.context.bus.subscribe(events.NOTIFICATION_ADDED) as messages:
            async for message in messages:
                payload = message.payload
                for recipient in payload.get("recipients") or ():
                    if recipient.get("userId") != me:
                        continue
                    if not seen.first_time(str(recipient.get("notificationId"))):
                        continue
                    yield Notification(
                        id=strawberry.ID(str(recipient["notificationId"])),
                        kind=NotificationKind(payload["kind"]),
                        title=payload.get("title", ""),
                        actor=User(id=strawberry.ID(payload["actorId"])),
                        created_at=datetime.fromisoformat(payload["createdAt"]),
                        read=False,
                        _subject=payload["subjectId"],
                    )


schema: Schema = subgraph_schema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    types=[User, Video, LiveStream],
)
