"""``headwater run PIPELINE_FILE``: run a pipeline, locally or on Kubernetes."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from headwater.pipelines.cli import k8s
from headwater.pipelines.cli._args import POINTER, count, key_values

__all__ = ["cmd_run", "configure"]


def configure(run: argparse.ArgumentParser) -> None:
    run.description = (
        "Run the Pipeline defined in PIPELINE_FILE (the module-level variable 'pipeline', or the only "
        "Pipeline in the file). Nodes whose inputs, parameters and code are unchanged are reused from the "
        "cache; a re-run after a failure recomputes only what failed and what depends on it.")
    run.add_argument("pipeline_file", metavar="PIPELINE_FILE", help="Python file defining the pipeline")
    run.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                     help="override a runtime parameter (repeatable)")
    run.add_argument("--no-cache", action="store_true", help="run every node, ignoring cached results")
    run.add_argument("--from", dest="from_node", metavar="NODE",
                     help="run NODE and everything downstream of it; upstream inputs come from MLMD")
    run.add_argument("--to", dest="to_node", metavar="NODE", help="run NODE and everything it depends on")
    run.add_argument("--runner", choices=("local", "kubernetes"), default="local",
                     help="where nodes run (default: local worker processes)")
    run.add_argument("--workers", type=count("--workers", "a number of worker processes", minimum=1),
                     default=None, metavar="N",
                     help="local runner: parallel worker processes (default: number of cores)")
    run.add_argument("--metadata", metavar="URI", help="metadata connection string (default: "
                     "$HEADWATER_METADATA or sqlite:///<pipeline root>/metadata.sqlite)")
    run.add_argument("--quiet", "-q", action="store_true", help="print no live status")
    run.add_argument("--experiment", metavar="NAME", help="group the run under experiment NAME in MLMD "
                     "(default: the pipeline's name)")
    k8s.add_run_options(run)
    run.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    from headwater.metadata.errors import HeadwaterError
    from headwater.pipelines.loader import load_pipeline

    try:
        pipeline = load_pipeline(args.pipeline_file)
        params = key_values(args.param, "--param")
        runner = _make_runner(args)
        result = runner.run(pipeline, params, from_node=args.from_node, to_node=args.to_node,
                            cache=not args.no_cache, experiment=args.experiment)
    except KeyboardInterrupt:
        print("headwater: run canceled", file=sys.stderr)
        return 130
    except HeadwaterError as exc:
        print(f"headwater: error: {exc}", file=sys.stderr)
        return 2
    local_store = not (pipeline.metadata or args.metadata or os.environ.get("HEADWATER_METADATA"))
    if args.runner == "local" and local_store and "://" not in pipeline.root:
        # `headwater runs list` here will then read this store without being told.
        POINTER.parent.mkdir(exist_ok=True)
        POINTER.write_text(f"sqlite:///{pipeline.metadata_default().resolve()}\n")
    return 0 if result.ok else 1


def _make_runner(args: argparse.Namespace) -> Any:
    if args.runner == "local":
        from headwater.pipelines.runner import LocalRunner

        return LocalRunner(args.workers, metadata=args.metadata, quiet=args.quiet)
    return k8s.make_runner(args)
