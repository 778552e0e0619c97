"""The error boundary around user code that built-in components call (kept apart from the executor module,
which is also a ``python -m`` entrypoint and must not be imported before runpy runs it)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["user_code"]


class _UserCodeFailure(Exception):
    """Marks an exception raised by user code (the error boundary reports it as the user's)."""

    def __init__(self, where: str, original: BaseException) -> None:
        super().__init__(where)
        self.where = where
        self.original = original


@contextlib.contextmanager
def user_code(what: str) -> Iterator[None]:
    """Error boundary for user code that a built-in component calls (``run_fn``, ``preprocessing_fn``)::

        with user_code(f"run_fn in {module_file}"):
            run_fn(fn_args)

    An exception inside is reported as the user's, with their traceback, naming ``what``.
    """
    try:
        yield
    except _UserCodeFailure:
        raise
    except Exception as exc:
        raise _UserCodeFailure(what, exc) from exc
