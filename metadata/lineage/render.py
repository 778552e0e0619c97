"""Render lineage graphs and push explanations: text tree, JSON, Graphviz DOT, Mermaid, HTML.

``render(graph, "dot")`` returns a string for any format in :data:`FORMATS`; ``render(explanation,
"text")`` does the same for a :class:`~headwater.metadata.lineage.explain.PushExplanation` (its graph is
drawn for the graph formats, with the explanation as a caption in HTML).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from headwater.metadata.lineage.graph import (
    ArtifactNode,
    ArtifactUse,
    ExecutionNode,
    LineageEdge,
    LineageGraph,
    LineageNode,
)

if TYPE_CHECKING:
    from headwater.metadata.lineage.explain import PushExplanation, StepInfo

__all__ = [
    "FORMATS",
    "display_graph",
    "explanation_text",
    "render",
    "render_dot",
    "render_json",
    "render_mermaid",
    "render_text",
    "short_uri",
]

FORMATS = ("text", "json", "dot", "mermaid", "html")

#: Properties worth showing next to an artifact in compact views.
NOTABLE = ("span", "version", "blessed", "pushed", "pushed_version")

STATE_COLORS = {
    # state: (fill, stroke)
    "LIVE": ("#e7f5ea", "#2e7d32"),
    "PENDING": ("#fff6db", "#b7860b"),
    "MARKED_FOR_DELETION": ("#eeeeee", "#757575"),
    "DELETED": ("#eeeeee", "#9e9e9e"),
    "ABANDONED": ("#f3e5e5", "#8d6e63"),
    "REFERENCE": ("#eef3fb", "#5c6bc0"),
    "COMPLETE": ("#e4eefb", "#1f5fbf"),
    "CACHED": ("#eef4f9", "#6b8fb3"),
    "RUNNING": ("#fff6db", "#b7860b"),
    "NEW": ("#fff6db", "#b7860b"),
    "FAILED": ("#fde7e7", "#c62828"),
    "CANCELED": ("#eeeeee", "#757575"),
}
DEFAULT_COLORS = ("#f5f5f5", "#616161")


def short_uri(uri: str, width: int = 48) -> str:
    """``uri`` shortened in the middle to at most ``width`` characters."""
    if len(uri) <= width:
        return uri
    keep = width - 1
    head = keep // 3
    return uri[:head] + "…" + uri[len(uri) - (keep - head):]


def _notable(artifact: ArtifactNode) -> str:
    bits = [f"{k}={artifact.get(k)}" for k in NOTABLE if artifact.get(k) is not None]
    return " ".join(bits)


def _time(node: LineageNode) -> str:
    t = node.create_time
    return t.strftime("%Y-%m-%d %H:%M:%S") + "Z" if t else ""


def _artifact_line(a: ArtifactNode) -> str:
    return "  ".join(x for x in (a.label, a.state, a.uri, _notable(a)) if x)


def _execution_line(x: ExecutionNode) -> str:
    return "  ".join(s for s in (x.label, x.state, _time(x)) if s)


def _use_line(use: ArtifactUse) -> str:
    """``reused by Train #9  CACHED  2024-…Z as model (run R)``: a re-use or selection, never a producer."""
    x = use.execution
    text = f"{use.verb} {_execution_line(x)}" + (f" as {use.label}" if use.label else "")
    return text + (f" (run {use.run})" if use.run else "")


def display_graph(graph: LineageGraph) -> LineageGraph:
    """``graph`` with its :attr:`~LineageGraph.uses` drawn in: each re-using or selecting execution as a
    node, reached by a ``REUSED`` / ``SELECTED`` edge *from* the artifact (so it is never drawn as the
    artifact's producer). The graph formats (dot, mermaid, html) draw this."""
    if not graph.uses:
        return graph
    known = {x.id for x in graph.executions}
    extra = {u.execution.id: u.execution for u in graph.uses if u.execution.id not in known}
    return LineageGraph(
        root=graph.root, direction=graph.direction, depth=graph.depth, artifacts=graph.artifacts,
        executions=tuple(sorted((*graph.executions, *extra.values()), key=lambda x: x.id)),
        edges=graph.edges + tuple(u.edge() for u in graph.uses), frontier=graph.frontier, uses=graph.uses,
    )


