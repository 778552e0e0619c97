"""``headwater schema infer|diff``: create a curated schema from a run's statistics, and show what new
statistics would change in it, in lines a reviewer can read.

STATISTICS is an ExampleStatistics artifact: its folder, its MLMD artifact id, or a run id (the statistics
that run produced), read through ``--metadata``/``--root`` like the other read-only commands.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["cmd_schema_diff", "cmd_schema_infer", "configure"]

_DESCRIPTION = """\
Create a curated schema (schema.pbtxt) from a run's statistics, and show what new statistics would
change in it, one line a reviewer can read per change. STATISTICS is an ExampleStatistics artifact: its
folder, its ML Metadata artifact id, or a run id (the statistics that run produced), read through
--metadata or --root like the other read-only commands.
"""
_EPILOG = """\
examples:
  headwater schema infer runs/Statistics/statistics/4 -o schema/schema.pbtxt
  headwater schema infer 20261202T080000-ab12cd --root runs -o schema/schema.pbtxt --force
  headwater schema diff schema/schema.pbtxt 20261203T080000-ef34ab --root runs
"""


def _statistics_folder(source: str, args: argparse.Namespace) -> str:
    if Path(source).is_dir():
        return source
    from headwater.components.errors import ParameterError
    from headwater.metadata import types
    from headwater.metadata.store import CONTEXT_RUN
    from headwater.pipelines.cli._args import open_store_for

    store = open_store_for(args)
    wanted = types.ExampleStatistics.TYPE_NAME
    if source.isdigit():
        found = [a for a in store.get_artifacts([int(source)]) if a.type_name == wanted]
    else:
        ctx = store.context(CONTEXT_RUN, source, create=False)
        if ctx is None:
            raise ParameterError(f"{source!r} is neither a folder, an artifact id nor a run id in {store.display}")
        found = [store.from_proto(a) for a in store.mlmd.get_artifacts_by_context(ctx.id)]
        found = [a for a in found if a.type_name == wanted]
    if not found:
        raise ParameterError(f"{source!r} names no ExampleStatistics artifact in {store.display}")
    return str(found[-1].uri)


def cmd_schema_infer(args: argparse.Namespace) -> int:
    from headwater.components.validation._schema import infer_schema, read_statistics_dir

    out = Path(args.output)
    if out.exists() and not args.force:
        print(f"headwater: error: {out} exists; it is the curated schema — pass --force to replace it, or "
              "use `headwater schema diff` to see what changed", file=sys.stderr)
        return 2
    folder = _statistics_folder(args.statistics, args)
    stats, split = read_statistics_dir(folder, args.split)
    schema = infer_schema(stats)
    from google.protobuf import text_format

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text_format.MessageToString(schema))
    print(f"headwater: wrote {out}: {len(schema.feature)} features inferred from split {split!r} of {folder}; "
          "review it (domains, presence, drift thresholds go in Validate's rules) and keep it in the project")
    return 0


def cmd_schema_diff(args: argparse.Namespace) -> int:
    from headwater.components.validation._schema import diff_schema, parse_schema_file, read_statistics_dir

    curated = parse_schema_file(args.schema_file)
    folder = _statistics_folder(args.statistics, args)
    stats, split = read_statistics_dir(folder, args.split)
    lines = diff_schema(curated, stats)
    print(f"schema {args.schema_file} vs the statistics of split {split!r} in {folder}:")
    for line in lines:
        print(f"  {line}")
    print(f"headwater: {len(lines)} difference(s)" if lines else "headwater: no difference: the data fits the schema")
    return 1 if lines and args.exit_code else 0


def configure(schema: argparse.ArgumentParser) -> None:
    """Fill in the ``schema`` command of the ``headwater`` command line."""
    from headwater.pipelines.cli._args import add_store_options

    schema.description, schema.epilog = _DESCRIPTION, _EPILOG
    schema.formatter_class = argparse.RawDescriptionHelpFormatter
    ssub = schema.add_subparsers(dest="schema_command", metavar="COMMAND")
    infer = ssub.add_parser("infer", help="write a schema.pbtxt inferred from statistics",
                            description="Write a tensorflow-metadata schema inferred (TFDV) from statistics.")
    infer.add_argument("statistics", metavar="STATISTICS", help="ExampleStatistics folder, artifact id or run id")
    infer.add_argument("-o", "--output", default="schema.pbtxt", help="the schema file (default: schema.pbtxt)")
    infer.add_argument("--force", action="store_true", help="replace an existing file")
    diff = ssub.add_parser("diff", help="what new statistics would change in a schema file",
                           description="Show, one line per change, how statistics differ from a schema file.")
    diff.add_argument("schema_file", metavar="SCHEMA_FILE")
    diff.add_argument("statistics", metavar="STATISTICS", help="ExampleStatistics folder, artifact id or run id")
    diff.add_argument("--exit-code", action="store_true", help="exit 1 when there are differences")
    for p in (infer, diff):
        p.add_argument("--split", help="which split's statistics (default: train, else the first)")
        add_store_options(p)
    infer.set_defaults(func=cmd_schema_infer)
    diff.set_defaults(func=cmd_schema_diff)
    schema.set_defaults(func=lambda a: _usage(schema))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2
