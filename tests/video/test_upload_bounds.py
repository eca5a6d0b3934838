"""What one user's resumable uploads may take, on a real, migrated database (SQLite and
PostgreSQL) and real local storage: a bounded number of parts per upload (cut-off PATCHes
included), a bounded number of uploads waiting for bytes, and nothing at all from an account
auth deleted. The HTTP answers are in test_tus.py and test_lifecycle.py."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.engine import make_url
from sqlmodel import col

from subgraphs.kernel.bus import open_bus
from subgraphs.kernel.db import Database, utcnow
from subgraphs.kernel.errors import NotFound, Unauthenticated
from subgraphs.kernel.migrations import upgrade
from subgraphs.kernel.settings import Settings
from subgraphs.kernel.storage import open_storage
from subgraphs.kernel.tokens import AccessClaims
from subgraphs.video.models import Upload, UploadPart
from subgraphs.video.search import SearchIndex
from subgraphs.video.service import VideoChanges, VideoDraft, VideoService
from subgraphs.video.uploads import PartTooSmall, TooManyUploads, UploadService, source_key
from tests.kernel.test_migrations import _drop
from tests.support.processes import POSTGRES_SERVER

MAX_PARTS = 4
MAX_OPEN = 2
LENGTH = 4000
SHARE = LENGTH // MAX_PARTS  # the fewest bytes a PATCH but the last may carry


@dataclass
class Video:
    service: VideoService
    uploads: UploadService
    db: Database


@pytest.fixture(params=["sqlite", "postgres"])
async def video(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Video]:
    name = f"rgtest_bounds_{uuid.uuid4().hex[:10]}"
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'video.db'}"
    else:
        url = (
            make_url(POSTGRES_SERVER)
            .set(drivername="postgresql+asyncpg", database=name)
            .render_as_string(hide_password=False)
        )
    await upgrade("video", url)
    settings = Settings(
        data_dir=tmp_path, video_upload_max_parts=MAX_PARTS, video_max_open_uploads=MAX_OPEN
    )
    db = Database(url)
    storage = open_storage(settings)
    bus = open_bus(settings)
    service = VideoService(
        db=db,
        storage=storage,
        search=SearchIndex(db.engine.dialect.name),
        settings=settings,
        bus=bus,
    )
    uploads = UploadService(db=db, storage=storage, videos=service, settings=settings)
    try:
        yield Video(service, uploads, db)
    finally:
        await uploads.wait_for_finalizing()
        await bus.close()
        await storage.close()
        await db.dispose()
        if request.param == "postgres":
            await _drop(POSTGRES_SERVER, name)


def _person(role: str = "CREATOR") -> AccessClaims:
    now = int(time.time())
    return AccessClaims(str(uuid.uuid4()), role, uuid.uuid4().hex, now, now + 900)


DRAFT = VideoDraft.of(
    title="Bounded",
    description=None,
    category_id="music",
    tags=None,
    visibility="PUBLIC",
    filename="clip.mp4",
)


async def _body(data: bytes) -> AsyncIterator[bytes]:
    # In a few chunks, as a request body arrives.
    for start in range(0, len(data), 300):
        yield data[start : start + 300]


async def _parts(video: Video, upload_id: str) -> int:
    async with video.db.transaction() as session:
        query = (
            select(func.count())
            .select_from(UploadPart)
            .where(col(UploadPart.upload_id) == upload_id)
        )
        return int((await session.execute(query)).scalar_one())


async def _stored(video: Video, video_id: str) -> list[str]:
    return [o.key async for o in video.uploads.storage.list(f"uploads/{video_id}/parts/")]


async def test_every_part_but_the_last_carries_a_share_and_the_last_finishes_the_upload(
    video: Video,
) -> None:
    creator = _person()
    data = os.urandom(LENGTH)
    created, upload = await video.uploads.create(creator, DRAFT, LENGTH)

    async def append(start: int, end: int, *, declared: bool = False, cut: bool = False) -> Upload:
        return await video.uploads.append(
            creator,
            upload.id,
            offset=start,
            body=_body(data[start:end]),
            interrupted=lambda: cut,
            content_length=end - start if declared else None,
        )

    # Too small, declared or not: refused, nothing stored.
    with pytest.raises(PartTooSmall, match=f"at least {SHARE} bytes"):
        await append(0, 10, declared=True)
    with pytest.raises(PartTooSmall, match=f"at least {SHARE} bytes"):
        await append(0, 10)
    assert await _stored(video, created.id) == []

    assert (await append(0, SHARE)).offset == SHARE
    # A cut-off PATCH keeps what arrived, however little: the client resumes after it.
    assert (await append(SHARE, SHARE + 200, cut=True)).offset == SHARE + 200
    at = SHARE + 200
    assert (await append(at, at + SHARE)).offset == at + SHARE
    at += SHARE
    assert await _parts(video, upload.id) == MAX_PARTS - 1

    # One part left: it must carry every remaining byte.
    with pytest.raises(PartTooSmall, match=f"all {LENGTH - at} remaining bytes"):
        await append(at, at + SHARE, declared=True)
    with pytest.raises(PartTooSmall, match=f"all {LENGTH - at} remaining bytes"):
        await append(at, at + SHARE)
    # Cut off, it is dropped (not kept, as it would leave the upload no part to finish with);
    # the client resumes from the same offset.
    dropped = await append(at, LENGTH - 1, cut=True)
    assert dropped.offset == at
    assert await _parts(video, upload.id) == MAX_PARTS - 1
    assert len(await _stored(video, created.id)) == MAX_PARTS - 1

    assert (await append(at, LENGTH)).offset == LENGTH
    await video.uploads.wait_for_finalizing()
    assert await video.uploads.storage.get(source_key(created.id)) == data


async def test_small_uploads_take_small_parts(video: Video) -> None:
    creator = _person()
    _, upload = await video.uploads.create(creator, DRAFT, 10)
    for offset in (0, 3, 6):
        current = await video.uploads.append(creator, upload.id, offset=offset, body=_body(b"xyz"))
        assert current.offset == offset + 3
    # Four parts at most: the fourth is the last byte.
    done = await video.uploads.append(creator, upload.id, offset=9, body=_body(b"x"))
    assert done.offset == 10


async def test_a_user_holds_a_bounded_number_of_uploads_waiting_for_bytes(video: Video) -> None:
    creator, other = _person(), _person()
    first = (await video.uploads.create(creator, DRAFT, 10))[1]
    second = (await video.uploads.create(creator, DRAFT, 10))[1]
    with pytest.raises(TooManyUploads) as refused:
        await video.uploads.create(creator, DRAFT, 10)
    assert refused.value.extensions == {"limit": MAX_OPEN}
    # Per user: someone else still starts theirs.
    await video.uploads.create(other, DRAFT, 10)

    # A finished upload no longer counts…
    await video.uploads.append(creator, first.id, offset=0, body=_body(b"0123456789"))
    third = (await video.uploads.create(creator, DRAFT, 10))[1]
    # …nor an expired one (the sweep deletes it)…
    async with video.db.transaction() as session:
        await session.execute(
            update(Upload)
            .where(col(Upload.id) == second.id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    await video.uploads.create(creator, DRAFT, 10)
    with pytest.raises(TooManyUploads):
        await video.uploads.create(creator, DRAFT, 10)
    # …nor a deleted one.
    await video.uploads.terminate(creator, third.id)
    await video.uploads.create(creator, DRAFT, 10)


async def test_a_deleted_account_creates_and_changes_nothing(video: Video) -> None:
    creator, admin, other = _person(), _person("ADMIN"), _person()
    others, _ = await video.uploads.create(other, DRAFT, 10)
    _, upload = await video.uploads.create(creator, DRAFT, 10)

    # auth.user.deleted for both (its consumer's handler, as the bus delivers it).
    await video.service.delete_user_content("m-1", {"userId": creator.subject})
    await video.service.delete_user_content("m-2", {"userId": admin.subject})

    attempts: list[Callable[[], Awaitable[object]]] = [
        lambda: video.uploads.create(creator, DRAFT, 10),
        lambda: video.uploads.upload_direct(creator, DRAFT, _body(b"x" * 10), 10),
        lambda: video.service.create_live_stream(creator, "Still here?"),
        # An admin's token outlives the account too: it changes no one's video any more.
        lambda: video.service.update_video(
            admin, others.id, VideoChanges(title="Taken over", changed=frozenset({"title"}))
        ),
        lambda: video.service.delete_video(admin, others.id),
    ]
    for attempt in attempts:
        with pytest.raises(Unauthenticated, match="no longer exists"):
            await attempt()
    # The deleted account's upload went with it; nothing new was stored or created.
    with pytest.raises(NotFound):
        await video.uploads.session_for(creator, upload.id)
    assert [o.key async for o in video.uploads.storage.list("uploads/")] == []
    # Others are untouched, and a redelivered deletion changes nothing.
    await video.service.delete_user_content("m-1", {"userId": creator.subject})
    (kept,) = await video.service.videos_by_id(other, [others.id])
    assert kept is not None and kept.title == "Bounded"
