"""A job's outputs in storage under its `outputPrefix`: cleared before a run, uploaded in an
order that never exposes a playlist before what it lists, and `media.json` always last."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from typing import Any

import orjson

from media_worker.images import POSTER_NAME, STORYBOARD_IMAGE, STORYBOARD_VTT
from media_worker.playlists import MASTER_NAME
from media_worker.transcode import PLAYLIST_NAME
from media_worker.vod import HLS_DIR
from subgraphs.kernel.storage import ObjectNotFound, Storage

log = logging.getLogger(__name__)

MEDIA_DOCUMENT = "media.json"
#: Objects uploaded at once (S3 round trips dominate for small segments).
UPLOAD_CONCURRENCY = 8


async def read_finished(storage: Storage, prefix: str) -> dict[str, Any] | None:
    """The stored `media.json` if a run already finished, else None."""
    try:
        raw = await storage.get(prefix + MEDIA_DOCUMENT)
    except ObjectNotFound:
        return None
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError:
        log.warning("ignoring an unreadable %s", MEDIA_DOCUMENT, extra={"prefix": prefix})
        return None
    return document if isinstance(document, dict) else None


async def clear_outputs(storage: Storage, prefix: str) -> None:
    """Remove what an earlier, unfinished run may have left, so outputs never mix.

    `media.json` goes first: from then on nobody takes the folder for finished.
    """
    await storage.delete(prefix + MEDIA_DOCUMENT)
    await storage.delete_prefix(f"{prefix}{HLS_DIR}/")
    for name in (POSTER_NAME, STORYBOARD_IMAGE, STORYBOARD_VTT):
        await storage.delete(prefix + name)


async def store_outputs(
    storage: Storage,
    out_dir: str,
    prefix: str,
    document: dict[str, Any],
    *,
    on_progress: Callable[[float], None] | None = None,
) -> None:
    """Upload a finished VOD from `out_dir` to `prefix`, in waves:

    segments → variant playlists → master playlist → images → storyboard index → media.json.
    """
    files = sorted(_files(out_dir))
    waves = [
        [f for f in files if f.startswith(f"{HLS_DIR}/") and not f.endswith(".m3u8")],
        [f for f in files if f.startswith(f"{HLS_DIR}/") and f.endswith(f"/{PLAYLIST_NAME}")],
        [f for f in files if f == f"{HLS_DIR}/{MASTER_NAME}"],
        [f for f in files if f in (POSTER_NAME, STORYBOARD_IMAGE)],
        [f for f in files if f == STORYBOARD_VTT],
    ]
    listed = {f for wave in waves for f in wave}
    unexpected = [f for f in files if f not in listed]
    if unexpected:
        raise RuntimeError(f"unexpected output files: {unexpected[:5]}")
    total = len(files) + 1
    done = 0
    gate = asyncio.Semaphore(UPLOAD_CONCURRENCY)

    async def upload(relative: str) -> None:
        nonlocal done
        async with gate:
            await storage.put_file(prefix + relative, os.path.join(out_dir, relative))
        done += 1
        if on_progress is not None:
            on_progress(done / total)

    for wave in waves:
        async with asyncio.TaskGroup() as group:
            for relative in wave:
                group.create_task(upload(relative))
    await storage.put(prefix + MEDIA_DOCUMENT, orjson.dumps(document, option=orjson.OPT_INDENT_2))
    if on_progress is not None:
        on_progress(1.0)


def _files(root: str) -> list[str]:
    found = []
    for directory, _, names in os.walk(root):
        for name in names:
            found.append(os.path.relpath(os.path.join(directory, name), root).replace(os.sep, "/"))
    return found
