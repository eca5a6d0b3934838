"""Issue 5 end to end: a creator uploads a clip through the router with tus (interrupted and
resumed), watches it being processed over a WebSocket subscription through the router, and a
browser plays the HLS ladder the real media worker made, fetched through the router from the
video service and its storage. Private videos, corrupt files, uploads by the wrong people and
deletion are checked the same way. Runs on SQLite + local bus + local files and on
PostgreSQL + Redis + S3 (moto_server)."""

from __future__ import annotations

import asyncio
import io
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import av
import m3u8  # type: ignore[import-untyped]
import pytest

from tests.e2e.stack import (
    DEADLINE,
    OCTETS,
    PROCESSING,
    SEGMENT_SECONDS,
    STACK_IDS,
    STACKS,
    TUS,
    Client,
    Person,
    Stack,
    cut_patch,
    processing,
    running_stack,
    sse_events,
    stack_storage,
    storage_keys,
    tus_client,
    tus_offset,
    tus_upload,
    until_finished,
)
from tests.media_worker.harness import vtt_cues
from tests.media_worker.media import make_clip
from tests.support.player import CHROMIUM, play, player_origin

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="needs Debian's Chromium: apt-get install -y chromium"
)

CLIP_SECONDS = 6.0
CHUNK = 256 * 1024
# hls.js's segment requests are the browser's; a media type it refuses would stop playback.
SEGMENT_TYPE = "video/mp2t"


@pytest.fixture(scope="module")
def player() -> Iterator[str]:
    with player_origin() as origin:
        yield origin


@pytest.fixture(scope="module", params=STACKS, ids=STACK_IDS)
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, player: str
) -> Iterator[Stack]:
    database, bus, storage = request.param
    tmp = tmp_path_factory.mktemp(f"e2e-{database}-{bus}-{storage}")
    with running_stack(tmp, database=database, bus=bus, storage=storage, player=player) as running:
        yield running


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """720p30 H.264 + AAC, 6 s: a 720p/480p/360p/240p ladder in two 4 s segments each."""
    path = tmp_path_factory.mktemp("clips") / "clip.mp4"
    return make_clip(path, width=1280, height=720, seconds=CLIP_SECONDS, fps=30).read_bytes()


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """240p, 3 s: one rung, cheap to transcode, for the cases that are not about the ladder."""
    path = tmp_path_factory.mktemp("clips") / "small.mp4"
    return make_clip(path, width=426, height=240, seconds=3, fps=30).read_bytes()


@pytest.fixture
async def client(stack: Stack) -> AsyncIterator[Client]:
    running = Client(stack)
    try:
        yield running
    finally:
        await running.close()


def codes(body: dict[str, Any]) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors") or []]


# --- the main path ------------------------------------------------------------------------------


