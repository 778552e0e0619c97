"""Lineage over ML Metadata: trace artifacts up and down, explain pushes, render the answers.

::

    from headwater.metadata import connect
    from headwater.metadata.lineage import explain_push, render, upstream

    store = connect("sqlite:///pipeline_root/metadata.sqlite", readonly=True)
    graph = upstream(store, 42, depth=3)        # an id, a URI, or an artifact object
    print(render(graph, "text"))                # or "json", "dot", "mermaid", "html"
    print(explain_push(store, "/srv/models/penguin/7").to_text())

Works on stores written by headwater and by TFX (same MLMD conventions). Importing this package does
not import ``ml_metadata``; the query functions do, when called.
"""

from headwater.metadata.lineage.explain import (
    DataSource,
    EvaluationInfo,
    PushExplanation,
    PushInfo,
    StepInfo,
    Threshold,
    explain_push,
)
from headwater.metadata.lineage.graph import (
    ArtifactNode,
    Direction,
    ExecutionNode,
    LineageEdge,
    LineageGraph,
    LineageNode,
    deprecated_attribute,
)
from headwater.metadata.lineage.html import render_html
from headwater.metadata.lineage.query import (
    ArtifactRef,
    downstream,
    find_pushed_model,
    list_artifacts,
    resolve_artifact,
    trace,
    upstream,
)
from headwater.metadata.lineage.render import (
    FORMATS,
    render,
    render_dot,
    render_json,
    render_mermaid,
    render_text,
)

__all__ = [
    "FORMATS",
    "ArtifactNode",
    "ArtifactRef",
    "DataSource",
    "Direction",
    "EvaluationInfo",
    "ExecutionNode",
    "LineageEdge",
    "LineageGraph",
    "LineageNode",
    "PushExplanation",
    "PushInfo",
    "StepInfo",
    "Threshold",
    "downstream",
    "explain_push",
    "find_pushed_model",
    "list_artifacts",
    "render",
    "render_dot",
    "render_html",
    "render_json",
    "render_mermaid",
    "render_text",
    "resolve_artifact",
    "trace",
    "upstream",
]



def __getattr__(name: str) -> object:
    return deprecated_attribute(__name__, name)
