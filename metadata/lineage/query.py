"""Lineage queries over an ML Metadata store: resolve an artifact, trace it up or down, list artifacts.

Every function takes either a raw ``ml_metadata`` ``MetadataStore`` or headwater's
:class:`~headwater.metadata.store.MetadataStore` (anything with the raw store as ``.mlmd``).

Tracing uses MLMD's own ``get_lineage_subgraph`` (one call per direction); an event-by-event walk over
``get_events_by_*`` is the fallback for servers without that call (``method="events"`` forces it).
"""

from __future__ import annotations

import base64
import json
import os
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias

from headwater.metadata.conventions import (
    A_PUSHED_DESTINATION,
    A_PUSHED_VERSION,
    CONTEXT_PIPELINE,
    CONTEXT_RUN,
    TFX_STRUCT_VALUE,
)
from headwater.metadata.errors import ArtifactNotFoundError, MetadataError
from headwater.metadata.lineage.graph import (
    INPUT_EVENT_TYPES,
    OUTPUT_EVENT_TYPES,
    ArtifactNode,
    Direction,
    ExecutionNode,
    LineageEdge,
    LineageGraph,
)

if TYPE_CHECKING:
    from ml_metadata.metadata_store.metadata_store import MetadataStore as RawStore

#: ml_metadata's generated protos have no type stubs; to the type checker they are ``Any``.
Proto = Any


def _pb() -> Any:
    from ml_metadata.proto import metadata_store_pb2

    return metadata_store_pb2

__all__ = [
    "ArtifactRef",
    "Method",
    "artifact_node",
    "contexts_of_executions",
    "downstream",
    "execution_node",
    "find_pushed_model",
    "list_artifacts",
    "raw_store",
    "resolve_artifact",
    "store_name",
    "trace",
    "upstream",
]

#: MLMD clamps ``max_num_hops`` to this value (and logs when asked for more).
MLMD_MAX_HOPS = 100
#: ``get_lineage_subgraph`` silently keeps only this many starting nodes.
MLMD_MAX_STARTING_NODES = 100

Method = Literal["auto", "mlmd", "events"]


class _HasId(Protocol):
    @property
    def id(self) -> int | None: ...


ArtifactRef: TypeAlias = int | str | os.PathLike[str] | ArtifactNode | _HasId


# ---------------------------------------------------------------------------------------- store access
def raw_store(store: Any) -> RawStore:
    """The ``ml_metadata`` store behind ``store`` (headwater's wrapper keeps it as ``.mlmd``)."""
    raw = getattr(store, "mlmd", store)
    if not hasattr(raw, "get_lineage_subgraph"):
        raise TypeError(
            f"expected an ml_metadata MetadataStore or headwater's MetadataStore, "
            f"got {type(store).__name__}; "
            "open one with headwater.metadata.connect('sqlite:///path/metadata.sqlite')"
        )
    return raw


def store_name(store: Any) -> str:
    """How messages name the store: its connection string without secrets, if known."""
    display = getattr(store, "display", None)
    return f"metadata store {display}" if display else "the metadata store"


# ---------------------------------------------------------------------------------------- conversion
_STRUCT_PREFIX = "mlmd-struct::"


def _decode_value(value: Proto) -> Any:
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "struct_value":
        from google.protobuf import json_format

        data = json_format.MessageToDict(value.struct_value)
        # headwater wraps non-dict values as {"v": ...}; TFX as {"__value__": "<json>"}.
        return data["v"] if set(data) == {"v"} else data
    if kind == "proto_value":
        return {"@type": value.proto_value.type_url}
    raw = getattr(value, kind)
    if kind == "string_value" and raw.startswith(_STRUCT_PREFIX):
        return _decode_tfx_struct(raw)
    return raw


def _decode_tfx_struct(raw: str) -> Any:
    """TFX stores JSON values of custom properties as ``mlmd-struct::<base64 Struct>``."""
    from google.protobuf import json_format, struct_pb2

    try:
        struct = struct_pb2.Struct()
        struct.ParseFromString(base64.b64decode(raw[len(_STRUCT_PREFIX) :]))
        data = json_format.MessageToDict(struct)
    except Exception:  # an undecodable value is shown as stored rather than dropped
        return raw
    if set(data) == {TFX_STRUCT_VALUE} and isinstance(data[TFX_STRUCT_VALUE], str):
        try:
            return json.loads(data[TFX_STRUCT_VALUE])
        except ValueError:
            return data[TFX_STRUCT_VALUE]
    return data


