"""Helpers of the warm-pool tests: find daemons started in a private pool folder, and tell whether a
process is still alive (a zombie is not)."""

from __future__ import annotations

from pathlib import Path

from headwater.pipelines.warm import pool_dirs
from headwater.pipelines.warm._paths import pid_alive as alive

__all__ = ["alive", "daemon_pids"]


def daemon_pids(base: Path) -> list[int]:
    pids = []
    for folder in pool_dirs(base):
        try:
            pids.append(int((folder / "pid").read_text()))
        except (OSError, ValueError):
            pass
    return pids
