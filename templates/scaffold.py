"""List the project templates shipped with headwater and copy one into a new project folder.

A template is a folder of this package (``headwater/templates/<name>/``) holding a ``pipeline.py``
whose module docstring starts with ``<name> — <one-line description>`` and which assigns
``PIPELINE_NAME = "<name>"`` at module level. :func:`copy_template` writes that folder into ``dest``:

* it never overwrites an existing file unless ``force=True``, and reports every conflict at once;
* it writes nothing outside ``dest``: template and pipeline names are checked against strict patterns
  (no ``..``, no ``/``, no absolute names), and a symbolic link inside ``dest`` that leads outside it is
  refused rather than written through;
* it leaves behind what a run of the template produced (``runs/``, ``serving/``, ``.headwater/``,
  ``__pycache__`` …) and renames ``gitignore`` and ``dockerignore`` to their dotfile names;
* it sets the pipeline name (the ``PIPELINE_NAME = ...`` line of ``pipeline.py``).
"""

from __future__ import annotations

import ast
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path, PurePosixPath

from headwater.templates.errors import TemplateError

__all__ = [
    "PIPELINE_NAME_RE",
    "CopyResult",
    "TemplateError",
    "TemplateInfo",
    "copy_template",
    "list_templates",
]

#: The rule for pipeline names (the same as :class:`~headwater.pipelines.Pipeline`'s): 1-63 letters,
#: digits, '_' or '-', starting with a letter.
PIPELINE_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")
_TEMPLATE_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_NAME_LINE_RE = re.compile(r'^PIPELINE_NAME = "([^"\n]*)"', re.MULTILINE)

#: Folders a run of a template (or its tests, or an editor) leaves behind; never copied.
SKIP_DIRS = frozenset({"runs", "serving", ".headwater", "__pycache__", ".pytest_cache", ".mypy_cache",
                       ".ruff_cache", ".ipynb_checkpoints"})
SKIP_SUFFIXES = (".pyc", ".pyo")
SKIP_FILES = frozenset({".DS_Store"})
#: Files renamed on copy (dotfiles are awkward as package data).
RENAMES = {"gitignore": ".gitignore", "dockerignore": ".dockerignore"}


@dataclass(frozen=True)
class TemplateInfo:
    """One template: its name, one-line description and default pipeline name."""

    name: str
    description: str
    pipeline_name: str


@dataclass(frozen=True)
class CopyResult:
    """What :func:`copy_template` wrote: ``files`` relative to ``dest`` (POSIX style), sorted."""

    template: str
    dest: Path
    pipeline_name: str
    files: tuple[str, ...]
    overwritten: tuple[str, ...] = ()


def _root() -> Traversable:
    return resources.files("headwater.templates")


def _is_template(entry: Traversable) -> bool:
    return entry.is_dir() and bool(_TEMPLATE_NAME_RE.match(entry.name)) and entry.joinpath("pipeline.py").is_file()


def _info(entry: Traversable) -> TemplateInfo:
    source = entry.joinpath("pipeline.py").read_text(encoding="utf-8")
    doc = ast.get_docstring(ast.parse(source)) or ""
    first = doc.strip().splitlines()[0] if doc.strip() else ""
    head, sep, rest = first.partition(" — ")
    description = rest.strip() if sep and head.strip() == entry.name else first.strip()
    match = _NAME_LINE_RE.search(source)
    return TemplateInfo(entry.name, description.rstrip("."), match.group(1) if match else entry.name)


def list_templates() -> list[TemplateInfo]:
    """Every template shipped with headwater, sorted by name."""
    return [_info(e) for e in sorted(_root().iterdir(), key=lambda e: e.name) if _is_template(e)]


def _template(name: str) -> Traversable:
    available = [t.name for t in list_templates()]
    if not isinstance(name, str) or not _TEMPLATE_NAME_RE.match(name) or name not in available:
        raise TemplateError(
            f"no template named {name!r}; choose one of: {', '.join(available)} "
            "(see 'headwater template list')"
        )
    return _root().joinpath(name)


def check_pipeline_name(name: str) -> str:
    """``name`` if it is a valid pipeline name, else a :class:`TemplateError` saying the rule."""
    if not isinstance(name, str) or not PIPELINE_NAME_RE.match(name):
        raise TemplateError(
            f"pipeline name {name!r} is invalid: use 1-63 letters, digits, '_' or '-', starting with a letter "
            "(e.g. --pipeline-name my_penguins)"
        )
    return name


def _walk(entry: Traversable, prefix: PurePosixPath) -> Iterator[tuple[PurePosixPath, Traversable]]:
    for child in sorted(entry.iterdir(), key=lambda e: e.name):
        name = child.name
        if name in ("", ".", "..") or "/" in name or "\\" in name:
            raise TemplateError(f"template file name {name!r} under {prefix or '.'} is not a plain name")
        if isinstance(child, Path) and child.is_symlink():
            continue  # a template never ships links; do not follow one somebody left in the source tree
        if child.is_dir():
            if name not in SKIP_DIRS:
                yield from _walk(child, prefix / name)
        elif name not in SKIP_FILES and not name.endswith(SKIP_SUFFIXES):
            yield prefix / RENAMES.get(name, name), child


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def _check_target(dest: Path, rel: PurePosixPath) -> Path:
    """The path to write ``rel`` to; refuses any existing link along the way that leads outside ``dest``."""
    if rel.is_absolute() or any(part in ("", ".", "..") for part in rel.parts):
        raise TemplateError(f"template file {str(rel)!r} is not a relative path inside the template")
    current = dest
    for part in rel.parts:
        current = current / part
        if current.is_symlink():
            target = current.resolve()
            if not _inside(target, dest):
                raise TemplateError(
                    f"{current} is a symbolic link to {target}, outside {dest}; copying would write there. "
                    "Remove the link or choose another destination"
                )
        if current != dest / rel and current.exists() and not current.is_dir():
            raise TemplateError(
                f"{current} is a file, but the template needs a folder there (for {rel}); move it away "
                "or choose another destination"
            )
    return dest / rel