def _props(mapping: Mapping[str, Proto]) -> dict[str, Any]:
    out = {k: _decode_value(v) for k, v in sorted(mapping.items())}
    return {k: v for k, v in out.items() if v is not None}


def artifact_node(proto: Proto, type_name: str | None = None) -> ArtifactNode:
    """An :class:`ArtifactNode` from an MLMD ``Artifact`` proto."""
    pb = _pb()

    return ArtifactNode(
        id=proto.id,
        type_name=type_name or proto.type or f"type#{proto.type_id}",
        uri=proto.uri,
        state=pb.Artifact.State.Name(proto.state),
        name=proto.name or None,
        properties=_props(proto.properties),
        custom_properties=_props(proto.custom_properties),
        create_time_ms=proto.create_time_since_epoch or None,
        update_time_ms=proto.last_update_time_since_epoch or None,
    )


def execution_node(proto: Proto, type_name: str | None = None) -> ExecutionNode:
    """An :class:`ExecutionNode` from an MLMD ``Execution`` proto."""
    pb = _pb()

    return ExecutionNode(
        id=proto.id,
        type_name=type_name or proto.type or f"type#{proto.type_id}",
        state=pb.Execution.State.Name(proto.last_known_state),
        name=proto.name or None,
        properties=_props(proto.properties),
        custom_properties=_props(proto.custom_properties),
        create_time_ms=proto.create_time_since_epoch or None,
        update_time_ms=proto.last_update_time_since_epoch or None,
    )


def _edge(event: Proto) -> LineageEdge:
    pb = _pb()

    pairs: list[tuple[str, int]] = []
    for step in event.path.steps:
        if step.HasField("key"):
            pairs.append((step.key, 0))
        elif step.HasField("index"):
            if pairs and pairs[-1][1] == 0:
                pairs[-1] = (pairs[-1][0], step.index)
            else:
                pairs.append(("", step.index))
    return LineageEdge(
        artifact_id=event.artifact_id,
        execution_id=event.execution_id,
        event_type=pb.Event.Type.Name(event.type),
        path=tuple(pairs),
        time_ms=event.milliseconds_since_epoch or None,
    )


def _type_names(raw: RawStore, protos: Sequence[Any], kind: str) -> dict[int, str]:
    """Type names for protos whose ``type`` field the server left empty (older servers)."""
    missing = {p.type_id for p in protos if not p.type}
    if not missing:
        return {}
    getter = raw.get_artifact_types_by_id if kind == "artifact" else raw.get_execution_types_by_id
    return {t.id: t.name for t in getter(sorted(missing))}


def _artifact_nodes(raw: RawStore, protos: Sequence[Proto]) -> list[ArtifactNode]:
    names = _type_names(raw, protos, "artifact")
    return [artifact_node(p, names.get(p.type_id)) for p in protos]


def _execution_nodes(raw: RawStore, protos: Sequence[Proto]) -> list[ExecutionNode]:
    names = _type_names(raw, protos, "execution")
    return [execution_node(p, names.get(p.type_id)) for p in protos]


# ---------------------------------------------------------------------------------------- resolving
def _literal(text: str) -> str | None:
    """A filter-query string literal for ``text``, or ``None`` when MLMD cannot express it safely."""
    if "\\" in text or "\n" in text:
        return None  # MLMD's filter-to-SQL translation mishandles backslashes
    return "'" + text.replace("'", "\\'") + "'"


def _uri_variants(uri: str) -> list[str]:
    variants = [uri, uri.rstrip("/"), uri.rstrip("/") + "/"]
    if "://" not in uri and not os.path.isabs(uri):
        absolute = os.path.abspath(uri)
        variants += [absolute, absolute + "/"]
    if "://" not in uri:
        real = os.path.realpath(uri)
        variants += [real, real + "/"]
    return list(dict.fromkeys(v for v in variants if v))


#: MLMD ids are 64-bit signed integers; a larger number can name no artifact.
_MAX_ID = 2**63 - 1


