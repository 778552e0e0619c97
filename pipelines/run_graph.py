"""What a run's pages need before its nodes run: the node graph, the experiment and a ``running`` status.

The launcher calls :func:`record_run_start` once per run, so a dashboard reading MLMD alone can draw nodes
that have not started yet (as pending) and group runs by experiment. The names are in
:mod:`headwater.metadata.conventions` (``CONTEXT_EXPERIMENT``, ``RUN_GRAPH``, ``RUN_EXPERIMENT``, ``RUN_STATUS``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from headwater.metadata.conventions import CONTEXT_EXPERIMENT, RUN_EXPERIMENT, RUN_GRAPH, RUN_STATUS, RunStatus
from headwater.metadata.store import MetadataStore, to_value
from headwater.pipelines.pipeline import Pipeline

__all__ = ["pipeline_graph", "record_run_start"]


def pipeline_graph(pipeline: Pipeline) -> dict[str, Any]:
    """The pipeline's nodes (id, component, kind) and its edges labelled with the artifacts they carry."""
    nodes = []
    edges = []
    for nid in pipeline.node_ids:
        node = pipeline.node(nid)
        spec = node.component.spec
        nodes.append({"id": nid, "component": spec.qualified_name, "kind": spec.kind,
                      "outputs": {k: o.type.TYPE_NAME for k, o in spec.outputs.items()}})
        for key, bound in node.inputs.items():
            for ch in bound if isinstance(bound, list) else [bound]:
                edges.append({"source": ch.producer, "target": nid, "output": ch.key, "input": key,
                              "type": ch.type.TYPE_NAME})
    return {"nodes": nodes, "edges": edges}


def record_run_start(store: MetadataStore, run_ctx: Any, pipeline: Pipeline, experiment: str | None,
                     link_parent: Callable[[Any, Any], None]) -> Any:
    """Write the graph, experiment and ``running`` status on a new run context; return the experiment context.

    A run context that already holds a graph (a re-attached or per-task orchestrator) is left as it is.
    """
    name = experiment or pipeline.name
    exp_ctx = store.context(CONTEXT_EXPERIMENT, name)
    link_parent(run_ctx, exp_ctx)
    if RUN_GRAPH in run_ctx.custom_properties:
        return exp_ctx
    to_value(json.dumps(pipeline_graph(pipeline), sort_keys=True), run_ctx.custom_properties[RUN_GRAPH])
    to_value(name, run_ctx.custom_properties[RUN_EXPERIMENT])
    if RUN_STATUS not in run_ctx.custom_properties:
        to_value(str(RunStatus.RUNNING), run_ctx.custom_properties[RUN_STATUS])
    store.mlmd.put_contexts([run_ctx])
    return exp_ctx
