"""``headwater workers status`` and ``headwater workers stop``: the warm worker pools of this user."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

__all__ = ["configure"]


def _pools(args: argparse.Namespace) -> list[tuple[Any, dict[str, Any] | None, bool]]:
    """(folder, status or None, is this environment's) for this environment's pool, or every pool with --all."""
    from headwater.pipelines.warm import WarmPool, pool_dirs, query

    here = WarmPool()
    folders = list(pool_dirs()) if args.all else [here.dir]
    return [(folder, query(folder), folder == here.dir) for folder in folders]


def cmd_status(args: argparse.Namespace) -> int:
    from headwater.pipelines.warm import base_dir, keep_warm_seconds

    pools = _pools(args)
    if args.format == "json":
        print(json.dumps([{"dir": str(f), "current": current, "running": status is not None, **(status or {})}
                          for f, status, current in pools], indent=2))
        return 0
    seconds = keep_warm_seconds(None)
    setting = f"on, {seconds:.0f}s idle timeout" if seconds else "off ($HEADWATER_KEEP_WARM)"
    print(f"warm workers: {setting}; pools in {base_dir()}")
    running = [(f, s, c) for f, s, c in pools if s is not None]
    if not running:
        print("no warm pool is running" + ("" if args.all else " for this Python environment"))
        return 0
    for folder, status, current in running:
        assert status is not None
        idle = time.time() - status["last_activity"]
        print(f"pool {folder.name}{' (this environment)' if current else ''}: daemon pid {status['pid']}, up "
              f"{time.time() - status['started']:.0f}s, idle {idle:.0f}s of {status['idle_seconds']:.0f}s, "
              f"{status['executions']} executions, recycled after {status['max_executions']} executions or "
              f"{status['max_rss_mb']} MB")
        for w in status["workers"]:
            what = f"running {w['node']}" if w["busy"] else "idle"
            print(f"  worker {w['pid']:>7}  {what:<24} {w['executions']:>3} executions  {w['rss_mb']:>7.0f} MB  "
                  f"warm: {', '.join(w['modules']) or '-'}")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    from headwater.pipelines.warm import stop_pool

    stopped = 0
    for folder, status, _ in _pools(args):
        if status is None and not (folder / "pid").exists():
            continue
        pid = stop_pool(folder)
        if pid is not None:
            stopped += 1
            print(f"stopped warm pool {folder.name} (daemon pid {pid})")
    if not stopped:
        print("no warm pool was running" + ("" if args.all else " for this Python environment"))
    return 0


def configure(workers: argparse.ArgumentParser) -> None:
    """Fill in the ``workers`` command of the ``headwater`` command line."""
    from headwater.pipelines.cli import print_help

    workers.description = ("Warm worker processes outlive a run (one pool per user and Python environment, "
                           "stopped after an idle timeout): show them or stop them. Runs without them: "
                           "--no-keep-warm or HEADWATER_KEEP_WARM=0.")
    sub = workers.add_subparsers(dest="workers_command", metavar="SUBCOMMAND")
    status = sub.add_parser("status", help="the pool's daemon and workers (pids, executions, memory)",
                            description="Show this environment's warm pool: daemon, workers, memory, idle time.")
    status.add_argument("--format", choices=("text", "json"), default="text")
    stop = sub.add_parser("stop", help="stop the pool (its workers end; the next run starts a new one)",
                          description="Stop this environment's warm pool and its worker processes.")
    for p in (status, stop):
        p.add_argument("--all", action="store_true", help="every pool of this user, not only this environment's")
    status.set_defaults(func=cmd_status)
    stop.set_defaults(func=cmd_stop)
    workers.set_defaults(func=lambda a: print_help(workers))
