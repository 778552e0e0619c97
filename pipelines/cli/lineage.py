"""``headwater lineage`` and ``headwater artifacts list``: question the lineage recorded in ML Metadata.

:func:`configure_lineage` and :func:`configure_artifacts` fill in their parsers (see the table in
:mod:`headwater.pipelines.cli`). Nothing heavy is imported until a command runs (and then
only ``ml_metadata``), so the commands start fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from headwater.pipelines.cli import print_help
from headwater.pipelines.cli._args import add_store_options, count, open_store_for

__all__ = ["cmd_artifacts_list", "cmd_lineage", "configure_artifacts", "configure_lineage"]

FORMATS = ("text", "json", "dot", "mermaid", "html")

_STORE_HELP = """\
metadata store:
  --metadata URI, else $HEADWATER_METADATA, else --root DIR (its metadata.sqlite), else the store of
  the last `headwater run` in this directory. URI forms: sqlite:///relative/metadata.sqlite,
  sqlite:////absolute/metadata.sqlite (a plain path to an existing file works too),
  mysql://user:pass@host:3306/db, postgresql://user:pass@host:5432/db, grpc://host:8080.
  Stores written by TFX read the same way."""

_LINEAGE_EPILOG = f"""\
examples:
  headwater lineage 42                            where artifact 42 came from (a tree)
  headwater lineage 42 --down --depth 2           what was derived from it, two executions deep
  headwater lineage serving/penguin/7 --explain   data, transform, training, evaluation and baseline
                                                  behind the model pushed to serving/penguin/7
  headwater lineage 42 --format html -o lineage.html
  headwater lineage 42 --format dot | dot -Tsvg > lineage.svg

ARTIFACT is an artifact id, an artifact URI, or (with --explain) a PushedModel or the serving path
<base>/<version> it was pushed to. --depth counts executions along each path (default: all).

{_STORE_HELP}
"""

_ARTIFACTS_EPILOG = f"""\
examples:
  headwater artifacts list --type Model
  headwater artifacts list --pipeline penguin --run 2024-05-01T10:00:00
  headwater artifacts list --type PushedModel --format json

--run takes a run id or an unambiguous prefix of it (see `headwater runs list`).

{_STORE_HELP}
"""


_depth = count("--depth", "a number of executions")
_limit = count("--limit", "a number (0 = all)")


def configure_lineage(lineage: argparse.ArgumentParser) -> None:
    """Fill in the ``lineage`` command."""
    lineage.description = (
        "Show the lineage of an artifact recorded in ML Metadata: what it was derived from "
        "(--up, the default), what was derived from it (--down), or both; or --explain a pushed model: "
        "which data, transform, training run (parameters, code), evaluation (metrics, thresholds) and "
        "baseline led to it, and when and where it was pushed.")
    lineage.epilog = _LINEAGE_EPILOG
    lineage.formatter_class = argparse.RawDescriptionHelpFormatter
    lineage.add_argument("artifact", metavar="ARTIFACT",
                         help="artifact id or URI; with --explain also a serving path <base>/<version>")
    mode = lineage.add_mutually_exclusive_group()
    mode.add_argument("--up", dest="mode", action="store_const", const="upstream",
                      help="everything ARTIFACT was derived from (default)")
    mode.add_argument("--down", dest="mode", action="store_const", const="downstream",
                      help="everything derived from ARTIFACT")
    mode.add_argument("--both", dest="mode", action="store_const", const="both", help="up and down")
    mode.add_argument("--explain", dest="mode", action="store_const", const="explain",
                      help="explain a push: data, transform, training, evaluation, baseline, destination")
    lineage.add_argument("--depth", type=_depth, default=None, metavar="N",
                         help="walk at most N executions from ARTIFACT (default: no limit)")
    lineage.add_argument("--format", "-f", choices=FORMATS, default="text",
                         help="text (a tree), json, dot (Graphviz), mermaid, or html (one offline page); "
                         "default: text")
    lineage.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of standard output")
    add_store_options(lineage)
    lineage.set_defaults(func=cmd_lineage, mode="upstream")


def configure_artifacts(artifacts: argparse.ArgumentParser) -> None:
    """Fill in the ``artifacts`` command."""
    raw = argparse.RawDescriptionHelpFormatter
    artifacts.description = "List artifacts recorded in ML Metadata."
    artifacts.epilog = _ARTIFACTS_EPILOG
    artifacts.formatter_class = raw
    artifacts_sub = artifacts.add_subparsers(dest="artifacts_command", metavar="SUBCOMMAND")
    ls = artifacts_sub.add_parser(
        "list",
        help="list artifacts, optionally by type, pipeline and run",
        description="List artifacts (id, type, state, creation time, URI, span/blessed/pushed details), "
        "optionally only those of one type, pipeline and/or run. Oldest first; --limit keeps the newest N.",
        epilog=_ARTIFACTS_EPILOG,
        formatter_class=raw,
    )
    ls.add_argument("--type", "-t", dest="type_name", metavar="T",
                    help="artifact type, e.g. Examples, Model, ModelBlessing, PushedModel")
    ls.add_argument("--pipeline", "-p", metavar="P", help="pipeline name")
    ls.add_argument("--run", "-r", metavar="R", help="run id (or an unambiguous prefix of it)")
    ls.add_argument("--limit", type=_limit, default=100, metavar="N",
                    help="show the newest N matching artifacts (default 100; 0 = all)")
    ls.add_argument("--format", "-f", choices=("text", "json"), default="text", help="default: text")
    add_store_options(ls)
    ls.set_defaults(func=cmd_artifacts_list)
    artifacts.set_defaults(func=lambda args: print_help(artifacts))


def _emit(text: str, output: str | None, what: str) -> None:
    if output:
        _write_output(Path(output), text)
        print(f"wrote {what} to {output}", file=sys.stderr)
    else:
        sys.stdout.write(text)


def _write_output(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` (``-o``), turning the OS's refusal into our error naming the file."""
    from headwater.metadata.errors import StorageError

    if not path.parent.is_dir():
        raise StorageError(f"cannot write {path}: folder {path.parent} does not exist; create it first or "
                           "give -o a path in an existing folder")
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}; give -o a writable file path") from None


