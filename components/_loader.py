"""Load user Python files (pipeline files, module files) as modules, the same way in every process."""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

__all__ = ["SCRIPT_PREFIX", "is_script_module", "load_module_from_file", "module_name_for"]

#: Module-name prefix of files loaded by path (``headwater run pipeline.py``, worker processes).
SCRIPT_PREFIX = "headwater_pipeline_"


def is_script_module(module: str) -> bool:
    """Whether ``module`` is a pipeline file rather than an importable module: run as a script
    (``python pipeline.py`` makes it ``__main__``) or loaded by path (``headwater run pipeline.py``).

    Both are the same file, so components defined in it have one identity either way: their name alone
    (execution type and cache key), and workers load them from the file.
    """
    return module == "__main__" or module.startswith(SCRIPT_PREFIX)


def module_name_for(path: str | Path, prefix: str = SCRIPT_PREFIX) -> str:
    """A stable module name for a file: the same in the orchestrator and in every worker process."""
    resolved = Path(path).resolve()
    stem = re.sub(r"\W", "_", resolved.stem)
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:8]
    return f"{prefix}{stem}_{digest}"


def load_module_from_file(path: str | Path, name: str | None = None) -> ModuleType:
    """Import ``path`` as module ``name`` (default: :func:`module_name_for`), reusing a loaded one."""
    resolved = Path(path).resolve()
    name = name or module_name_for(resolved)
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, resolved)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load Python file {resolved}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    # Let sibling modules (models/, constants) import each other, as they would from the project root.
    parent = str(resolved.parent)
    if parent not in sys.path:
        sys.path.insert(0, parent)
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module
