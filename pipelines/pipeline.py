"""``Pipeline``: nodes whose DAG follows their data dependencies, validated before anything runs."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from headwater.components._typing import coerce_value, matches, type_name
from headwater.components.api import Channel, Node, Param
from headwater.components.errors import ParameterError
from headwater.metadata.errors import close_match
from headwater.pipelines.errors import PipelineDefinitionError

__all__ = ["Param", "Pipeline"]

_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,62}$")


@dataclass(frozen=True)
class Pipeline:
    """A named DAG of nodes with a root for its artifacts and, optionally, runtime parameters.

    ``root`` is a local or object-store path; the metadata store defaults to
    ``sqlite:///<root>/metadata.sqlite`` unless ``metadata`` (a connection string) or
    ``HEADWATER_METADATA`` says otherwise. Construction validates the whole pipeline and raises
    :class:`~headwater.metadata.errors.PipelineDefinitionError` listing every problem at once.
    """

    name: str
    root: str
    nodes: Sequence[Node]
    params: Sequence[Param] = ()
    metadata: str | None = None
    beam_args: Sequence[str] = ()
    description: str = ""
    _by_id: Mapping[str, Node] = field(init=False, repr=False, compare=False)
    _params: Mapping[str, Param] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", str(self.root))
        object.__setattr__(self, "nodes", tuple(self.nodes))
        object.__setattr__(self, "params", tuple(self.params))
        object.__setattr__(self, "beam_args", tuple(self.beam_args))
        problems = self._validate()
        if problems:
            raise PipelineDefinitionError(self.name, problems)

    # ------------------------------------------------------------------ validation
    def _validate(self) -> list[str]:
        problems: list[str] = []
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            problems.append(
                f"pipeline name {self.name!r} is invalid: use 1-63 letters, digits, '_' or '-', starting "
                "with a letter"
            )
        if not self.root:
            problems.append("pipeline root is empty: give a directory (or gs://, s3:// path) for artifacts")
        by_id: dict[str, Node] = {}
        for i, node in enumerate(self.nodes):
            if not isinstance(node, Node):
                problems.append(
                    f"nodes[{i}] is {type(node).__name__} {node!r}, not a node; call a component to make one"
                )
                continue
            if not _NAME_RE.match(node.id):
                problems.append(
                    f"node id {node.id!r} is invalid: use 1-63 letters, digits, '_' or '-', starting with a "
                    "letter (set it with .with_id())"
                )
            if node.id in by_id:
                problems.append(
                    f"duplicate node id {node.id!r} ({by_id[node.id].component.spec.name} and "
                    f"{node.component.spec.name}); give each a unique id with .with_id('...')"
                )
                continue
            by_id[node.id] = node
            if "<locals>" in node.component.spec.function:
                problems.append(
                    f"node {node.id!r}: component {node.component.spec.function!r} is defined inside a "
                    "function; define components at module level so worker processes can import them"
                )
            if node.retries < 0:
                problems.append(f"node {node.id!r}: retries is {node.retries}; use 0 or more")
        object.__setattr__(self, "_by_id", by_id)
        params: dict[str, Param] = {}
        for p in self.params:
            params[p.name] = p
        for node in by_id.values():
            problems.extend(self._check_inputs(node, by_id))
            problems.extend(self._check_parameters(node, params))
        object.__setattr__(self, "_params", params)
        cycle = self._find_cycle(by_id)
        if cycle:
            problems.append(
                f"cycle between nodes: {' -> '.join(cycle)}; a node cannot depend on its own outputs"
            )
        return problems

    @staticmethod
    def _check_inputs(node: Node, by_id: Mapping[str, Node]) -> list[str]:
        problems = []
        spec = node.component.spec
        for key, ispec in spec.inputs.items():
            bound = node.inputs.get(key)
            if bound is None or bound == []:
                if not ispec.optional:
                    problems.append(
                        f"node {node.id!r}: required input {key!r} ({ispec.type.TYPE_NAME}) is not connected; "
                        f"pass {key}=<node>.outputs.<name>"
                    )
                continue
            channels = bound if isinstance(bound, list) else [bound]
            if len(channels) > 1 and not ispec.is_list:
                problems.append(
                    f"node {node.id!r}: input {key!r} takes one {ispec.type.TYPE_NAME} but is given {len(channels)} "
                    f"channels; pass one, or declare the input as Input[list[{ispec.type.TYPE_NAME}]]"
                )
            for ch in channels:
                if not isinstance(ch, Channel):
                    problems.append(
                        f"node {node.id!r}: input {key!r} is {type(ch).__name__} {ch!r}; inputs take another "
                        "node's output channel, e.g. other.outputs.examples"
                    )
                    continue
                producer = by_id.get(ch.producer)
                if producer is None:
                    problems.append(
                        f"node {node.id!r}: input {key!r} comes from node {ch.producer!r}, which is not in the "
                        "pipeline; add it to nodes=[...] (or take the channel after .with_id())"
                    )
                    continue
                out = producer.component.spec.outputs.get(ch.key)
                if out is None:
                    problems.append(f"node {node.id!r}: input {key!r}: node {ch.producer!r} has no output {ch.key!r}")
                elif out.type.TYPE_NAME != ispec.type.TYPE_NAME:
                    problems.append(
                        f"node {node.id!r}: input {key!r} expects {ispec.type.TYPE_NAME} but "
                        f"{ch.producer}.outputs.{ch.key} is {out.type.TYPE_NAME}; connect an output of type "
                        f"{ispec.type.TYPE_NAME}"
                    )
        return problems

    @staticmethod
    def _check_parameters(node: Node, params: dict[str, Param]) -> list[str]:
        problems = []
        spec = node.component.spec
        for pname, pspec in spec.parameters.items():
            if pname not in node.parameters and pspec.required:
                problems.append(
                    f"node {node.id!r}: parameter {pname!r} ({type_name(pspec.type)}) is required and has no "
                    "value; pass it when calling the component"
                )
        for pname, value in node.parameters.items():
            pspec = spec.parameters[pname]
            if isinstance(value, Param):
                known = params.get(value.name)
                if known is not None and (known.default != value.default or known.type != value.type):
                    problems.append(
                        f"node {node.id!r}: runtime parameter {value.name!r} is declared twice with different "
                        f"defaults/types ({known.default!r} vs {value.default!r}); declare it once and reuse it"
                    )
                    continue
                params.setdefault(value.name, value)
                if value.default is not None and not matches(value.default, pspec.type):
                    problems.append(
                        f"node {node.id!r}: parameter {pname!r} expects {type_name(pspec.type)} but runtime "
                        f"parameter {value.name!r} defaults to {value.default!r}"
                    )
                if value.default is None and pspec.required and not matches(None, pspec.type):
                    problems.append(
                        f"node {node.id!r}: runtime parameter {value.name!r} has no default; give "
                        f"Param({value.name!r}, default=...)"
                    )
            elif not matches(value, pspec.type) and not (value is None and pspec.default is None):
                problems.append(
                    f"node {node.id!r}: parameter {pname!r} expects {type_name(pspec.type)}, got "
                    f"{type(value).__name__} {value!r}"
                )
        return problems

    @staticmethod
    def _find_cycle(by_id: Mapping[str, Node]) -> list[str]:
        color: dict[str, int] = {}
        stack: list[str] = []

        def visit(nid: str) -> list[str]:
            color[nid] = 1
            stack.append(nid)
            for up in sorted(by_id[nid].upstream_ids()):
                if up not in by_id:
                    continue
                if color.get(up) == 1:
                    return [*stack[stack.index(up):], up]
                if up not in color:
                    found = visit(up)
                    if found:
                        return found
            stack.pop()
            color[nid] = 2
            return []

        for nid in by_id:
            if nid not in color:
                found = visit(nid)
                if found:
                    return list(reversed(found))
        return []

    # ------------------------------------------------------------------ queries
    def node(self, node_id: str) -> Node:
        try:
            return self._by_id[node_id]
        except KeyError:
            raise PipelineDefinitionError(
                self.name, [f"no node {node_id!r}; nodes are {', '.join(self._by_id)}"]
            ) from None

    @property
    def node_ids(self) -> list[str]:
        return list(self._by_id)

    @property
    def runtime_parameters(self) -> Mapping[str, Param]:
        return self._params

    def upstream(self, node_id: str) -> set[str]:
        return {u for u in self._by_id[node_id].upstream_ids() if u in self._by_id}

    def downstream(self, node_id: str) -> set[str]:
        return {n.id for n in self._by_id.values() if node_id in n.upstream_ids()}

    def _closure(self, start: str, step: Any) -> set[str]:
        seen = {start}
        todo = [start]
        while todo:
            for nxt in step(todo.pop()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    def topological_order(self, subset: Iterable[str] | None = None) -> list[str]:
        wanted = set(self._by_id) if subset is None else set(subset)
        order: list[str] = []
        done: set[str] = set()
        # Kahn's algorithm, keeping declaration order among ready nodes.
        while len(order) < len(wanted):
            progressed = False
            for nid in self._by_id:
                if nid in wanted and nid not in done and (self.upstream(nid) & wanted) <= done:
                    order.append(nid)
                    done.add(nid)
                    progressed = True
            if not progressed:  # pragma: no cover - cycles are rejected at construction
                break
        return order

    def select(self, from_node: str | None = None, to_node: str | None = None) -> list[str]:
        """Node ids of the slice ``from_node`` (and its descendants) … ``to_node`` (and its ancestors)."""
        selected = set(self._by_id)
        if from_node is not None:
            self.node(from_node)
            selected &= self._closure(from_node, self.downstream)
        if to_node is not None:
            self.node(to_node)
            selected &= self._closure(to_node, self.upstream)
        if not selected:
            raise PipelineDefinitionError(
                self.name, [f"--from {from_node} and --to {to_node} select no node: {to_node!r} is not downstream "
                            f"of {from_node!r}"]
            )
        return self.topological_order(selected)

    def resolve_params(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Runtime parameter values for one run: defaults, overridden (and type-checked)."""
        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - set(self._params))
        if unknown:
            known = ", ".join(sorted(self._params)) or "none"
            close = close_match(unknown[0], self._params)
            hint = f"; did you mean {close!r} (declared at {self._params[close].declared_at})?" if close else ""
            raise ParameterError(
                f"unknown runtime parameter(s) {', '.join(unknown)} for pipeline {self.name!r}; it declares: "
                f"{known}{hint}",
                parameter=unknown[0],
            )
        values = {}
        for name, p in self._params.items():
            values[name] = p.coerce(overrides[name]) if name in overrides else p.default
        # Check against the component parameter each one feeds.
        for node in self._by_id.values():
            for pname, value in node.parameters.items():
                if isinstance(value, Param):
                    coerce_value(
                        values[value.name], node.component.spec.parameters[pname].type,
                        what=f"runtime parameter {value.name!r} (node {node.id!r}, parameter {pname!r})",
                        parameter=value.name,
                    )
        return values

    def metadata_default(self) -> Path:
        return Path(self.root) / "metadata.sqlite"