def _use_keys(graph: LineageGraph) -> set[str]:
    return {u.execution.key for u in graph.uses}


def _verb(edge: LineageEdge) -> str:
    if edge.event_type == "OUTPUT":
        return f"wrote {edge.label}"
    if edge.event_type == "INPUT":
        return f"read {edge.label}"
    return f"{edge.event_type.lower().replace('_', ' ')} {edge.label}"


# ---------------------------------------------------------------------------------------- text
def _tree(graph: LineageGraph, direction: str) -> list[str]:
    """The graph as a tree: every node is expanded once, under the node that reaches it first (BFS), so
    a node's indentation is its distance from the root; other mentions point above or below."""
    root = graph.root_node
    lines = [_artifact_line(root) if isinstance(root, ArtifactNode) else _execution_line(root)]
    frontier = set(graph.frontier)

    def edges_of(key: str) -> list[LineageEdge]:
        edges = graph.in_edges(key) if direction == "upstream" else graph.out_edges(key)
        return sorted(edges, key=lambda e: (e.execution_id, e.artifact_id))

    def other_end(edge: LineageEdge) -> str:
        return edge.source if direction == "upstream" else edge.target

    tree_parent: dict[str, str] = {graph.root: ""}
    queue = deque([graph.root])
    while queue:
        key = queue.popleft()
        for edge in edges_of(key):
            nxt = other_end(edge)
            if nxt not in tree_parent:
                tree_parent[nxt] = key
                queue.append(nxt)
    expanded: set[str] = {graph.root}

    def visit(key: str, prefix: str) -> None:
        items: list[tuple[str, str | None]] = []
        for edge in edges_of(key):
            node = graph.node(other_end(edge))
            if isinstance(node, ExecutionNode):
                text = f"{_execution_line(node)}  ({_verb(edge)})"
            else:
                text = f"{edge.label}: {_artifact_line(node)}"
            items.append((text, node.key))
        if key.startswith("artifact:"):
            items += [(_use_line(u), None) for u in graph.uses_of(key)]
        if key in frontier:
            items.append((f"… more {direction} (raise --depth to see it)", None))
        for i, (text, other) in enumerate(items):
            last = i == len(items) - 1
            branch, indent = ("└── ", "    ") if last else ("├── ", "│   ")
            if other is None:
                lines.append(f"{prefix}{branch}{text}")
            elif other in expanded or tree_parent.get(other) != key:
                where = "above" if other in expanded else "below"
                more = edges_of(other) or other in frontier
                lines.append(f"{prefix}{branch}{text}" + (f"  (see {where})" if more else ""))
            else:
                lines.append(f"{prefix}{branch}{text}")
                expanded.add(other)
                visit(other, prefix + indent)

    visit(graph.root, "")
    return lines


def _uses_summary(graph: LineageGraph) -> str:
    cached = sum(1 for u in graph.uses if u.kind == "cached")
    selected = len(graph.uses) - cached
    parts = [f"{cached} cached re-use{'s' if cached != 1 else ''}"] if cached else []
    parts += [f"{selected} resolver selection{'s' if selected != 1 else ''}"] if selected else []
    return " and ".join(parts)


def render_text(graph: LineageGraph) -> str:
    """A readable tree from the root: what it came from (upstream) and/or what came from it."""
    directions = ("upstream", "downstream") if graph.direction == "both" else (graph.direction,)
    depth = "unlimited" if graph.depth is None else str(graph.depth)
    head = (f"{graph.direction} lineage of {graph.root_node.label} (depth {depth}): "
            f"{len(graph.artifacts)} artifacts, {len(graph.executions)} executions"
            + (f", {_uses_summary(graph)}" if graph.uses else ""))
    out = [head, ""]
    for d in directions:
        if len(directions) > 1:
            out.append(f"{d}:")
        out += _tree(graph, d)
        out.append("")
    return "\n".join(out).rstrip() + "\n"


