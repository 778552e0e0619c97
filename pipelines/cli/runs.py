"""``headwater runs list|show|logs``: the runs recorded in ML Metadata."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING, Any

from headwater.metadata.conventions import NodeState, RunStatus
from headwater.pipelines.cli import print_help
from headwater.pipelines.cli._args import add_store_options, open_store_for

if TYPE_CHECKING:
    from headwater.pipelines.history import NodeSummary

__all__ = ["RUN_ID_HELP", "configure"]

RUN_ID_HELP = "a run id, a unique prefix of one, or 'latest'"


def configure(runs: argparse.ArgumentParser) -> None:
    runs.description = "List and inspect pipeline runs recorded in ML Metadata."
    runs_sub = runs.add_subparsers(dest="runs_command", metavar="SUBCOMMAND")
    ls = runs_sub.add_parser("list", help="list runs, newest first", description="List runs, newest first.")
    ls.add_argument("--pipeline", help="only runs of this pipeline")
    ls.add_argument("--limit", type=int, default=50, help="at most this many runs (default 50)")
    show = runs_sub.add_parser("show", help="nodes, states, durations, artifacts and logs of one run",
                               description="Show one run: every node's state, duration, artifacts and log path.")
    show.add_argument("run_id", metavar="RUN_ID", help=RUN_ID_HELP)
    logs = runs_sub.add_parser("logs", help="print the logs of a run's nodes (local or in the object store)",
                               description="Print the log of NODE in run RUN_ID, or of every node, wherever "
                               "it is kept (local file, or under an object-store pipeline root).")
    logs.add_argument("run_id", metavar="RUN_ID", help=RUN_ID_HELP)
    logs.add_argument("node", metavar="NODE", nargs="?", help="only this node")
    logs.add_argument("--follow", "-f", action="store_true",
                      help="keep printing a running node's log as it grows, until the node ends")
    for p in (ls, show):
        add_store_options(p)
        p.add_argument("--format", choices=("text", "json"), default="text")
    add_store_options(logs)
    ls.set_defaults(func=cmd_runs_list)
    show.set_defaults(func=cmd_runs_show)
    logs.set_defaults(func=cmd_runs_logs)
    runs.set_defaults(func=lambda a: print_help(runs))


def cmd_runs_list(args: argparse.Namespace) -> int:
    from headwater.pipelines.history import list_runs

    store = open_store_for(args)
    runs = list_runs(store, pipeline=args.pipeline, limit=args.limit)
    if args.format == "json":
        print(json.dumps([r.to_dict() for r in runs], indent=2))
        return 0
    if not runs:
        print(f"no runs in {store.display}")
        return 0
    print(f"{'RUN ID':<26} {'PIPELINE':<20} {'STATUS':<10} {'STARTED (UTC)':<20} {'NODES':>5} {'BLESSED':<8} "
          f"{'PUSHED':<7} {'DURATION':>9}  STATES")
    for r in runs:
        print(f"{r.run_id:<26} {r.pipeline:<20} {r.status:<10} {r.started:<20} {r.node_count:>5} "
              f"{_yes_no(r.blessed):<8} {_yes_no(r.pushed):<7} {r.duration_text:>9}  {r.counts_text}")
    return 0


def _yes_no(value: bool | None) -> str:
    return "-" if value is None else ("yes" if value else "no")


def cmd_runs_show(args: argparse.Namespace) -> int:
    from headwater.pipelines.history import show_run

    store = open_store_for(args)
    detail = show_run(store, args.run_id)  # a prefix or 'latest' is resolved there
    if args.format == "json":
        print(json.dumps(detail.to_dict(), indent=2))
    else:
        print(detail.to_text())
    return 0 if detail.status != RunStatus.FAILED else 1


def cmd_runs_logs(args: argparse.Namespace) -> int:
    from headwater.pipelines.history import resolve_run_id, show_run

    store = open_store_for(args)
    run_id = resolve_run_id(store, args.run_id)
    detail = show_run(store, run_id)
    nodes = [n for n in detail.nodes if args.node in (None, n.node_id)]
    if not nodes:
        known = ", ".join(dict.fromkeys(n.node_id for n in detail.nodes)) or "none"
        print(f"headwater: error: run {run_id} has no node {args.node!r}; its nodes: {known}", file=sys.stderr)
        return 2
    status = 0
    for n in nodes:
        if len(nodes) > 1:
            eid = f"execution {n.execution_id}, " if n.execution_id is not None else ""
            print(f"==> {n.node_id} ({eid}{n.state}) <==", flush=True)
        if not n.log_path:
            print(f"(no log: {_no_log_reason(n)})", flush=True)
            continue
        if args.follow and n.state in (NodeState.RUNNING, NodeState.QUEUED):
            status |= _follow(store, run_id, n)
        else:
            status |= _print_log(n)
    return status


def _no_log_reason(node: NodeSummary) -> str:
    reasons = {NodeState.CACHED: "served from the cache", NodeState.SKIPPED: f"skipped: {node.reason}",
               NodeState.BLOCKED: f"blocked: {node.reason}", NodeState.NOT_RUN: "not run",
               NodeState.QUEUED: "not started yet"}
    return reasons.get(node.state, "the node ran no executor")


def _print_log(node: NodeSummary) -> int:
    from headwater.components import storage
    from headwater.metadata.errors import HeadwaterError

    assert node.log_path is not None
    try:
        sys.stdout.buffer.write(storage.read_bytes(node.log_path))
        sys.stdout.flush()
    except FileNotFoundError:
        print(f"(no log yet at {node.log_path})", flush=True)
    except (OSError, HeadwaterError) as exc:
        if isinstance(exc, BrokenPipeError):
            raise
        print(f"headwater: cannot read the log of node {node.node_id!r} at {node.log_path}: {exc}", file=sys.stderr)
        return 1
    return 0


def _follow(store: Any, run_id: str, node: NodeSummary, *, interval: float = 0.5) -> int:
    """Print a running node's log as it grows until its execution ends (Ctrl-C stops following)."""
    from headwater.pipelines.history import show_run

    assert node.log_path is not None
    position = 0
    while True:
        current = next((n for n in show_run(store, run_id).nodes if n.execution_id == node.execution_id), node)
        path = current.log_path or node.log_path
        try:
            with open(path, "rb") as f:
                f.seek(position)
                chunk = f.read()
        except FileNotFoundError:
            chunk = b""
        if chunk:
            sys.stdout.buffer.write(chunk)
            sys.stdout.flush()
            position += len(chunk)
        if current.state not in (NodeState.RUNNING, NodeState.QUEUED):
            print(f"==> {node.node_id} ended: {current.state} <==", flush=True)
            return 0 if current.state != NodeState.FAILED else 1
        try:
            time.sleep(interval)
        except KeyboardInterrupt:
            return 130
