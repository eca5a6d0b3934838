"""`LocalStorage`: objects as plain files under `<data_dir>/media`, written atomically."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import stat as stat_module
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import aiofiles
import aiofiles.os

from .base import InvalidKey, ObjectInfo, ObjectNotFound, Storage
from .keys import (
    RESERVED_SEGMENT_PREFIX,
    guess_content_type,
    validate_key,
    validate_prefix,
    validate_range,
)

if TYPE_CHECKING:
    from subgraphs.kernel.settings import Settings

# Internal files live beside the objects (so `os.replace` stays on one filesystem) under reserved
# names that no key can take, and are hidden from `list`.
_TEMP_PREFIX = RESERVED_SEGMENT_PREFIX + "tmp."
_TYPE_PREFIX = RESERVED_SEGMENT_PREFIX + "type."

_MISSING = (FileNotFoundError, NotADirectoryError, IsADirectoryError)


class LocalStorage(Storage):
    """Each key is a file at `root/<key>`, readable by any tool as-is.

    Content types: `stat` reports the type guessed from the key's extension
    (`keys.guess_content_type`), unless `put` was given a different one, which is then kept in a
    small sidecar file `.~type.<name>` next to the object. Most media needs no sidecar.

    Unlike S3, a key cannot be both an object and a folder (`a` and `a/b`): the file system
    refuses such a `put` with an `OSError`.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).resolve()

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalStorage:
        return cls(settings.data_dir / "media")

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.root)!r})"

    # --- writing -------------------------------------------------------------------------------

    async def put(
        self, key: str, data: bytes | AsyncIterable[bytes], *, content_type: str | None = None
    ) -> ObjectInfo:
        path = self._path(key)
        tmp = await self._create_temp(path.parent)
        try:
            async with aiofiles.open(tmp, "wb") as f:
                if isinstance(data, bytes | bytearray | memoryview):
                    await f.write(data)
                else:
                    async for chunk in data:
                        await f.write(chunk)
                await f.flush()
                # fsync before the rename, so a crash cannot leave a renamed but empty file.
                st = await asyncio.to_thread(_fsync_and_stat, f.fileno())
            return await self._commit(key, path, tmp, st, content_type)
        except BaseException:
            await _remove_quietly(tmp)
            raise

    async def put_file(self, key: str, path: str, *, content_type: str | None = None) -> ObjectInfo:
        target = self._path(key)
        tmp = await self._create_temp(target.parent)
        try:
            # shutil.copyfile uses the kernel's copy fast paths; media files can be gigabytes.
            st = await asyncio.to_thread(_copy_and_sync, Path(path), tmp)
            return await self._commit(key, target, tmp, st, content_type)
        except BaseException:
            await _remove_quietly(tmp)
            raise

    async def _create_temp(self, directory: Path) -> Path:
        tmp = directory / f"{_TEMP_PREFIX}{uuid.uuid4().hex}"
        # A concurrent delete may prune the freshly made directory before the file appears in it.
        for attempt in range(5):
            await aiofiles.os.makedirs(directory, exist_ok=True)
            try:
                async with aiofiles.open(tmp, "xb"):
                    return tmp
            except FileNotFoundError:
                if attempt == 4:
                    raise
        raise AssertionError("unreachable")

    async def _commit(
        self, key: str, path: Path, tmp: Path, st: os.stat_result, content_type: str | None
    ) -> ObjectInfo:
        guessed = guess_content_type(key)
        sidecar = _sidecar(path)
        if content_type and content_type != guessed:
            await self._write_sidecar(sidecar, content_type)
        else:
            await _remove_quietly(sidecar)
        await aiofiles.os.replace(tmp, path)
        return ObjectInfo(
            key=key,
            size=st.st_size,
            content_type=content_type or guessed,
            modified_at=st.st_mtime,
        )

    async def _write_sidecar(self, sidecar: Path, content_type: str) -> None:
        tmp = sidecar.with_name(f"{_TEMP_PREFIX}{uuid.uuid4().hex}")
        try:
            async with aiofiles.open(tmp, "x", encoding="utf-8") as f:
                await f.write(content_type)
            await aiofiles.os.replace(tmp, sidecar)
        except BaseException:
            await _remove_quietly(tmp)
            raise

    # --- reading -------------------------------------------------------------------------------

    async def stat(self, key: str) -> ObjectInfo:
        path = self._path(key)
        try:
            st = await aiofiles.os.stat(path)
        except _MISSING:
            raise ObjectNotFound(key) from None
        if not stat_module.S_ISREG(st.st_mode):
            raise ObjectNotFound(key)
        try:
            async with aiofiles.open(_sidecar(path), encoding="utf-8") as f:
                content_type = (await f.read()).strip() or None
        except _MISSING:
            content_type = None
        return ObjectInfo(
            key=key,
            size=st.st_size,
            content_type=content_type or guess_content_type(key),
            modified_at=st.st_mtime,
        )

    async def exists(self, key: str) -> bool:
        try:
            await self.stat(key)
        except ObjectNotFound:
            return False
        return True

    def read(
        self, key: str, *, start: int = 0, end: int | None = None, chunk_size: int = 64 * 1024
    ) -> AsyncIterator[bytes]:
        # Arguments are checked now; a missing object is reported on the first iteration.
        path = self._path(key)
        validate_range(start, end, chunk_size)
        return self._read(key, path, start, end, chunk_size)

    async def _read(
        self, key: str, path: Path, start: int, end: int | None, chunk_size: int
    ) -> AsyncIterator[bytes]:
        try:
            f = await aiofiles.open(path, "rb")
        except _MISSING:
            raise ObjectNotFound(key) from None
        try:
            remaining = None if end is None else end - start
            if remaining is not None and remaining <= 0:
                return
            await f.seek(start)
            while remaining is None or remaining > 0:
                chunk = await f.read(
                    chunk_size if remaining is None else min(chunk_size, remaining)
                )
                if not chunk:
                    return
                if remaining is not None:
                    remaining -= len(chunk)
                yield chunk
        finally:
            await f.close()

    async def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            async with aiofiles.open(path, "rb") as f:
                return await f.read()
        except _MISSING:
            raise ObjectNotFound(key) from None

    async def download(self, key: str, path: str) -> None:
        source = self._path(key)
        target = Path(path)
        # Copy beside the target and rename, so the target is never a partial file.
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
        try:
            await asyncio.to_thread(_copy_and_sync, source, tmp)
            await aiofiles.os.replace(tmp, target)
        except _MISSING as exc:
            await _remove_quietly(tmp)
            if exc.filename is not None and Path(exc.filename) == source:
                raise ObjectNotFound(key) from None
            raise
        except BaseException:
            await _remove_quietly(tmp)
            raise

    def list(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        """Objects in key order; `content_type` is None here, as on S3 (use `stat`)."""
        validate_prefix(prefix)
        directory, _, name_start = prefix.rpartition("/")
        base = self.root.joinpath(*directory.split("/")) if directory else self.root
        return self._walk(base, f"{directory}/" if directory else "", name_start)

    async def _walk(
        self, directory: Path, key_prefix: str, name_start: str
    ) -> AsyncIterator[ObjectInfo]:
        entries = await asyncio.to_thread(_scan, directory)
        for name, is_dir, st in entries:
            if not name.startswith(name_start):
                continue
            if is_dir:
                async for info in self._walk(directory / name, f"{key_prefix}{name}/", ""):
                    yield info
            elif st is not None:
                yield ObjectInfo(
                    key=key_prefix + name,
                    size=st.st_size,
                    content_type=None,
                    modified_at=st.st_mtime,
                )

    # --- deleting ------------------------------------------------------------------------------

    async def delete(self, key: str) -> None:
        path = self._path(key)
        await asyncio.to_thread(_delete_file, path)
        await asyncio.to_thread(_prune, path.parent, self.root)

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object whose key starts with `prefix` (string match: pass `videos/1/`,
        not `videos/1`, to spare `videos/12/`). An empty prefix is refused as too dangerous."""
        validate_prefix(prefix)
        if not prefix:
            raise InvalidKey("refusing to delete every object: empty prefix")
        directory, _, name_start = prefix.rpartition("/")
        base = self.root.joinpath(*directory.split("/")) if directory else self.root
        count = await asyncio.to_thread(_delete_matching, base, name_start)
        await asyncio.to_thread(_prune, base, self.root)
        return count

    # --- misc ----------------------------------------------------------------------------------

    async def presigned_url(self, key: str, *, expires_in: int) -> str | None:
        self._path(key)
        return None

    async def close(self) -> None:
        return None

    def _path(self, key: str) -> Path:
        # Validation rejects `..`, absolute and empty segments, so the path stays under root.
        validate_key(key)
        return self.root.joinpath(*key.split("/"))


def _sidecar(path: Path) -> Path:
    return path.with_name(_TYPE_PREFIX + path.name)


def _fsync_and_stat(fd: int) -> os.stat_result:
    os.fsync(fd)
    return os.fstat(fd)


def _copy_and_sync(source: Path, target: Path) -> os.stat_result:
    shutil.copyfile(source, target)
    fd = os.open(target, os.O_RDONLY)
    try:
        return _fsync_and_stat(fd)
    finally:
        os.close(fd)


async def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(*_MISSING):
        await aiofiles.os.remove(path)


def _is_key_name(name: str) -> bool:
    if name.startswith(RESERVED_SEGMENT_PREFIX) or "\\" in name:
        return False
    try:
        name.encode("utf-8")  # undecodable file names come back holding lone surrogates
    except UnicodeEncodeError:
        return False
    return True


def _scan(directory: Path) -> list[tuple[str, bool, os.stat_result | None]]:
    """A directory's object files and subdirectories, sorted so that a depth-first walk yields
    keys in string order: `a-b` (0x2d) sorts before the folder `a/` (0x2f), so folders are
    compared as `name/`. Symlinks are skipped, so a walk never leaves the root."""
    entries: list[tuple[str, str, bool, os.stat_result | None]] = []
    try:
        with os.scandir(directory) as it:
            for entry in it:
                if not _is_key_name(entry.name):
                    continue
                if entry.is_dir(follow_symlinks=False):
                    entries.append((entry.name + "/", entry.name, True, None))
                elif entry.is_file(follow_symlinks=False):
                    try:
                        st = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue  # deleted while we looked
                    entries.append((entry.name, entry.name, False, st))
    except (FileNotFoundError, NotADirectoryError):
        return []
    entries.sort(key=lambda e: e[0])
    return [(name, is_dir, st) for _, name, is_dir, st in entries]


def _delete_file(path: Path) -> bool:
    try:
        st = path.lstat()
    except _MISSING:
        return False
    if stat_module.S_ISDIR(st.st_mode):
        return False
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    finally:
        _sidecar(path).unlink(missing_ok=True)
    return True


def _delete_matching(directory: Path, name_start: str) -> int:
    """Delete the objects in `directory` whose names start with `name_start`, and everything in
    matching subdirectories; remove the directories that end up empty."""
    count = 0
    for name, is_dir, _ in _scan(directory):
        if not name.startswith(name_start):
            continue
        if is_dir:
            count += _delete_matching(directory / name, "")
            # It may still hold a file being written concurrently.
            with contextlib.suppress(OSError):
                (directory / name).rmdir()
        elif _delete_file(directory / name):
            count += 1
    return count


def _prune(directory: Path, root: Path) -> None:
    """Remove `directory` and its parents while they are empty, stopping at the root."""
    while directory != root and directory.is_relative_to(root):
        try:
            directory.rmdir()
        except OSError:
            return
        directory = directory.parent
