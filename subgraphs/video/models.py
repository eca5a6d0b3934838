"""The video service's tables: categories, videos and their tags, resumable uploads and their
parts, live streams, the playback sessions billing ended and the accounts auth deleted. The
full-text search index is backend-specific and lives in `search.py`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Float, ForeignKey, Index, String, Text
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from subgraphs.kernel.db import UTCDateTime
from subgraphs.kernel.outbox import define_inbox, define_outbox


class VideoTable(SQLModel, registry=registry()):
    """Base of every video table, so video's metadata holds video's tables only."""


class Category(VideoTable, table=True):
    """A fixed topic a video is filed under; seeded by the migrations with stable ids."""

    __tablename__ = "categories"

    # The slug is the id: stable across installs, readable in URLs and filters.
    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=60)
    position: int


class Video(VideoTable, table=True):
    __tablename__ = "videos"
    __table_args__ = (
        # The public listings: PUBLIC READY videos by date or by title.
        Index("ix_videos_listing_created", "visibility", "status", "created_at", "id"),
        Index("ix_videos_listing_title", "visibility", "status", "title_key", "id"),
        Index("ix_videos_owner_created", "owner_id", "created_at", "id"),
    )

    id: str = Field(primary_key=True, max_length=36)
    owner_id: str = Field(max_length=36)
    title: str = Field(max_length=100)
    # The title folded (case, diacritics), compared bytewise, so ordering by title is the
    # same on every backend.
    title_key: str = Field(
        sa_column=Column(
            String(100).with_variant(String(100, collation="C"), "postgresql"), nullable=False
        )
    )
    description: str = Field(sa_column=Column(Text, nullable=False))
    category_id: str = Field(foreign_key="categories.id", max_length=40, index=True)
    # The tags as the owner wrote them, as a JSON list; `video_tags` holds the lookup keys.
    tags: str = Field(sa_column=Column(Text, nullable=False))
    visibility: str = Field(max_length=16)
    status: str = Field(max_length=16)
    failure_code: str | None = Field(default=None, max_length=40)
    failure_reason: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    processing_progress: float = 0.0
    filename: str = Field(max_length=255)
    size_bytes: int = Field(sa_column=Column(BigInteger, nullable=False))
    duration_seconds: float | None = None
    # The worker's `media.ready` document (paths relative to videos/<id>/), once READY.
    media: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    published_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime, nullable=True)
    )
    # The price billing announced (`billing.price.updated`), in minor units per minute; 0 is
    # free. Billing owns prices: this copy only decides who gets the media (paid.py).
    price_per_minute: int = Field(
        default=0, sa_column=Column(BigInteger, nullable=False, server_default="0")
    )
    price_currency: str | None = Field(default=None, max_length=3)
    # Bus publish time of the price event applied: a late, older one never overwrites it.
    price_event_at: float = Field(
        default=0.0, sa_column=Column(Float, nullable=False, server_default="0")
    )


class VideoTag(VideoTable, table=True):
    """One tag of a video, folded, for the tag filter."""

    __tablename__ = "video_tags"

    video_id: str = Field(
        sa_column=Column(String(36), ForeignKey("videos.id", ondelete="CASCADE"), primary_key=True)
    )
    tag: str = Field(primary_key=True, max_length=30, index=True)


class Upload(VideoTable, table=True):
    """A resumable (tus) upload of one video's source. `offset` counts the bytes stored in
    recorded parts; it only moves forward, by a conditional update, so racing PATCHes on any
    replica cannot both land."""

    __tablename__ = "uploads"

    id: str = Field(primary_key=True, max_length=36)
    video_id: str = Field(
        sa_column=Column(
            String(36), ForeignKey("videos.id", ondelete="CASCADE"), nullable=False, unique=True
        )
    )
    owner_id: str = Field(max_length=36, index=True)
    length: int = Field(sa_column=Column(BigInteger, nullable=False))
    offset: int = Field(sa_column=Column(BigInteger, nullable=False))
    # The client's Upload-Metadata header, echoed on HEAD as tus asks.
    upload_metadata: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    expires_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False, index=True))
    completed_at: datetime | None = Field(
        default=None, sa_column=Column(UTCDateTime, nullable=True)
    )


class UploadPart(VideoTable, table=True):
    """The bytes one PATCH stored, as their own storage object, recorded once accepted."""

    __tablename__ = "upload_parts"

    upload_id: str = Field(
        sa_column=Column(String(36), ForeignKey("uploads.id", ondelete="CASCADE"), primary_key=True)
    )
    offset: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    size: int = Field(sa_column=Column(BigInteger, nullable=False))
    key: str = Field(max_length=300)


class LiveStream(VideoTable, table=True):
    __tablename__ = "live_streams"
    __table_args__ = (Index("ix_live_streams_owner_created", "owner_id", "created_at"),)

    id: str = Field(primary_key=True, max_length=36)
    owner_id: str = Field(max_length=36)
    title: str = Field(max_length=100)
    status: str = Field(max_length=16)
    # Shown to its owner, so kept as is; unique so live ingest can look a stream up by it.
    stream_key: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    updated_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


class EndedPlaybackSession(VideoTable, table=True):
    """A playback session billing ended (`billing.playback.ended`): its tokens stop opening
    media at once instead of at their `exp`. Kept until no token of it can still be valid."""

    __tablename__ = "ended_playback_sessions"

    session_id: str = Field(primary_key=True, max_length=36)
    video_id: str = Field(max_length=36)
    reason: str = Field(max_length=24)
    # When video learned of it (pruning counts from here, never from a clock of billing's).
    recorded_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False, index=True))


class DeletedAccount(VideoTable, table=True):
    """An account auth deleted (`auth.user.deleted`). Its access tokens stay valid until they
    expire, so what it would still create or change is refused here instead."""

    __tablename__ = "deleted_accounts"

    user_id: str = Field(primary_key=True, max_length=36)
    deleted_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))


metadata = VideoTable.metadata
outbox = define_outbox(metadata)
inbox = define_inbox(metadata)
