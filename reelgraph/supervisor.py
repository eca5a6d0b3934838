"""`reelgraph up`: every service as its own child process, with prefixed logs, restarts on
crash, and an orderly shutdown on Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

_COLORS = ("\033[36m", "\033[35m", "\033[33m", "\033[32m", "\033[34m", "\033[31m")
_RESET = "\033[0m"
_MAX_BACKOFF = 30.0
_STABLE_AFTER = 60.0  # a child that ran this long has its restart backoff reset


@dataclass
class Child:
    name: str
    argv: list[str]
    color: str
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    backoff: float = 1.0
    started_at: float = 0.0
    pumps: list[asyncio.Task[None]] = field(default_factory=list)


class Supervisor:
    def __init__(self, children: Sequence[tuple[str, list[str]]], *, grace: float = 15.0) -> None:
        width = max((len(name) for name, _ in children), default=0)
        self.width = width
        self.color = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
        self.children = [
            Child(name, argv, _COLORS[i % len(_COLORS)]) for i, (name, argv) in enumerate(children)
        ]
        self.grace = grace
        self.stopping = asyncio.Event()

    def _emit(self, child: Child, line: str) -> None:
        prefix = f"{child.name:<{self.width}} | "
        if self.color:
            prefix = f"{child.color}{prefix}{_RESET}"
        sys.stdout.write(prefix + line.rstrip("\n") + "\n")
        sys.stdout.flush()

    async def _pump(self, child: Child, stream: asyncio.StreamReader | None) -> None:
        if stream is None:
            return
        while line := await stream.readline():
            self._emit(child, line.decode(errors="replace"))

    async def _start(self, child: Child) -> None:
        child.process = await asyncio.create_subprocess_exec(
            *child.argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            # Own process group: a terminal's Ctrl-C reaches us, and we stop children in order.
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        child.started_at = time.monotonic()
        if self.stopping.is_set():
            # Stopped while this child was starting: _terminate may not have seen it.
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(signal.SIGTERM)
        child.pumps = [
            asyncio.create_task(self._pump(child, child.process.stdout)),
            asyncio.create_task(self._pump(child, child.process.stderr)),
        ]

    async def _watch(self, child: Child) -> None:
        while not self.stopping.is_set():
            await self._start(child)
            assert child.process is not None
            code = await child.process.wait()
            await asyncio.gather(*child.pumps, return_exceptions=True)
            if self.stopping.is_set():
                return
            if time.monotonic() - child.started_at > _STABLE_AFTER:
                child.backoff = 1.0
            child.restarts += 1
            self._emit(child, f"exited with {code}; restarting in {child.backoff:.0f}s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=child.backoff)
            child.backoff = min(child.backoff * 2, _MAX_BACKOFF)

    async def _terminate(self) -> None:
        running = [c for c in self.children if c.process and c.process.returncode is None]
        for child in running:
            assert child.process is not None
            with contextlib.suppress(ProcessLookupError):
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        for child in running:
            assert child.process is not None
            try:
                await asyncio.wait_for(child.process.wait(), max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                self._emit(child, "did not stop in time; killing")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.process.pid, signal.SIGKILL)
                await child.process.wait()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stopping.set)
        watchers = [asyncio.create_task(self._watch(child)) for child in self.children]
        await self.stopping.wait()
        sys.stdout.write("stopping…\n")
        await self._terminate()
        await asyncio.gather(*watchers, return_exceptions=True)
        return 0
