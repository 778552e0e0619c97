"""``headwater run PIPELINE_FILE``: run a pipeline, locally or on Kubernetes."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from headwater.pipelines.cli import k8s
from headwater.pipelines.cli._args import POINTER, count, key_values, sigterm_as_interrupt

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
    run.add_argument("--no-keep-warm", action="store_true",
                     help="local runner: start worker processes for this run only, not the warm pool that "
                     "outlives runs (also HEADWATER_KEEP_WARM=0; see 'headwater workers')")
    run.add_argument("--metadata", metavar="URI", help="metadata connection string (default: "
                     "$HEADWATER_METADATA or sqlite:///<pipeline root>/metadata.sqlite)")
    run.add_argument("--quiet", "-q", action="store_true",
                     help="print no live status: only the run id, how it ended and its outcome lines")
    run.add_argument("--verbose", "-v", action="store_true",
                     help="keep the ML libraries' INFO logging in node logs (default: warnings and errors only; "
                     "same as HEADWATER_VERBOSE=1)")
    run.add_argument("--require-push", action="store_true",
                     help="exit with status 3 when the run succeeds but pushes no model (e.g. not blessed); "
                     "for CI")
    run.add_argument("--experiment", metavar="NAME", help="group the run under experiment NAME in MLMD "
                     "(default: the pipeline's name)")
    k8s.add_run_options(run)
    run.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    from headwater.metadata.errors import HeadwaterError
    from headwater.pipelines.loader import load_pipeline

    if args.verbose:  # read by every executor process (headwater.components.executor.quiet_libraries)
        os.environ["HEADWATER_VERBOSE"] = "1"
    with sigterm_as_interrupt() as terminated:
        try:
            pipeline = load_pipeline(args.pipeline_file)
            params = key_values(args.param, "--param")
            runner = _make_runner(args)
            result = runner.run(pipeline, params, from_node=args.from_node, to_node=args.to_node,
                                cache=not args.no_cache, experiment=args.experiment)
        except KeyboardInterrupt:
            print(f"headwater: run canceled{' (SIGTERM)' if terminated.received else ''}", file=sys.stderr)
            return 143 if terminated.received else 130
        except HeadwaterError as exc:
            print(f"headwater: error: {exc}", file=sys.stderr)
            return 2
    local_store = not (pipeline.metadata or args.metadata or os.environ.get("HEADWATER_METADATA"))
    if args.runner == "local" and local_store and "://" not in pipeline.root:
        # `headwater runs list` here will then read this store without being told.
        POINTER.parent.mkdir(exist_ok=True)
        POINTER.write_text(f"sqlite:///{pipeline.metadata_default().resolve()}\n")
    if args.quiet:
        print(f"run {result.run_id} {'succeeded' if result.ok else 'FAILED'} in {result.duration:.2f}s")
        print(result.summary())
    return int(result.exit_code(require_push=args.require_push))

def _make_runner(args: argparse.Namespace) -> Any:
    if args.runner == "local":
        from headwater.pipelines.runner import LocalRunner

        return LocalRunner(args.workers, metadata=args.metadata, quiet=args.quiet,
                           keep_warm=False if args.no_keep_warm else None)
    return k8s.make_runner(args)
