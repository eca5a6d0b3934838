"""Resumable uploads over tus 1.0, with the real `tuspy` client: whole uploads, resuming after
a connection cut, another replica continuing, racing PATCHes, checksums, limits, the quota,
termination, expiry, every bad header answered with its status, and the bounds on one
user's uploads: parts per upload and uploads waiting for bytes."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import io
import os
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col
from tusclient.client import TusClient
from tusclient.exceptions import TusCommunicationError

from subgraphs.kernel.db import Database
from subgraphs.video.models import Upload
from tests.support.processes import GraphQLClient
from tests.video.conftest import (
    CREATE_UPLOAD,
    MAX_UPLOAD,
    QUOTA,
    Api,
    Person,
    Stack,
    codes,
    eventually,
)

TUS = {"tus-resumable": "1.0.0"}
OCTETS = {**TUS, "content-type": "application/offset+octet-stream"}


def _auth(who: Person) -> dict[str, str]:
    return {"authorization": f"Bearer {who.token}"}


def _metadata(**values: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in values.items())


def _tus_upload(url: str, who: Person, data: bytes, *, chunk_size: int) -> None:
    """tuspy resumes from the offset the server reports (HEAD), then PATCHes chunk by chunk."""
    client = TusClient(url.rsplit("/uploads/", 1)[0] + "/uploads", headers=_auth(who))
    uploader = client.uploader(file_stream=io.BytesIO(data), url=url, chunk_size=chunk_size)
    uploader.upload()


async def _processing(api: Api, video_id: str, who: Person) -> dict[str, Any]:
    return await api.wait_for_video(video_id, who, lambda v: v["status"] == "PROCESSING")


async def _offset(http: httpx.AsyncClient, url: str, who: Person) -> int:
    response = await http.head(url, headers={**TUS, **_auth(who)})
    assert response.status_code == 200, response.text
    return int(response.headers["upload-offset"])


async def test_tuspy_uploads_in_chunks_then_processing_starts(api: Api) -> None:
    creator = await api.register()
    data = os.urandom(300_000)
    session = await api.new_upload(creator, sizeBytes=len(data), title="Chunked")
    video_id = session["video"]["id"]

    await asyncio.to_thread(_tus_upload, session["uploadUrl"], creator, data, chunk_size=64_000)

    await _processing(api, video_id, creator)
    assert await api.storage.get(f"uploads/{video_id}/source") == data
    jobs = await api.events(
        "media.transcode", lambda p: p["videoId"] == video_id, until=lambda f: len(f) == 1
    )
    assert jobs[0]["sourceKey"] == f"uploads/{video_id}/source"
    updated = await api.events(
        "video.updated",
        lambda p: p["videoId"] == video_id,
        until=lambda f: any(p["status"] == "PROCESSING" for p in f),
    )
    assert updated[-1]["status"] == "PROCESSING"
    # The parts are gone once joined; HEAD still tells a finished client where it stands.

    async def parts_gone() -> bool:
        return [i async for i in api.storage.list(f"uploads/{video_id}/parts/")] == []

    await eventually(parts_gone, "upload parts were not removed after the join")
    head = await api.http.head(session["uploadUrl"], headers={**TUS, **_auth(creator)})
    assert head.headers["upload-offset"] == head.headers["upload-length"] == str(len(data))
    assert "upload-expires" not in head.headers


async def test_tus_creation_with_metadata_and_a_first_chunk_in_the_post(api: Api) -> None:
    creator = await api.register()
    data = os.urandom(50_000)

    created = await api.http.post(
        f"{api.video_url}/uploads",
        content=data[:20_000],
        headers={
            **OCTETS,
            **_auth(creator),
            "upload-length": str(len(data)),
            "upload-metadata": _metadata(
                filename="trip.webm",
                title="Trip ✈ to Kraków",
                categoryId="travel-events",
                tags="travel,poland",
                visibility="PRIVATE",
            ),
        },
    )

    assert created.status_code == 201, created.text
    location = created.headers["location"]
    assert location.startswith(f"{api.video_url}/uploads/")
    assert created.headers["upload-offset"] == "20000"
    assert "GMT" in created.headers["upload-expires"]
    head = await api.http.head(location, headers={**TUS, **_auth(creator)})
    assert head.headers["upload-length"] == str(len(data))
    assert "title " in head.headers["upload-metadata"]

    await asyncio.to_thread(_tus_upload, location, creator, data, chunk_size=16_000)

    listing = await api.q(
        'query U($id: ID!) { _entities(representations: [{__typename: "User", id: $id}]) '
        "{ ... on User { videos { edges { node { id title visibility tags status } } } } } }",
        {"id": creator.id},
        creator,
    )
    (edge,) = listing["data"]["_entities"][0]["videos"]["edges"]
    assert edge["node"]["title"] == "Trip ✈ to Kraków"
    assert edge["node"]["visibility"] == "PRIVATE"
    assert edge["node"]["tags"] == ["travel", "poland"]
    await _processing(api, edge["node"]["id"], creator)
    assert await api.storage.get(f"uploads/{edge['node']['id']}/source") == data


async def test_a_post_naming_a_graphql_session_continues_that_session(api: Api) -> None:
    creator = await api.register()
    session = await api.new_upload(creator, sizeBytes=1000)

    named = await api.http.post(
        f"{api.video_url}/uploads",
        headers={
            **TUS,
            **_auth(creator),
            "upload-length": "1000",
            "upload-metadata": _metadata(uploadId=session["id"]),
        },
    )
    wrong_length = await api.http.post(
        f"{api.video_url}/uploads",
        headers={
            **TUS,
            **_auth(creator),
            "upload-length": "999",
            "upload-metadata": _metadata(uploadId=session["id"]),
        },
    )

    assert named.status_code == 201
    assert named.headers["location"] == session["uploadUrl"]
    assert wrong_length.status_code == 400


async def _cut_patch(url: str, who: Person, data: bytes, wait: float, offset: int = 0) -> None:
    """A client that sends PATCH headers and part of the body, then its connection dies."""
    parts = urlsplit(url)
    _reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    head = (
        f"PATCH {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nTus-Resumable: 1.0.0\r\n"
        f"Upload-Offset: {offset}\r\nContent-Type: application/offset+octet-stream\r\n"
        f"Content-Length: {len(data)}\r\nAuthorization: Bearer {who.token}\r\n\r\n"
    )
    writer.write(head.encode() + data[: len(data) // 2])
    await writer.drain()
    await asyncio.sleep(wait)
    writer.transport.abort()


async def test_after_a_connection_cut_mid_patch_a_new_client_resumes_from_the_kept_bytes(
    api: Api,
) -> None:
    creator = await api.register()
    data = os.urandom(2_000_000)
    session = await api.new_upload(creator, sizeBytes=len(data))
    url = session["uploadUrl"]

    # The server keeps what it had read when the connection died; how much that is depends on
    # scheduling, so cut again, waiting longer, until it has kept something.
    kept = 0
    wait = 0.2
    deadline = time.monotonic() + 40
    while kept == 0 and time.monotonic() < deadline:
        await _cut_patch(url, creator, data, wait)
        wait *= 2
        for _ in range(50):
            kept = await _offset(api.http, url, creator)
            if kept:
                break
            await asyncio.sleep(0.1)
    assert 0 < kept <= len(data) // 2

    await asyncio.to_thread(_tus_upload, url, creator, data, chunk_size=500_000)

    await _processing(api, session["video"]["id"], creator)
    assert await api.storage.get(f"uploads/{session['video']['id']}/source") == data


async def test_another_replica_continues_an_upload_the_first_one_started(
    api: Api, stack: Stack
) -> None:
    creator = await api.register()
    data = os.urandom(400_000)
    session = await api.new_upload(creator, sizeBytes=len(data))
    first = await api.http.patch(
        session["uploadUrl"],
        content=data[:150_000],
        headers={**OCTETS, **_auth(creator), "upload-offset": "0"},
    )
    assert first.status_code == 204
    assert first.headers["upload-offset"] == "150000"

    replica_url = f"{stack.replica().url}/uploads/{session['id']}"
    await asyncio.to_thread(_tus_upload, replica_url, creator, data, chunk_size=100_000)

    await _processing(api, session["video"]["id"], creator)
    assert await api.storage.get(f"uploads/{session['video']['id']}/source") == data


async def test_racing_patches_at_one_offset_cannot_both_land(api: Api, stack: Stack) -> None:
    creator = await api.register()
    session = await api.new_upload(creator, sizeBytes=200_000)
    urls = [session["uploadUrl"], f"{stack.replica().url}/uploads/{session['id']}"]
    bodies = [b"a" * 100_000, b"b" * 100_000]

    responses = await asyncio.gather(
        *(
            api.http.patch(
                url, content=body, headers={**OCTETS, **_auth(creator), "upload-offset": "0"}
            )
            for url, body in zip(urls, bodies, strict=True)
        )
    )

    assert sorted(r.status_code for r in responses) == [204, 409]
    winner = bodies[[r.status_code for r in responses].index(204)]
    assert await _offset(api.http, urls[0], creator) == 100_000
    stale = await api.http.patch(
        urls[1], content=b"c" * 10, headers={**OCTETS, **_auth(creator), "upload-offset": "0"}
    )
    assert stale.status_code == 409
    last = await api.http.patch(
        urls[1],
        content=b"d" * 100_000,
        headers={**OCTETS, **_auth(creator), "upload-offset": "100000"},
    )
    assert last.status_code == 204
    await _processing(api, session["video"]["id"], creator)
    source = await api.storage.get(f"uploads/{session['video']['id']}/source")
    assert source == winner + b"d" * 100_000


async def test_checksums_are_verified_and_a_mismatch_keeps_nothing(api: Api) -> None:
    creator = await api.register()
    session = await api.new_upload(creator, sizeBytes=2000)
    url = session["uploadUrl"]
    chunk = os.urandom(1000)
    good = base64.b64encode(hashlib.sha256(chunk).digest()).decode()
    bad = base64.b64encode(hashlib.sha256(b"other").digest()).decode()
    headers = {**OCTETS, **_auth(creator), "upload-offset": "0"}

    mismatch = await api.http.patch(
        url, content=chunk, headers={**headers, "upload-checksum": f"sha256 {bad}"}
    )
    unknown = await api.http.patch(
        url, content=chunk, headers={**headers, "upload-checksum": f"crc32 {good}"}
    )
    assert mismatch.status_code == 460
    assert unknown.status_code == 400
    assert await _offset(api.http, url, creator) == 0

    accepted = await api.http.patch(
        url, content=chunk, headers={**headers, "upload-checksum": f"sha256 {good}"}
    )
    assert accepted.status_code == 204
    assert accepted.headers["upload-offset"] == "1000"
    sha1 = base64.b64encode(hashlib.sha1(chunk).digest()).decode()
    client = TusClient(f"{api.video_url}/uploads", headers=_auth(creator))
    uploader = client.uploader(
        file_stream=io.BytesIO(chunk * 2), url=url, chunk_size=1000, upload_checksum=True
    )
    await asyncio.to_thread(uploader.upload)
    assert sha1  # tuspy sends sha1 checksums with every chunk
    await _processing(api, session["video"]["id"], creator)


async def test_limits_and_quota_refuse_bytes_with_413(api: Api) -> None:
    creator = await api.register()
    post = {**TUS, **_auth(creator)}
    meta = _metadata(filename="a.mp4", title="t", categoryId="music")

    options = await api.http.options(f"{api.video_url}/uploads")
    too_long = await api.http.post(
        f"{api.video_url}/uploads",
        headers={**post, "upload-length": str(MAX_UPLOAD + 1), "upload-metadata": meta},
    )
    assert options.status_code == 204
    assert options.headers["tus-max-size"] == str(MAX_UPLOAD)
    assert options.headers["tus-version"] == "1.0.0"
    assert set(options.headers["tus-extension"].split(",")) >= {
        "creation",
        "creation-with-upload",
        "termination",
        "expiration",
        "checksum",
    }
    assert too_long.status_code == 413

    for _ in range(QUOTA // MAX_UPLOAD):
        ok = await api.http.post(
            f"{api.video_url}/uploads",
            headers={**post, "upload-length": str(MAX_UPLOAD), "upload-metadata": meta},
        )
        assert ok.status_code == 201
    over_quota = await api.http.post(
        f"{api.video_url}/uploads",
        headers={**post, "upload-length": str(MAX_UPLOAD), "upload-metadata": meta},
    )
    assert over_quota.status_code == 413
    assert "quota" in over_quota.text

    fresh = await api.register()
    session = await api.new_upload(fresh, sizeBytes=100)
    beyond = await api.http.patch(
        session["uploadUrl"],
        content=b"x" * 101,
        headers={**OCTETS, **_auth(fresh), "upload-offset": "0"},
    )
    assert beyond.status_code == 413
    # Far beyond, and sent without a length: cut off while streaming, still a clean 413.

    async def stream() -> AsyncIterator[bytes]:
        for _ in range(30):
            yield b"y" * 100_000

    streamed = await api.http.patch(
        session["uploadUrl"],
        content=stream(),
        headers={**OCTETS, **_auth(fresh), "upload-offset": "0"},
    )
    assert streamed.status_code == 413
    assert await _offset(api.http, session["uploadUrl"], fresh) == 0


async def test_termination_deletes_the_upload_its_parts_and_its_video(api: Api) -> None:
    creator = await api.register()
    session = await api.new_upload(creator, sizeBytes=1000)
    url = session["uploadUrl"]
    video_id = session["video"]["id"]
    await api.http.patch(
        url, content=b"z" * 400, headers={**OCTETS, **_auth(creator), "upload-offset": "0"}
    )
    assert [i async for i in api.storage.list(f"uploads/{video_id}/")]

    other = await api.register()
    assert (await api.http.delete(url, headers={**TUS, **_auth(other)})).status_code == 404
    deleted = await api.http.delete(url, headers={**TUS, **_auth(creator)})

    assert deleted.status_code == 204
    assert (await api.http.head(url, headers={**TUS, **_auth(creator)})).status_code == 404
    assert await api.video(video_id, creator) is None
    assert [i async for i in api.storage.list(f"uploads/{video_id}/")] == []
    events = await api.events(
        "video.deleted", lambda p: p["videoId"] == video_id, until=lambda f: len(f) == 1
    )
    assert events == [{"videoId": video_id, "ownerId": creator.id}]


async def test_a_finished_upload_cannot_be_terminated(api: Api) -> None:
    creator = await api.register()
    session = await api.new_upload(creator, sizeBytes=10)
    await api.http.patch(
        session["uploadUrl"],
        content=b"0123456789",
        headers={**OCTETS, **_auth(creator), "upload-offset": "0"},
    )
    refused = await api.http.delete(session["uploadUrl"], headers={**TUS, **_auth(creator)})
    assert refused.status_code == 409
    await _processing(api, session["video"]["id"], creator)


async def test_unfinished_uploads_expire_and_are_swept_with_their_parts(
    api: Api, stack: Stack
) -> None:
    creator = await api.register()
    created = await api.http.post(
        f"{api.video_url}/uploads",
        content=b"q" * 500,
        headers={
            **OCTETS,
            **_auth(creator),
            "upload-length": "1000",
            "upload-metadata": _metadata(filename="a.mkv", title="Soon gone", categoryId="other"),
        },
    )
    assert created.status_code == 201
    url = created.headers["location"]
    expires = parsedate_to_datetime(created.headers["upload-expires"])
    # The default expiry: a day after the last PATCH.
    assert abs((expires - datetime.now(UTC)).total_seconds() - 24 * 3600) < 120
    video_id = (await _only_video(api, creator))["id"]
    assert [i async for i in api.storage.list(f"uploads/{video_id}/parts/")]

    # A day passes: the upload's expiry moves into the past.
    await _expire(stack, url.rsplit("/", 1)[1])
    gone_or_expired = await api.http.head(url, headers={**TUS, **_auth(creator)})
    assert gone_or_expired.status_code in (404, 410)

    async def swept() -> bool:
        head = await api.http.head(url, headers={**TUS, **_auth(creator)})
        # 410 between expiry and the sweep, 404 once it is swept.
        return head.status_code == 404

    await eventually(swept, "the expired upload was never swept")

    # Its storage is emptied just after its rows go (or by the video.deleted consumer).
    async def emptied() -> bool:
        return [i async for i in api.storage.list(f"uploads/{video_id}/")] == []

    await eventually(emptied, "the expired upload's parts were never deleted")
    assert await api.video(video_id, creator) is None
    deleted = await api.events(
        "video.deleted", lambda p: p["videoId"] == video_id, until=lambda f: len(f) == 1
    )
    assert len(deleted) == 1
    late = await api.http.patch(
        url, content=b"q" * 500, headers={**OCTETS, **_auth(creator), "upload-offset": "500"}
    )
    assert late.status_code == 404


@contextlib.asynccontextmanager
async def _database(stack: Stack) -> AsyncIterator[AsyncSession]:
    db = Database(stack.env.settings().database_url_for("video"))
    try:
        async with db.transaction() as session:
            yield session
    finally:
        await db.dispose()


async def _expire(stack: Stack, upload_id: str) -> None:
    async with _database(stack) as db:
        await db.execute(
            update(Upload)
            .where(col(Upload.id) == upload_id)
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )


async def _only_video(api: Api, who: Person) -> dict[str, Any]:
    body = await api.q(
        'query U($id: ID!) { _entities(representations: [{__typename: "User", id: $id}]) '
        "{ ... on User { videos { edges { node { id } } } } } }",
        {"id": who.id},
        who,
    )
    (edge,) = body["data"]["_entities"][0]["videos"]["edges"]
    node: dict[str, Any] = edge["node"]
    return node


async def test_bad_requests_get_the_status_tus_prescribes(api: Api) -> None:
    creator = await api.register()
    other = await api.register()
    session = await api.new_upload(creator, sizeBytes=100)
    url = session["uploadUrl"]
    mine = {**OCTETS, **_auth(creator)}
    http = api.http

    no_version = await http.head(url, headers=_auth(creator))
    assert no_version.status_code == 412
    assert no_version.headers["tus-version"] == "1.0.0"
    assert (
        await http.head(url, headers={**_auth(creator), "tus-resumable": "0.2.2"})
    ).status_code == 412
    assert (await http.head(url, headers=TUS)).status_code == 401
    assert (
        await http.head(url, headers={**TUS, "authorization": "Bearer nope"})
    ).status_code == 401
    assert (await http.head(url, headers={**TUS, **_auth(other)})).status_code == 404
    assert (
        await http.head(
            f"{api.video_url}/uploads/00000000-0000-0000-0000-000000000000",
            headers={**TUS, **_auth(creator)},
        )
    ).status_code == 404
    assert (
        await http.head(f"{api.video_url}/uploads/not-an-id", headers={**TUS, **_auth(creator)})
    ).status_code == 404

    wrong_type = await http.patch(
        url,
        content=b"x",
        headers={**TUS, **_auth(creator), "content-type": "text/plain", "upload-offset": "0"},
    )
    assert wrong_type.status_code == 415
    assert (await http.patch(url, content=b"x", headers=mine)).status_code == 400
    assert (
        await http.patch(url, content=b"x", headers={**mine, "upload-offset": "-1"})
    ).status_code == 400
    # ASCII digits only: "²" (0xB2 in Latin-1), a no-break space, an Arabic-Indic zero.
    for offset in (b"\xb2", b"\xa00", "\u0660".encode(), b"0x0", b"1_0"):
        odd = await http.patch(url, content=b"x", headers={**mine, "upload-offset": offset})
        assert odd.status_code == 400, offset
        assert "upload-offset" in odd.text.lower()
    conflict = await http.patch(url, content=b"x", headers={**mine, "upload-offset": "5"})
    assert conflict.status_code == 409
    assert (
        await http.patch(
            url, content=b"x", headers={**OCTETS, **_auth(other), "upload-offset": "0"}
        )
    ).status_code == 404

    override = await http.post(
        url,
        content=b"x" * 10,
        headers={**mine, "upload-offset": "0", "x-http-method-override": "PATCH"},
    )
    assert override.status_code == 204
    assert override.headers["upload-offset"] == "10"
    assert override.headers["tus-resumable"] == "1.0.0"

    post = {**TUS, **_auth(creator)}
    assert (await http.post(f"{api.video_url}/uploads", headers=post)).status_code == 400
    assert (
        await http.post(f"{api.video_url}/uploads", headers={**post, "upload-defer-length": "1"})
    ).status_code == 400
    for length in (b"\xb2", b"\xb9\xb0", b"\xa010", b"9" * 5000):
        odd_length = await http.post(
            f"{api.video_url}/uploads", headers={**post, "upload-length": length}
        )
        assert odd_length.status_code == 400, length
    bad_meta = await http.post(
        f"{api.video_url}/uploads",
        headers={**post, "upload-length": "10", "upload-metadata": "title not-base64!"},
    )
    assert bad_meta.status_code == 400
    missing_title = await http.post(
        f"{api.video_url}/uploads",
        headers={
            **post,
            "upload-length": "10",
            "upload-metadata": _metadata(filename="a.mp4", categoryId="music"),
        },
    )
    assert missing_title.status_code == 400
    assert "Title" in missing_title.text
    viewer = await api.register("VIEWER")
    forbidden = await http.post(
        f"{api.video_url}/uploads",
        headers={
            **TUS,
            **_auth(viewer),
            "upload-length": "10",
            "upload-metadata": _metadata(filename="a.mp4", title="t", categoryId="music"),
        },
    )
    assert forbidden.status_code == 403
    assert "Traceback" not in forbidden.text


def test_tuspy_reports_a_refused_creation(stack: Stack) -> None:
    client = TusClient(f"{stack.video.url}/uploads", headers={"authorization": "Bearer bad"})
    with pytest.raises(TusCommunicationError):
        client.uploader(file_stream=io.BytesIO(b"abc"), metadata={"title": "x"}).upload()


# --- what one user's uploads may take ---------------------------------------------------------

MAX_PARTS = 4
MAX_OPEN = 2


def _bounded(stack: Stack) -> str:
    """A replica allowing few parts per upload and few open uploads per user; its URL."""
    if "tus:bounded" not in stack.cache:
        stack.cache["tus:bounded"] = stack.start_video(
            REELGRAPH_VIDEO_UPLOAD_MAX_PARTS=str(MAX_PARTS),
            REELGRAPH_VIDEO_MAX_OPEN_UPLOADS=str(MAX_OPEN),
        )
    url: str = stack.cache["tus:bounded"].url
    return url


async def _trickle(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def test_an_upload_takes_a_bounded_number_of_parts(api: Api, stack: Stack) -> None:
    base = _bounded(stack)
    creator = await api.register()
    data = os.urandom(4000)
    share = len(data) // MAX_PARTS
    created = await api.http.post(
        f"{base}/uploads",
        headers={
            **TUS,
            **_auth(creator),
            "upload-length": str(len(data)),
            "upload-metadata": _metadata(filename="a.mp4", title="Parts", categoryId="music"),
        },
    )
    assert created.status_code == 201, created.text
    url = created.headers["location"]
    video_id = (await _only_video(api, creator))["id"]
    mine = {**OCTETS, **_auth(creator)}

    # Thousands of 1-byte PATCHes would mean thousands of objects and rows: a PATCH that does
    # not finish the upload carries at least 1/MAX_PARTS of it, whether its size was
    # declared (refused before a byte is read) or not (chunked; refused and discarded).
    tiny = await api.http.patch(url, content=b"x", headers={**mine, "upload-offset": "0"})
    assert tiny.status_code == 400
    assert f"at least {share} bytes" in tiny.text
    assert tiny.headers["tus-resumable"] == "1.0.0"
    chunked = await api.http.patch(
        url, content=_trickle(data[:10]), headers={**mine, "upload-offset": "0"}
    )
    assert chunked.status_code == 400, chunked.text
    assert await _offset(api.http, url, creator) == 0
    assert [i async for i in api.storage.list(f"uploads/{video_id}/parts/")] == []

    # A client that cannot go that small is told so at its first PATCH.
    with pytest.raises(TusCommunicationError):
        await asyncio.to_thread(_tus_upload, url, creator, data, chunk_size=share // 2)

    # A cut-off PATCH keeps what arrived, however little, and the client resumes after it.
    first = await api.http.patch(url, content=data[:share], headers={**mine, "upload-offset": "0"})
    assert first.status_code == 204
    kept, wait = share, 0.2
    deadline = time.monotonic() + 40
    while kept == share and time.monotonic() < deadline:
        await _cut_patch(url, creator, data[share : share * 2], wait, offset=share)
        wait *= 2
        for _ in range(50):
            kept = await _offset(api.http, url, creator)
            if kept > share:
                break
            await asyncio.sleep(0.1)
    assert share < kept < share + share // 2 + 1
    third = await api.http.patch(
        url, content=data[kept : kept + share], headers={**mine, "upload-offset": str(kept)}
    )
    assert third.status_code == 204
    at = kept + share

    # One part left: it must carry every remaining byte.
    short = await api.http.patch(
        url, content=data[at : at + share], headers={**mine, "upload-offset": str(at)}
    )
    assert short.status_code == 400
    assert f"all {len(data) - at} remaining bytes" in short.text
    assert await _offset(api.http, url, creator) == at
    await asyncio.to_thread(_tus_upload, url, creator, data, chunk_size=len(data))

    await _processing(api, video_id, creator)
    assert await api.storage.get(f"uploads/{video_id}/source") == data


async def test_a_user_holds_a_bounded_number_of_unfinished_uploads(api: Api, stack: Stack) -> None:
    base = _bounded(stack)
    bounded = GraphQLClient(f"{base}/graphql")
    creator = await api.register()
    create = {"title": "Open", "categoryId": "music", "filename": "a.mp4", "sizeBytes": 10}
    try:
        sessions = []
        for _ in range(MAX_OPEN):
            body = await bounded.execute(CREATE_UPLOAD, {"input": create}, token=creator.token)
            assert "errors" not in body, body
            sessions.append(body["data"]["createUpload"])

        refused = await bounded.execute(CREATE_UPLOAD, {"input": create}, token=creator.token)
        assert codes(refused) == ["TOO_MANY_UPLOADS"]
        assert refused["errors"][0]["extensions"]["limit"] == MAX_OPEN
        assert refused["data"] is None
        over_tus = await api.http.post(
            f"{base}/uploads",
            headers={
                **TUS,
                **_auth(creator),
                "upload-length": "10",
                "upload-metadata": _metadata(filename="a.mp4", title="t", categoryId="music"),
            },
        )
        assert over_tus.status_code == 429
        assert "unfinished uploads" in over_tus.text
        # Nothing was created by the refusals.
        listing = await api.q(
            'query U($id: ID!) { _entities(representations: [{__typename: "User", id: $id}]) '
            "{ ... on User { videos { totalCount } } } }",
            {"id": creator.id},
            creator,
        )
        assert listing["data"]["_entities"][0]["videos"]["totalCount"] == MAX_OPEN

        # Finishing one, or giving it up, makes room again.
        done = await api.http.patch(
            sessions[0]["uploadUrl"],
            content=b"0123456789",
            headers={**OCTETS, **_auth(creator), "upload-offset": "0"},
        )
        assert done.status_code == 204
        again = await bounded.execute(CREATE_UPLOAD, {"input": create}, token=creator.token)
        assert "errors" not in again, again
        assert codes(
            await bounded.execute(CREATE_UPLOAD, {"input": create}, token=creator.token)
        ) == ["TOO_MANY_UPLOADS"]
        gone = await api.http.delete(sessions[1]["uploadUrl"], headers={**TUS, **_auth(creator)})
        assert gone.status_code == 204
        last = await bounded.execute(CREATE_UPLOAD, {"input": create}, token=creator.token)
        assert "errors" not in last, last
    finally:
        await bounded.close()