def _by_id(raw: RawStore, store: Any, artifact_id: int) -> ArtifactNode:
    if not 0 < artifact_id <= _MAX_ID:
        raise ArtifactNotFoundError(
            f"artifact id {artifact_id} is out of range: ids are whole numbers from 1 to {_MAX_ID}; find the "
            "right id with `headwater artifacts list`"
        )
    found = raw.get_artifacts_by_id([artifact_id])
    if not found:
        raise ArtifactNotFoundError(
            f"no artifact with id {artifact_id} in {store_name(store)}; find the right id with "
            "`headwater artifacts list` (add --type/--pipeline/--run to narrow it down)"
        )
    return _artifact_nodes(raw, found)[0]


def resolve_artifact(store: Any, ref: ArtifactRef) -> ArtifactNode:
    """The artifact ``ref`` names: an id (``int`` or digits), a URI, or an object with ``.id``.

    Raises :class:`~headwater.metadata.errors.ArtifactNotFoundError` naming ``ref`` and what to do.
    """
    raw = raw_store(store)
    if isinstance(ref, bool):
        raise ArtifactNotFoundError(f"{ref!r} is not an artifact reference; pass an artifact id or URI")
    if isinstance(ref, int):
        return _by_id(raw, store, ref)
    if isinstance(ref, str | os.PathLike):
        text = os.fspath(ref).strip()
        if not text:
            raise ArtifactNotFoundError("empty artifact reference; pass an artifact id or URI")
        if text.isascii() and text.isdigit():
            return _by_id(raw, store, int(text))
        return _by_uri(raw, store, text)
    ref_id = getattr(ref, "id", None)
    if isinstance(ref_id, int) and ref_id > 0:
        return _by_id(raw, store, ref_id)
    raise ArtifactNotFoundError(
        f"{ref!r} has no artifact id (was it written to the store?); pass an artifact id or URI"
    )


def _by_uri(raw: RawStore, store: Any, uri: str) -> ArtifactNode:
    found: list[Proto] = []
    for variant in _uri_variants(uri):
        found = list(raw.get_artifacts_by_uri(variant))
        if found:
            break
    if not found:
        raise ArtifactNotFoundError(
            f"no artifact with URI {uri!r} in {store_name(store)}; pass the artifact id or its URI exactly "
            "as recorded (see `headwater artifacts list`)",
            artifact_uri=uri,
        )
    if len(found) > 1:
        nodes = _artifact_nodes(raw, found)
        listing = ", ".join(f"{n.label} ({n.state})" for n in nodes)
        raise ArtifactNotFoundError(
            f"URI {uri!r} is recorded for {len(nodes)} artifacts: {listing}; pass one of their ids instead",
            artifact_uri=uri,
        )
    return _artifact_nodes(raw, found)[0]


def find_pushed_model(store: Any, serving_path: str | os.PathLike[str]) -> ArtifactNode:
    """The ``PushedModel`` whose ``pushed_destination`` is ``serving_path`` (``<base>/<version>``).

    When several pushes name the same destination the newest wins. A push *base* directory raises an
    error that lists the versions pushed under it.
    """
    from ml_metadata.metadata_store import metadata_store

    raw = raw_store(store)
    path = os.fspath(serving_path)
    variants = _uri_variants(path)
    matches: list[ArtifactNode] = []
    literals = [_literal(v) for v in variants]
    if all(lit is not None for lit in literals):
        values = ", ".join(lit for lit in literals if lit is not None)
        for field in ("custom_properties", "properties"):
            query = f"type = 'PushedModel' AND {field}.{A_PUSHED_DESTINATION}.string_value IN ({values})"
            try:
                protos = raw.get_artifacts(list_options=metadata_store.ListOptions(filter_query=query))
            except Exception:  # e.g. 'pushed_destination' is not a declared property of the type
                continue
            matches += _artifact_nodes(raw, protos)
    else:
        wanted = set(variants)
        matches = [
            n for n in _artifact_nodes(raw, raw.get_artifacts_by_type("PushedModel"))
            if n.get(A_PUSHED_DESTINATION) in wanted
        ]
    if matches:
        return max(matches, key=lambda n: (n.create_time_ms or 0, n.id))
    base = path.rstrip("/") + "/"
    under = [
        n
        for n in _artifact_nodes(raw, raw.get_artifacts_by_type("PushedModel"))
        if str(n.get(A_PUSHED_DESTINATION, "")).startswith(base)
    ]
    if under:
        versions = ", ".join(
            f"{n.get(A_PUSHED_VERSION, str(n.get(A_PUSHED_DESTINATION)).rsplit('/', 1)[-1])} ({n.label})"
            for n in sorted(under, key=lambda n: n.id)
        )
        raise ArtifactNotFoundError(
            f"{path!r} is a push base directory, not a pushed model; versions pushed under it: {versions}. "
            f"Pass one version directory, e.g. {under[-1].get(A_PUSHED_DESTINATION)!r}",
            artifact_uri=path,
        )
    raise ArtifactNotFoundError(
        f"no artifact with id or URI {path!r} and no PushedModel pushed to it in {store_name(store)}; "
        "list pushes with `headwater artifacts list --type PushedModel`",
        artifact_uri=path,
    )


