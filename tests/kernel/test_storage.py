"""One contract suite for every `Storage` backend: local files and S3 (a real moto_server)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aioboto3
import httpx
import pytest

from subgraphs.kernel.settings import Settings
from subgraphs.kernel.storage import (
    InvalidKey,
    LocalStorage,
    ObjectNotFound,
    S3Storage,
    Storage,
    open_storage,
)
from tests.support.s3 import (
    DUMMY_ACCESS_KEY_ID,
    DUMMY_SECRET_ACCESS_KEY,
    REGION,
    moto_s3_endpoint,  # noqa: F401
)

MiB = 1024 * 1024
SESSION = aioboto3.Session()


@pytest.fixture(params=["local", "s3"])
async def storage(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Storage]:
    if request.param == "local":
        settings = Settings(storage="local", data_dir=tmp_path / "data")
    else:
        settings = Settings(
            storage="s3",
            data_dir=tmp_path / "data",
            s3_endpoint_url=request.getfixturevalue("moto_s3_endpoint"),
            s3_bucket=f"test-{uuid.uuid4().hex[:16]}",
            s3_region=REGION,
            s3_access_key_id=DUMMY_ACCESS_KEY_ID,
            s3_secret_access_key=DUMMY_SECRET_ACCESS_KEY,
        )
    store: Storage
    if settings.storage == "local":
        store = open_storage(settings)
    else:
        # A shared session spares each test loading botocore's service models again.
        store = S3Storage.from_settings(settings, session=SESSION)
    try:
        yield store
    finally:
        await store.close()


async def chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def read_all(store: Storage, key: str, **kwargs: int | None) -> bytes:
    return b"".join([chunk async for chunk in store.read(key, **kwargs)])


async def keys(store: Storage, prefix: str = "") -> list[str]:
    return [info.key async for info in store.list(prefix)]


def random_bytes(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


async def assert_nothing_left(store: Storage, key: str) -> None:
    """No object, no listing entry, and no backend leftovers (temp files, multipart uploads)."""
    assert not await store.exists(key)
    assert await keys(store) == []
    if isinstance(store, LocalStorage):
        files = [p for p in store.root.rglob("*") if p.is_file()] if store.root.exists() else []
        assert files == []
    else:
        assert isinstance(store, S3Storage)
        assert await s3_multipart_uploads(store) == []


@asynccontextmanager
async def raw_s3(store: S3Storage) -> AsyncIterator[Any]:
    """A plain client on the same endpoint, to look behind the backend's back."""
    async with SESSION.client(
        "s3",
        endpoint_url=store.endpoint_url,
        region_name=REGION,
        aws_access_key_id=DUMMY_ACCESS_KEY_ID,
        aws_secret_access_key=DUMMY_SECRET_ACCESS_KEY,
    ) as s3:
        yield s3


async def s3_multipart_uploads(store: S3Storage) -> list[str]:
    async with raw_s3(store) as s3:
        response = await s3.list_multipart_uploads(Bucket=store.bucket)
        return [upload["Key"] for upload in response.get("Uploads", [])]


# --- put / get ---------------------------------------------------------------------------------


async def test_put_bytes_round_trip(storage: Storage) -> None:
    data = b"#EXTM3U\n#EXT-X-VERSION:3\n"
    info = await storage.put("videos/1/hls/master.m3u8", data)
    assert info.key == "videos/1/hls/master.m3u8"
    assert info.size == len(data)
    assert await storage.get("videos/1/hls/master.m3u8") == data
    assert await read_all(storage, "videos/1/hls/master.m3u8") == data
    assert await storage.exists("videos/1/hls/master.m3u8")


async def test_put_empty_object(storage: Storage) -> None:
    info = await storage.put("empty.bin", b"")
    assert info.size == 0
    assert await storage.get("empty.bin") == b""
    assert (await storage.stat("empty.bin")).size == 0
    assert await read_all(storage, "empty.bin") == b""
    assert await read_all(storage, "empty.bin", start=0, end=10) == b""


