"""Engagement's tables: what viewers do around videos and streams, the counters creators read,
and the projections of users, videos and streams built from other services' events."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from subgraphs.kernel.db import UTCDateTime
from subgraphs.kernel.outbox import define_inbox, define_outbox


class EngagementTable(SQLModel, registry=registry()):
    """Base of every engagement table, so engagement's metadata holds engagement's tables only."""


def _id() -> str:
    return Field(primary_key=True, max_length=36)  # type: ignore[no-any-return]


def _when(*, nullable: bool = False) -> datetime:
    if nullable:
        return Field(default=None, sa_column=Column(UTCDateTime, nullable=True))  # type: ignore[no-any-return]
    return Field(sa_column=Column(UTCDateTime, nullable=False))  # type: ignore[no-any-return]


# --- projections of other services' data (from the bus) ---------------------------------
# `version` is the bus publish time of the newest event applied: events of different topics
# may be consumed out of order, and an older one must not undo a newer one.


class KnownUser(EngagementTable, table=True):
    __tablename__ = "users"

    id: str = _id()
    role: str = Field(max_length=16)
    suspended: bool = False
    deleted: bool = False
    version: float = 0.0


class KnownVideo(EngagementTable, table=True):
    __tablename__ = "videos"

    id: str = _id()
    owner_id: str = Field(max_length=36, index=True)
    title: str = Field(default="", max_length=500)
    # None until an event that carries it arrives (events of different topics race).
    visibility: str | None = Field(default=None, max_length=16)
    status: str = Field(max_length=16)
    duration_seconds: float | None = None
    deleted: bool = False
    # Set once the video was announced to its owner's followers, so it never is again.
    announced: bool = False
    version: float = 0.0


class ChatRoom(EngagementTable, table=True):
    """A live stream as engagement knows it: the chat room and its moderation settings."""

    __tablename__ = "chat_rooms"

    id: str = _id()
    owner_id: str = Field(max_length=36, index=True)
    title: str = Field(default="", max_length=500)
    status: str = Field(default="OFFLINE", max_length=16)
    deleted: bool = False
    version: float = 0.0
    slow_mode_seconds: int = 0
    # Sequence of the last message, bumped under the room's row lock.
    last_seq: int = 0
    # Bumped with every presence change, so subscribers drop counts that arrive late.
    presence_version: int = 0


# --- counters, updated by deltas inside the transaction of the change ---------------------


class VideoStats(EngagementTable, table=True):
    __tablename__ = "video_stats"

    video_id: str = _id()
    like_count: int = 0
    dislike_count: int = 0
    comment_count: int = 0
    view_count: int = 0
    unique_viewers: int = 0
    watch_seconds: float = 0.0
    sessions: int = 0
    completed_sessions: int = 0


class VideoRetention(EngagementTable, table=True):
    """How many viewing sessions watched the video at one of its 20 points (0 %, 5 %, … 95 %)."""

    __tablename__ = "video_retention"

    video_id: str = Field(primary_key=True, max_length=36)
    point: int = Field(primary_key=True)
    sessions: int = 0


class UserStats(EngagementTable, table=True):
    __tablename__ = "user_stats"

    user_id: str = _id()
    follower_count: int = 0
    following_count: int = 0


# --- what viewers do ------------------------------------------------------------------------


class Reaction(EngagementTable, table=True):
    __tablename__ = "reactions"

    video_id: str = Field(primary_key=True, max_length=36)
    user_id: str = Field(primary_key=True, max_length=36, index=True)
    kind: str = Field(max_length=8)
    updated_at: datetime = _when()


class Comment(EngagementTable, table=True):
    __tablename__ = "comments"
    __table_args__ = (
        Index("ix_comments_video_parent_created", "video_id", "parent_id", "created_at"),
        Index("ix_comments_parent_created", "parent_id", "created_at"),
    )

    id: str = _id()
    video_id: str = Field(max_length=36)
    parent_id: str | None = Field(default=None, max_length=36)
    author_id: str | None = Field(default=None, max_length=36, index=True)
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = _when()
    edited_at: datetime | None = _when(nullable=True)
    deleted_at: datetime | None = _when(nullable=True)
    # Replies that are not deleted; kept exact with deltas like every other counter.
    reply_count: int = 0


class WatchHistory(EngagementTable, table=True):
    __tablename__ = "watch_history"
    __table_args__ = (Index("ix_watch_history_user_watched", "user_id", "watched_at"),)

    user_id: str = Field(primary_key=True, max_length=36)
    video_id: str = Field(primary_key=True, max_length=36, index=True)
    position_seconds: float
    watched_at: datetime = _when()


class SavedVideo(EngagementTable, table=True):
    """A video on one of a user's lists: WATCH_LATER or FAVORITES."""

    __tablename__ = "saved_videos"
    __table_args__ = (Index("ix_saved_videos_user_list_added", "user_id", "list", "added_at"),)

    user_id: str = Field(primary_key=True, max_length=36)
    list: str = Field(primary_key=True, max_length=16)
    video_id: str = Field(primary_key=True, max_length=36, index=True)
    added_at: datetime = _when()


