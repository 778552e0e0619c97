"""Resolvers: nodes that pick existing artifacts from ML Metadata instead of producing new ones.

They run in the orchestrator with read access to the store, like any other node (an execution with
OUTPUT events to the artifacts they chose is recorded), so the runner has no special cases for them::

    latest = LatestBlessedModel()                       # outputs.model: [] on the first run
    window = SpanRange(examples=ingest.outputs.examples, spans=3)    # outputs.examples: up to 3 spans
    previous = LatestArtifact(types.Schema, producer="Ingest")

* :data:`LatestBlessedModel` — TFX's latest-blessed-model strategy: among the pipeline's LIVE ``Model``
  artifacts, the newest one that a ``ModelBlessing`` of the same pipeline blessed (``blessed=1`` and
  ``current_model_id`` = that model). Outputs ``model`` and its ``model_blessing`` (both empty if none).
  ``exclude=`` a channel of models (usually the candidate) leaves those out, so a model is never its own
  baseline and a re-run with a cached Train sees the same baseline as the first run did.
* :func:`LatestArtifact` — the newest LIVE artifact of a type, optionally only from one producer node
  and output key.
* :data:`SpanRange` — the latest ``spans`` spans of the Examples that one producer (the node behind the
  ``examples`` channel) has written, the newest version of each, oldest span first: a rolling window for
  retraining.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any, cast

from headwater.components._validated import blocked_by_validation
from headwater.components.api import Channel, Component, Input, Node, OutputSpec, ResolverContext, resolver
from headwater.components.errors import ParameterError
from headwater.metadata import types
from headwater.metadata.artifact import Artifact, ArtifactState
from headwater.metadata.conventions import (
    A_BLESSED,
    A_CURRENT_MODEL_ID,
    CONTEXT_NODE,
    CONTEXT_PIPELINE,
    node_context_name,
)

__all__ = ["LatestArtifact", "LatestBlessedModel", "SpanRange", "latest_blessed_model"]


# ---------------------------------------------------------------------------- MLMD queries
def _pipeline_context(ctx: ResolverContext) -> Any | None:
    return ctx.store.mlmd.get_context_by_type_and_name(CONTEXT_PIPELINE, ctx.pipeline_name)


def _live(protos: Iterable[Any]) -> list[Any]:
    return [p for p in protos if p.state == int(ArtifactState.LIVE)]


def _artifacts_of_type(ctx: ResolverContext, type_name: str) -> list[Any]:
    """LIVE artifacts of ``type_name`` attributed to this pipeline (protos, newest id last)."""
    pipeline = _pipeline_context(ctx)
    if pipeline is None:
        return []
    mlmd = ctx.store.mlmd
    try:
        found = mlmd.get_artifacts_by_context(pipeline.id, list_options=_type_filter(type_name))
    except Exception:  # an MLMD without filter queries: filter here
        atype = _artifact_type_id(ctx, type_name)
        found = [a for a in mlmd.get_artifacts_by_context(pipeline.id) if a.type_id == atype]
    return sorted(_live(found), key=lambda a: a.id)


def _type_filter(type_name: str) -> Any:
    from ml_metadata.metadata_store import metadata_store

    return metadata_store.ListOptions(filter_query=f"type = '{type_name}'")


def _artifact_type_id(ctx: ResolverContext, type_name: str) -> int | None:
    try:
        return int(ctx.store.mlmd.get_artifact_type(type_name).id)
    except Exception:  # type never registered: nothing of it exists
        return None


def _int_property(proto: Any, key: str) -> int | None:
    if key not in proto.custom_properties:
        return None
    value = proto.custom_properties[key]
    kind = value.WhichOneof("value")
    if kind == "int_value":
        return int(value.int_value)
    if kind == "double_value" and float(value.double_value).is_integer():
        return int(value.double_value)
    if kind == "bool_value":
        return int(value.bool_value)
    if kind == "string_value" and value.string_value.strip().lstrip("-").isdigit():
        return int(value.string_value)
    return None


def _outputs_of(ctx: ResolverContext, node_id: str, key: str | None) -> set[int]:
    """Ids of the artifacts node ``node_id`` of this pipeline output (under ``key``), cached runs included."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    mlmd = ctx.store.mlmd
    node_ctx = mlmd.get_context_by_type_and_name(CONTEXT_NODE, node_context_name(ctx.pipeline_name, node_id))
    if node_ctx is None:
        return set()
    executions = [e.id for e in mlmd.get_executions_by_context(node_ctx.id)]
    if not executions:
        return set()
    ids = set()
    for event in mlmd.get_events_by_execution_ids(executions):
        if event.type != pb.Event.OUTPUT:
            continue
        event_key = next((s.key for s in event.path.steps if s.HasField("key")), None)
        if key is None or event_key == key:
            ids.add(event.artifact_id)
    return ids


