"""Components: the authoring API and headwater's built-in components.

Importing this package does not import TensorFlow or Beam; each component imports what it needs inside
its executor.
"""

from typing import TYPE_CHECKING, Any

from headwater.components import tfx_compat
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
from headwater.components.batch_predict import BatchPredict
from headwater.components.evaluate import ChangeThreshold, EvalConfig, Evaluate, Metric, Slice, ValueThreshold
from headwater.components.infra_validate import InfraValidate
from headwater.components.ingest import Ingest
from headwater.components.placement import Placement, Toleration
from headwater.components.push import Push
from headwater.components.resolvers import LatestArtifact, LatestBlessedModel, SpanRange
from headwater.components.train import Train
from headwater.components.transform import Transform
from headwater.components.tune import Tune, TunerFnResult, trial_tuner

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
    "BatchPredict",
    "ChangeThreshold",
    "Channel",
    "Component",
    "EvalConfig",
    "Evaluate",
    "ExecutionContext",
    "ExecutionSpec",
    "ExecutorResult",
    "InfraValidate",
    "Ingest",
    "Input",
    "LatestArtifact",
    "LatestBlessedModel",
    "Metric",
    "Node",
    "Output",
    "Param",
    "Placement",
    "Push",
    "ResolverContext",
    "Resources",
    "Slice",
    "SpanRange",
    "Toleration",
    "Train",
    "Transform",
    "Tune",
    "TunerFnResult",
    "ValueThreshold",
    "component",
    "resolver",
    "tfx_compat",
    "trial_tuner",
    "user_code",
]