class VideoViewer(EngagementTable, table=True):
    """One viewer of one video (`u:<userId>` or `c:<clientId>`): their current viewing session
    and when their last view counted."""

    __tablename__ = "video_viewers"

    video_id: str = Field(primary_key=True, max_length=36)
    viewer_key: str = Field(primary_key=True, max_length=80, index=True)
    views: int = 0
    last_view_at: float | None = None
    session_started_at: float
    last_ping_at: float
    last_position: float
    session_watched: float = 0.0
    session_coverage: int = 0
    session_counted: bool = False
    session_completed: bool = False


class AnonymousViewer(EngagementTable, table=True):
    """A signed-out viewer (`c:<clientId>`) whose pings count toward a video from one client
    address, until `anonymous_viewer_window` after its last ping; an address holds at most
    `anonymous_viewers_per_ip` of them per video. Idle rows are swept, so addresses (kept as
    digests) are not kept for longer than that."""

    __tablename__ = "anonymous_viewers"

    video_id: str = Field(primary_key=True, max_length=36)
    address: str = Field(primary_key=True, max_length=32)
    viewer_key: str = Field(primary_key=True, max_length=80)
    last_seen_at: float = Field(index=True)


class View(EngagementTable, table=True):
    """One counted view, kept for views per period."""

    __tablename__ = "views"
    __table_args__ = (Index("ix_views_counted_video", "counted_at", "video_id"),)

    id: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    video_id: str = Field(max_length=36, index=True)
    viewer_key: str = Field(max_length=80, index=True)
    counted_at: float


class Follow(EngagementTable, table=True):
    __tablename__ = "follows"
    __table_args__ = (Index("ix_follows_followee_created", "followee_id", "created_at"),)

    follower_id: str = Field(primary_key=True, max_length=36)
    followee_id: str = Field(primary_key=True, max_length=36)
    created_at: datetime = _when()


class Notification(EngagementTable, table=True):
    __tablename__ = "notifications"
    __table_args__ = (
        # One notification per recipient and occurrence, however often the event is delivered.
        UniqueConstraint("user_id", "kind", "subject_id", "occurrence"),
        Index("ix_notifications_user_id", "user_id", "id"),
    )

    id: int | None = Field(
        default=None,
        sa_column=Column(
            BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
        ),
    )
    user_id: str = Field(max_length=36)
    kind: str = Field(max_length=16)
    subject_id: str = Field(max_length=36, index=True)
    occurrence: str = Field(default="", max_length=64)
    actor_id: str = Field(max_length=36, index=True)
    title: str = Field(default="", max_length=500)
    created_at: datetime = _when()
    read_at: datetime | None = _when(nullable=True)


# --- live chat ------------------------------------------------------------------------------


class ChatMessage(EngagementTable, table=True):
    __tablename__ = "chat_messages"
    __table_args__ = (UniqueConstraint("stream_id", "seq"),)

    id: str = _id()
    stream_id: str = Field(max_length=36)
    seq: int
    author_id: str | None = Field(default=None, max_length=36, index=True)
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = _when()
    deleted_at: datetime | None = _when(nullable=True)


class ChatBan(EngagementTable, table=True):
    __tablename__ = "chat_bans"

    stream_id: str = Field(primary_key=True, max_length=36)
    user_id: str = Field(primary_key=True, max_length=36, index=True)
    # None: until lifted.
    until: datetime | None = _when(nullable=True)
    banned_by: str = Field(max_length=36)
    created_at: datetime = _when()


class ChatSender(EngagementTable, table=True):
    """When a user last sent to a room: the per-user send rate, shared by every replica."""

    __tablename__ = "chat_senders"

    stream_id: str = Field(primary_key=True, max_length=36)
    user_id: str = Field(primary_key=True, max_length=36, index=True)
    last_sent_at: float


class Presence(EngagementTable, table=True):
    """One open `viewerCountChanged` subscription, renewed by its replica until it closes."""

    __tablename__ = "presence"

    connection_id: str = Field(primary_key=True, max_length=36)
    stream_id: str = Field(max_length=36, index=True)
    viewer_key: str = Field(sa_column=Column(String(80), nullable=False))
    replica_id: str = Field(max_length=64, index=True)
    expires_at: float = Field(index=True)


metadata = EngagementTable.metadata
outbox = define_outbox(metadata)
inbox = define_inbox(metadata)
