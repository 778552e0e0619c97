"""Load the ``Pipeline`` defined in a Python file (``headwater run FILE``)."""

from __future__ import annotations

import traceback
from pathlib import Path

from headwater.metadata.errors import HeadwaterError
from headwater.pipelines.errors import PipelineLoadError
from headwater.pipelines.pipeline import Pipeline

__all__ = ["load_pipeline"]


def load_pipeline(path: str | Path) -> Pipeline:
    """The module-level ``pipeline`` variable of ``path``, or the only ``Pipeline`` object in it."""
    from headwater.components._loader import load_module_from_file

    file = Path(path)
    if not file.is_file():
        raise PipelineLoadError(f"pipeline file {str(file)!r} does not exist; give the path to your pipeline.py",
                               file=str(file))
    try:
        module = load_module_from_file(file)
    except HeadwaterError:
        raise
    except SyntaxError as exc:
        raise PipelineLoadError(
            f"{exc.filename}:{exc.lineno}: syntax error in pipeline file: {exc.msg}", file=str(file), line=exc.lineno,
        ) from None
    except Exception as exc:
        tb = traceback.extract_tb(exc.__traceback__)
        frames = [f for f in tb if Path(f.filename).resolve() == file.resolve()] or tb[-1:]
        where = f"{frames[-1].filename}:{frames[-1].lineno}" if frames else str(file)
        raise PipelineLoadError(
            f"{where}: loading pipeline file {str(file)!r} raised {type(exc).__name__}: {exc}", file=str(file),
            line=frames[-1].lineno if frames else None,
        ) from exc
    chosen = getattr(module, "pipeline", None)
    if isinstance(chosen, Pipeline):
        return chosen
    found = {k: v for k, v in vars(module).items() if isinstance(v, Pipeline)}
    if len(found) == 1:
        return next(iter(found.values()))
    if not found:
        raise PipelineLoadError(
            f"pipeline file {str(file)!r} defines no Pipeline at module level; assign one to a variable named "
            "'pipeline' (pipeline = Pipeline(name=..., root=..., nodes=[...]))", file=str(file),
        )
    raise PipelineLoadError(
        f"pipeline file {str(file)!r} defines {len(found)} Pipeline objects ({', '.join(sorted(found))}); name the "
        "one to run 'pipeline'", file=str(file)
    )
