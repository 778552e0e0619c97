"""Components whose module needs a library only one test image has (``gpu_image/hw_gpu_stack.py``)."""

from __future__ import annotations

from pathlib import Path

import hw_gpu_stack  # only the "GPU image" has it on its path
from headwater.components import Output, component
from headwater.metadata import types


@component(image="registry.example/hw-gpu:0.1")
def fit(model: Output[types.Model]) -> None:
    (Path(model.path) / "model.txt").write_text(hw_gpu_stack.device())
