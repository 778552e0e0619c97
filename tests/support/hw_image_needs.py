"""A component that imports a heavy library inside its function (as the built-ins import TensorFlow) and
declares it in ``warm_imports``: the executor checks the image has it before running the component."""

from __future__ import annotations

from pathlib import Path

from headwater.components import Output, component
from headwater.metadata import types


@component(warm_imports=("hw_gpu_stack",))
def needs_stack(out: Output[types.Examples]) -> None:
    import hw_gpu_stack

    (Path(out.path) / "x.txt").write_text(hw_gpu_stack.device())
