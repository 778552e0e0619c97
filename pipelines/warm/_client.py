"""The client side of the warm pool: find or start this environment's daemon, and run executions on it."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from headwater.components.executor import ExecutionSpec
from headwater.pipelines.warm import _paths as paths
from headwater.pipelines.warm._paths import WarmPoolError

KEEP_WARM_ENV = "HEADWATER_KEEP_WARM"
MAX_EXECUTIONS_ENV = "HEADWATER_WORKER_MAX_EXECUTIONS"
MAX_RSS_ENV = "HEADWATER_WORKER_MAX_RSS_MB"
DEFAULT_IDLE_SECONDS = 600.0
_OFF = ("0", "off", "false", "no")
_ON = ("", "1", "on", "true", "yes")


def keep_warm_seconds(value: bool | float | None = None) -> float | None:
    """How long an idle warm pool lives, or ``None`` for no warm pool.

    ``value`` is LocalRunner's ``keep_warm``: ``False`` (off), ``True``/``None`` (``$HEADWATER_KEEP_WARM``:
    unset or ``1`` = on, 600 s; ``0``/``off`` = off; a number = idle seconds), or a number of seconds.
    """
    if value is False:
        return None
    if value is not None and value is not True:
        return float(value) if float(value) > 0 else None
    raw = os.environ.get(KEEP_WARM_ENV, "").strip().lower()
    if raw in _OFF:
        return None
    if raw in _ON:
        return DEFAULT_IDLE_SECONDS
    try:
        seconds = float(raw)
    except ValueError:
        raise WarmPoolError(
            f"${KEEP_WARM_ENV}={raw!r} is not understood: use 0 (no warm workers), 1 (on, idle timeout "
            f"{DEFAULT_IDLE_SECONDS:.0f}s) or a number of idle seconds"
        ) from None
    return seconds if seconds > 0 else None


def warm_pool(keep_warm: bool | float | None = None) -> WarmPool | None:
    """The pool LocalRunner's ``keep_warm`` asks for, or ``None`` (off, or no private folder for it)."""
    seconds = keep_warm_seconds(keep_warm)
    if seconds is None:
        return None
    try:
        return WarmPool(seconds)
    except (OSError, WarmPoolError) as exc:
        print(f"headwater: warm workers unavailable ({exc}); using worker processes of this run", file=sys.stderr)
        return None


class WarmPool:
    """This user's and this Python environment's pool of warm worker processes (started on demand)."""

    def __init__(self, idle_seconds: float = DEFAULT_IDLE_SECONDS, *, base: Path | None = None,
                 max_executions: int | None = None, max_rss_mb: int | None = None) -> None:
        self.idle_seconds = idle_seconds
        self.max_executions = max_executions or _env_int(MAX_EXECUTIONS_ENV) or paths.DEFAULT_MAX_EXECUTIONS
        self.max_rss_mb = max_rss_mb or _env_int(MAX_RSS_ENV) or paths.DEFAULT_MAX_RSS_MB
        self.base = base or paths.base_dir()
        self.key = paths.pool_key(paths.key_parts())
        self.dir = paths.pool_dir(self.key, self.base)
        self.pid: int | None = None

    # ------------------------------------------------------------------ daemon
    def _pid_file(self) -> int | None:
        try:
            return int((self.dir / paths.PID_FILE).read_text().strip())
        except (OSError, ValueError):
            return None

    def _open(self, message: dict[str, Any], *, timeout: float = 5.0) -> Connection:
        conn = paths.connect(self.dir / paths.SOCKET, timeout)
        try:
            paths.send(conn, {**message, "key": self.key, "idle_seconds": self.idle_seconds,
                              "max_executions": self.max_executions, "max_rss_mb": self.max_rss_mb})
        except BaseException:
            conn.close()
            raise
        return conn

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        with open(self.dir / paths.LOCK_FILE, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _start(self) -> None:
        """Start the daemon (its stale socket and pid file go first) and wait until it answers."""
        stale = self._pid_file()
        if stale and paths.pid_alive(stale) and _is_daemon(stale):
            os.kill(stale, signal.SIGKILL)  # alive but not answering: replace it
        for name in (paths.SOCKET, paths.PID_FILE):
            with contextlib.suppress(FileNotFoundError):
                (self.dir / name).unlink()
        command = [sys.executable, "-m", "headwater.pipelines.warm._daemon", "--detach", "--dir", str(self.dir),
                   "--key", self.key, "--idle", str(self.idle_seconds)]
        with open(self.dir / paths.LOG_FILE, "ab") as log:
            starter = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=self.dir,
                                       start_new_session=True, close_fds=True)
        starter.wait(timeout=30)
        deadline = time.time() + 30
        while time.time() < deadline:
            if (self.dir / paths.SOCKET).exists():
                try:
                    conn = self._open({"op": "status"})
                    self.pid = int(paths.recv(conn)["pid"])
                    conn.close()
                    return
                except (OSError, EOFError):
                    pass
            time.sleep(0.02)
        raise WarmPoolError(f"warm workers: the daemon did not start; see {self.dir / paths.LOG_FILE}")

    def request(self, message: dict[str, Any]) -> Connection:
        """A connection to the daemon carrying ``message``; the daemon is started (or replaced) if needed."""
        paths.private_dir(self.base)
        paths.private_dir(self.dir)
        try:
            return self._open(message)
        except (OSError, EOFError):
            pass
        with self._lock():
            try:  # another client may have started it meanwhile
                return self._open(message)
            except (OSError, EOFError):
                self._start()
            return self._open(message)

    # ------------------------------------------------------------------ client operations
    def prewarm(self, count: int, modules: Sequence[str]) -> None:
        """Have ``count`` idle workers with ``modules`` imported (they warm up while the run starts)."""
        conn = self.request({"op": "prewarm", "count": count, "modules": list(modules)})
        try:
            reply = paths.recv(conn)
        except (OSError, EOFError) as exc:
            raise WarmPoolError(f"warm workers: the daemon did not answer: {exc}") from exc
        finally:
            conn.close()
        if "error" in reply:
            raise WarmPoolError(f"warm workers: {reply['error']}")
        self.pid = int(reply["pid"])

    def launch(self, spec: ExecutionSpec, modules: Sequence[str]) -> WarmSlot:
        conn = self.request({"op": "run", "spec": spec.to_json(), "env": dict(os.environ), "cwd": os.getcwd(),
                             "path": list(sys.path), "modules": list(modules)})
        return WarmSlot(conn, spec, self.pid)

    def status(self) -> dict[str, Any] | None:
        """The daemon's status, or ``None`` when no daemon runs for this environment (none is started)."""
        return query(self.dir)

    def stop(self) -> int | None:
        return stop_pool(self.dir)


