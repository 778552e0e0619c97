"""Pipelines: definition and validation, the launcher, runners and the CLI.

Importing this package does not import TensorFlow or Beam.
"""

from headwater.components.api import Param
from headwater.pipelines.backend import ExecutorBackend, LocalBackend, NodeOptions
from headwater.pipelines.kfp.compile import KfpOptions, compile_kfp, compile_kfp_package
from headwater.pipelines.kubernetes import KubernetesBackend, KubernetesConfig, KubernetesRunner
from headwater.pipelines.pipeline import Pipeline
from headwater.pipelines.runner import LocalRunner, NodeResult, Runner, RunResult

__all__ = [
    "ExecutorBackend",
    "KfpOptions",
    "KubernetesBackend",
    "KubernetesConfig",
    "KubernetesRunner",
    "LocalBackend",
    "LocalRunner",
    "NodeOptions",
    "NodeResult",
    "Param",
    "Pipeline",
    "RunResult",
    "Runner",
    "compile_kfp",
    "compile_kfp_package",
]
