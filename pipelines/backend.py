"""Executor backends: the one small interface every runner schedules on, and the local implementation.

A backend launches execution specs, reports executor results as they finish, and cancels. LocalBackend
runs executors in a bounded pool of worker processes (``spawn``: never fork a process that has MLMD
open); the Kubernetes backend runs each as a batch/v1 Job.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from typing import Any, Protocol

from headwater.components.api import Resources
from headwater.components.executor import ExecutionSpec, ExecutorResult
from headwater.components.placement import Placement

__all__ = ["ExecutorBackend", "LocalBackend", "NodeOptions"]


@dataclass(frozen=True)
class NodeOptions:
    """Per-node options a backend may use (resources and timeouts matter on Kubernetes)."""

    node_id: str
    resources: Resources = field(default_factory=Resources)
    retries: int = 0
    timeout_seconds: int | None = None
    image: str | None = None  # None: the backend's default image
    placement: Placement | None = None


class ExecutorBackend(Protocol):
    """Launch / poll / cancel. ``capacity`` bounds how many executions the runner keeps in flight;
    ``handles_retries`` says the backend retries failed attempts itself (the runner then does not)."""

    name: str
    capacity: int
    handles_retries: bool

    def launch(self, spec: ExecutionSpec, options: NodeOptions) -> None: ...

    def poll(self, timeout: float) -> list[ExecutorResult]: ...

    def cancel(self, execution_ids: Sequence[int] | None = None) -> None: ...

    def close(self) -> None: ...


def _die_with_parent() -> None:
    """Linux: have the kernel kill this worker if the orchestrator dies (even by SIGKILL)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:  # pragma: no cover - exotic libc
        pass


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """Ignore SIGINT while starting a worker, so that the worker starts with it ignored (Python keeps an
    inherited SIG_IGN) instead of printing a KeyboardInterrupt traceback from its imports on Ctrl-C."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _worker_main(conn: Connection, warm_imports: tuple[str, ...] = ()) -> None:
    # The orchestrator decides what Ctrl-C means; workers only stop when told, or with it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent()
    from headwater.components.executor import ExecutionSpec, prepare_process, run_execution

    prepare_process()

    if warm_imports:
        # What the libraries print while loading (TensorFlow's C++ start-up lines) is not any node's output:
        # keep it off the console. A module that fails here fails again, reported, in the node that needs it.
        saved = os.dup(1), os.dup(2)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        try:
            for module in warm_imports:
                if conn.poll():  # work is waiting: stop warming up
                    break
                try:
                    __import__(module)
                except Exception:
                    pass
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in (devnull, *saved):
                os.close(fd)

    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        result = run_execution(ExecutionSpec.from_json(message))
        try:
            conn.send(result.to_json())
        except (BrokenPipeError, OSError):
            return


class _Worker:
    def __init__(self, ctx: Any, warm_imports: tuple[str, ...] = ()) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_worker_main, args=(child, warm_imports), daemon=True,
                                   name="headwater-worker")
        with _sigint_ignored():  # inherited through exec: a Ctrl-C while the worker imports is not its own
            self.process.start()
        child.close()
        self.spec: ExecutionSpec | None = None
        self.deadline: float | None = None
        self.started = 0.0

    def stop(self, *, kill: bool = False) -> None:
        if kill:
            self.process.kill()
        else:
            try:
                self.conn.send(None)
            except (BrokenPipeError, OSError):
                pass
        self.process.join(timeout=0.5 if not kill else 5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)
        self.conn.close()


class LocalBackend:
    """Worker processes on this machine; at most ``max_workers`` executions at a time (default: cores).

    ``prewarm`` workers are started at once (they start while the orchestrator opens the store), and
    import ``warm_imports`` ahead of the nodes that need them.
    """

    name = "local"
    handles_retries = False

    def __init__(self, max_workers: int | None = None, *, prewarm: int = 0,
                 warm_imports: tuple[str, ...] = ()) -> None:
        self.capacity = max(1, max_workers or os.cpu_count() or 1)
        self._ctx = mp.get_context("spawn")
        self._warm = tuple(warm_imports)
        self._idle: deque[_Worker] = deque(_Worker(self._ctx, self._warm) for _ in range(min(prewarm, self.capacity)))
        self._busy: dict[int, _Worker] = {}
        self._done: list[ExecutorResult] = []

    def launch(self, spec: ExecutionSpec, options: NodeOptions) -> None:
        # Last in, first out: the worker that just finished has the most imported and is warmest.
        worker = self._idle.pop() if self._idle else _Worker(self._ctx, self._warm)
        worker.spec = spec
        worker.started = time.time()
        worker.deadline = worker.started + options.timeout_seconds if options.timeout_seconds else None
        worker.conn.send(spec.to_json())
        self._busy[spec.execution_id] = worker

    def poll(self, timeout: float) -> list[ExecutorResult]:
        if self._done:
            done, self._done = self._done, []
            return done
        if not self._busy:
            time.sleep(min(timeout, 0.05))
            return []
        deadlines = [w.deadline for w in self._busy.values() if w.deadline]
        if deadlines:
            timeout = max(0.0, min(timeout, min(deadlines) - time.time()))
        waitables: list[Any] = []
        for w in self._busy.values():
            waitables += [w.conn, w.process.sentinel]
        ready = set(wait(waitables, timeout))
        results = []
        now = time.time()
        for eid, worker in list(self._busy.items()):
            if worker.conn in ready:
                try:
                    results.append(ExecutorResult.from_json(worker.conn.recv()))
                    del self._busy[eid]
                    worker.spec = None
                    self._idle.append(worker)
                    continue
                except (EOFError, OSError):
                    pass
            if worker.process.sentinel in ready or not worker.process.is_alive():
                worker.process.join(timeout=1)
                code = worker.process.exitcode
                del self._busy[eid]
                worker.conn.close()
                why = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
                hint = " (SIGKILL: often the kernel's out-of-memory killer)" if code == -9 else ""
                results.append(ExecutorResult.failure(
                    eid, "WorkerDied", f"the worker process running this node died ({why}){hint}",
                    started_at=worker.started,
                ))
            elif worker.deadline is not None and now >= worker.deadline:
                del self._busy[eid]
                worker.stop(kill=True)
                results.append(ExecutorResult.failure(
                    eid, "TimeoutError",
                    f"the node ran longer than its timeout of {worker.deadline - worker.started:.0f}s and was "
                    "stopped; raise it with .with_timeout(seconds)", started_at=worker.started,
                ))
        return results

    def cancel(self, execution_ids: Sequence[int] | None = None) -> None:
        for eid in list(self._busy) if execution_ids is None else list(execution_ids):
            worker = self._busy.pop(eid, None)
            if worker is not None:
                worker.stop(kill=True)

    def close(self) -> None:
        self.cancel()
        idle = list(self._idle)
        self._idle.clear()
        for worker in idle:  # idle workers hold no work: stop them without waiting for a goodbye
            worker.process.kill()
        for worker in idle:
            worker.process.join(timeout=5)
            worker.conn.close()
