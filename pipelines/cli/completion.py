"""``headwater completion bash|zsh``: the shell snippet that turns on tab completion (argcomplete)."""

from __future__ import annotations

import argparse

__all__ = ["configure"]


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Print the shell code that makes <TAB> complete headwater's commands and options. Add it to your "
        "shell's startup file, e.g.  eval \"$(headwater completion bash)\"  in ~/.bashrc, or  "
        "eval \"$(headwater completion zsh)\"  in ~/.zshrc.")
    parser.add_argument("shell", choices=("bash", "zsh"), metavar="SHELL", help="bash or zsh")
    parser.set_defaults(func=cmd_completion)


def cmd_completion(args: argparse.Namespace) -> int:
    import argcomplete

    print(argcomplete.shellcode(["headwater"], shell=args.shell))
    return 0
