"""Code fingerprints: what a user module really runs — its file and the local modules it imports.

A module file's imports are read with :mod:`ast` (not executed) and resolved inside its project: the
module's own folder (where ``import features`` finds ``models/features.py``, as the loader puts that folder
on ``sys.path``) and, for a module inside a package, the folder above its top package (``from models
import features``, relative imports). What resolves there is followed transitively; what does not is an
installed library and is left out. Where the imports cannot be known without running the code —
``importlib.import_module`` or ``__import__`` with a computed name, ``exec``/``eval``/``compile``,
loading files by path, ``runpy``, or a file that does not parse — the fingerprint covers every Python file
of the module's folder instead (as TFX packages the folder) and says why in ``fallback``.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CodeFingerprint",
    "code_fingerprint",
    "code_fingerprint_parts",
    "fingerprint_code_ref",
    "fingerprint_file",
    "fingerprint_package",
]

_DYNAMIC_IMPORTS = {"import_module", "__import__"}
#: Built-ins that run code given as data (called by their bare name: ``model.compile()`` is Keras).
_DYNAMIC_BUILTINS = {"exec", "eval", "compile"}
#: Loading modules by path or name (``importlib.util.spec_from_file_location``, ``runpy.run_path``, ...).
_DYNAMIC_LOADERS = {"spec_from_file_location", "load_source", "run_path", "run_module", "SourceFileLoader"}


@dataclass(frozen=True)
class CodeFingerprint:
    """sha256 over the files a module runs; ``files`` relative to its folder; ``fallback`` says why the
    whole folder was taken ("" when the imports were resolved)."""

    digest: str
    files: tuple[str, ...]
    fallback: str = ""


def fingerprint_file(path: str | Path) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return ""


def _folder_files(folder: Path) -> list[Path]:
    """The Python files importable from ``folder``: its modules and, recursively, its packages."""
    files = sorted(folder.glob("*.py"))
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and (p / "__init__.py").is_file()):
        files += _folder_files(sub)
    return files


def _package_parts(path: Path) -> tuple[Path, list[str]]:
    """The folder above the top package holding ``path`` and the package names down to it."""
    folder, names = path.parent, list[str]()
    while (folder / "__init__.py").is_file():
        names.insert(0, folder.name)
        folder = folder.parent
    return folder, names


def _find(roots: list[Path], dotted: str) -> list[Path]:
    """The files importing ``dotted`` runs (package ``__init__``s on the way), in the first root that has it."""
    parts = dotted.split(".")
    for root in roots:
        found: list[Path] = []
        folder = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            package = folder / part / "__init__.py"
            module = folder / f"{part}.py"
            if package.is_file():
                found.append(package)
                folder = folder / part
            elif last and module.is_file():
                found.append(module)
            elif (folder / part).is_dir() and not last:  # a namespace package
                folder = folder / part
            else:
                found = []
                break
        if found:
            return found
    return []


def _call_name(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


class _Imports(ast.NodeVisitor):
    def __init__(self, path: Path, package: list[str]) -> None:
        self.path = path
        self.package = package
        self.names: list[str] = []
        self.dynamic: list[str] = []

    def visit_Import(self, node: ast.Import) -> None:
        self.names += [alias.name for alias in node.names]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.package[: len(self.package) - (node.level - 1)] if node.level - 1 <= len(self.package) else []
            prefix = ".".join([*base, node.module] if node.module else base)
        else:
            prefix = node.module or ""
        if prefix:
            self.names.append(prefix)
        for alias in node.names:  # ``from pkg import mod`` imports the submodule pkg/mod.py
            if alias.name != "*":
                self.names.append(f"{prefix}.{alias.name}" if prefix else alias.name)

    def visit_Call(self, node: ast.Call) -> None:
        name = _call_name(node)
        where = f"{self.path.name}:{node.lineno}"
        if name in _DYNAMIC_IMPORTS:
            arg = node.args[0] if node.args else None
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                self.names.append(arg.value)
            else:
                self.dynamic.append(f"{where} calls {name} with a computed module name")
        elif (name in _DYNAMIC_BUILTINS and isinstance(node.func, ast.Name)) or name in _DYNAMIC_LOADERS:
            self.dynamic.append(f"{where} calls {name}, which runs code the imports do not show")
        self.generic_visit(node)


def code_fingerprint(path: str | Path) -> CodeFingerprint:
    """The fingerprint of module file ``path``: the file and its local imports, transitively (see above)."""
    start = Path(path).resolve()
    folder = start.parent
    top, _ = _package_parts(start)
    roots = list(dict.fromkeys([folder, top]))
    seen: dict[Path, None] = {}
    todo = [start]
    reasons: list[str] = []
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen[current] = None
        try:
            tree = ast.parse(current.read_bytes(), filename=str(current))
        except (SyntaxError, ValueError, OSError) as exc:
            reasons.append(f"{current.name} cannot be parsed ({type(exc).__name__})")
            continue
        current_top, package = _package_parts(current)
        visitor = _Imports(current, package)
        visitor.visit(tree)
        reasons += visitor.dynamic
        current_roots = list(dict.fromkeys([current.parent, *roots, current_top]))
        for name in visitor.names:
            todo += [f.resolve() for f in _find(current_roots, name) if f.resolve() not in seen]
    files = sorted(seen) if not reasons else _folder_files(folder)
    return _over(files, folder, "; ".join(reasons))


def _over(files: list[Path], folder: Path, fallback: str = "") -> CodeFingerprint:
    digest = hashlib.sha256()
    names = []
    for file in files:
        rel = os.path.relpath(file, folder)
        names.append(rel)
        try:
            digest.update(rel.encode() + b"\0" + file.read_bytes() + b"\0")
        except OSError:
            continue
    return CodeFingerprint(digest.hexdigest(), tuple(names), fallback)


def _origin(ref: str) -> str | None:
    if os.path.isfile(ref):
        return ref
    module = ref
    while module:
        try:
            found = importlib.util.find_spec(module)
        except (ImportError, ValueError):
            found = None
        if found is not None and found.origin and os.path.isfile(found.origin):
            return found.origin
        module = module.rpartition(".")[0]
    return None


def code_ref_fingerprint(ref: Any) -> CodeFingerprint | None:
    """:func:`code_fingerprint` of a module file path or dotted module name (``None`` when not found)."""
    if not ref or not isinstance(ref, str):
        return None
    origin = _origin(ref)
    return code_fingerprint(origin) if origin else None


def fingerprint_package(module: str) -> str:
    """sha256 over every Python file of ``module``'s folder ("" when it cannot be found): a built-in
    component split into a package is cache-missed by a change anywhere in it."""
    origin = _origin(module)
    if origin is None:
        return ""
    folder = Path(origin).resolve().parent
    return _over(_folder_files(folder), folder).digest


def fingerprint_code_ref(ref: Any) -> str:
    """sha256 over what a user module runs ("" when it cannot be found); see :func:`code_fingerprint`."""
    found = code_ref_fingerprint(ref)
    return found.digest if found else ""


def code_fingerprint_parts(comp: Any, params: Mapping[str, Any]) -> tuple[list[str], str]:
    """The parts of a node's code fingerprint — the component's code, then each ``code_params`` module —
    and why any of them covers a whole folder ("" when every import was resolved)."""
    own = comp.code_details() if comp.spec.source_file else None
    parts = [comp.code_fingerprint()]  # a component class may define its own (a built-in package's)
    fallbacks = [f"component {comp.spec.name}: {own.fallback}"] if own and own.fallback else []
    for name in comp.spec.code_params:
        found = code_ref_fingerprint(params.get(name))
        parts.append(f"{name}={found.digest if found else ''}")
        if found and found.fallback:
            fallbacks.append(f"{name}: whole folder, as {found.fallback}")
    return parts, "; ".join(fallbacks)
