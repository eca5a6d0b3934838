#!/usr/bin/env python3
"""Run CI's test command contained: under a wall-clock limit, and as a child subreaper, so
every process the run leaves behind (an orphaned server, worker or browser) is listed and
killed at the end instead of holding CI's output pipe open until the job's hard limit.

usage: contain.py SECONDS COMMAND [ARG...]
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time

PR_SET_CHILD_SUBREAPER = 36


def descendants(root: int) -> list[int]:
    """Every live process below `root` (orphans are re-parented to us, the subreaper)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    found: list[int] = []
    stack = [root]
    while stack:
        for pid in children.get(stack.pop(), []):
            found.append(pid)
            stack.append(pid)
    return found


def describe(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
            return cmdline.read().replace(b"\0", b" ").decode(errors="replace")[:300]
    except OSError:
        return "?"


def kill_all(sig: int) -> list[int]:
    pids = descendants(os.getpid())
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
    return pids


def reap() -> None:
    """Collect exited children so they do not linger as zombies in the listing."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def main() -> int:
    limit = float(sys.argv[1])
    argv = sys.argv[2:]
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        print("contain: could not become a child subreaper; orphans go to init", flush=True)
    started = time.monotonic()

    def stopped(signum: int, _frame: object) -> None:
        # CI cancelled the run: take everything below us down with us, orphans included.
        print(f"contain: got signal {signum}; stopping every process of the run", flush=True)
        kill_all(signal.SIGTERM)
        time.sleep(5)
        kill_all(signal.SIGKILL)
        reap()
        sys.exit(128 + signum)

    signal.signal(signal.SIGTERM, stopped)
    signal.signal(signal.SIGINT, stopped)
    process = subprocess.Popen(argv)  # noqa: S603 - CI's own command line
    try:
        code = process.wait(timeout=limit)
    except subprocess.TimeoutExpired:
        print(
            f"\ncontain: {' '.join(argv)} still running after {limit:.0f} s; stopping it:",
            flush=True,
        )
        for pid in descendants(os.getpid()):
            print(f"  {pid}: {describe(pid)}", flush=True)
        # SIGTERM first: pytest-timeout and faulthandler get a chance to print where it hung.
        kill_all(signal.SIGTERM)
        time.sleep(10)
        kill_all(signal.SIGKILL)
        process.wait()
        code = 124
    reap()
    leftovers = descendants(os.getpid())
    if leftovers:
        print(f"contain: {len(leftovers)} process(es) outlived the run; killing them:", flush=True)
        for pid in leftovers:
            print(f"  {pid}: {describe(pid)}", flush=True)
        kill_all(signal.SIGTERM)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and descendants(os.getpid()):
            reap()
            time.sleep(0.2)
        kill_all(signal.SIGKILL)
        reap()
    print(
        f"contain: finished in {time.monotonic() - started:.0f} s with exit code {code}", flush=True
    )
    return code


if __name__ == "__main__":
    sys.exit(main())
