"""The lineage graph: artifacts, executions and the events between them, as frozen dataclasses.

A :class:`LineageGraph` is a read-only snapshot taken from an ML Metadata store. Nodes are
:class:`ArtifactNode` and :class:`ExecutionNode`; every :class:`LineageEdge` is one MLMD event, pointing
the way data flows (an ``INPUT`` event goes artifact -> execution, an ``OUTPUT`` event execution ->
artifact). Nodes are addressed by their ``key`` (``"artifact:12"``, ``"execution:7"``) or by the node
object itself::

    graph = upstream(store, 42)
    for node in graph.parents(graph.root):   # the executions that produced artifact 42
        print(node.type_name, node.state)
    graph.to_json()                           # and back with LineageGraph.from_dict(json.loads(...))
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

__all__ = [
    "INPUT_EVENT_TYPES",
    "OUTPUT_EVENT_TYPES",
    "ArtifactNode",
    "Direction",
    "ExecutionNode",
    "LineageEdge",
    "LineageGraph",
    "LineageNode",
]

Direction = Literal["upstream", "downstream", "both"]

#: MLMD event types that carry an artifact *into* an execution (edge artifact -> execution).
INPUT_EVENT_TYPES = frozenset({"INPUT", "DECLARED_INPUT", "INTERNAL_INPUT"})
#: MLMD event types that carry an artifact *out of* an execution (edge execution -> artifact).
OUTPUT_EVENT_TYPES = frozenset({"OUTPUT", "DECLARED_OUTPUT", "INTERNAL_OUTPUT", "PENDING_OUTPUT"})

_EMPTY: Mapping[str, Any] = {}


def _time(ms: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms / 1000, tz=UTC) if ms else None


def _iso(ms: int | None) -> str | None:
    t = _time(ms)
    return t.isoformat(timespec="milliseconds").replace("+00:00", "Z") if t else None


@dataclass(frozen=True)
class ArtifactNode:
    """One artifact as recorded in MLMD. Unset properties are absent, never ``''`` or ``0``."""

    kind: ClassVar[str] = "artifact"

    id: int
    type_name: str
    uri: str
    state: str
    name: str | None = None
    properties: Mapping[str, Any] = field(default_factory=dict, hash=False)
    custom_properties: Mapping[str, Any] = field(default_factory=dict, hash=False)
    create_time_ms: int | None = None
    update_time_ms: int | None = None

    @property
    def key(self) -> str:
        return f"artifact:{self.id}"

    @property
    def label(self) -> str:
        """``Examples #12``."""
        return f"{self.type_name} #{self.id}"

    @property
    def create_time(self) -> datetime | None:
        return _time(self.create_time_ms)

    def get(self, name: str, default: Any = None) -> Any:
        """A property or, failing that, a custom property (TFX writes ``span`` as either)."""
        if name in self.properties:
            return self.properties[name]
        return self.custom_properties.get(name, default)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.id,
            "key": self.key,
            "type": self.type_name,
            "uri": self.uri,
            "state": self.state,
            "name": self.name,
            "properties": dict(self.properties),
            "custom_properties": dict(self.custom_properties),
            "create_time": _iso(self.create_time_ms),
            "create_time_ms": self.create_time_ms,
            "update_time_ms": self.update_time_ms,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ArtifactNode:
        return cls(
            id=int(data["id"]),
            type_name=str(data["type"]),
            uri=str(data.get("uri", "")),
            state=str(data.get("state", "UNKNOWN")),
            name=data.get("name"),
            properties=dict(data.get("properties") or {}),
            custom_properties=dict(data.get("custom_properties") or {}),
            create_time_ms=data.get("create_time_ms"),
            update_time_ms=data.get("update_time_ms"),
        )


