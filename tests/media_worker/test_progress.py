"""Progress reported from another thread reaches the event loop throttled, in order, latest wins."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time

from media_worker.progress import ProgressReporter

INTERVAL = 0.2


async def test_reports_from_a_thread_are_throttled_and_the_latest_wins() -> None:
    published: list[tuple[float, float]] = []

    async def publish(value: float) -> None:
        published.append((asyncio.get_running_loop().time(), value))

    def hammer(reporter: ProgressReporter) -> None:
        # 2000 reports over about a second, as a fast transcode would make.
        for step in range(1, 2001):
            reporter.report(step / 2000)
            if step % 100 == 0:
                time.sleep(0.05)

    async with ProgressReporter(publish, interval=INTERVAL) as reporter:
        started = asyncio.get_running_loop().time()
        thread = threading.Thread(target=hammer, args=(reporter,))
        thread.start()
        await asyncio.to_thread(thread.join)
        deadline = time.monotonic() + 30
        while (not published or published[-1][1] != 1.0) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        elapsed = asyncio.get_running_loop().time() - started

    values = [value for _, value in published]
    assert values[-1] == 1.0
    assert values == sorted(set(values))
    gaps = [b - a for (a, _), (b, _) in itertools.pairwise(published)]
    assert all(gap >= INTERVAL * 0.99 for gap in gaps), gaps
    assert len(published) <= elapsed / INTERVAL + 2
    assert len(published) < 100


async def test_progress_never_goes_backwards_and_publish_errors_do_not_stop_it() -> None:
    published: list[float] = []
    failures = 0

    async def publish(value: float) -> None:
        nonlocal failures
        if failures == 0:
            failures += 1
            raise ConnectionError("bus down for a moment")
        published.append(value)

    async with ProgressReporter(publish, interval=0.01) as reporter:
        reporter.report(0.5)  # this one fails to publish
        await asyncio.sleep(0.1)
        reporter.report(0.4)  # older than what was reported: ignored
        reporter.report(0.7)
        deadline = time.monotonic() + 30
        while not published and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
    assert published == [0.7]


async def test_nothing_is_published_after_exit() -> None:
    published: list[float] = []

    async def publish(value: float) -> None:
        published.append(value)

    async with ProgressReporter(publish, interval=0.01) as reporter:
        pass
    reporter.report(0.9)
    await asyncio.sleep(0.05)
    assert published == []
