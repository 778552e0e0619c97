"""The warm pool daemon: a detached process that keeps worker processes between runs.

    python -m headwater.pipelines.warm._daemon --dir POOL_DIR --key KEY [--idle 600] [--detach]

It listens on ``POOL_DIR/sock`` (0600, peers of another uid are refused) for one request per connection:
``run`` (an execution spec with the client's environment, folder and ``sys.path``; the connection then
carries the result, and closing it or sending ``cancel`` kills the worker running it), ``prewarm``,
``status`` and ``stop``. A worker that dies fails only its execution; a worker is retired after
``--max-executions`` executions or above ``--max-rss-mb``; the daemon exits when it has been idle for
``--idle`` seconds, when told to stop, or when its socket was taken over by another daemon.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing as mp
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from headwater.pipelines.warm import _paths as paths

DEFAULT_MAX_EXECUTIONS = paths.DEFAULT_MAX_EXECUTIONS
DEFAULT_MAX_RSS_MB = paths.DEFAULT_MAX_RSS_MB


@dataclass
class _PoolWorker:
    process: Any
    conn: Connection
    modules: set[str] = field(default_factory=set)
    executions: int = 0
    client: Connection | None = None
    node: str | None = None
    execution_id: int = 0
    started: float = 0.0
    last_used: float = field(default_factory=time.time)
    ready: bool = True  # False from a run until the worker says it has cleaned up after it
    retiring: str = ""  # why it takes no more work (retired once it is ready)


def _log(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} [{os.getpid()}] {message}", flush=True)


class Daemon:
    def __init__(self, directory: Path, key: str, *, idle_seconds: float, max_executions: int, max_rss_mb: int,
                 max_idle: int) -> None:
        self.dir = directory
        self.key = key
        self.idle_seconds = idle_seconds
        self.max_executions = max_executions
        self.max_rss = max_rss_mb * 1024 * 1024
        self.max_idle = max_idle
        self.ctx = mp.get_context("spawn")
        self.workers: list[_PoolWorker] = []
        self.clients: list[Connection] = []
        self.last_activity = time.time()
        self.started = time.time()
        self.executions = 0
        self.stopping = False
        self.closed = False
        self.server = paths.listen(directory / paths.SOCKET)
        self.inode = os.stat(directory / paths.SOCKET).st_ino
        (directory / paths.PID_FILE).write_text(f"{os.getpid()}\n")
        info = {"pid": os.getpid(), "key": key, "started": self.started, "parts": paths.key_parts()}
        (directory / paths.INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")

    # ------------------------------------------------------------------ workers
    def _spawn(self, modules: set[str]) -> _PoolWorker:
        from headwater.pipelines.warm._worker import warm_worker_main

        conn, child = self.ctx.Pipe()
        process = self.ctx.Process(target=warm_worker_main, args=(child, tuple(sorted(modules))), daemon=True,
                                   name="headwater-warm-worker")
        process.start()
        child.close()
        worker = _PoolWorker(process, conn, set(modules))
        self.workers.append(worker)
        _log(f"started worker {process.pid} (warm imports: {', '.join(sorted(modules)) or 'none'})")
        return worker

    def _idle(self) -> list[_PoolWorker]:
        return [w for w in self.workers if w.client is None and not w.retiring]

    def _pick(self, modules: set[str]) -> _PoolWorker:
        idle = self._idle()
        if not idle:
            return self._spawn(modules)
        # One that has cleaned up after its last execution; the most of what the node needs already imported;
        # then the most recently used (it has the most imported).
        worker = max(idle, key=lambda w: (w.ready, len(w.modules & modules), w.last_used))
        missing = modules - worker.modules
        if missing:
            worker.conn.send({"op": "warm", "modules": sorted(missing)})
            worker.modules |= missing
        return worker

    def _retire(self, worker: _PoolWorker, why: str, *, kill: bool = False) -> None:
        if worker in self.workers:
            self.workers.remove(worker)
        if not kill:
            with contextlib.suppress(OSError):
                worker.conn.send(None)
            worker.process.join(timeout=2)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join(timeout=5)
        worker.conn.close()
        _log(f"worker {worker.process.pid} retired: {why}")

    def _finish(self, worker: _PoolWorker, reply: dict[str, Any]) -> None:
        client, worker.client = worker.client, None
        if client is not None:
            with contextlib.suppress(OSError):
                paths.send(client, reply)
            client.close()

    # ------------------------------------------------------------------ requests
    def _status(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(), "key": self.key, "started": self.started, "idle_seconds": self.idle_seconds,
            "max_executions": self.max_executions, "max_rss_mb": self.max_rss // (1024 * 1024),
            "executions": self.executions, "last_activity": self.last_activity,
            "workers": [{"pid": w.process.pid, "busy": w.client is not None, "node": w.node, "ready": w.ready,
                         "executions": w.executions, "rss_mb": round(paths.rss_bytes(w.process.pid) / 2**20, 1),
                         "modules": sorted(w.modules)} for w in self.workers],
        }

    def _request(self, client: Connection, message: dict[str, Any]) -> None:
        op = message.get("op")
        if message.get("key") not in (None, self.key):
            paths.send(client, {"error": "this daemon serves another Python environment"})
            client.close()
            return
        # The newest client's settings are the pool's (they come from its environment or LocalRunner).
        if message.get("idle_seconds"):
            self.idle_seconds = float(message["idle_seconds"])
        if message.get("max_executions"):
            self.max_executions = int(message["max_executions"])
        if message.get("max_rss_mb"):
            self.max_rss = int(message["max_rss_mb"]) * 1024 * 1024
        modules = set(message.get("modules") or ())
        if op == "run":
            spec = message["spec"]
            worker = self._pick(modules)
            worker.client, worker.node, worker.execution_id = client, spec.get("node_id"), spec["execution_id"]
            worker.started, worker.ready = time.time(), False
            worker.conn.send({"op": "run", "spec": spec, "env": message["env"], "cwd": message["cwd"],
                              "path": message["path"]})
            return  # the connection stays open: it carries the result
        if op == "prewarm":
            count = min(int(message.get("count") or 0), self.max_idle)
            for worker in self._idle():
                missing = modules - worker.modules
                if missing:
                    worker.conn.send({"op": "warm", "modules": sorted(missing)})
                    worker.modules |= missing
            for _ in range(count - len(self._idle())):
                self._spawn(modules)
            paths.send(client, {"ok": True, "pid": os.getpid()})
        elif op == "status":
            paths.send(client, self._status())
        elif op == "stop":
            paths.send(client, {"ok": True, "pid": os.getpid()})
            self.stopping = True
        else:
            paths.send(client, {"error": f"unknown request {op!r}"})
        client.close()

    def _accept(self) -> None:
        sock, _ = self.server.accept()
        if paths.peer_uid(sock) != os.getuid():
            _log("refused a connection from another user")
            sock.close()
            return
        self.clients.append(Connection(sock.detach()))

    # ------------------------------------------------------------------ loop
    def _on_client(self, client: Connection) -> None:
        owner = next((w for w in self.workers if w.client is client), None)
        try:
            message = paths.recv(client)
        except (EOFError, OSError, ValueError):
            message = None
        if owner is not None:  # the client went away or cancels: stop what it was running
            self.clients.remove(client)
            self._retire(owner, f"execution {owner.execution_id} canceled", kill=True)
            if message is not None:
                with contextlib.suppress(OSError):
                    paths.send(client, {"canceled": True})
            client.close()
            return
        self.clients.remove(client)
        if message is None:
            client.close()
            return
        self._request(client, message)
        if not client.closed:
            self.clients.append(client)

    def _on_result(self, worker: _PoolWorker) -> None:
        try:
            message = worker.conn.recv()
        except (EOFError, OSError):
            return  # it died: the sentinel says so
        if message.get("op") == "ready":
            worker.ready = True
            if worker.client is not None:
                return  # already given the next execution
            rss = paths.rss_bytes(worker.process.pid)
            if worker.retiring:
                self._retire(worker, worker.retiring)
            elif rss > self.max_rss:
                self._retire(worker, f"{rss / 2**20:.0f} MB resident (limit {self.max_rss / 2**20:.0f} MB)")
            elif len(self._idle()) > self.max_idle:
                self._retire(worker, f"more than {self.max_idle} idle workers")
            return
        worker.executions += 1
        worker.last_used = time.time()
        self.executions += 1
        if worker.client is not None and worker.client in self.clients:
            self.clients.remove(worker.client)
        self._finish(worker, {"result": message})
        worker.node = None
        rss = paths.rss_bytes(worker.process.pid)  # Python seldom gives memory back: over now, over after
        if worker.executions >= self.max_executions:
            worker.retiring = f"ran {worker.executions} executions (limit {self.max_executions})"
        elif rss > self.max_rss:
            worker.retiring = f"{rss / 2**20:.0f} MB resident (limit {self.max_rss / 2**20:.0f} MB)"

    def _on_death(self, worker: _PoolWorker) -> None:
        from headwater.components.executor import ExecutorResult
        from headwater.pipelines.backend import death_reason

        worker.process.join(timeout=1)
        why = death_reason(worker.process.exitcode)
        self.workers.remove(worker)
        worker.conn.close()
        _log(f"worker {worker.process.pid} died ({why})")
        if worker.client is not None:
            if worker.client in self.clients:
                self.clients.remove(worker.client)
            failure = ExecutorResult.failure(
                worker.execution_id, "WorkerDied", f"the warm worker process running this node died ({why})",
                started_at=worker.started)
            self._finish(worker, {"result": failure.to_json()})

    def _taken_over(self) -> bool:
        try:
            same_socket = os.stat(self.dir / paths.SOCKET).st_ino == self.inode
            same_pid = (self.dir / paths.PID_FILE).read_text().strip() == str(os.getpid())
        except (OSError, ValueError):
            return True
        return not (same_socket and same_pid)

    def serve(self) -> None:
        _log(f"serving {self.dir / paths.SOCKET} (idle timeout {self.idle_seconds:.0f}s)")
        while not self.stopping:
            waitables: list[Any] = [self.server, *self.clients]
            for w in self.workers:
                waitables += [w.conn, w.process.sentinel]
            ready = wait(waitables, timeout=1.0)
            if ready:
                self.last_activity = time.time()
            for item in ready:
                if item is self.server:
                    self._accept()
                elif item in self.clients:
                    self._on_client(item)
            for worker in list(self.workers):
                if worker.conn in ready and worker in self.workers:
                    self._on_result(worker)
            for worker in list(self.workers):
                if worker.process.sentinel in ready or not worker.process.is_alive():
                    self._on_death(worker)
            busy = any(w.client is not None for w in self.workers) or self.clients
            if not busy and time.time() - self.last_activity > self.idle_seconds:
                _log(f"idle for {self.idle_seconds:.0f}s: stopping")
                break
            if self._taken_over():
                _log("the socket or pid file belongs to another daemon now: stopping")
                self.close(remove=False)
                return
        self.close()

    def close(self, *, remove: bool = True) -> None:
        if self.closed:
            return
        self.closed = True
        for worker in list(self.workers):  # nothing of theirs needs a goodbye: stop them at once
            self._retire(worker, "the pool stops", kill=True)
        for client in self.clients:
            client.close()
        self.server.close()
        if remove:
            for name in (paths.SOCKET, paths.PID_FILE):
                with contextlib.suppress(OSError):
                    (self.dir / name).unlink()
        _log("stopped")


def _terminate(signum: int, frame: Any) -> None:
    raise SystemExit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m headwater.pipelines.warm._daemon")
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--key", required=True)
    parser.add_argument("--idle", type=float, default=600.0)
    parser.add_argument("--max-executions", type=int, default=DEFAULT_MAX_EXECUTIONS)
    parser.add_argument("--max-rss-mb", type=int, default=DEFAULT_MAX_RSS_MB)
    parser.add_argument("--max-idle", type=int, default=max(2, os.cpu_count() or 1))
    parser.add_argument("--detach", action="store_true", help="fork, so that the starting process never waits")
    args = parser.parse_args(argv)
    if args.detach and os.fork() > 0:
        os._exit(0)  # the starter reaps this at once; the daemon is re-parented and never a zombie
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        daemon = Daemon(args.dir, args.key, idle_seconds=args.idle, max_executions=args.max_executions,
                        max_rss_mb=args.max_rss_mb, max_idle=args.max_idle)
    except OSError as exc:
        _log(f"cannot listen in {args.dir}: {exc}")
        return 1
    try:
        daemon.serve()
    finally:
        daemon.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
