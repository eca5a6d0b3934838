"""Run blocking media work in a thread so the event loop (and the job's lease renewal) keeps
going; cancelling the awaiting task asks the work to stop and waits until it has."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


async def run_cancellable(work: Callable[[threading.Event], T]) -> T:
    """Run `work(cancel)` in a thread. If this task is cancelled, `cancel` is set and the
    thread is waited for before the cancellation goes on, so nothing still writes into a
    directory the caller is about to remove."""
    cancel = threading.Event()
    future = asyncio.get_running_loop().run_in_executor(None, work, cancel)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        cancel.set()
        while not future.done():
            try:
                await asyncio.shield(future)
            except asyncio.CancelledError:
                continue  # cancelled again: still wait for the thread
            except BaseException:  # it stopped; its error no longer matters
                break
        raise
