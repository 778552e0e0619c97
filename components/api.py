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

import os
import re
import sys
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from headwater.components._fingerprint import (  # noqa: F401  (fingerprint_code_ref: re-exported)
    CodeFingerprint,
    code_fingerprint,
    fingerprint_code_ref,
    fingerprint_file,
)
from headwater.components._loader import is_script_module
from headwater.components._spec import (
    ComponentSpec,
    ExecutionContext,
    Input,
    InputSpec,
    Output,
    OutputSpec,
    ParameterSpec,
    ResolverContext,
    _location,
    build_spec,
)
from headwater.components._typing import coerce_value
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

ParamValue = Any
_ID_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")


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