def _substitute(rel: PurePosixPath, data: bytes, default: str, pipeline_name: str) -> bytes:
    if rel != PurePosixPath("pipeline.py") or pipeline_name == default:
        return data
    text = data.decode("utf-8")
    new, count = _NAME_LINE_RE.subn(f'PIPELINE_NAME = "{pipeline_name}"', text, count=1)
    if count != 1:  # pragma: no cover - every shipped template has the line (tested)
        raise TemplateError("template pipeline.py has no 'PIPELINE_NAME = \"...\"' line to set the name in")
    return new.encode("utf-8")


def _copy_atomically(root: Path, files: list[tuple[PurePosixPath, Path, bytes]], *, replace: bool) -> None:
    """Write every file into a hidden staging folder first (beside ``root`` when it does not exist yet,
    inside it otherwise: the same file system either way), then move the staged tree into place with
    renames. A full or read-only folder fails while staging, and the staging folder is removed: nothing
    partial is left."""
    new_root = not root.exists()
    try:
        root.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{root.name}.template-", dir=root.parent if new_root else root))
    except OSError as exc:
        raise _write_refused(root, exc) from None
    try:
        for rel, _, data in files:
            _write(stage.joinpath(*rel.parts), data, replace=False)
        if new_root:
            os.rename(stage, root)
            return
        for rel, target, _ in files:
            _check_target(root, rel)  # re-checked: nothing may have turned into an outside link meanwhile
            target.parent.mkdir(parents=True, exist_ok=True)
            if replace and target.is_symlink():
                target.unlink()  # replace the link itself (it points inside dest; checked), never write through it
            elif not replace and os.path.lexists(target):
                raise TemplateError(f"{target} appeared while the template was being copied; nothing more was "
                                    "written. Copy again (into a new folder, or with --force)")
            os.replace(stage.joinpath(*rel.parts), target)
    except OSError as exc:
        raise _write_refused(root, exc) from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _write_refused(root: Path, exc: OSError) -> TemplateError:
    where = f" ({exc.filename})" if exc.filename else ""
    return TemplateError(
        f"cannot write the template into {root}: {exc.strerror or exc}{where}; nothing was written. Copy into a "
        "folder you may write that has free space (check its owner, its permissions, and that the volume is "
        "mounted read-write)"
    )


def _write(path: Path, data: bytes, *, replace: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if replace and path.is_symlink():
        path.unlink()  # replace the link itself (it points inside dest; checked), never write through it
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    if not replace:
        flags |= os.O_EXCL
    fd = os.open(path, flags, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def copy_template(name: str, dest: str | os.PathLike[str], *, pipeline_name: str | None = None,
                  force: bool = False) -> CopyResult:
    """Write template ``name`` into folder ``dest`` (created if needed) as a ready project.

    ``pipeline_name`` (default: the template's) becomes ``PIPELINE_NAME`` in ``pipeline.py``. Existing
    files are never overwritten unless ``force``; then every conflict is listed in one
    :class:`TemplateError` and nothing is written.
    """
    source = _template(name)
    info = _info(source)
    chosen = check_pipeline_name(pipeline_name if pipeline_name is not None else info.pipeline_name)
    raw_dest = Path(dest).expanduser()
    if raw_dest.exists() and not raw_dest.is_dir():
        raise TemplateError(f"destination {raw_dest} exists and is not a folder; give a new or existing folder")
    root = raw_dest.resolve()

    plan: list[tuple[PurePosixPath, Path, Traversable]] = []
    conflicts: list[str] = []
    for rel, entry in _walk(source, PurePosixPath()):
        target = _check_target(root, rel)
        if target.exists() or target.is_symlink():
            if target.is_dir() and not target.is_symlink():
                raise TemplateError(f"{target} is a folder, but the template writes a file there ({rel})")
            conflicts.append(str(rel))
        plan.append((rel, target, entry))
    conflicts.sort()
    if conflicts and not force:
        shown = ", ".join(conflicts[:8]) + (f" and {len(conflicts) - 8} more" if len(conflicts) > 8 else "")
        raise TemplateError(
            f"{len(conflicts)} file(s) of template {name!r} already exist in {root}: {shown}; nothing was "
            "written. Copy into a new folder, or pass --force (force=True) to overwrite them"
        )
    files = [(rel, target, _substitute(rel, entry.read_bytes(), info.pipeline_name, chosen))
             for rel, target, entry in plan]
    _copy_atomically(root, files, replace=force)
    return CopyResult(name, root, chosen, tuple(sorted(str(r) for r, _, _ in plan)), tuple(conflicts))
