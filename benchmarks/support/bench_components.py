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