# ---------------------------------------------------------------------------------------- tracing
def _hops_for(depth: int | None) -> tuple[int, int | None]:
    """(hops to ask for, hops to keep): one extra hop shows whether the depth limit cut anything."""
    if depth is None:
        return MLMD_MAX_HOPS, None
    if depth < 0:
        raise ValueError(f"depth must be >= 0 (the number of executions to walk through), got {depth}")
    keep = 2 * depth
    return min(keep + 1, MLMD_MAX_HOPS), keep


def _subgraph_mlmd(
    raw: RawStore, artifact_id: int, direction: Literal["upstream", "downstream"], hops: int
) -> tuple[list[Proto], list[Proto], list[Proto]]:
    pb = _pb()

    options = pb.LineageSubgraphQueryOptions(
        max_num_hops=hops,
        direction=(
            pb.LineageSubgraphQueryOptions.UPSTREAM
            if direction == "upstream"
            else pb.LineageSubgraphQueryOptions.DOWNSTREAM
        ),
    )
    options.starting_artifacts.filter_query = f"id = {int(artifact_id)}"
    graph = raw.get_lineage_subgraph(options, ["artifacts", "executions", "events"])
    return list(graph.artifacts), list(graph.executions), list(graph.events)


def _subgraph_events(
    raw: RawStore, artifact_id: int, direction: Literal["upstream", "downstream"], hops: int
) -> tuple[list[Proto], list[Proto], list[Proto]]:
    """The same walk as MLMD's query, hop by hop over events (one batched read per hop)."""
    pb = _pb()

    names = pb.Event.Type.Name
    toward_artifact = OUTPUT_EVENT_TYPES if direction == "upstream" else INPUT_EVENT_TYPES
    toward_execution = INPUT_EVENT_TYPES if direction == "upstream" else OUTPUT_EVENT_TYPES
    artifacts, executions = {artifact_id}, set()
    events: dict[tuple[int, int, int], Proto] = {}
    frontier, on_artifacts = {artifact_id}, True
    for _ in range(hops):
        if not frontier:
            break
        found: set[int] = set()
        if on_artifacts:
            for ev in raw.get_events_by_artifact_ids(sorted(frontier)):
                if names(ev.type) in toward_artifact:
                    events[(ev.artifact_id, ev.execution_id, ev.type)] = ev
                    if ev.execution_id not in executions:
                        found.add(ev.execution_id)
            executions |= found
        else:
            for ev in raw.get_events_by_execution_ids(sorted(frontier)):
                if names(ev.type) in toward_execution:
                    events[(ev.artifact_id, ev.execution_id, ev.type)] = ev
                    if ev.artifact_id not in artifacts:
                        found.add(ev.artifact_id)
            artifacts |= found
        frontier, on_artifacts = found, not on_artifacts
    return (
        list(raw.get_artifacts_by_id(sorted(artifacts))),
        list(raw.get_executions_by_id(sorted(executions))) if executions else [],
        list(events.values()),
    )


def _distances(root: str, edges: Iterable[LineageEdge], direction: str) -> dict[str, int]:
    step: dict[str, list[str]] = {}
    for e in edges:
        a, b = (e.target, e.source) if direction == "upstream" else (e.source, e.target)
        step.setdefault(a, []).append(b)
    dist = {root: 0}
    queue = deque([root])
    while queue:
        key = queue.popleft()
        for nxt in step.get(key, ()):
            if nxt not in dist:
                dist[nxt] = dist[key] + 1
                queue.append(nxt)
    return dist


