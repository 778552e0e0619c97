"""The headwater exception tree: its root and the metadata layer's errors.

Every error headwater raises on purpose derives from :class:`HeadwaterError`. Each class lives in the
lowest layer that raises it (``metadata`` ← ``components`` ← ``pipelines``; ``templates`` beside), and
``headwater.pipelines.errors`` re-exports the whole tree: import from there to catch any of them::

    HeadwaterError                      root: catch this to catch everything headwater raises
    │                                   (headwater.metadata.errors)
    ├── MetadataError                   the ML Metadata store (connection, schema, queries)
    │   ├── ArtifactNotFoundError       an artifact id / URI / serving path that is not in the store
    │   └── MetadataWriteError          a write to the store failed (disk full, lost connection): the run ends
    ├── ArtifactPropertyError           an unknown or ill-typed artifact property
    ├── StorageError                    artifact files unreadable/unwritable (local or s3://, gs://)
    │                                   (headwater.components.errors)
    ├── ComponentDefinitionError        a bad ``@component`` declaration (raised at definition time)
    ├── ParameterError                  a parameter value that is unknown or ill-typed
    ├── ExecutionError                  a node failed while running
    │   ├── UserCodeError               the failure is in user code (component body, module file)
    │   └── ExecutorContractError       an executor broke the execution spec / result contract
    ├── InputDataError                  bad input data (file and line named), raised by executors
    ├── PushRefusedError                a push without a BLESSED blessing, or to an unusable destination
    ├── RunnerError                     the runner or its backend (not the node's own code)
    │                                   (headwater.pipelines.errors)
    ├── PipelineDefinitionError         a bad pipeline: every problem found, listed at once
    ├── PipelineLoadError               ``headwater run FILE`` could not load a pipeline from FILE
    │                                   (headwater.templates.errors)
    └── TemplateError                   ``headwater template copy``: unknown template, bad name, conflicts

Errors carry structured fields where they apply — ``node_id``, ``input_name``, ``parameter``, ``file``,
``line``, ``run_id``, ``artifact_uri`` (``None`` otherwise; :meth:`HeadwaterError.fields` gives the set ones)
— and every message says what is wrong, which rule it breaks, and what to do about it.

The classes that moved to ``components``/``pipelines``/``templates`` stay importable from this module under
their old names (resolved on first use, so this layer imports nothing above it at import time).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = [
    "ArtifactNotFoundError",
    "ArtifactPropertyError",
    "HeadwaterError",
    "MetadataError",
    "MetadataWriteError",
    "StorageError",
    "close_match",
    "did_you_mean",
]

#: Structured fields every error may carry.
FIELDS = ("node_id", "input_name", "parameter", "file", "line", "run_id", "artifact_uri")


class HeadwaterError(Exception):
    """Root of every error headwater raises on purpose."""

    def __init__(
        self,
        message: str,
        *,
        node_id: str | None = None,
        artifact_uri: str | None = None,
        run_id: str | None = None,
        input_name: str | None = None,
        parameter: str | None = None,
        file: str | None = None,
        line: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.node_id = node_id
        self.artifact_uri = artifact_uri
        self.run_id = run_id
        self.input_name = input_name
        self.parameter = parameter
        self.file = file
        self.line = line

    def fields(self) -> dict[str, Any]:
        """The structured fields that are set, e.g. ``{"node_id": "Train", "parameter": "train_steps"}``."""
        return {name: getattr(self, name) for name in FIELDS if getattr(self, name, None) is not None}


class MetadataError(HeadwaterError):
    """The ML Metadata store could not be opened, written or queried."""


class ArtifactNotFoundError(MetadataError):
    """An artifact reference (id, URI, serving path) matches nothing in the store."""


class MetadataWriteError(MetadataError):
    """A write to the ML Metadata store failed; nothing of it was kept, and the run ends."""


class ArtifactPropertyError(HeadwaterError, AttributeError):
    """An artifact property that its type does not declare, or a value of the wrong type."""


class StorageError(HeadwaterError, OSError):
    """Artifact or data files could not be read or written (local folder or object store)."""


# Old import paths: ``from headwater.metadata.errors import ParameterError`` keeps working.
_MOVED = {
    "ComponentDefinitionError": "headwater.components.errors",
    "ParameterError": "headwater.components.errors",
    "ExecutionError": "headwater.components.errors",
    "UserCodeError": "headwater.components.errors",
    "ExecutorContractError": "headwater.components.errors",
    "InputDataError": "headwater.components.errors",
    "PushRefusedError": "headwater.components.errors",
    "RunnerError": "headwater.components.errors",
    "PipelineDefinitionError": "headwater.pipelines.errors",
    "PipelineLoadError": "headwater.pipelines.errors",
    "TemplateError": "headwater.templates.errors",
}


def close_match(name: str, choices: Iterable[str]) -> str | None:
    """The one of ``choices`` closest to ``name`` (difflib), if any is close enough to suggest."""
    import difflib

    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` when ``name`` is close to one of ``choices`` (difflib), else ``""``."""
    close = close_match(name, choices)
    return f"; did you mean {close!r}?" if close else ""


def __getattr__(name: str) -> Any:
    home = _MOVED.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value
