"""Pipelines: definition and validation, the launcher, runners and the CLI.

Importing this package does not import TensorFlow or Beam.
"""

from headwater.components.api import Param
from headwater.pipelines.backend import ExecutorBackend, LocalBackend, NodeOptions
from headwater.pipelines.pipeline import Pipeline
from headwater.pipelines.runner import LocalRunner, NodeResult, Runner, RunResult

__all__ = [
    "ExecutorBackend",
    "LocalBackend",
    "LocalRunner",
    "NodeOptions",
    "NodeResult",
    "Param",
    "Pipeline",
    "RunResult",
    "Runner",
]