class WarmSlot:
    """One execution on the warm pool, as LocalBackend sees a worker: a connection that brings the result."""

    reusable = False

    def __init__(self, conn: Connection, spec: ExecutionSpec, daemon_pid: int | None) -> None:
        self.conn = conn
        self.spec: ExecutionSpec | None = spec
        self.daemon_pid = daemon_pid
        self.deadline: float | None = None
        self.started = time.time()

    def sentinels(self) -> list[Any]:
        return []

    def receive(self) -> dict[str, Any]:
        reply = paths.recv(self.conn)
        self.conn.close()
        if "result" not in reply:
            raise EOFError(reply.get("error", "no result"))
        return dict(reply["result"])

    def died(self, ready: Sequence[Any]) -> str | None:
        if self.conn.closed or self.conn in ready:
            self.conn.close()
            return f"the warm worker pool stopped while running it (daemon pid {self.daemon_pid})"
        return None

    def stop(self, *, kill: bool = False) -> None:
        """Cancel: the daemon kills the worker running this execution, then says so (or the pool is gone)."""
        if self.conn.closed:
            return
        with contextlib.suppress(OSError, EOFError, ValueError):
            paths.send(self.conn, {"op": "cancel"})
            if self.conn.poll(10):
                paths.recv(self.conn)
        self.conn.close()


def _env_int(name: str) -> int | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise WarmPoolError(f"${name}={raw!r} is not a whole number; unset it or give e.g. {name}=20") from None
    if value <= 0:
        raise WarmPoolError(f"${name}={raw!r} must be positive; unset it or give e.g. {name}=20")
    return value


def _is_daemon(pid: int) -> bool:
    try:
        return b"headwater.pipelines.warm._daemon" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def query(directory: Path) -> dict[str, Any] | None:
    if not (directory / paths.SOCKET).exists():
        return None
    try:
        conn = paths.connect(directory / paths.SOCKET, timeout=5)
        paths.send(conn, {"op": "status"})
        reply = paths.recv(conn)
        conn.close()
    except (OSError, EOFError):
        return None
    return reply


def stop_pool(directory: Path, timeout: float = 30.0) -> int | None:
    """Stop the daemon of ``directory`` (asked over its socket; SIGTERM when it does not answer)."""
    pid = None
    with contextlib.suppress(OSError, ValueError):
        pid = int((directory / paths.PID_FILE).read_text().strip())
    try:
        conn = paths.connect(directory / paths.SOCKET, timeout=5)
        paths.send(conn, {"op": "stop"})
        pid = int(paths.recv(conn)["pid"])
        conn.close()
    except (OSError, EOFError, KeyError, ValueError):
        if pid is None or not paths.pid_alive(pid) or not _is_daemon(pid):
            for name in (paths.SOCKET, paths.PID_FILE):
                with contextlib.suppress(FileNotFoundError):
                    (directory / name).unlink()
            return None
        os.kill(pid, signal.SIGTERM)
    # Until it has exited (its command line reads empty while it exits, so it is not asked again).
    deadline = time.time() + timeout
    while pid is not None and paths.pid_alive(pid) and time.time() < deadline:
        time.sleep(0.05)
    return pid
