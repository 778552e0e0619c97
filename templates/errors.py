"""The templates' error; part of the exception tree documented in :mod:`headwater.metadata.errors`."""

from __future__ import annotations

from headwater.metadata.errors import HeadwaterError

__all__ = ["TemplateError"]


class TemplateError(HeadwaterError, ValueError):
    """A template cannot be copied: unknown name, invalid pipeline name, existing files, unsafe paths."""