async def test_put_async_iterable_round_trip(storage: Storage) -> None:
    data = random_bytes(300_001)
    info = await storage.put("uploads/a.bin", chunks(data, 7_777))
    assert info.size == len(data)
    assert await storage.get("uploads/a.bin") == data


async def test_put_large_stream_round_trip(storage: Storage) -> None:
    # Over 10 MiB, so S3 needs a multipart upload (two parts at the default 8 MiB).
    data = random_bytes(10 * MiB + 12_345, seed=1)
    info = await storage.put("videos/big/source.mp4", chunks(data, 1 * MiB))
    assert info.size == len(data)
    assert (await storage.stat("videos/big/source.mp4")).size == len(data)
    digest = hashlib.sha256()
    async for chunk in storage.read("videos/big/source.mp4", chunk_size=256 * 1024):
        assert 0 < len(chunk) <= 256 * 1024
        digest.update(chunk)
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()
    if isinstance(storage, S3Storage):
        async with raw_s3(storage) as s3:
            head = await s3.head_object(Bucket=storage.bucket, Key="videos/big/source.mp4")
        assert head["ETag"].strip('"').endswith("-2"), "expected a two-part multipart upload"


async def test_overwrite_replaces(storage: Storage) -> None:
    await storage.put("k/obj", b"a much longer first version of the object")
    await storage.put("k/obj", b"short")
    assert await storage.get("k/obj") == b"short"
    assert (await storage.stat("k/obj")).size == 5
    await storage.put("k/obj", chunks(b"streamed third", 4))
    assert await storage.get("k/obj") == b"streamed third"
    assert await keys(storage) == ["k/obj"]


async def test_concurrent_puts_leave_one_whole_version(storage: Storage) -> None:
    versions = [bytes([i]) * (256 * 1024) for i in range(8)]
    await asyncio.gather(*(storage.put("race/obj", v) for v in versions))
    assert await storage.get("race/obj") in versions
    assert await keys(storage) == ["race/obj"]


# --- stat / content types ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "given", "expected"),
    [
        ("v/hls/index.m3u8", None, "application/vnd.apple.mpegurl"),
        ("v/hls/720p/seg_00001.ts", None, "video/mp2t"),
        ("v/dash/seg_1.m4s", None, "video/iso.segment"),
        ("v/subs/en.vtt", None, "text/vtt"),
        ("v/source.mp4", None, "video/mp4"),
        ("v/thumb.JPG", None, "image/jpeg"),
        ("v/original", None, "application/octet-stream"),
        ("v/original", "video/webm", "video/webm"),
        ("v/weird.ts", "application/x-custom", "application/x-custom"),
    ],
)
async def test_stat_size_and_content_type(
    storage: Storage, key: str, given: str | None, expected: str
) -> None:
    before = time.time()
    info = await storage.put(key, b"x" * 1234, content_type=given)
    assert info.content_type == expected
    stat = await storage.stat(key)
    assert stat.key == key
    assert stat.size == 1234
    assert stat.content_type == expected
    # S3 keeps whole seconds; allow for that and a little clock skew.
    assert before - 5 <= stat.modified_at <= time.time() + 5


async def test_overwrite_drops_the_old_content_type(storage: Storage) -> None:
    await storage.put("v/weird.ts", b"1", content_type="application/x-custom")
    await storage.put("v/weird.ts", b"2")
    assert (await storage.stat("v/weird.ts")).content_type == "video/mp2t"


async def test_put_file_content_type(storage: Storage, tmp_path: Path) -> None:
    source = tmp_path / "in.vtt"
    source.write_bytes(b"WEBVTT\n")
    await storage.put_file("v/subs/en.vtt", str(source))
    assert (await storage.stat("v/subs/en.vtt")).content_type == "text/vtt"
    await storage.put_file("v/subs/raw", str(source), content_type="text/vtt")
    assert (await storage.stat("v/subs/raw")).content_type == "text/vtt"


# --- ranged reads ------------------------------------------------------------------------------

