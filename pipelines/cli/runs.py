"""``headwater runs list|show|logs``: the runs recorded in ML Metadata."""

from __future__ import annotations

import argparse
import json
import sys

from headwater.metadata.conventions import RunStatus
from headwater.pipelines.cli import print_help
from headwater.pipelines.cli._args import add_store_options, open_store_for

__all__ = ["configure"]


def configure(runs: argparse.ArgumentParser) -> None:
    runs.description = "List and inspect pipeline runs recorded in ML Metadata."
    runs_sub = runs.add_subparsers(dest="runs_command", metavar="SUBCOMMAND")
    ls = runs_sub.add_parser("list", help="list runs, newest first", description="List runs, newest first.")
    ls.add_argument("--pipeline", help="only runs of this pipeline")
    ls.add_argument("--limit", type=int, default=50, help="at most this many runs (default 50)")
    show = runs_sub.add_parser("show", help="nodes, states, durations, artifacts and logs of one run",
                               description="Show one run: every node's state, duration, artifacts and log path.")
    show.add_argument("run_id", metavar="RUN_ID")
    logs = runs_sub.add_parser("logs", help="print the logs of a run's nodes (local or in the object store)",
                               description="Print the log of NODE in run RUN_ID, or of every node, wherever "
                               "it is kept (local file, or under an object-store pipeline root).")
    logs.add_argument("run_id", metavar="RUN_ID")
    logs.add_argument("node", metavar="NODE", nargs="?", help="only this node")
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
    print(f"{'RUN ID':<26} {'PIPELINE':<20} {'STATUS':<10} {'STARTED (UTC)':<20} {'NODES':>5}  DURATION")
    for r in runs:
        print(f"{r.run_id:<26} {r.pipeline:<20} {r.status:<10} {r.started:<20} {r.node_count:>5}  {r.duration_text}")
    return 0


def cmd_runs_show(args: argparse.Namespace) -> int:
    from headwater.pipelines.history import show_run

    store = open_store_for(args)
    detail = show_run(store, args.run_id)
    if args.format == "json":
        print(json.dumps(detail.to_dict(), indent=2))
    else:
        print(detail.to_text())
    return 0 if detail.status != RunStatus.FAILED else 1


def cmd_runs_logs(args: argparse.Namespace) -> int:
    from headwater.components import storage
    from headwater.metadata.errors import HeadwaterError
    from headwater.pipelines.history import show_run

    detail = show_run(open_store_for(args), args.run_id)
    nodes = [n for n in detail.nodes if args.node in (None, n.node_id)]
    if not nodes:
        known = ", ".join(sorted({n.node_id for n in detail.nodes})) or "none"
        print(f"headwater: error: run {args.run_id} has no node {args.node!r}; its nodes: {known}", file=sys.stderr)
        return 2
    status = 0
    for n in nodes:
        if len(nodes) > 1:
            print(f"==> {n.node_id} (execution {n.execution_id}, {n.state}) <==", flush=True)
        if not n.log_path:
            print(f"(no log: {'served from the cache' if n.state == 'cached' else 'the node ran no executor'})")
            continue
        try:
            sys.stdout.buffer.write(storage.read_bytes(n.log_path))
            sys.stdout.flush()
        except (OSError, HeadwaterError) as exc:
            print(f"headwater: cannot read the log of node {n.node_id!r} at {n.log_path}: {exc}", file=sys.stderr)
            status = 1
    return status
