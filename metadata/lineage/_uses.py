"""Production and re-use: which recorded events made an artifact, and which only re-used or selected it.

MLMD records three kinds of executions with output events to an artifact (TFX and headwater alike):

* the execution that **made** it (``OUTPUT`` event, state ``COMPLETE``);
* ``CACHED`` executions of later runs that **re-used** it (``OUTPUT`` events to the same artifact, and
  ``INPUT`` events to the same inputs as the original);
* resolvers that **selected** it, e.g. a later run's latest-blessed-model resolver picking it as the
  baseline (``INTERNAL_OUTPUT`` events; older headwater stores wrote ``OUTPUT`` events and ``INPUT``
  events to the candidate they excluded).

A trace follows production only. Re-uses and selections are collected apart as
:class:`~headwater.metadata.lineage.graph.ArtifactUse` when asked for, attached to the run that did them.
Walking upstream, an artifact's uses are kept only when their run also consumed the artifact in the
traced history (so a later run never shows up in an earlier artifact's history); walking downstream,
every later use is part of what happened to the artifact.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from headwater.metadata.conventions import CONTEXT_PIPELINE, CONTEXT_RUN, P_RESOLVER_INPUTS
from headwater.metadata.lineage._records import _edge, _execution_nodes
from headwater.metadata.lineage.graph import (
    INPUT_EVENT_TYPES,
    ArtifactUse,
    ExecutionNode,
    LineageEdge,
)

__all__ = ["UseKind", "collect_uses", "production_edges", "use_kind"]

UseKind = Literal["cached", "resolver"]

#: Output events that mean "made it" when written by a non-cached, non-resolver execution.
_PRODUCTION_OUTPUTS = frozenset({"OUTPUT", "DECLARED_OUTPUT", "PENDING_OUTPUT"})
#: Output events that attach an artifact to a re-using or selecting execution.
_USE_OUTPUTS = frozenset({"OUTPUT", "DECLARED_OUTPUT", "INTERNAL_OUTPUT"})


def use_kind(execution: ExecutionNode, event_types: Iterable[str] = ()) -> UseKind | None:
    """``"cached"``, ``"resolver"`` or ``None`` (a producing execution) for ``execution``.

    ``event_types`` are the types of its events known to the caller: an ``INTERNAL_OUTPUT`` marks a
    resolver (TFX's ``Resolver`` and headwater's resolvers record their picks that way).
    """
    if execution.state == "CACHED":
        return "cached"
    if "INTERNAL_OUTPUT" in set(event_types) or P_RESOLVER_INPUTS in execution.parameters:
        return "resolver"
    if execution.short_type == "Resolver" or ".resolvers." in execution.type_name:
        return "resolver"
    return None


def _kinds(executions: Iterable[ExecutionNode], edges: Iterable[LineageEdge]) -> dict[int, UseKind | None]:
    types: dict[int, set[str]] = {}
    for e in edges:
        types.setdefault(e.execution_id, set()).add(e.event_type)
    return {x.id: use_kind(x, types.get(x.id, ())) for x in executions}


def production_edges(executions: Iterable[ExecutionNode], edges: Sequence[LineageEdge]) -> list[LineageEdge]:
    """The edges of ``edges`` that are production: inputs and outputs of executions that made something.

    Cached executions and resolvers are left out, and so is every ``INTERNAL_OUTPUT`` event.
    """
    kinds = _kinds(executions, edges)
    return [
        e for e in edges
        if kinds.get(e.execution_id) is None
        and (e.event_type in INPUT_EVENT_TYPES or e.event_type in _PRODUCTION_OUTPUTS)
    ]


def collect_uses(
    raw: Any,
    store: Any,
    artifact_ids: Sequence[int],
    production: Mapping[int, ExecutionNode],
    edges: Sequence[LineageEdge],
    *,
    upstream_only: set[int],
    kinds: set[UseKind],
) -> tuple[ArtifactUse, ...]:
    """The re-uses and selections (of ``kinds``) of ``artifact_ids`` in a traced graph.

    ``production`` are the graph's executions by id and ``edges`` its events. Artifacts in
    ``upstream_only`` belong to the history of the root: their uses are kept only when the use's run
    consumed the artifact in this graph (or, for executions without a run, happened before the last
    consumer did). Other artifacts keep every use.
    """
    from headwater.metadata.lineage.query import contexts_of_executions

    if not kinds or not artifact_ids:
        return ()
    events = [_edge(ev) for ev in raw.get_events_by_artifact_ids(sorted(set(artifact_ids)))]
    candidates = [e for e in events if e.execution_id not in production and e.event_type in _USE_OUTPUTS]
    if not candidates:
        return ()
    protos = raw.get_executions_by_id(sorted({e.execution_id for e in candidates}))
    executions = {x.id: x for x in _execution_nodes(raw, protos)}
    all_types: dict[int, set[str]] = {}
    for ev in raw.get_events_by_execution_ids(sorted(executions)):
        all_types.setdefault(ev.execution_id, set()).add(_edge(ev).event_type)
    found: dict[int, UseKind] = {}
    for xid, x in executions.items():
        kind = use_kind(x, all_types.get(xid, ()))
        if kind in kinds:
            found[xid] = kind
    if not found:
        return ()
    contexts = contexts_of_executions(store, sorted(set(found) | set(production)))

    def first(xid: int, kind: str) -> str | None:
        names = contexts.get(xid, {}).get(kind)
        return names[0] if names else None

    consumers: dict[int, list[ExecutionNode]] = {}
    for e in edges:
        if e.event_type in INPUT_EVENT_TYPES and e.execution_id in production:
            consumers.setdefault(e.artifact_id, []).append(production[e.execution_id])
    uses: dict[tuple[int, int], ArtifactUse] = {}
    for e in candidates:
        kind = found.get(e.execution_id)
        if kind is None:
            continue
        x = executions[e.execution_id]
        run = first(x.id, CONTEXT_RUN)
        if e.artifact_id in upstream_only:
            readers = consumers.get(e.artifact_id, [])
            if run is not None:
                if run not in {first(r.id, CONTEXT_RUN) for r in readers}:
                    continue
            elif not readers or (x.create_time_ms or 0) > max(r.create_time_ms or 0 for r in readers):
                continue
        key = (e.artifact_id, x.id)
        if key in uses:  # one use per artifact and execution, all its keys together
            old = uses[key]
            uses[key] = ArtifactUse(old.artifact_id, old.execution, old.kind, old.path + e.path, old.run,
                                    old.pipeline)
        else:
            uses[key] = ArtifactUse(e.artifact_id, x, kind, e.path, run, first(x.id, CONTEXT_PIPELINE))
    return tuple(sorted(uses.values(), key=lambda u: (u.artifact_id, u.execution.create_time_ms or 0,
                                                      u.execution.id)))
