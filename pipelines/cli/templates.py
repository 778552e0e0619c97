"""``headwater template list`` and ``headwater template copy NAME DEST``."""

from __future__ import annotations

import argparse
import json

from headwater.pipelines.cli import print_help

__all__ = ["configure"]


def cmd_list(args: argparse.Namespace) -> int:
    from headwater.templates import list_templates

    templates = list_templates()
    if args.format == "json":
        print(json.dumps([{"name": t.name, "description": t.description} for t in templates], indent=2))
        return 0
    width = max((len(t.name) for t in templates), default=4)
    for t in templates:
        print(f"{t.name:<{width}}  {t.description}")
    return 0


def cmd_copy(args: argparse.Namespace) -> int:
    from headwater.templates import copy_template

    result = copy_template(args.name, args.dest, pipeline_name=args.pipeline_name, force=args.force)
    verb = f"wrote {len(result.files)} files" + (
        f" ({len(result.overwritten)} overwritten)" if result.overwritten else "")
    print(f"{verb} of template {result.template!r} (pipeline {result.pipeline_name!r}) to {result.dest}")
    print("next:")
    print(f"  cd {args.dest}")
    print("  headwater run pipeline.py        # the whole pipeline, locally")
    if any(f.startswith("tests/") for f in result.files):
        print("  python -m pytest                 # the tests of the model code")
    if "README.md" in result.files:
        print("  (README.md says how to change each part and how to run it on Kubernetes)")
    return 0


def configure(template: argparse.ArgumentParser) -> None:
    """Fill in the ``template`` command of the ``headwater`` command line."""
    template.description = ("Project templates: ready pipelines (pipeline.py, models/, configs/, data/, tests/) "
                            "to start from.")
    sub = template.add_subparsers(dest="template_command", metavar="SUBCOMMAND")
    ls = sub.add_parser("list", help="the templates and what each one is",
                        description="List the templates: name and one-line description.")
    ls.add_argument("--format", choices=("text", "json"), default="text")
    ls.set_defaults(func=cmd_list)
    cp = sub.add_parser(
        "copy", help="write a template into a folder as a ready project",
        description="Copy template NAME into folder DEST (created if needed). Existing files are never "
                    "overwritten unless --force; nothing is written outside DEST.")
    cp.add_argument("name", metavar="NAME", help="template name (see 'headwater template list')")
    cp.add_argument("dest", metavar="DEST", help="project folder to write")
    cp.add_argument("--pipeline-name", metavar="N", help="pipeline name (default: the template's name); "
                    "letters, digits, '_' and '-', starting with a letter")
    cp.add_argument("--force", action="store_true", help="overwrite files that already exist in DEST")
    cp.set_defaults(func=cmd_copy)
    template.set_defaults(func=lambda a: print_help(template))
