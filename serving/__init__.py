"""Model serving: TF Serving's REST API for a push destination (``headwater serve``), and the model loading
that InfraValidate's sandboxed process shares with it.

Importing this package imports neither TensorFlow nor Starlette; they are imported when a model is loaded
or an application is made.
"""

from typing import Any

__all__ = ["LoadedModel", "ModelLoadError", "ModelRepository", "RequestError", "create_app", "run"]

_LAZY = {"LoadedModel": "_model", "ModelLoadError": "_model", "ModelRepository": "_repository",
         "RequestError": "_json", "create_app": "app", "run": "app"}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'headwater.serving' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"headwater.serving.{module}"), name)
    globals()[name] = value
    return value
