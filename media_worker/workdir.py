"""Scratch directories for jobs: one per attempt, removed when it ends, and swept at start
when a worker that was killed left its own behind."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

log = logging.getLogger(__name__)

# `job-<pid>-<random>`: the pid says whether the directory's owner is still alive.
_PREFIX = "job-"


def _owner_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, and someone else's
    return True


def sweep_stale(root: Path) -> int:
    """Remove job directories whose worker process is gone; return how many."""
    removed = 0
    try:
        entries = list(root.iterdir())
    except FileNotFoundError:
        return 0
    for entry in entries:
        name = entry.name
        if not (name.startswith(_PREFIX) and entry.is_dir()):
            continue
        pid_text = name[len(_PREFIX) :].split("-", 1)[0]
        if pid_text.isdigit() and not _owner_alive(int(pid_text)):
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
    if removed:
        log.info("removed %d scratch directories left by stopped workers", removed)
    return removed


def _make_job_dir(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"{_PREFIX}{os.getpid()}-", dir=root))


@contextlib.asynccontextmanager
async def job_dir(root: Path) -> AsyncIterator[Path]:
    """A fresh directory under `root` for one attempt, removed (whatever happens) on exit."""
    path = await asyncio.to_thread(_make_job_dir, root)
    try:
        yield path
    finally:
        # Off the event loop: a long video leaves gigabytes of segments to delete.
        await asyncio.to_thread(shutil.rmtree, path, ignore_errors=True)