DATA = bytes(range(256)) * 4  # 1024 bytes, every offset distinguishable mod 256


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (0, None, DATA),
        (100, None, DATA[100:]),  # start only
        (10, 20, DATA[10:20]),  # start and end, end exclusive
        (0, 1, DATA[:1]),
        (1023, None, DATA[1023:]),  # last byte
        (1023, 1024, DATA[1023:]),
        (1000, 5000, DATA[1000:]),  # end past the object: clamped
        (0, 1024, DATA),
        (1024, None, b""),  # start at the end: empty
        (5000, None, b""),  # start past the end: empty
        (5000, 6000, b""),
        (10, 10, b""),  # empty range
        (20, 10, b""),  # end before start: empty
    ],
)
async def test_ranged_read(storage: Storage, start: int, end: int | None, expected: bytes) -> None:
    await storage.put("r/data.bin", DATA)
    assert await read_all(storage, "r/data.bin", start=start, end=end) == expected


async def test_read_respects_chunk_size(storage: Storage) -> None:
    await storage.put("r/data.bin", DATA)
    parts = [c async for c in storage.read("r/data.bin", start=3, end=900, chunk_size=100)]
    assert all(0 < len(c) <= 100 for c in parts)
    assert b"".join(parts) == DATA[3:900]


async def test_read_stopped_early_releases_resources(storage: Storage) -> None:
    await storage.put("r/big.bin", random_bytes(2 * MiB))
    for _ in range(20):  # would exhaust a connection pool or file handles if leaked
        stream = storage.read("r/big.bin", chunk_size=1024)
        assert len(await anext(stream)) <= 1024
        await stream.aclose()
    assert len(await storage.get("r/big.bin")) == 2 * MiB


async def test_read_rejects_negative_arguments(storage: Storage) -> None:
    with pytest.raises(ValueError, match="start"):
        storage.read("r/data.bin", start=-1)
    with pytest.raises(ValueError, match="end"):
        storage.read("r/data.bin", end=-1)
    with pytest.raises(ValueError, match="chunk_size"):
        storage.read("r/data.bin", chunk_size=0)


# --- missing objects ---------------------------------------------------------------------------


