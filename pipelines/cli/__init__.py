"""The ``headwater`` command line. Starts without importing TensorFlow, Beam or ML Metadata.

Every subcommand is a row of :data:`COMMANDS`: its name, the function that fills in its parser
(``module:function``), its one-line help and, when it needs an optional part of headwater, the extra that
installs it. A command whose module cannot be imported still shows in ``headwater --help``, marked
unavailable; running it is an error that names the command, the missing module and what to install.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = ["COMMANDS", "Command", "build_parser", "main"]


@dataclass(frozen=True)
class Command:
    """One ``headwater`` subcommand. ``target`` is ``"module:function"``: the function receives the
    command's parser and adds its description, options and ``func``. ``extra`` names the optional
    dependency group (``pip install 'headwater[EXTRA]'``) the command's module needs, if any."""

    name: str
    target: str
    help: str
    extra: str | None = None

    @property
    def module(self) -> str:
        return self.target.partition(":")[0]


#: Every subcommand, in the order ``headwater --help`` lists them.
COMMANDS: tuple[Command, ...] = (
    Command("run", "headwater.pipelines.cli.run:configure", "run a pipeline file"),
    Command("runs", "headwater.pipelines.cli.runs:configure", "list and inspect runs"),
    Command("lineage", "headwater.pipelines.cli.lineage:configure_lineage",
            "trace an artifact up or down, or explain a push"),
    Command("artifacts", "headwater.pipelines.cli.lineage:configure_artifacts",
            "list artifacts recorded in ML Metadata"),
    Command("template", "headwater.pipelines.cli.templates:configure",
            "list project templates or copy one into a new project"),
    Command("compile", "headwater.pipelines.cli.compile:configure",
            "compile a pipeline file for Kubeflow Pipelines (KFP v2 pipeline spec YAML)"),
    Command("k8s", "headwater.pipelines.cli.k8s:configure", "Kubernetes: cluster manifests, image Dockerfiles"),
    Command("schema", "headwater.pipelines.cli.schema:configure", "create and review the curated data schema"),
    Command("ui", "headwater.pipelines.cli.ui:configure",
            "browse runs, DAGs, artifacts, lineage and models in a web dashboard", extra="ui"),
    Command("completion", "headwater.pipelines.cli.completion:configure",
            "print the shell code for tab completion (bash or zsh)"),
    Command("workers", "headwater.pipelines.cli.workers:configure",
            "status of the warm worker pool kept between runs, or stop it"),
    Command("serve", "headwater.pipelines.cli.serve:configure",
            "serve a push destination with TF Serving's REST API", extra="serve"),
)


def _version() -> str:
    from headwater.pipelines.kfp.compile import headwater_version

    return headwater_version()


def unavailable_message(command: Command, exc: ImportError) -> str:
    """What to tell the user when ``command``'s module cannot be imported."""
    missing = exc.name or command.module
    cause = f"importing {command.module} failed: {type(exc).__name__}: {exc}"
    if command.extra:
        return (f"headwater {command.name} needs the {command.extra!r} extra: "
                f"pip install 'headwater[{command.extra}]' (missing module {missing!r}; {cause})")
    return (f"headwater {command.name} is unavailable: module {missing!r} is missing ({cause}); reinstall "
            "headwater with its dependencies: pip install --force-reinstall headwater")


def _load(command: Command) -> Callable[[argparse.ArgumentParser], None]:
    module_name, _, function = command.target.partition(":")
    module = importlib.import_module(module_name)
    configure: Callable[[argparse.ArgumentParser], None] = getattr(module, function)
    return configure


def _unavailable(parser: argparse.ArgumentParser, message: str) -> None:
    """Whatever follows the command (options included), running it prints ``message``, exit status 2."""
    parser.add_argument("rest", nargs="*", help=argparse.SUPPRESS)

    def refuse(_: argparse.Namespace) -> int:
        print(f"headwater: error: {message}", file=sys.stderr)
        return 2

    parser.set_defaults(func=refuse)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="headwater",
        description="headwater: TFX-compatible ML pipelines with ML Metadata lineage and evaluation-gated pushes.",
        epilog="Run 'headwater COMMAND --help' for the options of a command.",
    )
    parser.add_argument("--version", action="version", version=f"headwater {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS:
        try:
            configure = _load(command)
        except ImportError as exc:
            message = unavailable_message(command, exc)
            hint = (f"pip install 'headwater[{command.extra}]'" if command.extra
                    else f"run 'headwater {command.name}' to see why")
            # No option prefix: every argument, '--help' too, is taken as is and the command says what it lacks.
            _unavailable(sub.add_parser(command.name, help=f"{command.help} [unavailable: {hint}]",
                                        description=message, add_help=False, prefix_chars="\0"), message)
            continue
        configure(sub.add_parser(command.name, help=command.help))
    return parser


def print_help(parser: argparse.ArgumentParser) -> int:
    """What a command group run without its subcommand does: print its help, exit status 2."""
    parser.print_help()
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    if "_ARGCOMPLETE" in os.environ:  # the shell asks for completions (see `headwater completion`)
        import argcomplete

        argcomplete.autocomplete(parser)  # prints the completions and exits
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
    except BrokenPipeError:
        # The reader went away (`headwater runs logs RUN | head`): stop quietly, as other command-line tools do.
        # Point stdout at /dev/null so the interpreter's final flush does not fail a second time.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
