"""The ``headwater`` command line. Starts without importing TensorFlow, Beam or ML Metadata."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["main"]

_POINTER = Path(".headwater") / "metadata"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("headwater")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
        return "0+unknown"


def _parse_params(items: Sequence[str]) -> dict[str, str]:
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"headwater: --param expects KEY=VALUE, got {item!r}")
        params[key.strip()] = value
    return params


def _metadata_uri(args: argparse.Namespace) -> str | None:
    """--metadata, $HEADWATER_METADATA, --root DIR, or the store the last `headwater run` here used.

    ``--metadata`` may also be a plain path to an SQLite file.
    """
    metadata = getattr(args, "metadata", None)
    if metadata:
        if "://" not in metadata and Path(metadata).is_file():
            return f"sqlite:///{Path(metadata).resolve()}"
        return str(metadata)
    if os.environ.get("HEADWATER_METADATA"):
        return None  # connect() reads it
    root = getattr(args, "root", None)
    if root:
        return f"sqlite:///{Path(root).resolve() / 'metadata.sqlite'}"
    if _POINTER.is_file():
        return _POINTER.read_text().strip()
    raise SystemExit(
        "headwater: which metadata store? Pass --metadata URI (e.g. sqlite:///runs/demo/metadata.sqlite), "
        "--root PIPELINE_ROOT, or set HEADWATER_METADATA"
    )


def open_store_for(args: argparse.Namespace) -> Any:
    """The metadata store a read-only command should use (see ``_metadata_uri``), opened read-only."""
    from headwater.metadata.store import connect

    return connect(_metadata_uri(args), readonly=True)


# ---------------------------------------------------------------------- run
def cmd_run(args: argparse.Namespace) -> int:
    from headwater.metadata.errors import HeadwaterError
    from headwater.pipelines.loader import load_pipeline

    try:
        pipeline = load_pipeline(args.pipeline_file)
        params = _parse_params(args.param)
        runner = _make_runner(args)
        result = runner.run(pipeline, params, from_node=args.from_node, to_node=args.to_node,
                            cache=not args.no_cache)
    except KeyboardInterrupt:
        print("headwater: run canceled", file=sys.stderr)
        return 130
    except HeadwaterError as exc:
        print(f"headwater: error: {exc}", file=sys.stderr)
        return 2
    local_store = not (pipeline.metadata or args.metadata or os.environ.get("HEADWATER_METADATA"))
    if args.runner == "local" and local_store and "://" not in pipeline.root:
        # `headwater runs list` here will then read this store without being told.
        _POINTER.parent.mkdir(exist_ok=True)
        _POINTER.write_text(f"sqlite:///{pipeline.metadata_default().resolve()}\n")
    return 0 if result.ok else 1


def _make_runner(args: argparse.Namespace) -> Any:
    if args.runner == "local":
        from headwater.pipelines.runner import LocalRunner

        return LocalRunner(args.workers, metadata=args.metadata, quiet=args.quiet)
    from headwater.pipelines import cli_k8s

    return cli_k8s.make_runner(args)


# ---------------------------------------------------------------------- runs
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
    return 0 if detail.status != "failed" else 1


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


# ---------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="headwater",
        description="headwater: TFX-compatible ML pipelines with ML Metadata lineage and evaluation-gated pushes.",
        epilog="Run 'headwater COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"headwater {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run a pipeline file", description=(
        "Run the Pipeline defined in PIPELINE_FILE (the module-level variable 'pipeline', or the only "
        "Pipeline in the file). Nodes whose inputs, parameters and code are unchanged are reused from the "
        "cache; a re-run after a failure recomputes only what failed and what depends on it."))
    run.add_argument("pipeline_file", metavar="PIPELINE_FILE", help="Python file defining the pipeline")
    run.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                     help="override a runtime parameter (repeatable)")
    run.add_argument("--no-cache", action="store_true", help="run every node, ignoring cached results")
    run.add_argument("--from", dest="from_node", metavar="NODE",
                     help="run NODE and everything downstream of it; upstream inputs come from MLMD")
    run.add_argument("--to", dest="to_node", metavar="NODE", help="run NODE and everything it depends on")
    run.add_argument("--runner", choices=("local", "kubernetes"), default="local",
                     help="where nodes run (default: local worker processes)")
    run.add_argument("--workers", type=int, default=None, metavar="N",
                     help="local runner: parallel worker processes (default: number of cores)")
    run.add_argument("--metadata", metavar="URI", help="metadata connection string (default: "
                     "$HEADWATER_METADATA or sqlite:///<pipeline root>/metadata.sqlite)")
    run.add_argument("--quiet", "-q", action="store_true", help="print no live status")
    _add_k8s_options(run)
    run.set_defaults(func=cmd_run)

    runs = sub.add_parser("runs", help="list and inspect runs", description="List and inspect pipeline runs "
                          "recorded in ML Metadata.")
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
    runs.set_defaults(func=lambda a: _help(runs))

    for register in _plugins():
        register(sub)
    return parser


def add_store_options(p: argparse.ArgumentParser) -> None:
    """``--metadata`` and ``--root``, as every read-only command takes them (see :func:`open_store_for`)."""
    p.add_argument("--metadata", metavar="URI", help="metadata connection string or SQLite file (default: "
                   "$HEADWATER_METADATA, or the store of the last 'headwater run' in this directory)")
    p.add_argument("--root", metavar="DIR", help="pipeline root whose metadata.sqlite to read")


def _add_k8s_options(run: argparse.ArgumentParser) -> None:
    try:
        from headwater.pipelines import cli_k8s
    except ImportError:
        return
    cli_k8s.add_run_options(run)


def _plugins() -> list[Callable[[Any], None]]:
    """Subcommands living in their own modules (lineage, templates, compile, k8s, schema)."""
    registers = []
    for name in ("cli_lineage", "cli_templates", "cli_compile", "cli_k8s", "cli_schema"):
        try:
            module = __import__(f"headwater.pipelines.{name}", fromlist=["register"])
        except ImportError:
            continue
        register = getattr(module, "register", None)
        if register is not None:
            registers.append(register)
    return registers


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from headwater.metadata.errors import HeadwaterError

    try:
        return int(args.func(args) or 0)
    except HeadwaterError as exc:
        print(f"headwater: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