def cmd_lineage(args: argparse.Namespace) -> int:
    from headwater.metadata.lineage import explain_push, render, trace

    if args.mode == "explain" and args.depth is not None:
        raise SystemExit("headwater lineage: --depth does not apply to --explain (it always walks the whole "
                         "history of the push); drop --depth, or use --up --depth N")
    store = open_store_for(args)
    subject: Any
    if args.mode == "explain":
        subject = explain_push(store, args.artifact)
    else:
        subject = trace(store, args.artifact, direction=args.mode, depth=args.depth)
    _emit(render(subject, args.format), args.output, f"{args.format} lineage")
    return 0


def _created(ms: int | None) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S") if ms else "-"


def cmd_artifacts_list(args: argparse.Namespace) -> int:
    from headwater.metadata.lineage import list_artifacts
    from headwater.metadata.lineage.render import NOTABLE
    store = open_store_for(args)
    limit = args.limit or None
    found = list_artifacts(store, args.type_name, args.pipeline, args.run,
                           limit=None if limit is None else limit + 1, newest_first=limit is not None)
    more = limit is not None and len(found) > limit
    rows = sorted(found[:limit] if limit is not None else found, key=lambda a: a.id)
    if args.format == "json":
        sys.stdout.write(json.dumps([a.to_dict() for a in rows], indent=2, default=str) + "\n")
        return 0
    if not rows:
        filters = ", ".join(f"{k} {v!r}" for k, v in (("type", args.type_name), ("pipeline", args.pipeline),
                                                       ("run", args.run)) if v)
        print("no artifacts" + (f" with {filters}" if filters else "") + f" in {store.display}")
        return 0
    type_w = max(4, *(len(a.type_name) for a in rows))
    print(f"{'ID':>7}  {'TYPE':<{type_w}}  {'STATE':<8}  {'CREATED (UTC)':<19}  URI")
    for a in rows:
        details = " ".join(f"{k}={a.get(k)}" for k in NOTABLE if a.get(k) is not None)
        print(f"{a.id:>7}  {a.type_name:<{type_w}}  {a.state:<8}  {_created(a.create_time_ms):<19}  {a.uri}"
              + (f"  [{details}]" if details else ""))
    if more:
        print(f"(newest {limit} shown; --limit 0 lists all)", file=sys.stderr)
    return 0

