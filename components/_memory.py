"""The peak resident memory of one execution: the worker process's own, plus the processes it starts.

What is measured (Linux; elsewhere nothing is recorded):

* **the worker itself** — its high-water mark ``VmHWM`` (``/proc/self/status``), reset when the execution
  starts by writing ``5`` to ``/proc/self/clear_refs``. A worker serves many executions (a run's worker, a
  warm pool's worker), so its lifetime peak (``ru_maxrss``) would carry one execution's peak into the next;
  after the reset the mark starts at the memory the worker holds then (the libraries it has imported), which
  the execution needs too. Before the reset, heap memory an earlier execution freed is handed back to the
  system (glibc's ``malloc_trim``), so the mark does not start at memory nothing uses. Where the reset is
  refused (an old kernel, a locked-down ``/proc``), the largest ``VmRSS`` sampled during the execution
  stands in (a sampled peak can miss a short spike).
* **the processes it starts** (Beam's worker processes, a model server, any subprocess, and theirs): each
  one started during the execution is found by a sampler thread (every ``interval`` seconds, 0.5 by
  default) and counted with its own lifetime peak (its ``VmHWM``, last read before it ended). A process
  that lives less than the interval can be missed. ``RUSAGE_CHILDREN`` is no help here: besides being a
  lifetime maximum (like ``ru_maxrss``), Linux charges a child that calls ``exec`` with the high-water
  mark of the memory it was forked (or vforked) from — a ``subprocess.run(["true"])`` from a worker
  holding 500 MiB reports a 500 MiB child. Processes that were running before the execution started
  (none in a headwater worker) are not counted.

The figure recorded is the worker's peak plus the sum of its processes' peaks: an upper bound of the memory
the execution held at any one moment (the peaks need not coincide, and pages a forked child shares with its
parent count in both), and exact when the execution starts no process.
"""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

__all__ = ["MemoryPeak", "measure_peak"]

_PROC = Path("/proc")


@dataclass(frozen=True)
class MemoryPeak:
    """An execution's peak resident memory in bytes: ``process`` (the worker) + ``children`` (what it started)."""

    process: int
    children: int
    #: False when the worker's high-water mark could not be reset and ``process`` is a sampled peak.
    exact: bool = True

    @property
    def total(self) -> int:
        return self.process + self.children


def _status_kb(pid: int | str, field: str) -> int | None:
    try:
        text = (_PROC / str(pid) / "status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(field + ":"):
            try:
                return int(line.split()[1])
            except (IndexError, ValueError):
                return None
    return None


def _release_free_heap() -> None:
    """Hand memory the allocator holds but no object uses back to the system (glibc's ``malloc_trim``), so a
    reset high-water mark does not start at what an earlier execution freed."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # another libc: nothing to do
        pass


def _reset_high_water_mark() -> bool:
    try:
        (_PROC / "self" / "clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _descendants(root: int) -> set[int]:
    """Every process below ``root`` (by parent pid, from ``/proc/<pid>/stat``)."""
    parents: dict[int, int] = {}
    try:
        entries = os.listdir(_PROC)
    except OSError:
        return set()
    for name in entries:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:  # plain bytes: a scan costs a few ms
                stat = f.read()
            parents[int(name)] = int(stat.rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    found: set[int] = set()
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        kids = [pid for pid, ppid in parents.items() if ppid == parent and pid not in found]
        found.update(kids)
        frontier.extend(kids)
    return found


class _Sampler:
    def __init__(self, interval: float, exact: bool) -> None:
        self.interval = interval
        self.exact = exact
        self.pid = os.getpid()
        self.before = _descendants(self.pid)
        self.children: dict[int, int] = {}  # pid -> its peak (kB), as last read
        self.sampled_self = _status_kb("self", "VmRSS") or 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="headwater-memory", daemon=True)

    def sample(self) -> None:
        if not self.exact:
            self.sampled_self = max(self.sampled_self, _status_kb("self", "VmRSS") or 0)
        for pid in _descendants(self.pid) - self.before:
            peak = _status_kb(pid, "VmHWM")
            if peak is not None:
                self.children[pid] = max(self.children.get(pid, 0), peak)

    def _loop(self) -> None:
        while not self.stop.wait(self.interval):
            self.sample()


class measure_peak:
    """``with measure_peak() as m: ...`` then ``m.result`` (a :class:`MemoryPeak`, or None without ``/proc``)."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self.result: MemoryPeak | None = None
        self._sampler: _Sampler | None = None

    def __enter__(self) -> measure_peak:
        if not sys.platform.startswith("linux") or _status_kb("self", "VmHWM") is None:
            return self
        _release_free_heap()
        exact = _reset_high_water_mark()
        self._sampler = _Sampler(self.interval, exact)
        self._sampler.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        sampler = self._sampler
        if sampler is None:
            return
        sampler.stop.set()
        sampler.thread.join(timeout=5)
        sampler.sample()
        if sampler.exact:
            own = _status_kb("self", "VmHWM") or 0
        else:
            own = max(sampler.sampled_self, _status_kb("self", "VmRSS") or 0)
        children = sum(sampler.children.values())
        self.result = MemoryPeak(own * 1024, children * 1024, sampler.exact)
