"""Components for the warm-pool tests: they report what the process looks like, then leave a mess."""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import sys
import time
from pathlib import Path

import hw_warm_state
from headwater.components import Input, Output, component
from headwater.metadata import types


@component
def probe(out: Output[types.Examples], label: str = "", after: Input[types.Examples] | None = None) -> None:
    """Record pid, environment, folder, path, a module global and the random generator, then pollute them."""
    hw_warm_state.COUNTER += 1
    record = {
        "pid": os.getpid(), "cwd": os.getcwd(), "leak": os.environ.get("HW_LEAK"),
        "client_var": os.environ.get("HW_CLIENT_VAR"), "path_leak": "/nonexistent-hw" in sys.path,
        "counter": hw_warm_state.COUNTER, "random": random.random(), "handlers": len(logging.root.handlers),
        "value": hw_warm_state.VALUE,
    }
    (Path(out.path) / "probe.json").write_text(json.dumps(record))
    os.environ["HW_LEAK"] = "1"
    sys.path.append("/nonexistent-hw")
    random.seed(0)
    logging.root.addHandler(logging.NullHandler())
    os.chdir("/")


@component
def hold(out: Output[types.Examples], pid_file: str = "", seconds: float = 30.0) -> None:
    """Write this worker's pid to ``pid_file`` and wait (the test kills or cancels it)."""
    Path(pid_file).write_text(str(os.getpid()))
    time.sleep(seconds)
    (Path(out.path) / "done.txt").write_text("done")


@component
def die_once(out: Output[types.Examples], flag: str = "") -> None:
    """kill -9 itself while ``flag`` exists (removed first, so the retry succeeds)."""
    if flag and os.path.exists(flag):
        os.remove(flag)
        os.kill(os.getpid(), signal.SIGKILL)
    (Path(out.path) / "ok.txt").write_text(str(os.getpid()))


@component
def allocate(out: Output[types.Examples], mib: int = 0, child_mib: int = 0, child_hold_s: float = 0.0,
             after: Input[types.Examples] | None = None) -> None:
    """Touch ``mib`` MiB in this process and ``child_mib`` MiB in a child process (held ``child_hold_s``)."""
    import subprocess

    block = b"\x01" * (mib << 20)  # written, so resident
    if child_mib or child_hold_s:
        code = f"import time; b = b'\\x01' * ({child_mib} << 20); time.sleep({child_hold_s})"
        subprocess.run([sys.executable, "-c", code], check=True)
    (Path(out.path) / "allocated.json").write_text(json.dumps({"pid": os.getpid(), "bytes": len(block)}))
    del block
