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
from headwater.components.executor import ExecutionSpec, ExecutorResult, user_code

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