async def test_missing_key(storage: Storage, tmp_path: Path) -> None:
    await storage.put("present/a", b"a")  # so the bucket or root exists
    with pytest.raises(ObjectNotFound):
        await read_all(storage, "present/nope")
    with pytest.raises(ObjectNotFound):
        await read_all(storage, "present/nope", start=5, end=10)
    with pytest.raises(ObjectNotFound):
        await read_all(storage, "present/nope", start=5, end=5)  # even an empty range
    with pytest.raises(ObjectNotFound):
        await storage.get("present/nope")
    with pytest.raises(ObjectNotFound):
        await storage.stat("present/nope")
    with pytest.raises(ObjectNotFound):
        await storage.download("present/nope", str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()
    assert not await storage.exists("present/nope")
    # A "folder" is not an object on either backend.
    with pytest.raises(ObjectNotFound):
        await storage.stat("present")
    with pytest.raises(ObjectNotFound):
        await storage.get("present")
    assert not await storage.exists("present")
    # ObjectNotFound is a KeyError, so `except KeyError` callers keep working.
    with pytest.raises(KeyError):
        await storage.get("never/there")


# --- delete ------------------------------------------------------------------------------------


async def test_delete(storage: Storage) -> None:
    await storage.put("d/a.ts", b"a")
    await storage.put("d/b.ts", b"b")
    await storage.delete("d/a.ts")
    assert not await storage.exists("d/a.ts")
    with pytest.raises(ObjectNotFound):
        await storage.get("d/a.ts")
    assert await keys(storage) == ["d/b.ts"]
    await storage.delete("d/a.ts")  # deleting it again is fine
    await storage.delete("never/existed")  # and so is deleting what never existed
    await storage.delete("d")  # a "folder" is no object: nothing happens
    assert await storage.get("d/b.ts") == b"b"


async def test_delete_prefix_removes_only_that_prefix(storage: Storage) -> None:
    doomed = ["videos/1/source.mp4", "videos/1/hls/720p/seg_1.ts", "videos/1/hls/index.m3u8"]
    spared = ["videos/1.mp4", "videos/12/source.mp4", "videos/2/source.mp4", "videos/10"]
    for key in doomed + spared:
        await storage.put(key, key.encode(), content_type="application/x-test")
    assert await storage.delete_prefix("videos/1/") == len(doomed)
    assert await keys(storage) == sorted(spared)
    for key in spared:
        assert await storage.get(key) == key.encode()
    assert await storage.delete_prefix("videos/1/") == 0
    assert await storage.delete_prefix("nothing/here/") == 0
    # A prefix is a plain string prefix, as on S3: `videos/1` also takes `videos/1.mp4` etc.
    assert await storage.delete_prefix("videos/1") == 3
    assert await keys(storage) == ["videos/2/source.mp4"]
    # Then the whole tree can be put back, and an empty prefix is refused.
    await storage.put("videos/1/source.mp4", b"again")
    assert await storage.get("videos/1/source.mp4") == b"again"
    with pytest.raises(InvalidKey):
        await storage.delete_prefix("")
    assert len(await keys(storage)) == 2


async def test_delete_prefix_more_than_one_batch(storage: Storage) -> None:
    # S3 deletes at most 1000 keys per request and lists 1000 per page.
    count = 1005
    semaphore = asyncio.Semaphore(32)

    async def put(i: int) -> None:
        async with semaphore:
            await storage.put(f"many/{i:05d}.ts", b"x")

    await asyncio.gather(*(put(i) for i in range(count)))
    await storage.put("many.keep", b"k")
    listed = await keys(storage, "many/")
    assert listed == [f"many/{i:05d}.ts" for i in range(count)]
    assert await storage.delete_prefix("many/") == count
    assert await keys(storage) == ["many.keep"]


# --- list --------------------------------------------------------------------------------------


async def test_list_key_order_and_prefix_filtering(storage: Storage) -> None:
    # '-' (0x2d) and '.' (0x2e) sort before '/' (0x2f), which sorts before '0': a naive
    # directory walk would put `a/...` before `a-b`.
    names = ["a/b", "a-b", "a0", "a/c/d", "a.txt", "b/x", "ab", "A", "a/c/e/f", "a/c0", "é"]
    shuffled = names[:]
    random.Random(7).shuffle(shuffled)
    for i, key in enumerate(shuffled):
        await storage.put(key, b"x" * (i + 1))
    listed = [info async for info in storage.list()]
    assert [info.key for info in listed] == sorted(names)
    sizes = {info.key: info.size for info in listed}
    assert sizes == {key: i + 1 for i, key in enumerate(shuffled)}
    assert all(info.modified_at > 0 for info in listed)
    assert await keys(storage, "a/") == ["a/b", "a/c/d", "a/c/e/f", "a/c0"]
    assert await keys(storage, "a/c") == ["a/c/d", "a/c/e/f", "a/c0"]
    assert await keys(storage, "a/c/") == ["a/c/d", "a/c/e/f"]
    assert await keys(storage, "a") == sorted(k for k in names if k.startswith("a"))
    assert await keys(storage, "a/b") == ["a/b"]
    assert await keys(storage, "zzz") == []
    assert await keys(storage, "zzz/") == []


async def test_list_empty_store(storage: Storage) -> None:
    assert await keys(storage) == []


# --- put_file / download -----------------------------------------------------------------------


async def test_put_file_and_download_round_trip(storage: Storage, tmp_path: Path) -> None:
    data = random_bytes(9 * MiB + 3, seed=2)  # more than one S3 part
    source = tmp_path / "render.mp4"
    source.write_bytes(data)
    info = await storage.put_file("videos/7/render.mp4", str(source))
    assert info.size == len(data)
    assert info.content_type == "video/mp4"
    target = tmp_path / "downloaded.mp4"
    target.write_bytes(b"stale contents to be replaced")
    await storage.download("videos/7/render.mp4", str(target))
    assert target.read_bytes() == data
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".part")] == []