@dataclass(frozen=True)
class ExecutionNode:
    """One execution (a component run). ``type_name`` is the component's qualified name."""

    kind: ClassVar[str] = "execution"

    id: int
    type_name: str
    state: str
    name: str | None = None
    properties: Mapping[str, Any] = field(default_factory=dict, hash=False)
    custom_properties: Mapping[str, Any] = field(default_factory=dict, hash=False)
    create_time_ms: int | None = None
    update_time_ms: int | None = None

    @property
    def key(self) -> str:
        return f"execution:{self.id}"

    @property
    def short_type(self) -> str:
        """The last part of the qualified type name: ``Trainer`` for ``tfx.components....Trainer``."""
        return self.type_name.rsplit(".", 1)[-1]

    @property
    def label(self) -> str:
        """``Trainer #6``."""
        return f"{self.short_type} #{self.id}"

    @property
    def create_time(self) -> datetime | None:
        return _time(self.create_time_ms)

    @property
    def parameters(self) -> dict[str, Any]:
        """Properties and custom properties together: TFX and headwater record parameters as either."""
        return {**self.custom_properties, **self.properties}

    def get(self, name: str, default: Any = None) -> Any:
        if name in self.properties:
            return self.properties[name]
        return self.custom_properties.get(name, default)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.id,
            "key": self.key,
            "type": self.type_name,
            "state": self.state,
            "name": self.name,
            "properties": dict(self.properties),
            "custom_properties": dict(self.custom_properties),
            "create_time": _iso(self.create_time_ms),
            "create_time_ms": self.create_time_ms,
            "update_time_ms": self.update_time_ms,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ExecutionNode:
        return cls(
            id=int(data["id"]),
            type_name=str(data["type"]),
            state=str(data.get("state", "UNKNOWN")),
            name=data.get("name"),
            properties=dict(data.get("properties") or {}),
            custom_properties=dict(data.get("custom_properties") or {}),
            create_time_ms=data.get("create_time_ms"),
            update_time_ms=data.get("update_time_ms"),
        )


#: A node of a lineage graph: an artifact or an execution (not the pipeline node, ``headwater.components.LineageNode``).
LineageNode = ArtifactNode | ExecutionNode


