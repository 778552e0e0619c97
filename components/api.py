"""The authoring API: declare a component from a typed Python function.

::

    @component
    def produce(data: Output[types.Examples], seconds: float = 1.0) -> None:
        ...

    node = produce(seconds=Param("delay", default=1.0)).with_id("a")
    node.outputs.data            # a Channel, to feed another node's input

Declaration mistakes raise :class:`~headwater.metadata.errors.ComponentDefinitionError` when the
function is decorated, naming the function and the argument.
"""

from __future__ import annotations

import inspect
import keyword
import os
import re
import sys
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args, get_origin

from headwater.components._fingerprint import (  # noqa: F401  (fingerprint_code_ref: re-exported)
    CodeFingerprint,
    code_fingerprint,
    fingerprint_code_ref,
    fingerprint_file,
)
from headwater.components._loader import is_script_module
from headwater.components._typing import (
    coerce_value,
    matches,
    param_type_ok,
    strip_optional,
    type_name,
)
from headwater.components.errors import ComponentDefinitionError
from headwater.components.placement import Placement, check_gpu, check_image
from headwater.components.placement import at_caller as _at_caller
from headwater.metadata.artifact import Artifact
from headwater.metadata.errors import did_you_mean

__all__ = [
    "Channel",
    "Component",
    "ComponentSpec",
    "ExecutionContext",
    "Input",
    "InputSpec",
    "Node",
    "Output",
    "OutputSpec",
    "Param",
    "ParameterSpec",
    "ResolverContext",
    "Resources",
    "component",
    "resolver",
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

ParamValue = Any
_ID_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")


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
class Param:
    """A runtime parameter: a named value with a default, overridable per run.

    Use it in place of a literal parameter value: ``train(steps=Param("train_steps", default=100))``.
    """

    name: str
    default: ParamValue = None
    type: type | None = None
    description: str = ""
    #: ``file:line`` of the code that declared it (for messages about it; not part of its identity).
    declared_at: str = field(default="", compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.type is None and self.default is not None:
            object.__setattr__(self, "type", type(self.default))
        if not self.declared_at:
            caller = sys._getframe(2)  # past the dataclass __init__
            object.__setattr__(self, "declared_at", f"{caller.f_code.co_filename}:{caller.f_lineno}")

    def coerce(self, value: Any) -> Any:
        """Convert a value given on the command line (a string) or in Python to this parameter's type."""
        return coerce_value(value, self.type, what=f"runtime parameter {self.name!r}", parameter=self.name)


@dataclass(frozen=True)
class Resources:
    """Resources a node asks for; used by the Kubernetes runner (requests = limits unless given)."""

    cpu: str | None = None
    memory: str | None = None
    gpu: int = 0
    cpu_limit: str | None = None
    memory_limit: str | None = None
    gpu_toleration: bool = False  # add the usual ``nvidia.com/gpu`` NoSchedule toleration


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


class Component:
    """A declared component. Call it inside a pipeline definition to get a :class:`Node`."""

    def __init__(
        self,
        fn: Callable[..., Any],
        spec: ComponentSpec,
        *,
        input_fingerprint: Callable[[dict[str, Any]], str] | None = None,
        skip_if: Callable[[dict[str, list[Artifact]], dict[str, Any]], str | None] | None = None,
        on_skip: Callable[[dict[str, Artifact], str], None] | None = None,
        gate: Callable[[Mapping[str, Sequence[Artifact]]], str | None] | None = None,
    ) -> None:
        self.fn = fn
        self.spec = spec
        self.input_fingerprint = input_fingerprint
        self.skip_if = skip_if
        self.on_skip = on_skip
        self.gate = gate  # a data gate: see headwater.pipelines.gates
        self.__doc__ = fn.__doc__
        self.__name__ = spec.name
        self.__qualname__ = spec.function
        self.__module__ = spec.module
        self.__wrapped__ = fn

    def __repr__(self) -> str:
        return f"<component {self.spec.qualified_name}>"

    def code_fingerprint(self) -> str:
        """sha256 of the source file that defines the component (a changed file is a cache miss) and, for a
        component outside headwater, of the local modules that file imports."""
        return self.code_details().digest if self.spec.source_file else ""

    def code_details(self) -> CodeFingerprint:
        """What :meth:`code_fingerprint` covers (headwater's own components: their file alone)."""
        source = self.spec.source_file or ""
        if self.spec.module.split(".")[0] == "headwater":
            return CodeFingerprint(fingerprint_file(source), (os.path.basename(source),))
        return code_fingerprint(source)

    def __call__(self, **kwargs: Any) -> Node:
        spec = self.spec
        inputs: dict[str, Channel | list[Channel]] = {}
        params: dict[str, Any] = {}
        unknown = [k for k in kwargs if k not in spec.inputs and k not in spec.parameters]
        if unknown:
            hint = ""
            outs = [k for k in unknown if k in spec.outputs]
            if outs:
                hint = (f"; {outs[0]!r} is an output — outputs are created by the node, read them as "
                        f"node.outputs.{outs[0]}")
            else:
                hint = did_you_mean(unknown[0], [*spec.inputs, *spec.parameters])
            caller = sys._getframe(1).f_code.co_filename, sys._getframe(1).f_lineno
            raise ComponentDefinitionError(
                f"{caller[0]}:{caller[1]}: {spec.name}() got unknown argument(s) {', '.join(map(repr, unknown))}; "
                f"it takes inputs {sorted(spec.inputs)} and parameters {sorted(spec.parameters)}{hint}"
            )
        for key, value in kwargs.items():
            if key in spec.inputs:
                if value is None:
                    continue
                if isinstance(value, (list, tuple)) and spec.inputs[key].is_list:
                    inputs[key] = list(value)
                else:
                    inputs[key] = value
            else:
                params[key] = value
        return Node(component=self, id=spec.name, inputs=inputs, parameters=params)


@dataclass(frozen=True)
class Channel:
    """An output of one node, to be used as another node's input."""

    producer: str
    key: str
    type: type[Artifact]

    def __repr__(self) -> str:
        return f"Channel({self.producer}.outputs.{self.key}: {self.type.TYPE_NAME})"


class _Outputs:
    def __init__(self, node: Node) -> None:
        self._node = node

    def __getattr__(self, key: str) -> Channel:
        outputs = self._node.component.spec.outputs
        if key not in outputs:
            raise AttributeError(
                f"node {self._node.id!r} ({self._node.component.spec.name}) has no output {key!r}; "
                f"its outputs are {sorted(outputs)}"
            )
        return Channel(self._node.id, key, outputs[key].type)

    def __getitem__(self, key: str) -> Channel:
        return self.__getattr__(key)

    def __iter__(self) -> typing.Iterator[str]:
        return iter(self._node.component.spec.outputs)

    def __dir__(self) -> list[str]:
        return list(self._node.component.spec.outputs)


@dataclass(frozen=True)
class Node:
    """A component instance in a pipeline: an id, input bindings, parameter values and options."""

    component: Component
    id: str
    inputs: Mapping[str, Channel | list[Channel]] = field(default_factory=dict)
    parameters: Mapping[str, Any] = field(default_factory=dict)
    caching: bool = True
    retries: int = 0
    resources: Resources = field(default_factory=Resources)
    timeout_seconds: int | None = None
    image: str | None = None
    placement: Placement | None = None

    @property
    def outputs(self) -> _Outputs:
        return _Outputs(self)

    def with_id(self, node_id: str) -> Node:
        """A copy with id ``node_id`` (letters, digits, '_' and '-', starting with a letter)."""
        return replace(self, id=node_id)

    def with_caching(self, enabled: bool = True) -> Node:
        return replace(self, caching=enabled)

    def with_retries(self, retries: int) -> Node:
        return replace(self, retries=retries)

    def with_resources(
        self, cpu: str | float | None = None, memory: str | None = None, gpu: int = 0, *,
        gpu_toleration: bool = False, **limits: str
    ) -> Node:
        """Requests (and ``cpu_limit``/``memory_limit``) on Kubernetes; ``gpu`` becomes ``nvidia.com/gpu``
        requests and limits, ``gpu_toleration=True`` adds the toleration of GPU nodes' usual taint."""
        with _at_caller():
            gpus = check_gpu(gpu, f"node {self.id!r}: with_resources")
        return replace(self, resources=Resources(str(cpu) if cpu is not None else None, memory, gpus, **limits,
                                                 gpu_toleration=bool(gpu_toleration)))

    def with_image(self, image: str) -> Node:
        """A copy running in container ``image`` on Kubernetes and KFP (the local runner ignores it)."""
        with _at_caller():
            return replace(self, image=check_image(image, f"node {self.id!r}: with_image"))

    def with_placement(self, placement: Placement) -> Node:
        """A copy placed by ``placement`` (node selector, tolerations, node pool, service account) on top of
        its component's placement."""
        with _at_caller():
            if not isinstance(placement, Placement):
                raise ComponentDefinitionError(
                    f"node {self.id!r}: with_placement takes a Placement(...), not {placement!r}")
        return replace(self, placement=placement)

    @property
    def effective_image(self) -> str | None:
        """The node's image, else its component's (``None``: the runner's ``--image``)."""
        return self.image or self.component.spec.image

    @property
    def effective_placement(self) -> Placement | None:
        """The component's placement with the node's on top (``None`` when neither says anything)."""
        base = self.component.spec.placement
        return base.merged(self.placement) if base is not None else self.placement

    def with_timeout(self, seconds: int) -> Node:
        return replace(self, timeout_seconds=seconds)

    def upstream_ids(self) -> set[str]:
        ids: set[str] = set()
        for value in self.inputs.values():
            for ch in value if isinstance(value, list) else [value]:
                if isinstance(ch, Channel):
                    ids.add(ch.producer)
        return ids

    def __repr__(self) -> str:
        return f"Node({self.id!r}, {self.component.spec.qualified_name})"


# ------------------------------------------------------------------ declaration
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


@typing.overload
def component(fn: Callable[..., Any], /) -> Component: ...
@typing.overload
def component(
    *,
    name: str | None = None,
    version: str = "1",
    code_params: tuple[str, ...] = (),
    input_fingerprint: Callable[[dict[str, Any]], str] | None = None,
    skip_if: Callable[[dict[str, list[Artifact]], dict[str, Any]], str | None] | None = None,
    on_skip: Callable[[dict[str, Artifact], str], None] | None = None,
    warm_imports: tuple[str, ...] = (),
    image: str | None = None,
    placement: Placement | None = None,
    gate: Callable[[Mapping[str, Sequence[Artifact]]], str | None] | None = None,
) -> Callable[[Callable[..., Any]], Component]: ...


def component(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    version: str = "1",
    code_params: tuple[str, ...] = (),
    input_fingerprint: Callable[[dict[str, Any]], str] | None = None,
    skip_if: Callable[[dict[str, list[Artifact]], dict[str, Any]], str | None] | None = None,
    on_skip: Callable[[dict[str, Artifact], str], None] | None = None,
    warm_imports: tuple[str, ...] = (),
    image: str | None = None,
    placement: Placement | None = None,
    gate: Callable[[Mapping[str, Sequence[Artifact]]], str | None] | None = None,
) -> Component | Callable[[Callable[..., Any]], Component]:
    """Declare a component from a typed function (usable as ``@component`` or ``@component(...)``).

    ``version`` joins the cache key (bump it when behaviour changes without a code change);
    ``code_params`` name parameters that hold a user module file or dotted module name, whose source
    is fingerprinted into the cache key; ``input_fingerprint(parameters)`` adds a fingerprint of
    external inputs (files) to the cache key; ``skip_if(inputs, parameters)`` returning a reason makes the
    runner skip the executor and publish the outputs after ``on_skip(outputs, reason)``;
    ``warm_imports`` name heavy modules (e.g. ``"tensorflow"``) that local worker processes import ahead of
    time, while earlier nodes run, so the node does not pay for the import. ``image`` and ``placement`` are
    the container image and placement of the component's nodes on Kubernetes and KFP (a node's
    ``with_image`` / ``with_placement`` override them; the local runner ignores both). ``gate(outputs)``
    returning a reason makes the node a data gate: the nodes that consume the data it checked do not run
    (state ``blocked``; :mod:`headwater.pipelines.gates`).
    """

    def wrap(f: Callable[..., Any]) -> Component:
        spec = build_spec(f, name=name, version=version, code_params=code_params, warm_imports=warm_imports)
        if image is not None or placement is not None:
            where = f"component {f.__qualname__!r} ({_location(f)})"
            if placement is not None and not isinstance(placement, Placement):
                raise ComponentDefinitionError(f"{where}: placement takes a Placement(...), not {placement!r}")
            spec = replace(spec, image=check_image(image, where) if image is not None else None,
                           placement=placement)
        return Component(f, spec, input_fingerprint=input_fingerprint, skip_if=skip_if, on_skip=on_skip,
                         gate=gate)

    return wrap(fn) if fn is not None else wrap


def resolver(
    *, outputs: Mapping[str, type[Artifact]], name: str | None = None, version: str = "1"
) -> Callable[[Callable[..., Any]], Component]:
    """Declare a resolver: a node that selects existing artifacts with MLMD queries.

    The function takes ``ctx: ResolverContext``, its inputs and parameters, and returns
    ``{output_name: [artifacts]}`` (an empty list when nothing qualifies). It runs in the orchestrator,
    which records the selection as an execution with OUTPUT events to the chosen artifacts.
    """

    def wrap(fn: Callable[..., Any]) -> Component:
        spec = build_spec(fn, name=name, version=version, kind="resolver")
        if spec.context_arg is None:
            raise ComponentDefinitionError(
                f"resolver {fn.__qualname__!r} needs an argument annotated ResolverContext"
            )
        outs = {k: OutputSpec(k, v) for k, v in outputs.items()}
        return Component(fn, replace(spec, outputs=outs))

    return wrap


def load_component(module: str, function: str, source_file: str | None) -> Component:
    """Find a component by module and qualified name (in a worker process), loading its file if needed."""
    from headwater.components.errors import ExecutorContractError

    mod = sys.modules.get(module)
    if mod is None:
        try:
            if is_script_module(module):
                raise ImportError(module)
            import importlib

            mod = importlib.import_module(module)
        except ImportError as exc:
            if source_file and not os.path.isfile(source_file):  # neither the module nor its file is here
                raise ModuleNotFoundError(f"no module {module!r} and no file {source_file}", name=module) from None
            if isinstance(exc, ModuleNotFoundError) and exc.name not in (None, module, "__main__") \
                    and not module.startswith(f"{exc.name}."):
                raise  # the module is here, something it imports is not
            if not source_file:
                raise ExecutorContractError(
                    f"cannot import module {module!r} of component {function!r}; make it importable "
                    "(on PYTHONPATH) in the executor's environment"
                ) from None
            from headwater.components._loader import load_module_from_file

            mod = load_module_from_file(source_file, module if module != "__main__" else None)
    obj: Any = mod
    for part in function.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            break
    if isinstance(obj, Component):
        return obj
    if callable(obj):  # the undecorated function (e.g. @component applied by call)
        return component(obj)
    raise ExecutorContractError(
        f"component {function!r} not found in module {module!r}; components must be defined at module "
        "level so worker processes can import them"
    )