def _one_direction(
    raw: RawStore, root: ArtifactNode, direction: Literal["upstream", "downstream"], depth: int | None,
    method: Method,
) -> tuple[list[ArtifactNode], list[ExecutionNode], list[LineageEdge], list[str]]:
    ask, keep = _hops_for(depth)
    if method == "events":
        parts = _subgraph_events(raw, root.id, direction, ask)
    else:
        from ml_metadata import errors as mlmd_errors

        try:
            parts = _subgraph_mlmd(raw, root.id, direction, ask)
        except mlmd_errors.UnimplementedError:
            if method == "mlmd":
                raise
            parts = _subgraph_events(raw, root.id, direction, ask)
    artifacts = _artifact_nodes(raw, parts[0])
    executions = _execution_nodes(raw, parts[1])
    edges = [_edge(e) for e in parts[2]]
    dist = _distances(root.key, edges, direction)
    if keep is None:
        kept = dist
        frontier: list[str] = []
    else:
        kept = {k: d for k, d in dist.items() if d <= keep}
        frontier = sorted(
            {e.target if direction == "upstream" else e.source for e in edges
             if dist.get(e.source if direction == "upstream" else e.target, -1) == keep + 1}
            & {k for k, d in kept.items() if d == keep}
        )
    return (
        [a for a in artifacts if a.key in kept],
        [x for x in executions if x.key in kept],
        [e for e in edges if e.source in kept and e.target in kept],
        frontier,
    )


def trace(
    store: Any,
    artifact: ArtifactRef,
    *,
    direction: Direction = "upstream",
    depth: int | None = None,
    method: Method = "auto",
) -> LineageGraph:
    """The lineage of ``artifact``: ``upstream`` (what it was derived from), ``downstream`` or ``both``.

    ``depth`` counts executions along each path: ``depth=1`` upstream of a model is its trainer and the
    trainer's inputs; ``None`` walks as far as MLMD allows (100 hops, i.e. 50 executions deep).
    ``method="auto"`` uses MLMD's ``get_lineage_subgraph`` and falls back to walking events when the
    server does not implement it.
    """
    if direction not in ("upstream", "downstream", "both"):
        raise ValueError(f"direction must be 'upstream', 'downstream' or 'both', got {direction!r}")
    raw = raw_store(store)
    root = artifact if isinstance(artifact, ArtifactNode) else resolve_artifact(store, artifact)
    dirs: tuple[Literal["upstream", "downstream"], ...] = (
        ("upstream", "downstream") if direction == "both" else (direction,)
    )
    artifacts: dict[int, ArtifactNode] = {root.id: root}
    executions: dict[int, ExecutionNode] = {}
    edges: dict[tuple[int, int, str], LineageEdge] = {}
    frontier: list[str] = []
    for d in dirs:
        arts, execs, evs, front = _one_direction(raw, root, d, depth, method)
        artifacts.update((a.id, a) for a in arts)
        executions.update((x.id, x) for x in execs)
        edges.update(((e.artifact_id, e.execution_id, e.event_type), e) for e in evs)
        frontier += front
    return LineageGraph(
        root=root.key,
        direction=direction,
        depth=depth,
        artifacts=tuple(sorted(artifacts.values(), key=lambda a: a.id)),
        executions=tuple(sorted(executions.values(), key=lambda x: x.id)),
        edges=tuple(sorted(edges.values(), key=lambda e: (e.execution_id, e.artifact_id, e.event_type))),
        frontier=tuple(dict.fromkeys(frontier)),
    )


def upstream(store: Any, artifact: ArtifactRef, *, depth: int | None = None) -> LineageGraph:
    """Everything ``artifact`` was derived from: producing executions, their inputs, and so on."""
    return trace(store, artifact, direction="upstream", depth=depth)


def downstream(store: Any, artifact: ArtifactRef, *, depth: int | None = None) -> LineageGraph:
    """Everything derived from ``artifact``: consuming executions, their outputs, and so on."""
    return trace(store, artifact, direction="downstream", depth=depth)


