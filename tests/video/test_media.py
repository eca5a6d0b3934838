"""Playback media at /media/<videoId>/<token>/<path>: real HLS files from storage (a local
directory or, on the S3 stack, a private bucket proxied by the service), byte ranges, cache
validators, public and signed tokens, and every way a request can be refused."""

from __future__ import annotations

import asyncio
import os
import stat
import time
from typing import Any
from urllib.parse import urljoin, urlsplit

import m3u8
import pytest

from subgraphs.video.media import MediaSigner, load_signing_key
from tests.video.conftest import Api, Person, Stack, eventually

UPDATE = "mutation U($id: ID!, $input: UpdateVideoInput!) { updateVideo(id: $id, input: $input) { id visibility hlsUrl } }"


async def _public_video(api: Api) -> tuple[Person, str, dict[str, Any]]:
    if "media:public" not in api.stack.cache:
        owner = await api.register()
        video_id = await api.ready_video(owner, title="Media test")
        api.stack.cache["media:public"] = (owner, video_id)
    owner, video_id = api.stack.cache["media:public"]
    video = await api.video(video_id)
    assert video is not None
    return owner, video_id, video


def _signer(stack: Stack) -> MediaSigner:
    return MediaSigner(load_signing_key(stack.env.settings()), ttl=3600)


async def test_the_hls_ladder_plays_through_its_relative_uris(api: Api) -> None:
    _, _, video = await _public_video(api)
    media_dir = api.stack.media_dir

    master = await api.http.get(video["hlsUrl"])
    assert master.status_code == 200
    assert master.headers["content-type"].startswith("application/vnd.apple.mpegurl")
    assert master.content == (media_dir / "hls" / "master.m3u8").read_bytes()
    playlist = m3u8.loads(master.text)
    (variant,) = playlist.playlists
    assert variant.stream_info.resolution == (160, 90)

    variant_url = urljoin(video["hlsUrl"], variant.uri)
    rendition = await api.http.get(variant_url)
    assert rendition.status_code == 200
    segments = m3u8.loads(rendition.text).segments
    assert len(segments) >= 2
    for segment in segments:
        response = await api.http.get(urljoin(variant_url, segment.uri))
        assert response.status_code == 200
        assert response.headers["content-type"] == "video/mp2t"
        assert response.content == (media_dir / "hls" / "90p" / segment.uri).read_bytes()
        assert response.headers["cache-control"].startswith("public, max-age=")

    poster = await api.http.get(video["thumbnailUrl"])
    assert poster.headers["content-type"] == "image/jpeg"
    assert poster.content[:2] == b"\xff\xd8"
    vtt = await api.http.get(video["storyboard"]["vttUrl"])
    assert vtt.headers["content-type"].startswith("text/vtt")
    cue = vtt.text.strip().splitlines()[-1]
    sprite = await api.http.get(urljoin(video["storyboard"]["vttUrl"], cue.split("#")[0]))
    assert sprite.status_code == 200
    assert sprite.content == (media_dir / "storyboard.jpg").read_bytes()


