"""``headwater serve DIR``: a local model server with TF Serving's REST API for a push destination."""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from headwater.pipelines.cli._args import sigterm_as_interrupt

__all__ = ["cmd_serve", "configure"]


def configure(serve: argparse.ArgumentParser) -> None:
    """Fill in the ``serve`` command of the ``headwater`` command line."""
    serve.description = (
        "Serve the SavedModel versions under DIR (a Push destination: DIR/1/, DIR/2/ ...) with "
        "TF Serving's REST API: GET /v1/models/NAME[/versions/N][/metadata], POST "
        "/v1/models/NAME[/versions/N]:predict|classify|regress. The newest version is served; new versions "
        "are picked up as Push writes them. Needs the 'serve' extra (pip install 'headwater[serve,ml]').")
    serve.add_argument("directory", metavar="DIR", help="the push destination (holds <version>/ folders)")
    serve.add_argument("--model-name", metavar="NAME", help="the model's name in URLs (default: DIR's name)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 exposes it)")
    serve.add_argument("--port", type=int, default=8501, help="port (default 8501, TF Serving's REST port)")
    serve.add_argument("--web", metavar="FOLDER", help="also serve the files of FOLDER at / (index.html first)")
    serve.add_argument("--poll-seconds", type=float, default=1.0, metavar="S",
                       help="how often DIR is scanned for new versions (default 1)")
    serve.set_defaults(func=cmd_serve)


def cmd_serve(args: argparse.Namespace) -> int:
    directory = Path(args.directory)
    if not directory.is_dir():
        print(f"headwater: error: serve: {directory} is not a directory; give the folder Push writes to "
              "(Push(destination=...)), which holds one numbered folder per pushed version", file=sys.stderr)
        return 2
    if args.web and not Path(args.web, "index.html").is_file():
        print(f"headwater: error: serve: --web {args.web} holds no index.html", file=sys.stderr)
        return 2
    name = args.model_name or directory.resolve().name
    try:
        from headwater.serving._repository import version_dirs
        from headwater.serving.app import run
    except ImportError as exc:
        print(f"headwater: error: serve needs the 'serve' extra ({exc}); install it with "
              "pip install 'headwater[serve,ml]'", file=sys.stderr)
        return 2
    versions = sorted(version_dirs(directory.resolve()))
    where = f"http://{args.host}:{args.port}/v1/models/{name}"
    if versions:
        print(f"headwater serve: model '{name}' from {directory.resolve()} (versions {versions}, serving the "
              f"newest) at {where}", flush=True)
    else:
        print(f"headwater serve: warning: {directory.resolve()} holds no version yet; requests to {where} answer "
              "404 until Push writes one (it is picked up without a restart)", flush=True)
    if args.web:
        print(f"headwater serve: web page at http://{args.host}:{args.port}/", flush=True)
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal to the handler it found:
    # make that handler end run() quietly so the command can say how it came out.
    with sigterm_as_interrupt(), contextlib.suppress(KeyboardInterrupt):
        run(directory, model_name=name, host=args.host, port=args.port, web_dir=args.web,
            poll_seconds=args.poll_seconds)
    print("headwater serve: stopped", flush=True)
    return 0
