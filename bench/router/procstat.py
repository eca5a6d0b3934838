"""CPU time and peak memory of a whole process tree, from /proc (Linux only).

`/proc/<pid>/stat` utime+stime cover every thread of a process (worker threads, GC
threads), and the tree walk adds forked workers, so a multi-process gateway is counted in
full. Peak RSS is the sum of every process's VmHWM (each process's own high-water mark).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
PROC = Path("/proc")


def stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat from field 3 (state) on; None if the process is gone."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # comm (field 2) may hold spaces and parentheses: split after the last ')'
    return text[text.rindex(")") + 2 :].split()


def parent_map() -> dict[int, int]:
    parents: dict[int, int] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            fields = stat_fields(int(entry.name))
            if fields is not None:
                parents[int(entry.name)] = int(fields[1])
    return parents


def process_tree(root: int) -> list[int]:
    """`root` and all its live descendants."""
    children: dict[int, list[int]] = {}
    for pid, ppid in parent_map().items():
        children.setdefault(ppid, []).append(pid)
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, ()))
    return tree


def descendants_matching(root: int, needle: str) -> list[int]:
    """Descendants of `root` whose command line contains `needle`."""
    found = []
    for pid in process_tree(root):
        try:
            cmdline = (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if pid != root and needle.encode() in cmdline:
            found.append(pid)
    return found


def cpu_seconds(pid: int) -> float | None:
    fields = stat_fields(pid)
    if fields is None:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def peak_rss_mib(root: int) -> float:
    total_kib = 0
    for pid in process_tree(root):
        try:
            status = (PROC / str(pid) / "status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                total_kib += int(line.split()[1])
    return total_kib / 1024


def thread_count(root: int) -> int:
    total = 0
    for pid in process_tree(root):
        try:
            total += len(os.listdir(PROC / str(pid) / "task"))
        except OSError:
            continue
    return total


@dataclass
class CpuWindow:
    """CPU seconds a process tree used between `start()` and `stop()`."""

    root: int
    _start: dict[int, float] = field(default_factory=dict)

    def _sample(self) -> dict[int, float]:
        return {
            pid: seconds
            for pid in process_tree(self.root)
            if (seconds := cpu_seconds(pid)) is not None
        }

    def start(self) -> None:
        self._start = self._sample()

    def stop(self) -> float:
        end = self._sample()
        # a process born inside the window counts from zero
        return sum(seconds - self._start.get(pid, 0.0) for pid, seconds in end.items())
