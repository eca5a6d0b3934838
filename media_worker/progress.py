"""Progress from the transcode thread to the bus: only the latest value, never backwards, and
at most one message per interval (about two a second) however often it is reported."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable
from types import TracebackType

log = logging.getLogger(__name__)

#: Seconds between two progress messages for one video, at least.
PROGRESS_INTERVAL = 0.5


class ProgressReporter:
    """`report` may be called from any thread; a task on the event loop publishes.

    Use as `async with ProgressReporter(publish) as progress: ... progress.report(0.3)`.
    Publishing is best effort: a failure is logged and the job goes on.
    """

    def __init__(
        self,
        publish: Callable[[float], Awaitable[None]],
        *,
        interval: float = PROGRESS_INTERVAL,
    ) -> None:
        self._publish = publish
        self.interval = interval
        self._lock = threading.Lock()
        self._latest = -1.0
        self._sent = -1.0
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ProgressReporter:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self._run(), name="media-progress")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._loop = None

    def report(self, progress: float) -> None:
        """Record `progress` (0..1); thread-safe, cheap, never blocks on the bus."""
        with self._lock:
            if progress <= self._latest:
                return
            self._latest = progress
        loop = self._loop
        if loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed under a late report
            loop.call_soon_threadsafe(self._wake.set)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            with self._lock:
                value = self._latest
            if value <= self._sent:
                continue
            self._sent = value
            try:
                await self._publish(value)
            except Exception:
                log.warning("could not publish progress", exc_info=True)
            # The throttle: whatever arrives meanwhile is coalesced into the next message.
            await asyncio.sleep(self.interval)
