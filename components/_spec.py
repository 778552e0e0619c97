"""A component's typed declaration: ``Input``/``Output`` markers, the contexts an executor or resolver
may receive, the frozen specs, and :func:`build_spec`, which reads them off a function's signature."""

from __future__ import annotations

import inspect
import keyword
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin

from headwater.components._loader import is_script_module
from headwater.components._typing import matches, param_type_ok, strip_optional, type_name
from headwater.components.errors import ComponentDefinitionError
from headwater.components.placement import Placement
from headwater.metadata.artifact import Artifact

__all__ = [
    "ComponentSpec",
    "ExecutionContext",
    "Input",
    "InputSpec",
    "Output",
    "OutputSpec",
    "ParameterSpec",
    "ResolverContext",
    "build_spec",
]

T = TypeVar("T")


class _InputMarker:
    def __repr__(self) -> str:
        return "Input"


class _OutputMarker:
    def __repr__(self) -> str:
        return "Output"


_INPUT = _InputMarker()
_OUTPUT = _OutputMarker()

#: ``Input[types.Examples]``: an input artifact (the executor receives the Artifact).
Input = Annotated[T, _INPUT]
#: ``Output[types.Model]``: an output artifact (the executor writes files under ``.path``).
Output = Annotated[T, _OUTPUT]


@dataclass(frozen=True)
class ExecutionContext:
    """What an executor may want to know about its run; add ``ctx: ExecutionContext`` to receive it."""

    pipeline_name: str
    pipeline_root: str
    run_id: str
    node_id: str
    execution_id: int
    tmp_dir: str
    beam_args: tuple[str, ...] = ()
    log_path: str | None = None


@dataclass(frozen=True)
class ResolverContext:
    """What a resolver sees: read access to the store (``store.mlmd`` is the raw MLMD store)."""

    store: Any  # headwater.metadata.MetadataStore
    pipeline_name: str
    run_id: str
    node_id: str


@dataclass(frozen=True)
class InputSpec:
    name: str
    type: type[Artifact]
    optional: bool = False
    is_list: bool = False


@dataclass(frozen=True)
class OutputSpec:
    name: str
    type: type[Artifact]


@dataclass(frozen=True)
class ParameterSpec:
    name: str
    type: Any
    default: Any = inspect.Parameter.empty

    @property
    def required(self) -> bool:
        return self.default is inspect.Parameter.empty


@dataclass(frozen=True)
class ComponentSpec:
    """The typed signature of a component plus how to find and fingerprint its code."""

    name: str
    qualified_name: str
    module: str
    function: str
    source_file: str | None
    inputs: Mapping[str, InputSpec]
    outputs: Mapping[str, OutputSpec]
    parameters: Mapping[str, ParameterSpec]
    version: str = "1"
    kind: Literal["executor", "resolver"] = "executor"
    context_arg: str | None = None
    code_params: tuple[str, ...] = ()
    warm_imports: tuple[str, ...] = ()
    description: str = ""
    image: str | None = None  # the container image its nodes run in (Kubernetes, KFP) unless they say otherwise
    placement: Placement | None = None


def _artifact_class(annotation: Any) -> type[Artifact] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, Artifact) else None


def build_spec(
    fn: Callable[..., Any],
    *,
    name: str | None = None,
    version: str = "1",
    kind: Literal["executor", "resolver"] = "executor",
    code_params: tuple[str, ...] = (),
    warm_imports: tuple[str, ...] = (),
) -> ComponentSpec:
    """The frozen spec of ``fn``'s signature; a bad declaration raises ComponentDefinitionError with the
    function's ``file`` and ``line``."""
    try:
        return _build_spec(fn, name=name, version=version, kind=kind, code_params=code_params,
                           warm_imports=warm_imports)
    except ComponentDefinitionError as exc:
        code = getattr(fn, "__code__", None)
        if code is not None and exc.file is None:
            exc.file, exc.line = code.co_filename, code.co_firstlineno
        raise


