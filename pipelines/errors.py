"""The whole headwater exception tree, importable from one place, and the pipelines layer's own errors.

::

    from headwater.pipelines.errors import HeadwaterError, ParameterError

    try:
        LocalRunner().run(pipeline, {"train_steps": "many"})
    except ParameterError as exc:
        print(exc.parameter, exc)      # structured fields next to the message
    except HeadwaterError as exc:      # anything else headwater raised on purpose
        print(exc.fields(), exc)

The tree, and the layer each class lives in, is drawn in :mod:`headwater.metadata.errors`.
"""

from __future__ import annotations

from headwater.components.errors import (
    ComponentDefinitionError,
    ExecutionError,
    ExecutorContractError,
    InputDataError,
    ParameterError,
    PushRefusedError,
    RunnerError,
    UserCodeError,
)
from headwater.metadata.errors import (
    ArtifactNotFoundError,
    ArtifactPropertyError,
    HeadwaterError,
    MetadataError,
    MetadataWriteError,
    StorageError,
)
from headwater.templates.errors import TemplateError

__all__ = [
    "ArtifactNotFoundError",
    "ArtifactPropertyError",
    "ComponentDefinitionError",
    "ExecutionError",
    "ExecutorContractError",
    "HeadwaterError",
    "InputDataError",
    "MetadataError",
    "MetadataWriteError",
    "ParameterError",
    "PipelineDefinitionError",
    "PipelineLoadError",
    "PushRefusedError",
    "RunnerError",
    "StorageError",
    "TemplateError",
    "UserCodeError",
]


class PipelineDefinitionError(HeadwaterError, ValueError):
    """A pipeline failed validation. ``problems`` lists every problem found, not just the first."""

    def __init__(self, pipeline: str, problems: list[str]) -> None:
        lines = "\n".join(f"  - {p}" for p in problems)
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(f"pipeline {pipeline!r} has {len(problems)} {noun}:\n{lines}")
        self.pipeline = pipeline
        self.problems = list(problems)


class PipelineLoadError(HeadwaterError):
    """A pipeline file could not be loaded or holds no (or several) ``Pipeline`` objects (``file`` names it)."""
