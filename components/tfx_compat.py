"""The TFX names a module file uses, so a TFX module runs with one changed line.

A TFX module file starts with ``from tfx import v1 as tfx`` and annotates ``run_fn(fn_args:
tfx.components.FnArgs)``; replace that import with::

    from headwater.components import tfx_compat as tfx

and the rest of the file runs unchanged (the ``tfx`` package itself is not needed). Only the names module
files use are here.
"""

from __future__ import annotations

from types import SimpleNamespace

from headwater.components._fn_args import DataAccessor, FnArgs
from headwater.components.tune import TunerFnResult

__all__ = ["DataAccessor", "FnArgs", "TunerFnResult", "components"]

#: ``tfx.components.FnArgs``, ``tfx.components.DataAccessor`` and ``tfx.components.TunerFnResult``.
components = SimpleNamespace(FnArgs=FnArgs, DataAccessor=DataAccessor, TunerFnResult=TunerFnResult)
