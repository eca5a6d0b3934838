"""The media worker process: consumes job topics from the bus with leases, a few jobs at a
time, and on SIGTERM/SIGINT stops claiming and abandons its running jobs cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys

from media_worker import events
from media_worker.jobs.transcode import TranscodeJob
from media_worker.workdir import sweep_stale
from subgraphs.kernel.bus import Bus, Message, open_bus
from subgraphs.kernel.bus.consumer import Handler, run_consumer
from subgraphs.kernel.logging import configure_logging
from subgraphs.kernel.settings import Settings
from subgraphs.kernel.storage import Storage, open_storage

log = logging.getLogger(__name__)

SERVICE_NAME = "media-worker"


class MediaWorker:
    """`settings.media_concurrency` consumers per job type, each holding one job at a time."""

    def __init__(self, settings: Settings, *, bus: Bus, storage: Storage) -> None:
        self.settings = settings
        self.bus = bus
        self.storage = storage
        self.handlers: dict[str, Handler] = {}
        transcode = TranscodeJob(bus, storage, settings)
        self.handlers[transcode.topic] = transcode
        # Consumer tasks that are inside a handler right now: the ones shutdown cancels.
        self._busy: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until `stop` is set; then abandon running jobs (their leases lapse and
        another worker redoes them) and return."""
        sweep_stale(self.settings.resolved_media_work_dir())
        consumers = [
            asyncio.create_task(self._consume(topic, handler, stop), name=f"{topic}-{slot}")
            for topic, handler in self.handlers.items()
            for slot in range(self.settings.media_concurrency)
        ]
        log.info(
            "media worker started",
            extra={
                "topics": list(self.handlers),
                "concurrency": self.settings.media_concurrency,
                "bus": self.settings.bus,
                "storage": self.settings.storage,
            },
        )
        await stop.wait()
        for task in list(self._busy):
            task.cancel()
        results = await asyncio.gather(*consumers, return_exceptions=True)
        for result in results:
            if isinstance(result, Exception):
                log.error("consumer ended with an error", exc_info=result)
        log.info("media worker stopped")

    async def _consume(self, topic: str, handler: Handler, stop: asyncio.Event) -> None:
        async def tracked(message: Message) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._busy.add(task)
            try:
                await handler(message)
            except asyncio.CancelledError:
                log.info(
                    "abandoned %s message %s at shutdown; it is redone once its lease lapses",
                    topic,
                    message.id,
                    extra={"message_id": message.id},
                )
                raise
            finally:
                self._busy.discard(task)

        with contextlib.suppress(asyncio.CancelledError):
            await run_consumer(
                self.bus,
                topic,
                events.GROUP,
                tracked,
                stop=stop,
                visibility_timeout=self.settings.bus_visibility_timeout,
                # One message at a time: a claimed job waiting behind another would sit idle
                # instead of going to a free worker.
                batch=1,
                # The handler answers media.failed itself once attempts run out; the
                # consumer's dead-lettering is only the backstop for a failing bus.
                max_attempts=self.settings.media_max_attempts + 1,
            )


async def run(settings: Settings) -> None:
    """Run a media worker until SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    bus = open_bus(settings)
    storage = open_storage(settings)
    try:
        await MediaWorker(settings, bus=bus, storage=storage).run(stop)
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        await storage.close()
        await bus.close()


def main() -> None:
    """Entry point of `python -m media_worker` (and the CLI's media-worker command)."""
    settings = Settings()
    configure_logging(SERVICE_NAME, settings.log_level)
    asyncio.run(run(settings))
    sys.exit(0)