# ---------------------------------------------------------------------------------------- contexts
def contexts_of_executions(store: Any, execution_ids: Sequence[int]) -> dict[int, dict[str, list[str]]]:
    """``{execution id: {context type: [names]}}``, e.g. ``{7: {"pipeline": ["penguin"], ...}}``.

    MLMD indexes associations by context, not by execution, so each lookup scans them; asking for all
    executions in one ``get_lineage_subgraph`` call (zero hops, associations only) pays that once per
    100 executions instead of once per execution.
    """
    raw = raw_store(store)
    pb = _pb()
    pairs: list[tuple[int, int]] = []
    ids = sorted(set(execution_ids))
    for start in range(0, len(ids), MLMD_MAX_STARTING_NODES):
        chunk = ids[start : start + MLMD_MAX_STARTING_NODES]
        options = pb.LineageSubgraphQueryOptions(max_num_hops=0)
        options.starting_executions.filter_query = f"id IN ({', '.join(str(int(i)) for i in chunk)})"
        graph = raw.get_lineage_subgraph(options, ["associations"])
        pairs += [(a.execution_id, a.context_id) for a in graph.associations]
    contexts = {c.id: c for c in raw.get_contexts_by_id(sorted({c for _, c in pairs}))} if pairs else {}
    names: dict[int, str] = {}
    if any(not c.type for c in contexts.values()):
        names = {t.id: t.name for t in raw.get_context_types_by_id(sorted({c.type_id for c in contexts.values()}))}
    out: dict[int, dict[str, list[str]]] = {i: {} for i in ids}
    for execution_id, context_id in sorted(pairs):
        ctx = contexts[context_id]
        kind = ctx.type or names.get(ctx.type_id, f"type#{ctx.type_id}")
        out[execution_id].setdefault(kind, []).append(ctx.name)
    return out


# ---------------------------------------------------------------------------------------- listing
def _context(raw: RawStore, store: Any, type_name: str, name: str, flag: str) -> Proto:
    found = raw.get_context_by_type_and_name(type_name, name)
    if found is not None:
        return found
    known = sorted(
        raw.get_contexts_by_type(type_name), key=lambda c: (c.create_time_since_epoch, c.id), reverse=True
    )
    # runs may be named by an unambiguous prefix of their id; pipelines only by their full name
    prefixed = [c for c in known if c.name.startswith(name)] if type_name == CONTEXT_RUN else []
    if len(prefixed) == 1:
        return prefixed[0]
    shown = prefixed or known
    listing = ", ".join(repr(c.name) for c in shown[:10]) + (" …" if len(shown) > 10 else "")
    what = "pipeline" if type_name == CONTEXT_PIPELINE else "run"
    hint = f"known {what}s (newest first): {listing}" if shown else f"the store has no {what}s yet"
    if len(prefixed) > 1:
        hint = f"{len(prefixed)} {what}s start with {name!r}: {listing}; give more of the name"
    raise MetadataError(f"{flag} {name!r}: no {what} of that name in {store_name(store)}; {hint}")


def list_artifacts(
    store: Any,
    type: str | None = None,
    pipeline: str | None = None,
    run: str | None = None,
    *,
    limit: int | None = None,
    newest_first: bool = False,
) -> list[ArtifactNode]:
    """Artifacts, optionally of one ``type`` and attributed to a ``pipeline`` and/or a ``run``.

    ``run`` is the run id (the ``pipeline_run`` context name) or an unambiguous prefix of it. Unknown
    types, pipelines and runs raise :class:`MetadataError` listing the known ones. Results are ordered
    by id (``newest_first`` reverses it); ``limit`` caps how many are returned.
    """
    from ml_metadata import errors as mlmd_errors
    from ml_metadata.metadata_store import metadata_store

    raw = raw_store(store)
    clauses: list[str] = []
    if type is not None:
        try:
            raw.get_artifact_type(type)
        except mlmd_errors.NotFoundError:
            known = sorted(t.name for t in raw.get_artifact_types() if not t.name.startswith("mlmd."))
            raise MetadataError(
                f"--type {type!r}: no artifact type of that name in {store_name(store)}; known types: "
                f"{', '.join(known) or '(none yet)'}"
            ) from None
        literal = _literal(type)
        if literal is None:
            raise MetadataError(f"--type {type!r}: type names with backslashes cannot be queried")
        clauses.append(f"type = {literal}")
    aliases = iter("abcdefgh")
    if pipeline is not None:
        ctx = _context(raw, store, CONTEXT_PIPELINE, pipeline, "--pipeline")
        clauses.append(f"contexts_{next(aliases)}.id = {ctx.id}")
    if run is not None:
        ctx = _context(raw, store, CONTEXT_RUN, run, "--run")
        clauses.append(f"contexts_{next(aliases)}.id = {ctx.id}")
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be >= 1 (or None for all), got {limit}")
    options = metadata_store.ListOptions(
        limit=limit,
        order_by=metadata_store.OrderByField.ID,
        is_asc=not newest_first,
        filter_query=" AND ".join(clauses) or None,
    )
    return _artifact_nodes(raw, raw.get_artifacts(list_options=options))