async def test_byte_ranges_validators_and_head(api: Api) -> None:
    _, _, video = await _public_video(api)
    url = urljoin(video["hlsUrl"], "90p/segment_00000.ts")
    data = (api.stack.media_dir / "hls" / "90p" / "segment_00000.ts").read_bytes()
    size = len(data)
    get = api.http.get

    whole = await get(url)
    assert whole.status_code == 200
    assert whole.headers["accept-ranges"] == "bytes"
    assert whole.headers["content-length"] == str(size)
    etag = whole.headers["etag"]

    first = await get(url, headers={"range": "bytes=0-99"})
    assert first.status_code == 206
    assert first.headers["content-range"] == f"bytes 0-99/{size}"
    assert first.content == data[:100]
    middle = await get(url, headers={"range": "bytes=188-375"})
    assert middle.content == data[188:376]
    tail = await get(url, headers={"range": "bytes=-50"})
    assert tail.status_code == 206
    assert tail.headers["content-range"] == f"bytes {size - 50}-{size - 1}/{size}"
    assert tail.content == data[-50:]
    rest = await get(url, headers={"range": f"bytes={size - 10}-"})
    assert rest.content == data[-10:]
    clamped = await get(url, headers={"range": f"bytes={size - 5}-{size + 1000}"})
    assert clamped.headers["content-range"] == f"bytes {size - 5}-{size - 1}/{size}"
    huge_suffix = await get(url, headers={"range": f"bytes=-{size * 10}"})
    assert huge_suffix.status_code == 206
    assert huge_suffix.content == data

    beyond = await get(url, headers={"range": f"bytes={size}-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{size}"
    assert (await get(url, headers={"range": "bytes=-0"})).status_code == 416
    for ignored in ("bytes=0-1,5-6", "bytes=abc", "items=0-1", "bytes=9-3"):
        response = await get(url, headers={"range": ignored})
        assert response.status_code == 200, ignored
        assert response.content == data

    assert (await get(url, headers={"if-none-match": etag})).status_code == 304
    stale = await get(url, headers={"range": "bytes=0-9", "if-range": '"other"'})
    assert stale.status_code == 200 and stale.content == data
    fresh = await get(url, headers={"range": "bytes=0-9", "if-range": etag})
    assert fresh.status_code == 206 and fresh.content == data[:10]

    head = await api.http.head(url, headers={"range": "bytes=10-19"})
    assert head.status_code == 206
    assert head.headers["content-length"] == "10"
    assert head.content == b""


@pytest.mark.parametrize(
    ("path", "statuses"),
    [
        ("hls/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd", {400, 404}),
        ("..%2F..%2Fuploads%2Fsource", {400, 404}),
        ("hls/./master.m3u8", {400, 404}),
        ("hls//master.m3u8", {400, 404}),
        ("media.json", {404}),
        ("hls/missing.ts", {404}),
        ("hls/master.m3u8%00.ts", {400, 404}),
    ],
)
async def test_paths_never_leave_the_videos_prefix(api: Api, path: str, statuses: set[int]) -> None:
    _, video_id, _ = await _public_video(api)
    # The source upload sits next door under uploads/<id>/: a traversal would reach it.
    status, body = await _raw_get(api.video_url, f"/media/{video_id}/public/{path}")
    assert status in statuses, (path, status, body)
    assert b"#EXTM3U" not in body


async def _raw_get(base: str, path: str) -> tuple[int, bytes]:
    """GET with the path sent exactly as written (HTTP clients normalise dot segments)."""
    parts = urlsplit(base)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(
            f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        response = await asyncio.wait_for(reader.read(), 30)
    finally:
        writer.close()
    head, _, body = response.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


async def test_unknown_videos_and_files_are_404(api: Api) -> None:
    base = f"{api.video_url}/media"
    assert (
        await api.http.get(f"{base}/{os.urandom(16).hex()}/public/hls/master.m3u8")
    ).status_code == 404
    assert (
        await api.http.get(f"{base}/00000000-0000-4000-8000-000000000000/public/hls/master.m3u8")
    ).status_code == 404
    assert (await api.http.get(f"{base}/not-a-uuid/public/hls/master.m3u8")).status_code == 404
    # A video that is not READY has no media to serve, even to a valid token.
    owner = await api.register()
    processing = await api.processing_video(owner)
    token = _signer(api.stack).sign(processing)
    assert (await api.http.get(f"{base}/{processing}/{token}/hls/master.m3u8")).status_code == 404


async def test_non_ascii_digits_in_tokens_and_ranges_are_refused_not_errors(api: Api) -> None:
    _, video_id, video = await _public_video(api)
    # "²" is a digit to str.isdigit() but not to int(): a token made of it is just bad.
    status, _ = await _raw_get(api.video_url, f"/media/{video_id}/%C2%B2.x/hls/master.m3u8")
    assert status == 403
    status, _ = await _raw_get(api.video_url, f"/media/{video_id}/%D9%A3.x/hls/master.m3u8")
    assert status == 403

    url = urljoin(video["hlsUrl"], "90p/segment_00000.ts")
    data = (api.stack.media_dir / "hls" / "90p" / "segment_00000.ts").read_bytes()
    # A malformed Range is ignored (RFC 9110): the whole file. 0xB2 is "²" in Latin-1.
    for header in (b"bytes=\xb2-", b"bytes=-\xb2", b"bytes=0-\xb2", b"bytes=\xa00-9"):
        response = await api.http.get(url, headers={"range": header})
        assert response.status_code == 200, header
        assert response.content == data
    # Far more digits than int() parses: a position past the end, not an error.
    beyond = await api.http.get(url, headers={"range": "bytes=" + "9" * 5000 + "-"})
    assert beyond.status_code == 416
    clamped = await api.http.get(url, headers={"range": "bytes=1-" + "9" * 5000})
    assert clamped.status_code == 206 and clamped.content == data[1:]


async def test_private_media_needs_a_valid_signed_token_for_that_video(api: Api) -> None:
    owner = await api.register()
    stranger = await api.register()
    video_id = await api.ready_video(owner, visibility="PRIVATE")
    other_id = await api.ready_video(owner, visibility="PRIVATE")
    video = await api.video(video_id, owner)
    assert video is not None
    signed_url = video["hlsUrl"]
    token = signed_url.split("/")[5]
    assert token != "public" and token.split(".")[0].isdigit()
    assert await api.video(video_id, stranger) is None

    assert (await api.http.get(signed_url)).status_code == 200
    segment = urljoin(signed_url, "90p/segment_00000.ts")
    assert (await api.http.get(segment, headers={"range": "bytes=0-9"})).status_code == 206
    assert (await api.http.get(segment)).headers["cache-control"].startswith("private")
    public = signed_url.replace(f"/{token}/", "/public/")
    assert (await api.http.get(public)).status_code == 404

    expires, signature = token.split(".")
    forged = f"{int(expires) + 3600}.{signature}"
    assert (await api.http.get(signed_url.replace(token, forged))).status_code == 403
    assert (await api.http.get(signed_url.replace(token, "garbage"))).status_code == 403
    assert (
        await api.http.get(signed_url.replace(token, f"{expires}.{'A' * 43}"))
    ).status_code == 403
    # A valid token of another video does not open this one.
    other_token = _signer(api.stack).sign(other_id)
    assert (await api.http.get(signed_url.replace(token, other_token))).status_code == 403
    assert (
        await api.http.get(signed_url.replace(video_id, other_id).replace(token, other_token))
    ).status_code == 200
    expired = _signer(api.stack).sign(video_id, now=time.time() - 7200)
    assert (await api.http.get(signed_url.replace(token, expired))).status_code == 403
    # Claims are covered by the signature (room for a playback session later).
    with_claim = _signer(api.stack).sign(video_id, claims=["session1"])
    assert (await api.http.get(signed_url.replace(token, with_claim))).status_code == 200
    tampered = with_claim.replace("session1", "session2")
    assert (await api.http.get(signed_url.replace(token, tampered))).status_code == 403


async def test_making_a_video_private_cuts_its_public_urls_off(api: Api) -> None:
    owner = await api.register()
    video_id = await api.ready_video(owner, visibility="UNLISTED")
    video = await api.video(video_id)
    assert video is not None and "/public/" in video["hlsUrl"]
    public_url = video["hlsUrl"]
    assert (await api.http.get(public_url)).status_code == 200

    private = await api.q(UPDATE, {"id": video_id, "input": {"visibility": "PRIVATE"}}, owner)
    assert "/public/" not in private["data"]["updateVideo"]["hlsUrl"]

    assert (await api.http.get(public_url)).status_code == 404
    assert (await api.http.get(private["data"]["updateVideo"]["hlsUrl"])).status_code == 200
    await api.q(UPDATE, {"id": video_id, "input": {"visibility": "PUBLIC"}}, owner)
    assert (await api.http.get(public_url)).status_code == 200


def test_the_generated_signing_key_is_private_and_shared_by_replicas(stack: Stack) -> None:
    if stack.env.settings().media_signing_key:
        pytest.skip("the key comes from the environment")
    path = stack.env.data_dir / "video" / "media-signing.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # Every replica started on this data dir read the same key (tokens work on either).
    assert load_signing_key(stack.env.settings()) == load_signing_key(stack.env.settings())


async def test_a_signed_url_works_on_every_replica(api: Api, stack: Stack) -> None:
    owner = await api.register()
    video_id = await api.ready_video(owner, visibility="PRIVATE")
    video = await api.video(video_id, owner)
    assert video is not None
    on_replica = video["hlsUrl"].replace(api.video_url, stack.replica().url)
    assert (await api.http.get(on_replica)).status_code == 200


async def test_signed_tokens_never_reach_the_access_log(api: Api, stack: Stack) -> None:
    owner = await api.register()
    video_id = await api.ready_video(owner, visibility="PRIVATE")
    video = await api.video(video_id, owner)
    assert video is not None
    token = video["hlsUrl"].split("/")[5]
    assert (await api.http.get(video["hlsUrl"])).status_code == 200

    def logged() -> str:
        return "".join(p.log() for p in stack.processes if p.name == "video")

    async def request_logged() -> bool:
        return f"/media/{video_id}/[token]/hls/master.m3u8" in logged()

    await eventually(request_logged, "the media request was never logged")
    assert token not in logged()
    assert token.split(".")[-1] not in logged()
