"""Option parsing shared by the commands (and by the KFP task entry point): ``KEY=VALUE`` options,
``VAR=SECRET:KEY`` references, the ``--env``/``--secret-env`` pair, and the metadata-store options of the
read-only commands.

Every malformed option value gets the same message: ``OPTION expects FORM, got 'VALUE'``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

__all__ = ["POINTER", "add_env_options", "add_store_options", "count", "key_values", "metadata_uri", "open_store_for",
           "secret_refs"]

#: Where ``headwater run`` notes the store it used, so that read-only commands run here find it.
POINTER = Path(".headwater") / "metadata"


def _bad(option: str, form: str, item: str) -> Exception:
    from headwater.components.errors import ParameterError

    return ParameterError(f"{option} expects {form}, got {item!r}")


def count(flag: str, meaning: str, minimum: int = 0) -> Any:
    """An argparse type for ``flag``: a whole number, ``minimum`` or more."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} takes {meaning}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{flag} must be {minimum} or more, got {value}")
        return value

    return parse


def key_values(items: Iterable[str], option: str) -> dict[str, str]:
    """``KEY=VALUE`` option values (``option`` names the option in errors) as a dict. The value may hold
    ``=``; surrounding spaces of the key are dropped; a later KEY wins. Raises ParameterError."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise _bad(option, "KEY=VALUE", item)
        out[key] = value
    return out


def secret_refs(items: Iterable[str], option: str = "--secret-env") -> dict[str, tuple[str, str]]:
    """``VAR=SECRET:KEY`` option values as ``{VAR: (SECRET, KEY)}``. Raises ParameterError."""
    out = {}
    for item in items:
        var, sep, ref = item.partition("=")
        secret, colon, key = ref.partition(":")
        var = var.strip()
        if not sep or not var or not colon or not secret or not key:
            raise _bad(option, "VAR=SECRET:KEY", item)
        out[var] = (secret, key)
    return out


def add_env_options(group: Any, whose: str) -> None:
    """``--env KEY=VALUE`` and ``--secret-env VAR=SECRET:KEY`` (repeatable); ``whose`` ends the help text,
    e.g. "executor pods" or "every task"."""
    group.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                       help=f"environment variable of {whose}, e.g. AWS_ENDPOINT_URL=http://minio:9000 of the "
                            "object store holding the root (repeatable)")
    group.add_argument("--secret-env", action="append", default=[], metavar="VAR=SECRET:KEY",
                       help=f"environment variable VAR of {whose} from key KEY of Kubernetes Secret SECRET, "
                            "e.g. the object store's credentials (repeatable)")


def add_store_options(p: argparse.ArgumentParser) -> None:
    """``--metadata`` and ``--root``, as every read-only command takes them (see :func:`open_store_for`)."""
    p.add_argument("--metadata", metavar="URI", help="metadata connection string or SQLite file (default: "
                   "$HEADWATER_METADATA, or the store of the last 'headwater run' in this directory)")
    p.add_argument("--root", metavar="DIR", help="pipeline root whose metadata.sqlite to read")


def metadata_uri(args: argparse.Namespace) -> str | None:
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
    if POINTER.is_file():
        return POINTER.read_text().strip()
    raise SystemExit(
        "headwater: which metadata store? Pass --metadata URI (e.g. sqlite:///runs/demo/metadata.sqlite), "
        "--root PIPELINE_ROOT, or set HEADWATER_METADATA"
    )


def open_store_for(args: argparse.Namespace) -> Any:
    """The metadata store a read-only command should use (see :func:`metadata_uri`), opened read-only."""
    from headwater.metadata.store import connect

    return connect(metadata_uri(args), readonly=True)


class Terminated:
    """Whether a SIGTERM arrived inside :func:`sigterm_as_interrupt`."""

    received = False


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[Terminated]:
    """Within the block, SIGTERM raises KeyboardInterrupt in the main thread, as Ctrl-C does, so a command
    stops the same orderly way (a run cancels what is in flight: executions CANCELED, no LIVE output) and can
    say how it came out; the previous handler is restored after."""
    state = Terminated()

    def interrupt(signum: int, frame: Any) -> None:
        state.received = True
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield state
    finally:
        signal.signal(signal.SIGTERM, previous)

