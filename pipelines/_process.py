"""What every worker process does, whether it serves one run (``backend``) or many (``warm``): die with its
parent, and import heavy modules ahead of the nodes that need them."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Iterator
from multiprocessing.connection import Connection
from typing import Any

__all__ = ["die_with_parent", "messages", "warm_up"]


def die_with_parent() -> None:
    """Linux: have the kernel kill this worker if the orchestrator dies (even by SIGKILL)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:  # pragma: no cover - exotic libc
        pass


def warm_up(conn: Connection, modules: tuple[str, ...]) -> None:
    """Import ``modules`` ahead of the nodes that need them, stopping as soon as work is waiting.

    What the libraries print while loading (TensorFlow's C++ start-up lines) is not any node's output:
    keep it off the console. A module that fails here fails again, reported, in the node that needs it.
    """
    if not modules:
        return
    saved = os.dup(1), os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    try:
        for module in modules:
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


def messages(conn: Connection) -> Iterator[Any]:
    """What the orchestrator sends a worker, until it sends ``None`` or the connection closes."""
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        yield message
