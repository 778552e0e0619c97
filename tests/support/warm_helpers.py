"""Helpers of the warm-pool tests: find daemons started in a private pool folder, and tell whether a
process is still alive (a zombie is not)."""

from __future__ import annotations

import os
from pathlib import Path

from headwater.pipelines.warm import pool_dirs


def daemon_pids(base: Path) -> list[int]:
    pids = []
    for folder in pool_dirs(base):
        try:
            pids.append(int((folder / "pid").read_text()))
        except (OSError, ValueError):
            pass
    return pids


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]
