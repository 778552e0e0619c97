"""A component with a user module file (``code_params``), as Transform and Train take one."""

from __future__ import annotations

from pathlib import Path

from headwater.components import Input, Output, component
from headwater.components._data import load_user_function
from headwater.metadata import types


@component(code_params=("module_file",))
def use_module(out: Output[types.Examples], module_file: str, after: Input[types.Examples] | None = None) -> None:
    """Call ``value()`` of ``module_file`` and keep what it returned."""
    fn = load_user_function(module_file, "value", what="use_module")
    (Path(out.path) / "value.txt").write_text(str(fn()))