async def test_put_file_missing_source(storage: Storage, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        await storage.put_file("x/y", str(tmp_path / "absent"))
    assert not await storage.exists("x/y")


# --- invalid keys ------------------------------------------------------------------------------

BAD_KEYS = [
    "../x",
    "/abs",
    "a//b",
    "a/./b",
    "",
    "a\x00b",
    "a/../b",
    "a/..",
    ".",
    "..",
    "a\\b",
    "a/",
]


@pytest.mark.parametrize("key", BAD_KEYS)
async def test_invalid_keys_rejected(storage: Storage, key: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidKey):
        await storage.put(key, b"x")
    with pytest.raises(InvalidKey):
        await storage.put(key, chunks(b"x", 1))
    source = tmp_path / "src"
    source.write_bytes(b"x")
    with pytest.raises(InvalidKey):
        await storage.put_file(key, str(source))
    with pytest.raises(InvalidKey):
        await storage.get(key)
    with pytest.raises(InvalidKey):
        await storage.stat(key)
    with pytest.raises(InvalidKey):
        await storage.exists(key)
    with pytest.raises(InvalidKey):
        storage.read(key)
    with pytest.raises(InvalidKey):
        await storage.download(key, str(tmp_path / "out"))
    with pytest.raises(InvalidKey):
        await storage.delete(key)
    with pytest.raises(InvalidKey):
        await storage.presigned_url(key, expires_in=60)
    assert await keys(storage) == []
    # Nothing was written anywhere, inside the root or out of it.
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [source]


@pytest.mark.parametrize("prefix", ["../", "/abs/", "a//", "a/./", "a/../", "a\x00", "a\\b"])
async def test_invalid_prefixes_rejected(storage: Storage, prefix: str) -> None:
    with pytest.raises(InvalidKey):
        storage.list(prefix)
    with pytest.raises(InvalidKey):
        await storage.delete_prefix(prefix)


async def test_reserved_and_overlong_keys_rejected(storage: Storage) -> None:
    # `.~` names are the local backend's temp files and sidecars; refused everywhere for parity.
    with pytest.raises(InvalidKey):
        await storage.put("a/.~tmp.0123", b"x")
    with pytest.raises(InvalidKey):
        await storage.put("a/" + "x" * 1023, b"x")
    # Dots are fine inside names.
    await storage.put("a/.hidden/v1..2.ts", b"x")
    assert await keys(storage) == ["a/.hidden/v1..2.ts"]


# --- presigned URLs ----------------------------------------------------------------------------


async def test_presigned_url(storage: Storage) -> None:
    data = random_bytes(70_000, seed=3)
    await storage.put("videos/9/hls/720p/seg_00001.ts", data)
    url = await storage.presigned_url("videos/9/hls/720p/seg_00001.ts", expires_in=300)
    if isinstance(storage, LocalStorage):
        assert url is None
        return
    assert url is not None
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 200
    assert response.content == data
    assert response.headers["content-type"] == "video/mp2t"


# --- interrupted writes ------------------------------------------------------------------------


class Interrupted(Exception):
    pass


async def failing_stream(good_bytes: int) -> AsyncIterator[bytes]:
    for chunk in [random_bytes(good_bytes, seed=4)[i : i + MiB] for i in range(0, good_bytes, MiB)]:
        yield chunk
    raise Interrupted


@pytest.mark.parametrize("good_bytes", [1000, 9 * MiB], ids=["small", "after-first-part"])
async def test_interrupted_stream_leaves_nothing(storage: Storage, good_bytes: int) -> None:
    with pytest.raises(Interrupted):
        await storage.put("videos/3/source.mp4", failing_stream(good_bytes))
    await assert_nothing_left(storage, "videos/3/source.mp4")


async def test_interrupted_stream_keeps_previous_version(storage: Storage) -> None:
    await storage.put("videos/3/source.mp4", b"old")
    with pytest.raises(Interrupted):
        await storage.put("videos/3/source.mp4", failing_stream(9 * MiB))
    assert await storage.get("videos/3/source.mp4") == b"old"
    assert await keys(storage) == ["videos/3/source.mp4"]
    if isinstance(storage, LocalStorage):
        assert [p.name for p in (storage.root / "videos" / "3").iterdir()] == ["source.mp4"]
    else:
        assert isinstance(storage, S3Storage)
        assert await s3_multipart_uploads(storage) == []


async def test_cancelled_stream_leaves_nothing(storage: Storage) -> None:
    started = asyncio.Event()

    async def stalls() -> AsyncIterator[bytes]:
        for _ in range(9):
            yield b"z" * MiB
        started.set()
        await asyncio.Event().wait()  # never resolves
        yield b""

    task = asyncio.create_task(storage.put("videos/4/source.mp4", stalls()))
    await asyncio.wait_for(started.wait(), timeout=20)
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await assert_nothing_left(storage, "videos/4/source.mp4")


# --- backend specifics -------------------------------------------------------------------------


async def test_local_layout(tmp_path: Path) -> None:
    store = open_storage(Settings(storage="local", data_dir=tmp_path))
    assert isinstance(store, LocalStorage)
    assert store.root == (tmp_path / "media").resolve()
    await store.put("videos/5/hls/index.m3u8", b"#EXTM3U\n")
    # A plain file at root/<key>, with no sidecar when the type matches the extension.
    assert (tmp_path / "media/videos/5/hls/index.m3u8").read_bytes() == b"#EXTM3U\n"
    assert os.listdir(tmp_path / "media/videos/5/hls") == ["index.m3u8"]
    await store.put("videos/5/original", b"webm", content_type="video/webm")
    assert await keys(store) == ["videos/5/hls/index.m3u8", "videos/5/original"]
    await store.delete("videos/5/original")
    assert os.listdir(tmp_path / "media/videos/5") == ["hls"]  # its sidecar went with it
    # Deleting the last objects prunes the emptied directories, but never the root.
    assert await store.delete_prefix("videos/5/") == 1
    assert os.listdir(tmp_path / "media") == []


async def test_local_does_not_follow_symlinks_out_of_root(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"s")
    store = LocalStorage(tmp_path / "media")
    await store.put("a/b", b"x")
    (store.root / "link").symlink_to(outside)
    assert await keys(store) == ["a/b"]
    assert await store.delete_prefix("link") == 0
    assert (outside / "secret").exists()


async def test_s3_creates_missing_bucket_once(moto_s3_endpoint: str) -> None:  # noqa: F811
    bucket = f"test-{uuid.uuid4().hex[:16]}"
    stores = [
        S3Storage(
            bucket,
            endpoint_url=moto_s3_endpoint,
            region="eu-west-1",  # outside us-east-1, creation needs a location constraint
            access_key_id=DUMMY_ACCESS_KEY_ID,
            secret_access_key=DUMMY_SECRET_ACCESS_KEY,
            session=SESSION,
        )
        for _ in range(2)
    ]
    try:
        await stores[0].put("a", b"1")
        await stores[1].ensure_bucket()  # already there: fine
        assert await stores[1].get("a") == b"1"
        async with raw_s3(stores[0]) as s3:
            location = await s3.get_bucket_location(Bucket=bucket)
        assert location["LocationConstraint"] == "eu-west-1"
    finally:
        for store in stores:
            await store.close()


async def test_open_storage_picks_the_backend(tmp_path: Path) -> None:
    local = open_storage(Settings(storage="local", data_dir=tmp_path))
    assert isinstance(local, LocalStorage)
    remote = open_storage(
        Settings(
            storage="s3",
            s3_endpoint_url="http://127.0.0.1:9",
            s3_bucket="media-bucket",
            s3_region="eu-west-1",
        )
    )
    assert isinstance(remote, S3Storage)
    assert (remote.bucket, remote.endpoint_url, remote.region) == (
        "media-bucket",
        "http://127.0.0.1:9",
        "eu-west-1",
    )
    await remote.close()  # never opened: nothing to do, and no connection was attempted


async def test_s3_rejects_parts_under_5_mib() -> None:
    with pytest.raises(ValueError, match="part_size"):
        S3Storage("b", part_size=1 * MiB)
