"""The headwater exception tree, documented in one place.

::

    HeadwaterError                      root: catch this to catch everything headwater raises
    ├── MetadataError                   the ML Metadata store (connection, schema, queries)
    │   ├── ArtifactNotFoundError       an artifact id / URI / serving path that is not in the store
    │   └── MetadataWriteError          a write to the store failed (disk full, lost connection): the run ends
    ├── ArtifactPropertyError           an unknown or ill-typed artifact property
    ├── ComponentDefinitionError        a bad ``@component`` declaration (raised at definition time)
    ├── PipelineDefinitionError         a bad pipeline: every problem found, listed at once
    ├── PipelineLoadError               ``headwater run FILE`` could not load a pipeline from FILE
    ├── ParameterError                  a runtime parameter override that is unknown or ill-typed
    ├── ExecutionError                  a node failed while running
    │   ├── UserCodeError               the failure is in user code (component body, module file)
    │   └── ExecutorContractError       an executor broke the execution spec / result contract
    ├── InputDataError                  bad input data (file and line named), raised by executors
    ├── PushRefusedError                a push without a BLESSED blessing, or to an unusable destination
    ├── RunnerError                     the runner itself (backend failures, interrupted runs)
    ├── StorageError                    artifact files unreadable/unwritable (local or s3://, gs://)
    └── TemplateError                   ``headwater template copy``: unknown template, bad name, conflicts

Errors carry structured fields (``node_id``, ``artifact_uri``, ``run_id``) where they apply, and every
message says what is wrong, which rule it breaks, and what to do about it.
"""

from __future__ import annotations

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


class HeadwaterError(Exception):
    """Root of every error headwater raises on purpose."""

    def __init__(
        self,
        message: str,
        *,
        node_id: str | None = None,
        artifact_uri: str | None = None,
        run_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.node_id = node_id
        self.artifact_uri = artifact_uri
        self.run_id = run_id


class MetadataError(HeadwaterError):
    """The ML Metadata store could not be opened, written or queried."""


class ArtifactNotFoundError(MetadataError):
    """An artifact reference (id, URI, serving path) matches nothing in the store."""


class MetadataWriteError(MetadataError):
    """A write to the ML Metadata store failed; nothing of it was kept, and the run ends."""


class ArtifactPropertyError(HeadwaterError, AttributeError):
    """An artifact property that its type does not declare, or a value of the wrong type."""


class ComponentDefinitionError(HeadwaterError, TypeError):
    """A ``@component`` declaration is invalid; raised when the function is decorated."""


class PipelineDefinitionError(HeadwaterError, ValueError):
    """A pipeline failed validation. ``problems`` lists every problem found, not just the first."""

    def __init__(self, pipeline: str, problems: list[str]) -> None:
        lines = "\n".join(f"  - {p}" for p in problems)
        noun = "problem" if len(problems) == 1 else "problems"
        super().__init__(f"pipeline {pipeline!r} has {len(problems)} {noun}:\n{lines}")
        self.pipeline = pipeline
        self.problems = list(problems)


class PipelineLoadError(HeadwaterError):
    """A pipeline file could not be loaded or holds no (or several) ``Pipeline`` objects."""


class ParameterError(HeadwaterError, ValueError):
    """A runtime parameter value is unknown to the pipeline or has the wrong type."""


class ExecutionError(HeadwaterError):
    """A node's execution failed."""


class UserCodeError(ExecutionError):
    """User code raised. ``user_traceback`` is the user's own traceback, as text."""

    def __init__(self, message: str, *, user_traceback: str = "", **fields: str | None) -> None:
        super().__init__(message, **fields)
        self.user_traceback = user_traceback


class ExecutorContractError(ExecutionError):
    """An executor returned something that breaks the execution spec / result contract."""


class InputDataError(HeadwaterError, ValueError):
    """Input data is unusable; the message names the file (and line) and what to do."""


class PushRefusedError(HeadwaterError):
    """A push was refused: the model is not BLESSED, or the destination cannot be written."""


class RunnerError(HeadwaterError):
    """The runner or its executor backend failed (not the node's own code)."""


class StorageError(HeadwaterError, OSError):
    """Artifact or data files could not be read or written (local folder or object store)."""


class TemplateError(HeadwaterError, ValueError):
    """A template cannot be copied: unknown name, invalid pipeline name, existing files, unsafe paths."""
