"""Components: the authoring API and headwater's built-in components.

Importing this package does not import TensorFlow or Beam; each component imports what it needs inside
its executor.
"""

from headwater.components.api import (
    Channel,
    Component,
    ExecutionContext,
    Input,
    Node,
    Output,
    Param,
    ResolverContext,
    Resources,
    component,
    resolver,
)
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from headwater.components.executor import ExecutionSpec, ExecutorResult, user_code

# The executor module is also a `python -m` entrypoint; importing it lazily keeps runpy from warning that
# it was imported before being run.
_LAZY = {"ExecutionSpec": "executor", "ExecutorResult": "executor", "user_code": "executor"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'headwater.components' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"headwater.components.{module}"), name)
    globals()[name] = value
    return value

__all__ = [
    "Channel",
    "Component",
    "ExecutionContext",
    "ExecutionSpec",
    "ExecutorResult",
    "Input",
    "Node",
    "Output",
    "Param",
    "ResolverContext",
    "Resources",
    "component",
    "resolver",
    "user_code",
]