def _producers(ctx: ResolverContext, artifact_ids: Sequence[int]) -> set[tuple[str, str]]:
    """``(node_id, output_key)`` pairs that output these artifacts in this pipeline."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    mlmd = ctx.store.mlmd
    pairs: set[tuple[str, str]] = set()
    events = [e for e in mlmd.get_events_by_artifact_ids(list(artifact_ids)) if e.type == pb.Event.OUTPUT]
    by_execution = {e.execution_id: next((s.key for s in e.path.steps if s.HasField("key")), "") for e in events}
    prefix = node_context_name(ctx.pipeline_name, "")
    node_type = mlmd.get_context_type(CONTEXT_NODE)
    for execution_id, key in by_execution.items():
        for context in mlmd.get_contexts_by_execution(execution_id):
            if context.type_id == node_type.id and context.name.startswith(prefix):
                pairs.add((context.name[len(prefix):], key))
    return pairs


def latest_blessed_model(ctx: ResolverContext, exclude: Iterable[int] = ()) -> tuple[Artifact, Artifact] | None:
    """``(model, blessing)`` for the newest blessed Model of the pipeline (TFX semantics), or ``None``."""
    excluded = set(exclude)
    blessed: dict[int, Any] = {}
    for blessing in _artifacts_of_type(ctx, types.ModelBlessing.TYPE_NAME):
        model_id = _int_property(blessing, A_CURRENT_MODEL_ID)
        if _int_property(blessing, A_BLESSED) == 1 and model_id is not None:
            blessed.setdefault(model_id, blessing)
    if not blessed:
        return None
    for model in reversed(_artifacts_of_type(ctx, types.Model.TYPE_NAME)):  # newest first
        if model.id in blessed and model.id not in excluded:
            return ctx.store.from_proto(model), ctx.store.from_proto(blessed[model.id])
    return None


# ---------------------------------------------------------------------------- resolver nodes
@resolver(outputs={"model": types.Model, "model_blessing": types.ModelBlessing})
def LatestBlessedModel(
    ctx: ResolverContext,
    exclude: Input[list[types.Model]] | None = None,
) -> dict[str, list[Artifact]]:
    """The newest Model of this pipeline with a ModelBlessing ``blessed=1`` for it (TFX's strategy)."""
    found = latest_blessed_model(ctx, [a.id for a in exclude or [] if a.id is not None])
    if found is None:
        return {"model": [], "model_blessing": []}
    model, blessing = found
    return {"model": [model], "model_blessing": [blessing]}


@resolver(outputs={"examples": types.Examples})
def SpanRange(
    ctx: ResolverContext,
    examples: Input[types.Examples],
    spans: int = 2,
    output_key: str | None = None,
) -> dict[str, list[Artifact]]:
    """The latest ``spans`` spans written by the producer of ``examples``: newest version each, oldest first.

    Spans whose data a Validate node blocked are left out.

    The ``examples`` channel says whose spans to take (and orders this node after it, so the span that
    node just wrote is included). Examples without a ``span`` count as span 0.
    """
    if spans < 1:
        raise ParameterError(f"SpanRange: spans={spans}; give the number of latest spans to keep (1 or more)")
    if examples is None or examples.id is None:
        return {"examples": []}
    pairs = _producers(ctx, [examples.id])
    ids: set[int] = {examples.id}
    for node_id, key in pairs:
        ids |= _outputs_of(ctx, node_id, output_key or key)
    ids -= blocked_by_validation(ctx.store, ids - {examples.id})  # spans a Validate blocked stay out
    protos = _live(ctx.store.mlmd.get_artifacts_by_id(sorted(ids)))
    latest: dict[int, Artifact] = {}
    for art in sorted((ctx.store.from_proto(p) for p in protos), key=lambda a: (a.properties["version"] or 0, a.id)):
        if art.type_name != types.Examples.TYPE_NAME:
            continue
        latest[int(art.properties["span"] or 0)] = art  # later (higher version, newer id) wins
    window = sorted(latest)[-spans:]
    return {"examples": [latest[s] for s in window]}


@resolver(outputs={"artifact": Artifact})  # the output type is set per node by LatestArtifact()
def _latest_artifact(
    ctx: ResolverContext,
    artifact_type: str,
    producer: str | None = None,
    output_key: str | None = None,
) -> dict[str, list[Artifact]]:
    candidates = _artifacts_of_type(ctx, artifact_type)
    if producer is not None:
        allowed = _outputs_of(ctx, producer, output_key)
        candidates = [c for c in candidates if c.id in allowed]
    return {"artifact": [ctx.store.from_proto(candidates[-1])] if candidates else []}


def LatestArtifact(
    artifact_type: type[Artifact] | Channel,
    *,
    producer: str | None = None,
    output_key: str | None = None,
) -> Node:
    """A resolver node whose ``artifact`` output is the newest LIVE artifact of ``artifact_type``.

    ``producer`` (a node id) and ``output_key`` narrow it to what that node output. Given a channel
    (``LatestArtifact(ingest.outputs.schema)``) it takes type, producer and key from the channel —
    without depending on that node in this run: it picks what exists when it runs (to use this run's
    output, connect the channel itself instead).
    """
    chosen: Any = artifact_type
    if isinstance(chosen, Channel):
        producer = producer or chosen.producer
        output_key = output_key or chosen.key
        chosen = chosen.type
    if not (isinstance(chosen, type) and issubclass(chosen, Artifact)) or chosen is Artifact:
        raise ParameterError(
            f"LatestArtifact needs an artifact type such as types.Model (or a channel), got {chosen!r}"
        )
    type_name = cast(type[Artifact], chosen).TYPE_NAME
    spec = replace(
        _latest_artifact.spec,
        name="LatestArtifact",
        qualified_name=f"{__name__}.LatestArtifact",
        outputs={"artifact": OutputSpec("artifact", chosen)},
    )
    comp = Component(_latest_artifact.fn, spec)
    params: dict[str, Any] = {"artifact_type": type_name}
    if producer is not None:
        params["producer"] = producer
    if output_key is not None:
        params["output_key"] = output_key
    return comp(**params)