def _build_spec(
    fn: Callable[..., Any],
    *,
    name: str | None,
    version: str,
    kind: Literal["executor", "resolver"],
    code_params: tuple[str, ...],
    warm_imports: tuple[str, ...],
) -> ComponentSpec:
    where = f"component {fn.__qualname__!r} ({_location(fn)})"
    if not callable(fn) or not inspect.isfunction(fn):
        raise ComponentDefinitionError(f"@component decorates plain functions, not {fn!r}")
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception as exc:
        raise ComponentDefinitionError(f"{where}: cannot resolve its type annotations: {exc}") from None
    ret = hints.get("return", None)
    if kind == "executor" and ret is not None and ret is not type(None):
        raise ComponentDefinitionError(
            f"{where} returns {type_name(ret)}; components return None and write their results to "
            "Output[...] arguments"
        )
    inputs: dict[str, InputSpec] = {}
    outputs: dict[str, OutputSpec] = {}
    params: dict[str, ParameterSpec] = {}
    context_arg = None
    for pname, p in inspect.signature(fn).parameters.items():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise ComponentDefinitionError(f"{where}: argument {pname!r}: *args/**kwargs are not allowed")
        if pname not in hints:
            raise ComponentDefinitionError(
                f"{where}: argument {pname!r} has no type annotation; annotate it as Input[T], Output[T], "
                "or a parameter type (int, float, str, bool, list, dict)"
            )
        annotation = hints[pname]
        if annotation is ExecutionContext or (kind == "resolver" and annotation is ResolverContext):
            context_arg = pname
            continue
        inner, optional = strip_optional(annotation)
        if get_origin(inner) is Annotated:
            base, *meta = get_args(inner)
            is_list = get_origin(base) is list
            art = _artifact_class(get_args(base)[0] if is_list and get_args(base) else base)
            if _OUTPUT in meta:
                if art is None or is_list:
                    raise ComponentDefinitionError(
                        f"{where}: argument {pname!r}: Output[...] takes one artifact type such as "
                        f"types.Model, got {type_name(base)}"
                    )
                if optional:
                    raise ComponentDefinitionError(f"{where}: output {pname!r} cannot be optional")
                outputs[pname] = OutputSpec(pname, art)
                continue
            if _INPUT in meta:
                if art is None:
                    raise ComponentDefinitionError(
                        f"{where}: argument {pname!r}: Input[...] takes an artifact type such as "
                        f"types.Examples (or list[types.Examples]), got {type_name(base)}"
                    )
                has_default = p.default is not inspect.Parameter.empty
                if has_default and p.default is not None:
                    raise ComponentDefinitionError(
                        f"{where}: input {pname!r} has default {p.default!r}; an input can only default to None"
                    )
                inputs[pname] = InputSpec(pname, art, optional=optional or has_default, is_list=is_list)
                continue
        if _artifact_class(inner) is not None:
            raise ComponentDefinitionError(
                f"{where}: argument {pname!r} is annotated with the artifact type {inner.__name__} "
                f"directly; write Input[{inner.__name__}] or Output[{inner.__name__}]"
            )
        if not param_type_ok(annotation):
            raise ComponentDefinitionError(
                f"{where}: parameter {pname!r} has unsupported type {type_name(annotation)}; parameters "
                "are int, float, str, bool, or lists/dicts of those (use Input[...]/Output[...] for artifacts)"
            )
        if pname.startswith("_") or keyword.iskeyword(pname):
            raise ComponentDefinitionError(f"{where}: parameter {pname!r} must not start with '_'")
        default = p.default
        if default is not inspect.Parameter.empty and default is not None and not matches(default, annotation):
            raise ComponentDefinitionError(
                f"{where}: parameter {pname!r} defaults to {default!r}, which is not {type_name(annotation)}"
            )
        params[pname] = ParameterSpec(pname, annotation, default)
    for code_param in code_params:
        if code_param not in params:
            raise ComponentDefinitionError(f"{where}: code_params names {code_param!r}, which is not a parameter")
    if kind == "executor" and not outputs:
        raise ComponentDefinitionError(
            f"{where} declares no Output[...]; a component must produce at least one artifact"
        )
    module = fn.__module__
    source = None
    try:
        source = inspect.getsourcefile(fn)
    except TypeError:
        source = None
    comp_name = name or fn.__name__
    # one identity whether the pipeline file is run as a script (__main__) or by `headwater run`
    qualified = comp_name if is_script_module(module) else f"{module}.{comp_name}"
    return ComponentSpec(
        name=comp_name,
        qualified_name=qualified,
        module=module,
        function=fn.__qualname__,
        source_file=str(Path(source).resolve()) if source else None,
        inputs=inputs,
        outputs=outputs,
        parameters=params,
        version=version,
        kind=kind,
        context_arg=context_arg,
        code_params=code_params,
        warm_imports=tuple(warm_imports),
        description=(inspect.getdoc(fn) or "").split("\n\n")[0],
    )


def _location(fn: Callable[..., Any]) -> str:
    code = getattr(fn, "__code__", None)
    if code is None:
        return getattr(fn, "__module__", "?")
    return f"{code.co_filename}:{code.co_firstlineno}"
