"""No-op and sleeping components for the benchmarks (module level: worker processes import them)."""

import time

from headwater.components import Input, Output, component
from headwater.metadata import types


@component
def noop(out: Output[types.Examples]) -> None:
    """Does nothing."""


@component
def noop_after(upstream: Input[types.Examples], out: Output[types.Examples]) -> None:
    """Does nothing, after ``upstream``."""


@component
def sleep(out: Output[types.Examples], seconds: float = 1.0) -> None:
    time.sleep(seconds)


@component
def write_kb(out: Output[types.Examples], kilobytes: int = 64) -> None:
    """Writes one file of ``kilobytes`` KB."""
    with open(f"{out.path}/data.bin", "wb") as f:
        f.write(b"x" * (kilobytes * 1024))


@component
def copy_kb(upstream: Input[types.Examples], out: Output[types.Examples]) -> None:
    """Reads ``upstream``'s file and writes it again."""
    with open(f"{upstream.path}/data.bin", "rb") as src, open(f"{out.path}/data.bin", "wb") as dst:
        dst.write(src.read())


@component
def import_model(model: Output[types.Model], path: str) -> None:
    """A Model artifact copied from ``path`` (a folder holding ``Format-Serving/``)."""
    import shutil

    shutil.copytree(path, model.path, dirs_exist_ok=True)