async def interrupted_upload(client: Client, url: str, who: Person, data: bytes) -> None:
    """tuspy sends a first part and is dropped; a connection dies mid-PATCH (through the
    router); a new tuspy client asks the server where to go on and finishes."""
    stack = client.stack
    first = await asyncio.to_thread(
        tus_client(stack, who).uploader, file_stream=io.BytesIO(data), url=url, chunk_size=CHUNK
    )
    await asyncio.to_thread(first.upload, len(data) // 3)
    sent = first.offset
    assert sent == len(data) // 3
    assert await tus_offset(client.http, url, who) == sent

    # How many bytes reach the service before the cut depends on scheduling: cut again,
    # waiting longer each time, until the server has kept some. (An earlier cut that lands
    # late makes the next one a harmless 409.)
    kept, wait = sent, 0.2
    deadline = time.monotonic() + DEADLINE
    while kept == sent:
        assert time.monotonic() < deadline, "no cut PATCH ever kept a byte"
        await cut_patch(url, who, data, sent, wait)
        wait = min(wait * 2, 5.0)
        settle = time.monotonic() + 5
        while kept == sent and time.monotonic() < settle:
            kept = await tus_offset(client.http, url, who)
            await asyncio.sleep(0.1)
    assert sent < kept <= sent + (len(data) - sent) // 2

    # The new client also sends each chunk's checksum (tus `checksum`, sha1), which the
    # service verifies before keeping the bytes.
    second = await asyncio.to_thread(
        tus_client(stack, who).uploader,
        file_stream=io.BytesIO(data),
        url=url,
        chunk_size=CHUNK,
        upload_checksum=True,
    )
    assert second.offset == kept  # resumed from the server's offset (HEAD), not from 0
    await asyncio.to_thread(second.upload)
    assert second.offset == len(data)


async def test_a_creator_uploads_through_the_router_and_a_browser_plays_the_ladder(
    stack: Stack, client: Client, clip: bytes
) -> None:
    creator = await client.register(creator=True)
    viewer = await client.register()

    session = await client.create_upload(
        creator, size=len(clip), title="Upload to playback", filename="holiday.mp4"
    )
    video_id = session["video"]["id"]
    assert session["video"]["status"] == "UPLOADING"
    assert session["uploadUrl"] == f"{stack.origin}/uploads/{session['id']}"

    async with processing(stack, video_id, creator) as subscription:
        first = (await subscription.next())["data"]["videoProcessing"]
        assert (first["status"], first["progress"]) == ("UPLOADING", 0.0)
        await interrupted_upload(client, session["uploadUrl"], creator, clip)
        events = [first, *await until_finished(subscription)]

    statuses = [e["status"] for e in events]
    assert statuses[-1] == "READY", events
    assert statuses == sorted(statuses, key=["UPLOADING", "PROCESSING", "READY"].index), events
    progress = [e["progress"] for e in events if e["status"] == "PROCESSING"]
    assert any(0 < p < 1 for p in progress), events
    assert progress == sorted(progress) and len(set(progress)) == len(progress), events
    assert events[-1]["progress"] == 1.0
    assert events[-1]["video"] == {"id": video_id, "title": "Upload to playback"}

    # The interrupted, resumed upload arrived whole.
    async with stack_storage(stack) as storage:
        assert await storage.get(f"uploads/{video_id}/source") == clip

    # Anyone may now watch it: the viewer's view, through the router.
    video = await client.video(video_id, viewer)
    assert video is not None
    assert video["status"] == "READY" and video["owner"]["handle"] == creator.handle
    assert abs(video["durationSeconds"] - CLIP_SECONDS) < 0.25, video
    assert video["failureReason"] is None
    assert await client.video(video_id) == video  # anonymous viewers see the same
    media_root = f"{stack.origin}/media/{video_id}/public/"
    assert video["hlsUrl"] == media_root + "hls/master.m3u8"
    assert video["thumbnailUrl"] == media_root + "poster.jpg"
    assert video["storyboard"]["imageUrl"] == media_root + "storyboard.jpg"
    assert video["storyboard"]["vttUrl"] == media_root + "storyboard.vtt"
    # The source is 720p: 720p and below, never upscaled, highest first.
    assert [(r["name"], r["width"], r["height"]) for r in video["renditions"]] == [
        ("720p", 1280, 720),
        ("480p", 854, 480),
        ("360p", 640, 360),
        ("240p", 426, 240),
    ]

    await check_ladder(client, video)
    await check_images(client, video)

    playback = await asyncio.to_thread(play, stack.player, video["hlsUrl"], until=2.0)
    assert playback.fatal_errors == [], playback.errors
    assert playback.current_time > 2.0, playback
    assert playback.levels is not None
    assert sorted(level["height"] for level in playback.levels) == [240, 360, 480, 720]
    media = [url for url in playback.requests if "/media/" in url]
    assert any(url.endswith(".ts") for url in media), playback.requests
    assert all(url.startswith(media_root) for url in media), media


async def check_ladder(client: Client, video: dict[str, Any]) -> None:
    """The master and every variant parse with m3u8 and carry what players need; every
    segment is served through the router, and ranges work."""
    response = await client.get(video["hlsUrl"], {"origin": client.stack.player})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/vnd.apple.mpegurl")
    # CORS for the player's origin is the router's.
    assert response.headers["access-control-allow-origin"] == client.stack.player
    # Validators and HEAD pass through the router too.
    etag = response.headers["etag"]
    again = await client.get(video["hlsUrl"], {"if-none-match": etag})
    assert again.status_code == 304 and again.content == b""
    head = await client.http.head(video["hlsUrl"])
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == len(response.content)
    master = m3u8.loads(response.text, uri=video["hlsUrl"])
    assert master.is_variant
    by_name = {r["name"]: r for r in video["renditions"]}
    assert len(master.playlists) == len(by_name)
    assert master.playlists[0].uri == "720p/index.m3u8"  # hls.js starts on the first
    for playlist in master.playlists:
        rendition = by_name[playlist.uri.split("/")[0]]
        info = playlist.stream_info
        assert info.bandwidth == rendition["bandwidth"] >= info.average_bandwidth > 0
        assert info.average_bandwidth == rendition["averageBandwidth"]
        assert info.resolution == (rendition["width"], rendition["height"])
        assert info.codecs == rendition["codecs"]
        assert re.fullmatch(r"avc1\.[0-9a-f]{6},mp4a\.40\.2", info.codecs), info.codecs
        assert info.frame_rate == rendition["frameRate"] == 30.0

        variant_url = urljoin(video["hlsUrl"], playlist.uri)
        variant_response = await client.get(variant_url)
        assert variant_response.status_code == 200, variant_url
        variant = m3u8.loads(variant_response.text, uri=variant_url)
        assert variant.playlist_type == "vod" and variant.is_endlist
        durations = [segment.duration for segment in variant.segments]
        assert len(durations) == 2, durations  # 6 s in 4 s segments
        assert all(abs(d - SEGMENT_SECONDS) < 0.1 for d in durations[:-1]), durations
        assert 0 < durations[-1] < SEGMENT_SECONDS, durations
        assert abs(sum(durations) - video["durationSeconds"]) < 0.25, durations
        for segment in variant.segments:
            segment_url = urljoin(variant_url, segment.uri)
            assert segment_url.startswith(variant_url.rsplit("/", 1)[0] + "/")
            whole = await client.get(segment_url)
            assert whole.status_code == 200, segment_url
            assert whole.headers["content-type"] == SEGMENT_TYPE
            assert int(whole.headers["content-length"]) == len(whole.content) > 2000
            assert whole.content[0] == 0x47  # an MPEG-TS sync byte
            ranged = await client.get(segment_url, {"range": "bytes=188-1315"})
            assert ranged.status_code == 206, segment_url
            assert ranged.headers["content-range"] == f"bytes 188-1315/{len(whole.content)}"
            assert ranged.content == whole.content[188:1316]


async def check_images(client: Client, video: dict[str, Any]) -> None:
    """The poster is a 720p JPEG; every storyboard cue points into the sprite, which is served."""
    poster = await client.get(video["thumbnailUrl"])
    assert poster.status_code == 200
    assert poster.headers["content-type"] == "image/jpeg"
    assert _jpeg_size(poster.content) == (1280, 720)

    board = video["storyboard"]
    vtt = await client.get(board["vttUrl"])
    assert vtt.status_code == 200
    assert vtt.headers["content-type"].startswith("text/vtt")
    sprite = await client.get(board["imageUrl"])
    assert sprite.status_code == 200 and sprite.headers["content-type"] == "image/jpeg"
    sprite_width, sprite_height = _jpeg_size(sprite.content)
    cues = vtt_cues(vtt.text)
    assert CLIP_SECONDS // board["intervalSeconds"] <= len(cues), cues
    assert len(cues) <= board["columns"] * board["rows"], (cues, board)
    for _start, _end, target in cues:
        image, _, fragment = target.partition("#")
        assert urljoin(board["vttUrl"], image) == board["imageUrl"], target
        match = re.fullmatch(r"xywh=(\d+),(\d+),(\d+),(\d+)", fragment)
        assert match, target
        x, y, w, h = (int(n) for n in match.groups())
        assert (w, h) == (board["tileWidth"], board["tileHeight"])
        assert x + w <= sprite_width and y + h <= sprite_height, (target, sprite_width)


def _jpeg_size(data: bytes) -> tuple[int, int]:
    assert data[:3] == b"\xff\xd8\xff", data[:8]
    with av.open(io.BytesIO(data), mode="r") as container:
        frame = next(container.decode(video=0))
        return frame.width, frame.height


# --- who may see and do what --------------------------------------------------------------------


async def test_a_private_video_plays_for_its_owner_and_no_one_else(
    stack: Stack, client: Client, small_clip: bytes
) -> None:
    owner = await client.register(creator=True)
    viewer = await client.register()
    video = await client.ready(owner, small_clip, visibility="PRIVATE", title="Only mine")
    video_id = video["id"]

    hls_url = video["hlsUrl"]
    prefix = f"{stack.origin}/media/{video_id}/"
    assert hls_url.startswith(prefix) and hls_url.endswith("/hls/master.m3u8")
    token = hls_url[len(prefix) :].split("/")[0]
    assert re.fullmatch(r"\d+\.[A-Za-z0-9_-]+", token), token  # signed, expiring
    assert video["thumbnailUrl"] == f"{prefix}{token}/poster.jpg"

    # The owner's signed URLs play: master, variant and every segment through the router.
    segment_paths = []
    master = await client.get(hls_url)
    assert master.status_code == 200
    for playlist in m3u8.loads(master.text).playlists:
        variant_url = urljoin(hls_url, playlist.uri)
        variant = await client.get(variant_url)
        assert variant.status_code == 200
        for segment in m3u8.loads(variant.text).segments:
            segment_url = urljoin(variant_url, segment.uri)
            response = await client.get(segment_url)
            assert response.status_code == 200 and response.headers["content-type"] == SEGMENT_TYPE
            assert response.headers["cache-control"].startswith("private")
            segment_paths.append(segment_url[len(prefix) + len(token) :])
    assert segment_paths
    playback = await asyncio.to_thread(play, stack.player, hls_url, until=1.0)
    assert playback.fatal_errors == [] and playback.current_time > 1.0, playback

    # Anyone else sees nothing: the video is null, as if it did not exist.
    assert await client.video(video_id, viewer) is None
    assert await client.video(video_id) is None
    expires, signature = token.split(".")
    forged = [
        "public",
        f"{expires}.{signature[:-1]}{'A' if signature[-1] != 'A' else 'B'}",  # tampered
        f"{int(expires) + 300}.{signature}",  # a longer life, same signature
        f"{int(expires) - 10**6}.{signature}",
    ]
    for bad in forged:
        for path in ["/hls/master.m3u8", *segment_paths[:2], "/poster.jpg"]:
            for headers in (viewer.auth, owner.auth, {}):
                response = await client.get(f"{prefix}{bad}{path}", headers)
                assert response.status_code in (403, 404), (bad, path, response.status_code)
                assert b"#EXTM3U" not in response.content and response.content[:1] != b"\x47"


async def test_a_corrupt_upload_fails_with_a_reason_only_its_owner_sees(
    stack: Stack, client: Client
) -> None:
    owner = await client.register(creator=True)
    viewer = await client.register()
    text = b"These are my holiday notes, not a video at all.\n" * 400
    session = await client.create_upload(owner, size=len(text), filename="notes.mp4")
    video_id = session["video"]["id"]

    # Followed over SSE this time (graphql-sse through the router), as a browser may.
    async with client.http.stream(
        "POST",
        stack.graphql,
        json={"query": PROCESSING, "variables": {"id": video_id}},
        headers={"accept": "text/event-stream", **owner.auth},
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = sse_events(response)
        name, first = await asyncio.wait_for(anext(stream), DEADLINE)
        assert name == "next" and first["data"]["videoProcessing"]["status"] == "UPLOADING"
        await asyncio.to_thread(tus_upload, stack, session["uploadUrl"], owner, text)

        async def rest() -> list[tuple[str, Any]]:
            return [pair async for pair in stream]

        received = await asyncio.wait_for(rest(), DEADLINE)
    assert received[-1] == ("complete", None), received
    events = [data["data"]["videoProcessing"] for name, data in received[:-1]]
    assert [name for name, _ in received[:-1]] == ["next"] * len(events), received
    assert [e["status"] for e in events] == ["PROCESSING", "FAILED"], events
    final = events[-1]
    assert final["status"] == "FAILED", events
    reason = final["failureReason"]
    # A sentence for people: no codes, hosts, paths or exception text.
    assert isinstance(reason, str) and reason[:1].isupper() and reason.endswith("."), reason
    for leak in ("Traceback", "Error", "/", "\\", "uploads", video_id, "127.0.0.1"):
        assert leak not in reason, reason

    mine = await client.video(video_id, owner)
    assert mine is not None
    assert (mine["status"], mine["failureReason"]) == ("FAILED", reason)
    assert mine["hlsUrl"] is None and mine["renditions"] == []
    # Not READY: hidden from everyone else, and so is its processing.
    assert await client.video(video_id, viewer) is None
    assert await client.video(video_id) is None
    for who, code in ((viewer, "NOT_FOUND"), (None, "UNAUTHENTICATED")):
        async with processing(stack, video_id, who) as theirs:
            refused = await theirs.next(timeout=DEADLINE)
            assert refused["data"] is None and codes(refused) == [code], refused
            assert (await theirs.message(timeout=DEADLINE))["type"] == "complete"


async def test_only_creators_upload_and_nobody_touches_anothers_upload(
    stack: Stack, client: Client
) -> None:
    creator = await client.register(creator=True)
    viewer = await client.register()
    other_creator = await client.register(creator=True)

    refused = await client.gql(
        "mutation C($input: CreateUploadInput!) { createUpload(input: $input) { id } }",
        {"input": {"title": "x", "categoryId": "music", "filename": "a.mp4", "sizeBytes": 10}},
        viewer,
    )
    assert codes(refused) == ["FORBIDDEN"] and refused["data"] is None, refused
    # tus creation (POST) through the router: a viewer is refused, a creator gets a resource
    # on the router's origin.
    creation = {
        **TUS,
        "upload-length": "10",
        "upload-metadata": "filename YS5tcDQ=,title eA==,categoryId bXVzaWM=",  # a.mp4, x, music
    }
    created = await client.http.post(f"{stack.origin}/uploads", headers={**creation, **viewer.auth})
    assert created.status_code == 403, created.text
    created = await client.http.post(
        f"{stack.origin}/uploads", headers={**creation, **creator.auth}
    )
    assert created.status_code == 201, created.text
    location = created.headers["location"]
    assert location.startswith(f"{stack.origin}/uploads/"), location
    assert await tus_offset(client.http, location, creator) == 0

    session = await client.create_upload(creator, size=1000)
    url = session["uploadUrl"]
    body = b"\x00" * 100
    patch = {**OCTETS, "upload-offset": "0"}
    anonymous = await client.http.patch(url, content=body, headers=patch)
    assert anonymous.status_code == 401
    for stranger in (viewer, other_creator):
        theirs = await client.http.patch(url, content=body, headers={**patch, **stranger.auth})
        assert theirs.status_code == 404, theirs.text  # as if it did not exist
        peek = await client.http.head(url, headers={**TUS, **stranger.auth})
        assert peek.status_code == 404
        gone = await client.http.delete(url, headers={**TUS, **stranger.auth})
        assert gone.status_code == 404
    assert await tus_offset(client.http, url, creator) == 0  # not a byte landed
    mine = await client.http.patch(url, content=body, headers={**patch, **creator.auth})
    assert mine.status_code == 204 and mine.headers["upload-offset"] == "100"


async def test_deleting_a_video_stops_its_media_and_empties_storage(
    stack: Stack, client: Client, small_clip: bytes
) -> None:
    owner = await client.register(creator=True)
    viewer = await client.register()
    video = await client.ready(owner, small_clip, title="Soon gone")
    video_id = video["id"]
    urls = [video["hlsUrl"], video["thumbnailUrl"], video["storyboard"]["vttUrl"]]
    variant = urljoin(video["hlsUrl"], "240p/index.m3u8")
    urls += [variant, urljoin(variant, "segment_00000.ts")]
    for url in urls:
        assert (await client.get(url)).status_code == 200, url
    prefixes = (f"videos/{video_id}/", f"uploads/{video_id}/")
    async with stack_storage(stack) as storage:
        stored = await storage_keys(storage, *prefixes)
        assert f"uploads/{video_id}/source" in stored
        assert f"videos/{video_id}/hls/master.m3u8" in stored

        delete = "mutation D($id: ID!) { deleteVideo(id: $id) }"
        refused = await client.gql(delete, {"id": video_id}, viewer)
        assert codes(refused) == ["FORBIDDEN"], refused
        assert (await client.ok(delete, {"id": video_id}, owner)) == {"deleteVideo": True}

        assert await client.video(video_id, owner) is None
        for url in urls:
            assert (await client.get(url)).status_code == 404, url
        deadline = time.monotonic() + DEADLINE
        while left := await storage_keys(storage, *prefixes):
            assert time.monotonic() < deadline, f"still stored: {left}"
            await asyncio.sleep(0.2)
    assert urlsplit(urls[0]).netloc == urlsplit(stack.origin).netloc