@dataclass(frozen=True)
class LineageEdge:
    """One MLMD event between an artifact and an execution.

    ``path`` holds the event's ``(key, index)`` pairs: usually one, e.g. ``(("examples", 0),)``; TFX
    records an artifact consumed under two input keys as one event with two pairs.
    """

    artifact_id: int
    execution_id: int
    event_type: str
    path: tuple[tuple[str, int], ...] = ()
    time_ms: int | None = None

    @property
    def is_input(self) -> bool:
        return self.event_type in INPUT_EVENT_TYPES

    @property
    def is_output(self) -> bool:
        return self.event_type in OUTPUT_EVENT_TYPES

    @property
    def source(self) -> str:
        """Key of the node data flows from."""
        return f"artifact:{self.artifact_id}" if self.is_input else f"execution:{self.execution_id}"

    @property
    def target(self) -> str:
        """Key of the node data flows to."""
        return f"execution:{self.execution_id}" if self.is_input else f"artifact:{self.artifact_id}"

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(k for k, _ in self.path)

    @property
    def label(self) -> str:
        """``model`` or ``examples[2]``; several keys joined with ``, ``; the event type if no path."""
        parts = [k if i == 0 else f"{k}[{i}]" for k, i in self.path]
        text = ", ".join(p for p in parts if p)
        return text or self.event_type.lower()

    def to_dict(self) -> dict[str, Any]:
        return {
            "artifact_id": self.artifact_id,
            "execution_id": self.execution_id,
            "type": self.event_type,
            "source": self.source,
            "target": self.target,
            "path": [{"key": k, "index": i} for k, i in self.path],
            "time": _iso(self.time_ms),
            "time_ms": self.time_ms,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LineageEdge:
        return cls(
            artifact_id=int(data["artifact_id"]),
            execution_id=int(data["execution_id"]),
            event_type=str(data["type"]),
            path=tuple((str(p.get("key", "")), int(p.get("index", 0))) for p in data.get("path") or ()),
            time_ms=data.get("time_ms"),
        )


@dataclass(frozen=True)
class LineageGraph:
    """A lineage snapshot around ``root``: nodes, edges, and where a depth limit cut the walk.

    ``frontier`` lists the keys of nodes whose further lineage (in ``direction``) exists in the store but
    was left out because of ``depth``; renderers mark them so a reader knows the graph goes on.
    """

    root: str
    direction: Direction
    depth: int | None
    artifacts: tuple[ArtifactNode, ...]
    executions: tuple[ExecutionNode, ...]
    edges: tuple[LineageEdge, ...]
    frontier: tuple[str, ...] = ()
    _nodes: dict[str, LineageNode] = field(init=False, repr=False, compare=False)
    _in: dict[str, list[LineageEdge]] = field(init=False, repr=False, compare=False)
    _out: dict[str, list[LineageEdge]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        nodes: dict[str, LineageNode] = {a.key: a for a in self.artifacts}
        nodes.update((e.key, e) for e in self.executions)
        incoming: dict[str, list[LineageEdge]] = {k: [] for k in nodes}
        outgoing: dict[str, list[LineageEdge]] = {k: [] for k in nodes}
        for edge in self.edges:
            if edge.source in nodes and edge.target in nodes:
                outgoing[edge.source].append(edge)
                incoming[edge.target].append(edge)
        object.__setattr__(self, "_nodes", nodes)
        object.__setattr__(self, "_in", incoming)
        object.__setattr__(self, "_out", outgoing)

    # ------------------------------------------------------------------ lookup
    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, node: object) -> bool:
        if isinstance(node, str):
            return node in self._nodes
        return getattr(node, "key", None) in self._nodes

    def __iter__(self) -> Iterator[LineageNode]:
        return iter(self._nodes.values())

    @property
    def nodes(self) -> tuple[LineageNode, ...]:
        return tuple(self._nodes.values())

    @property
    def root_node(self) -> LineageNode:
        return self._nodes[self.root]

    def node(self, node: LineageNode | str) -> LineageNode:
        """The node for a key (``"artifact:3"``) or a node object; ``KeyError`` names a missing key."""
        key = node if isinstance(node, str) else node.key
        try:
            return self._nodes[key]
        except KeyError:
            raise KeyError(f"{key!r} is not in this lineage graph (root {self.root})") from None

    def artifact(self, artifact_id: int) -> ArtifactNode:
        found = self.node(f"artifact:{artifact_id}")
        assert isinstance(found, ArtifactNode)
        return found

    def execution(self, execution_id: int) -> ExecutionNode:
        found = self.node(f"execution:{execution_id}")
        assert isinstance(found, ExecutionNode)
        return found

    def artifacts_of_type(self, type_name: str) -> tuple[ArtifactNode, ...]:
        return tuple(a for a in self.artifacts if a.type_name == type_name)

    # ------------------------------------------------------------------ walking
    def in_edges(self, node: LineageNode | str) -> tuple[LineageEdge, ...]:
        """Edges arriving at ``node`` (for an artifact: the events of the executions that produced it)."""
        return tuple(self._in[self.node(node).key])

    def out_edges(self, node: LineageNode | str) -> tuple[LineageEdge, ...]:
        return tuple(self._out[self.node(node).key])

    def parents(self, node: LineageNode | str) -> tuple[LineageNode, ...]:
        """One step upstream: an artifact's producing executions, an execution's input artifacts."""
        return _unique(self._nodes[e.source] for e in self.in_edges(node))

    def children(self, node: LineageNode | str) -> tuple[LineageNode, ...]:
        """One step downstream: an artifact's consuming executions, an execution's outputs."""
        return _unique(self._nodes[e.target] for e in self.out_edges(node))

    def producers(self, artifact: ArtifactNode | str | int) -> tuple[ExecutionNode, ...]:
        """Executions that wrote ``artifact`` with an ``OUTPUT`` event (cached executions included)."""
        key = f"artifact:{artifact}" if isinstance(artifact, int) else artifact
        return tuple(
            self.execution(e.execution_id) for e in self.in_edges(key) if e.event_type == "OUTPUT"
        )

    def consumers(self, artifact: ArtifactNode | str | int) -> tuple[ExecutionNode, ...]:
        key = f"artifact:{artifact}" if isinstance(artifact, int) else artifact
        return tuple(self.execution(e.execution_id) for e in self.out_edges(key) if e.event_type == "INPUT")

    def inputs(self, execution: ExecutionNode | str | int) -> tuple[tuple[str, ArtifactNode], ...]:
        """``(key, artifact)`` for every ``INPUT`` of an execution (one pair per key of the event path)."""
        key = f"execution:{execution}" if isinstance(execution, int) else execution
        return tuple(
            (k, self.artifact(e.artifact_id))
            for e in self.in_edges(key)
            if e.event_type == "INPUT"
            for k in (e.keys or ("",))
        )

    def outputs(self, execution: ExecutionNode | str | int) -> tuple[tuple[str, ArtifactNode], ...]:
        key = f"execution:{execution}" if isinstance(execution, int) else execution
        return tuple(
            (k, self.artifact(e.artifact_id))
            for e in self.out_edges(key)
            if e.event_type == "OUTPUT"
            for k in (e.keys or ("",))
        )

    def walk(
        self, start: LineageNode | str | None = None, direction: Literal["upstream", "downstream"] = "upstream"
    ) -> Iterator[tuple[LineageNode, int]]:
        """Breadth-first ``(node, distance)`` from ``start`` (default: the root), each node once."""
        first = self.node(start if start is not None else self.root).key
        seen = {first}
        queue = deque([(first, 0)])
        step = self.parents if direction == "upstream" else self.children
        while queue:
            key, dist = queue.popleft()
            yield self._nodes[key], dist
            for nxt in step(key):
                if nxt.key not in seen:
                    seen.add(nxt.key)
                    queue.append((nxt.key, dist + 1))

    def ancestors(self, node: LineageNode | str) -> tuple[LineageNode, ...]:
        return tuple(n for n, d in self.walk(node, "upstream") if d > 0)

    def descendants(self, node: LineageNode | str) -> tuple[LineageNode, ...]:
        return tuple(n for n, d in self.walk(node, "downstream") if d > 0)

    def topological_order(self) -> tuple[LineageNode, ...]:
        """Nodes in data-flow order (sources first); ties broken by creation time and id."""
        indegree = {k: len(v) for k, v in self._in.items()}

        def sort_key(k: str) -> tuple[int, int, str]:
            n = self._nodes[k]
            return (n.create_time_ms or 0, n.id, n.kind)

        ready = sorted((k for k, d in indegree.items() if d == 0), key=sort_key)
        order: list[str] = []
        while ready:
            key = ready.pop(0)
            order.append(key)
            fresh = []
            for edge in self._out[key]:
                indegree[edge.target] -= 1
                if indegree[edge.target] == 0:
                    fresh.append(edge.target)
            if fresh:
                ready = sorted(ready + fresh, key=sort_key)
        # MLMD does not forbid cycles; append what is left so every node is rendered once.
        order.extend(sorted((k for k in self._nodes if k not in set(order)), key=sort_key))
        return tuple(self._nodes[k] for k in order)

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "direction": self.direction,
            "depth": self.depth,
            "frontier": list(self.frontier),
            "artifacts": [a.to_dict() for a in self.artifacts],
            "executions": [e.to_dict() for e in self.executions],
            "edges": [e.to_dict() for e in self.edges],
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=False, default=str)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LineageGraph:
        return cls(
            root=str(data["root"]),
            direction=data.get("direction", "upstream"),
            depth=data.get("depth"),
            artifacts=tuple(ArtifactNode.from_dict(a) for a in data.get("artifacts") or ()),
            executions=tuple(ExecutionNode.from_dict(e) for e in data.get("executions") or ()),
            edges=tuple(LineageEdge.from_dict(e) for e in data.get("edges") or ()),
            frontier=tuple(data.get("frontier") or ()),
        )


def _unique(nodes: Iterable[LineageNode]) -> tuple[LineageNode, ...]:
    seen: dict[str, LineageNode] = {}
    for n in nodes:
        seen.setdefault(n.key, n)
    return tuple(seen.values())



def deprecated_attribute(module: str, name: str) -> Any:
    """Old names of ``module`` (outside ``__all__``): ``Node`` was ``LineageNode``, renamed because
    ``headwater.components.Node`` is the pipeline node. Used by the modules' ``__getattr__``."""
    if name == "Node":
        import warnings

        warnings.warn(f"{module}.Node is deprecated: use LineageNode (headwater.components.Node is the pipeline "
                      "node)", DeprecationWarning, stacklevel=3)
        return LineageNode
    raise AttributeError(f"module {module!r} has no attribute {name!r}")


def __getattr__(name: str) -> Any:
    return deprecated_attribute(__name__, name)
