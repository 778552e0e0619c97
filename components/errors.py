"""Errors of the components layer: declaring components, parameter values, running nodes, data, pushes.

Part of the one exception tree documented in :mod:`headwater.metadata.errors` (root
:class:`~headwater.metadata.errors.HeadwaterError`); ``headwater.pipelines.errors`` re-exports all of it.
"""

from __future__ import annotations

from typing import Any

from headwater.metadata.errors import HeadwaterError

__all__ = [
    "ComponentDefinitionError",
    "ExecutionError",
    "ExecutorContractError",
    "InputDataError",
    "ParameterError",
    "PushRefusedError",
    "RunnerError",
    "UserCodeError",
]


class ComponentDefinitionError(HeadwaterError, TypeError):
    """A ``@component`` declaration is invalid; raised when the function is decorated (``file``/``line``
    name the function, ``parameter`` the argument when one is at fault)."""


class ParameterError(HeadwaterError, ValueError):
    """A parameter value (runtime or component parameter) is unknown or has the wrong type."""


class ExecutionError(HeadwaterError):
    """A node's execution failed."""


class UserCodeError(ExecutionError):
    """User code raised. ``user_traceback`` is the user's own traceback, as text."""

    def __init__(self, message: str, *, user_traceback: str = "", **fields: Any) -> None:
        super().__init__(message, **fields)
        self.user_traceback = user_traceback


class ExecutorContractError(ExecutionError):
    """An executor returned something that breaks the execution spec / result contract."""


class InputDataError(HeadwaterError, ValueError):
    """Input data is unusable; the message (and ``file``/``line`` where known) names it and what to do."""


class PushRefusedError(HeadwaterError):
    """A push was refused: the model is not BLESSED, or the destination cannot be written."""


class RunnerError(HeadwaterError):
    """The runner, its executor backend or the node's process environment failed (not the node's own code)."""