# ---------------------------------------------------------------------------------------- json
def render_json(graph: LineageGraph) -> str:
    return graph.to_json(indent=2) + "\n"


# ---------------------------------------------------------------------------------------- dot
def _dot_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _node_lines(node: LineageNode) -> list[str]:
    if isinstance(node, ArtifactNode):
        notable = _notable(node)
        return [node.label, node.state, short_uri(node.uri, 40)] + ([notable] if notable else [])
    return [node.label, node.state, _time(node)]


def render_dot(graph: LineageGraph) -> str:
    """Graphviz DOT (``dot -Tsvg``): artifacts as ellipses, executions as boxes, colored by state.

    Re-uses and selections (``graph.uses``) are dashed boxes reached by dashed edges from the artifact."""
    uses = _use_keys(graph)
    graph = display_graph(graph)
    lines = [
        "digraph lineage {",
        "  rankdir=LR;",
        '  graph [fontname="Helvetica", label=' + _dot_str(f"{graph.direction} lineage of "
                                                          f"{graph.root_node.label}") + ", labelloc=t];",
        '  node [fontname="Helvetica", fontsize=10, style=filled];',
        '  edge [fontname="Helvetica", fontsize=9, color="#555555"];',
    ]
    frontier = set(graph.frontier)
    for node in graph.topological_order():
        fill, stroke = STATE_COLORS.get(node.state, DEFAULT_COLORS)
        attrs = {
            "label": _dot_str("\n".join(x for x in _node_lines(node) if x)),
            "shape": "ellipse" if isinstance(node, ArtifactNode) else "box",
            "fillcolor": _dot_str(fill),
            "color": _dot_str(stroke),
            "tooltip": _dot_str(node.uri if isinstance(node, ArtifactNode) else node.type_name),
        }
        styles = ["filled"] + (["rounded"] if isinstance(node, ExecutionNode) else [])
        if node.key in frontier or node.key in uses:
            styles.append("dashed")
        attrs["style"] = _dot_str(",".join(styles))
        if node.key == graph.root:
            attrs["penwidth"] = "2.5"
        lines.append(f"  {_dot_str(node.key)} [" + ", ".join(f"{k}={v}" for k, v in attrs.items()) + "];")
    for edge in graph.edges:
        attrs = {"label": _dot_str(edge.label)}
        if edge.event_type not in ("INPUT", "OUTPUT"):
            attrs["style"] = "dashed"
        lines.append(f"  {_dot_str(edge.source)} -> {_dot_str(edge.target)} ["
                     + ", ".join(f"{k}={v}" for k, v in attrs.items()) + "];")
    lines.append("}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------- mermaid
def _mm_id(key: str) -> str:
    kind, _, num = key.partition(":")
    return f"{kind[0]}{num}"


def _mm_text(text: str) -> str:
    out = text
    for raw, entity in (("&", "#amp;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;")):
        out = out.replace(raw, entity)
    return out


def render_mermaid(graph: LineageGraph) -> str:
    """A Mermaid ``flowchart`` (renders in GitHub/GitLab Markdown and the Mermaid live editor)."""
    uses = _use_keys(graph)
    graph = display_graph(graph)
    lines = ["flowchart LR"]
    used_states: dict[str, list[str]] = {}
    for node in graph.topological_order():
        label = "<br/>".join(_mm_text(x) for x in _node_lines(node) if x)
        nid = _mm_id(node.key)
        lines.append(f'  {nid}(["{label}"])' if isinstance(node, ArtifactNode) else f'  {nid}["{label}"]')
        used_states.setdefault(node.state, []).append(nid)
    for edge in graph.edges:
        arrow = "-->" if edge.event_type in ("INPUT", "OUTPUT") else "-.->"
        lines.append(f'  {_mm_id(edge.source)} {arrow}|"{_mm_text(edge.label)}"| {_mm_id(edge.target)}')
    for state, ids in sorted(used_states.items()):
        fill, stroke = STATE_COLORS.get(state, DEFAULT_COLORS)
        lines.append(f"  classDef {state.lower()} fill:{fill},stroke:{stroke},color:#1b1b1b")
        lines.append(f"  class {','.join(ids)} {state.lower()}")
    lines.append(f"  style {_mm_id(graph.root)} stroke-width:3px")
    dashed = [*graph.frontier, *sorted(uses)]
    if dashed:
        lines.append("  classDef frontier stroke-dasharray:4 3")
        lines.append(f"  class {','.join(_mm_id(k) for k in dashed)} frontier")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------- explain
def _value(value: Any, width: int = 100) -> str:
    text = json.dumps(value, sort_keys=True) if isinstance(value, dict | list) else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _step_lines(title: str, step: StepInfo | None, *, skip: Iterable[str] = ()) -> list[str]:
    if step is None:
        return [f"{title}: (not recorded)"]
    x = step.execution
    where = ", ".join(
        f"{k} {v}" for k, v in (("pipeline", step.pipeline), ("run", step.run)) if v
    )
    out = [f"{title}: {x.label} {x.state} at {_time(x)}" + (f" ({where})" if where else "")]
    out.append(f"  component: {x.type_name}")
    if step.reused_by:
        out.append("  reused by: " + ", ".join(
            f"{e.label} {e.state} at {_time(e)}" for e in step.reused_by))
    params = {k: v for k, v in step.parameters.items() if k not in step.code and k not in set(skip)}
    if params:
        out.append("  parameters:")
        out += [f"    {k} = {_value(v)}" for k, v in sorted(params.items())]
    if step.code:
        out.append("  code:")
        out += [f"    {k} = {_value(v, 140)}" for k, v in sorted(step.code.items())]
    if step.inputs:
        out.append("  inputs:")
        out += [f"    {k}: {a.label} {a.uri}" for k, a in step.inputs]
    shown = {k: step.recorded[k] for k in _RECORDED if k in step.recorded}
    if shown:
        out.append("  recorded: " + ", ".join(f"{k} {_value(v, 70)}" for k, v in shown.items()))
    return out


#: headwater's launcher bookkeeping worth a line in an explanation
_RECORDED = ("duration_s", "cached_from", "log_path", "cache_key")


def explanation_text(explanation: PushExplanation) -> str:
    """The push explanation as readable sections: push, model, data, transform, training, evaluation."""
    e = explanation
    p = e.push
    pushed = {True: "pushed", False: "NOT pushed (pushed=0)", None: "push state not recorded"}[p.pushed]
    out = [f"Push of {p.pushed_model.label}: {pushed}" + (f": {p.skipped_because}" if p.skipped_because else "")]
    if p.destination:
        out.append(f"  destination: {p.destination}" + (f" (version {p.version})" if p.version else ""))
    out.append(f"  when: {_time(p.pushed_model)}")
    if p.step:
        where = ", ".join(f"{k} {v}" for k, v in (("pipeline", p.step.pipeline), ("run", p.step.run)) if v)
        by = f"  by: {p.step.execution.label} {p.step.execution.state}"
        out.append(by + (f" ({where})" if where else ""))
        out += [f"  {k} = {_value(v)}" for k, v in sorted(p.step.parameters.items())]
    out.append(f"  artifact: {p.pushed_model.uri}")
    out.append("")
    out.append(f"Model: {e.model.label} {e.model.state} {e.model.uri}" if e.model else "Model: (unknown)")
    out.append("")
    out.append("Data:" if e.data else "Data: (no ingested Examples found)")
    for d in e.data:
        bits = [f"span {d.span}" if d.span is not None else "span -",
                f"version {d.version}" if d.version is not None else "version -"]
        if d.split_names:
            bits.append("splits " + ", ".join(d.split_names))
        if d.used_for:
            bits.append("used for " + " and ".join(d.used_for))
        out.append(f"  - {d.examples.label} ({'; '.join(bits)}) {d.examples.uri}")
        if d.fingerprint:
            out.append(f"    fingerprint: {d.fingerprint}")
        if d.ingest:
            x = d.ingest.execution
            out.append(f"    ingested by {x.label} {x.state} at {_time(x)}"
                       + (f" (run {d.ingest.run})" if d.ingest.run else ""))
            for k, v in sorted(d.ingest.parameters.items()):
                if k != "input_fingerprint":
                    out.append(f"      {k} = {_value(v)}")
        out += _validation_lines(d.validation)
    out.append("")
    out += _step_lines("Transform", e.transform)
    out.append("")
    out += _step_lines("Training", e.training)
    out.append("")
    ev = e.evaluation
    if ev is None:
        out.append("Evaluation: (no blessing gated this push)")
    else:
        out += _step_lines("Evaluation", ev.step)
        if ev.evaluation:
            out.append(f"  evaluation: {ev.evaluation.label} {ev.evaluation.uri}")
        out.append("  metrics: " + (", ".join(f"{k} = {_value(v)}" for k, v in sorted(ev.metrics.items()))
                                    if ev.metrics else "(not recorded in the store)"))
        if ev.thresholds:
            out.append("  thresholds:")
            out += [f"    {t.describe()}" for t in ev.thresholds]
        else:
            out.append("  thresholds: (none configured)")
        verdict = {True: "BLESSED", False: "NOT BLESSED", None: "unknown"}[ev.blessed]
        if ev.blessing:
            out.append(f"  blessing: {ev.blessing.label} {verdict}" + (f": {ev.message}" if ev.message else ""))
        if ev.candidate:
            out.append(f"  candidate: {ev.candidate.label} {ev.candidate.uri}")
        if ev.baseline is not None:
            same = " (the candidate itself: its training was reused from cache)" if (
                ev.candidate is not None and ev.candidate.id == ev.baseline.id) else ""
            beat = "beat baseline" if ev.blessed else "compared against baseline"
            out.append(f"  {beat}: {ev.baseline.label} {ev.baseline.uri}{same}")
        elif ev.baseline_uri:
            out.append(f"  baseline: {ev.baseline_uri}")
        else:
            out.append("  baseline: none (no earlier blessed model to compare with)")
    if e.notes:
        out.append("")
        out.append("Notes:")
        out += [f"  - {n}" for n in e.notes]
    return "\n".join(out) + "\n"


def _validation_lines(validations: Iterable[Mapping[str, Any]]) -> list[str]:
    """A data source's validations: verdict, then every recorded drift/skew value."""
    out = []
    for v in validations:
        passed = v.get("passed")
        verdict = "passed" if passed == 1 else "BLOCKED" if passed == 0 else "verdict not recorded"
        counts = f" ({v.get('anomaly_count', 0)} blocking, {v.get('warning_count', 0)} warnings)"
        out.append(f"    validated: {verdict}{counts} — {v.get('label', v['anomalies'])} {v['uri']}")
        for rule in ("drift", "skew"):
            for feature, values in sorted((v.get(rule) or {}).items()):
                shown = ", ".join(f"{m} {_value(x)}" for m, x in sorted(values.items()))
                out.append(f"      {rule} {feature}: {shown}")
    return out


# ---------------------------------------------------------------------------------------- dispatch
def render(subject: LineageGraph | PushExplanation, fmt: str = "text") -> str:
    """Render a graph or an explanation in one of :data:`FORMATS`."""
    from headwater.metadata.lineage.explain import PushExplanation

    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if isinstance(subject, PushExplanation):
        if fmt == "text":
            return explanation_text(subject)
        if fmt == "json":
            return subject.to_json() + "\n"
        if fmt == "html":
            from headwater.metadata.lineage.html import render_html

            return render_html(subject.graph, caption=explanation_text(subject),
                               title=f"Push of {subject.push.pushed_model.label}")
        return _GRAPH_RENDERERS[fmt](subject.graph)
    if fmt == "html":
        from headwater.metadata.lineage.html import render_html

        return render_html(subject)
    return _GRAPH_RENDERERS[fmt](subject)


_GRAPH_RENDERERS: dict[str, Callable[[LineageGraph], str]] = {
    "text": render_text,
    "json": render_json,
    "dot": render_dot,
    "mermaid": render_mermaid,
}
