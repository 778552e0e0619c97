"""``headwater ui``: the web dashboard over the metadata store (imports the web stack only when run)."""

from __future__ import annotations

import argparse
import importlib.util
import sys

__all__ = ["cmd_ui", "configure"]

# Without the 'ui' extra the command table lists `ui` as unavailable and says what to install. Looked up, not
# imported: `headwater --help` must not import the web stack.
for _module in ("starlette", "uvicorn", "jinja2"):
    if importlib.util.find_spec(_module) is None:
        raise ImportError(f"the dashboard's web stack is not installed: no module {_module!r}", name=_module)


def cmd_ui(args: argparse.Namespace) -> int:
    from headwater.pipelines.cli._args import metadata_uri, open_store_for
    from headwater.ui.server import serve

    if args.allow_runs and not args.pipeline:
        print("headwater: error: --allow-runs needs the pipeline files that may be started: add --pipeline "
              "pipeline.py (repeatable)", file=sys.stderr)
        return 2
    store = open_store_for(args)
    runs_form = None
    if args.allow_runs:
        from headwater.ui.runs import RunStarter, routes

        runs_form = routes(RunStarter(args.pipeline, metadata_uri(args)))
    serve(store, host=args.host, port=args.port, token=args.token, allow_runs=args.allow_runs,
          open_browser=args.open, runs_form=runs_form)
    return 0


def configure(ui: argparse.ArgumentParser) -> None:
    """The ``ui`` command's options."""
    from headwater.pipelines.cli._args import add_store_options

    ui.description = ("Serve a read-only web dashboard over the metadata store that 'headwater runs list' reads: "
                      "runs, live DAGs, artifacts with viewers, lineage, comparisons and pushed models.")
    add_store_options(ui)
    ui.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; any other "
                    "address requires an access token)")
    ui.add_argument("--port", type=int, default=8765, metavar="N", help="port (default 8765)")
    ui.add_argument("--token", metavar="TOKEN", help="access token every request must carry (generated and "
                    "printed when --host is not a loopback address)")
    ui.add_argument("--open", action="store_true", help="open the dashboard in the web browser")
    ui.add_argument("--allow-runs", action="store_true", help="allow starting runs of the --pipeline files from "
                    "the browser (local runner only; everything else stays read-only)")
    ui.add_argument("--pipeline", action="append", default=[], metavar="FILE",
                    help="a pipeline file the browser may start (with --allow-runs; repeatable)")
    ui.set_defaults(func=cmd_ui)
