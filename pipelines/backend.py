"""Executor backends: the one small interface every runner schedules on, and the local implementation.

A backend launches execution specs, reports executor results as they finish, and cancels. LocalBackend
runs executors in a bounded pool of worker processes (``spawn``: never fork a process that has MLMD
open), its own or warm ones that outlive the run (``headwater.pipelines.warm``); the Kubernetes backend
runs each as a batch/v1 Job.
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
from typing import TYPE_CHECKING, Any, Protocol

from headwater.components.api import Resources
from headwater.components.executor import ExecutionSpec, ExecutorResult
from headwater.components.placement import Placement
from headwater.metadata.errors import HeadwaterError
from headwater.pipelines._process import die_with_parent, messages, warm_up

if TYPE_CHECKING:
    from headwater.pipelines.warm import WarmPool, WarmSlot

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


def death_reason(code: int | None) -> str:
    """How a worker process ended, for the failure message of the execution it was running."""
    why = f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}"
    hint = "; SIGKILL: often the kernel's out-of-memory killer" if code == -9 else ""
    return why + hint


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
    die_with_parent()
    from headwater.components.executor import ExecutionSpec, prepare_process, run_execution

    prepare_process()
    warm_up(conn, warm_imports)
    for message in messages(conn):
        result = run_execution(ExecutionSpec.from_json(message))
        try:
            conn.send(result.to_json())
        except (BrokenPipeError, OSError):
            return


class _Worker:
    """A worker process of this run (the cold source of workers); reused for the run's next nodes."""

    reusable = True

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

    def sentinels(self) -> list[Any]:
        return [self.process.sentinel]

    def receive(self) -> dict[str, Any]:
        return dict(self.conn.recv())

    def died(self, ready: Sequence[Any]) -> str | None:
        if self.process.sentinel not in ready and self.process.is_alive():
            return None
        self.process.join(timeout=1)
        self.conn.close()
        return f"the worker process running this node died ({death_reason(self.process.exitcode)})"

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

    Workers come from ``pool`` (a :class:`~headwater.pipelines.warm.WarmPool`: warm processes that
    outlive the run) or, without one or when it cannot be reached, are started for this run. ``prewarm``
    workers are made ready at once (while the orchestrator opens the store), importing ``warm_imports``
    ahead of the nodes that need them.
    """

    name = "local"
    handles_retries = False

    def __init__(self, max_workers: int | None = None, *, prewarm: int = 0,
                 warm_imports: tuple[str, ...] = (), pool: WarmPool | None = None) -> None:
        self.capacity = max(1, max_workers or os.cpu_count() or 1)
        self._ctx = mp.get_context("spawn")
        self._warm = tuple(warm_imports)
        self._pool = pool
        self._idle: deque[_Worker] = deque()
        if pool is not None:
            try:
                pool.prewarm(min(prewarm, self.capacity), self._warm)
            except (OSError, HeadwaterError) as exc:
                self._no_pool(exc)
        if self._pool is None:
            self._idle.extend(_Worker(self._ctx, self._warm) for _ in range(min(prewarm, self.capacity)))
        self._busy: dict[int, _Worker | WarmSlot] = {}
        self._done: list[ExecutorResult] = []

    def _no_pool(self, exc: BaseException) -> None:
        print(f"headwater: warm workers unavailable ({exc}); using worker processes of this run", file=sys.stderr)
        self._pool = None

    def launch(self, spec: ExecutionSpec, options: NodeOptions) -> None:
        worker: _Worker | WarmSlot | None = None
        if self._pool is not None and not self._idle:
            try:
                worker = self._pool.launch(spec, self._warm)
            except (OSError, EOFError, HeadwaterError) as exc:
                self._no_pool(exc)
        if worker is None:
            # Last in, first out: the worker that just finished has the most imported and is warmest.
            worker = self._idle.pop() if self._idle else _Worker(self._ctx, self._warm)
            worker.conn.send(spec.to_json())
        worker.spec = spec
        worker.started = time.time()
        worker.deadline = worker.started + options.timeout_seconds if options.timeout_seconds else None
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
            waitables += [w.conn, *w.sentinels()]
        ready = wait(waitables, timeout)
        results = []
        now = time.time()
        for eid, worker in list(self._busy.items()):
            if worker.conn in ready:
                try:
                    results.append(ExecutorResult.from_json(worker.receive()))
                    del self._busy[eid]
                    worker.spec = None
                    if isinstance(worker, _Worker):
                        self._idle.append(worker)
                    continue
                except (EOFError, OSError, ValueError):
                    pass
            why = worker.died(ready)
            if why is not None:
                del self._busy[eid]
                results.append(ExecutorResult.failure(eid, "WorkerDied", why, started_at=worker.started))
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
