"""A self-contained HTML page for a lineage graph: inline SVG, a little inline JS, no network.

The layout is a plain layered drawing: longest-path layers in data-flow order (left to right), nodes
ordered inside each layer by a few barycenter sweeps to reduce crossings, edges as curves.
Click a node to see all its properties; hover to highlight its edges.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass

from headwater.metadata.lineage.graph import ArtifactNode, LineageGraph, Node
from headwater.metadata.lineage.render import DEFAULT_COLORS, STATE_COLORS, short_uri

__all__ = ["Layout", "layout", "render_html"]

NODE_W, NODE_H = 210, 58
GAP_X, GAP_Y = 90, 26
MARGIN = 30


@dataclass(frozen=True)
class Layout:
    """Node positions (top-left corners) and the canvas size."""

    positions: dict[str, tuple[float, float]]
    layers: dict[str, int]
    width: float
    height: float


def layout(graph: LineageGraph, sweeps: int = 6) -> Layout:
    """Layered layout of ``graph`` (data flows left to right)."""
    order = graph.topological_order()
    layer: dict[str, int] = {}
    for node in order:
        parents = [e.source for e in graph.in_edges(node) if e.source in layer]
        layer[node.key] = 1 + max((layer[p] for p in parents), default=-1)
    layers: list[list[str]] = [[] for _ in range(1 + max(layer.values(), default=0))]
    for node in order:
        layers[layer[node.key]].append(node.key)
    pos = {key: float(i) for row in layers for i, key in enumerate(row)}

    def reorder(row: list[str], neighbours: dict[str, list[str]]) -> None:
        def bary(key: str) -> float:
            near = [pos[n] for n in neighbours.get(key, ())]
            return sum(near) / len(near) if near else pos[key]

        row.sort(key=bary)
        for i, key in enumerate(row):
            pos[key] = float(i)

    preds = {n.key: [e.source for e in graph.in_edges(n)] for n in order}
    succs = {n.key: [e.target for e in graph.out_edges(n)] for n in order}
    for _ in range(sweeps):
        for row in layers[1:]:
            reorder(row, preds)
        for row in reversed(layers[:-1]):
            reorder(row, succs)
    tallest = max((len(r) for r in layers), default=1)
    positions: dict[str, tuple[float, float]] = {}
    for li, row in enumerate(layers):
        offset = (tallest - len(row)) * (NODE_H + GAP_Y) / 2
        for i, key in enumerate(row):
            positions[key] = (MARGIN + li * (NODE_W + GAP_X), MARGIN + offset + i * (NODE_H + GAP_Y))
    width = 2 * MARGIN + len(layers) * NODE_W + max(len(layers) - 1, 0) * GAP_X
    height = 2 * MARGIN + tallest * NODE_H + max(tallest - 1, 0) * GAP_Y
    return Layout(positions, layer, width, height)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _node_svg(node: Node, x: float, y: float, *, root: bool, frontier: bool) -> str:
    fill, stroke = STATE_COLORS.get(node.state, DEFAULT_COLORS)
    is_artifact = isinstance(node, ArtifactNode)
    rx = NODE_H / 2 if is_artifact else 6
    dash = ' stroke-dasharray="5 3"' if frontier else ""
    width = 3 if root else 1.4
    line2 = f"#{node.id} · {node.state}"
    if is_artifact:
        assert isinstance(node, ArtifactNode)
        line3 = short_uri(node.uri, 32)
        title, kind = node.type_name, "artifact"
        tooltip = node.uri
    else:
        line3 = node.create_time.strftime("%Y-%m-%d %H:%M:%S") if node.create_time else ""
        title, kind = node.short_type, "execution"
        tooltip = node.type_name
    parts = [
        f'<g class="node {kind}" data-key="{_esc(node.key)}" transform="translate({x:.1f},{y:.1f})">',
        f"<title>{_esc(title)} #{node.id} {node.state}\n{_esc(tooltip)}</title>",
        f'<rect width="{NODE_W}" height="{NODE_H}" rx="{rx}" fill="{fill}" stroke="{stroke}" '
        f'stroke-width="{width}"{dash}/>',
        f'<text x="{NODE_W / 2}" y="18" class="t1">{_esc(_clip(title, 26))}</text>',
        f'<text x="{NODE_W / 2}" y="34" class="t2">{_esc(line2)}</text>',
        f'<text x="{NODE_W / 2}" y="49" class="t3">{_esc(line3)}</text>',
        "</g>",
    ]
    return "".join(parts)


_CSS = """
body{font:14px/1.4 system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;color:#1b1b1b;
display:flex;flex-direction:column;height:100vh}
header{padding:12px 18px;border-bottom:1px solid #ddd;background:#fafafa}
header h1{font-size:17px;margin:0 0 4px}
header .meta{color:#555;font-size:13px}
main{display:flex;flex:1;min-height:0}
#canvas{flex:1;overflow:auto;background:#fff}
aside{width:360px;border-left:1px solid #ddd;overflow:auto;padding:10px 14px;background:#fcfcfc;font-size:12.5px}
aside h2{font-size:14px;margin:4px 0 8px}
aside pre,.caption{white-space:pre-wrap;word-break:break-word;font:12px/1.45 ui-monospace,Menlo,Consolas,monospace}
.caption{margin:0;padding:10px 18px;border-bottom:1px solid #ddd;max-height:38vh;overflow:auto;background:#fffdf5}
.node{cursor:pointer}
.node text{text-anchor:middle;pointer-events:none}
.t1{font-weight:600;font-size:12.5px}.t2{font-size:11px;fill:#333}.t3{font-size:10px;fill:#666}
.edge path{fill:none;stroke:#8a8a8a;stroke-width:1.3}
.edge.internal path{stroke-dasharray:5 4}
.edge text{font-size:10px;fill:#444;paint-order:stroke;stroke:#fff;stroke-width:3px;text-anchor:middle}
.edge.hl path{stroke:#d84315;stroke-width:2.4}.node.sel rect{stroke:#d84315;stroke-width:3}
.legend{display:flex;gap:12px;flex-wrap:wrap;margin-top:6px;font-size:12px;color:#333}
.legend span{display:inline-flex;align-items:center;gap:4px}
.legend i{display:inline-block;width:14px;height:10px;border:1.5px solid;border-radius:3px}
.tools button{font-size:12px;margin-left:4px}
"""

_JS = """
(function(){
  var data = JSON.parse(document.getElementById('lineage-data').textContent);
  var byKey = {};
  data.artifacts.concat(data.executions).forEach(function(n){ byKey[n.key] = n; });
  var svg = document.getElementById('graph'), scale = 1;
  var baseW = +svg.getAttribute('width'), baseH = +svg.getAttribute('height');
  function zoom(f){ scale = Math.max(0.2, Math.min(3, f === 0 ? 1 : scale * f));
    svg.setAttribute('width', baseW * scale); svg.setAttribute('height', baseH * scale); }
  document.getElementById('zin').onclick = function(){ zoom(1.25); };
  document.getElementById('zout').onclick = function(){ zoom(0.8); };
  document.getElementById('zreset').onclick = function(){ zoom(0); };
  function edgesOf(key){ return svg.querySelectorAll('.edge[data-s="'+key+'"], .edge[data-t="'+key+'"]'); }
  svg.querySelectorAll('.node').forEach(function(g){
    var key = g.getAttribute('data-key');
    g.addEventListener('mouseenter', function(){ edgesOf(key).forEach(function(e){ e.classList.add('hl'); }); });
    g.addEventListener('mouseleave', function(){ edgesOf(key).forEach(function(e){ e.classList.remove('hl'); }); });
    g.addEventListener('click', function(){
      svg.querySelectorAll('.node.sel').forEach(function(s){ s.classList.remove('sel'); });
      g.classList.add('sel');
      var n = byKey[key];
      document.getElementById('detail-title').textContent = (n.kind === 'artifact' ? n.type : n.type.split('.').pop()) + ' #' + n.id;
      document.getElementById('detail').textContent = JSON.stringify(n, null, 2);
    });
  });
})();
"""


def render_html(graph: LineageGraph, *, caption: str | None = None, title: str | None = None) -> str:
    """One HTML page (no external resources) that draws ``graph``; ``caption`` is shown above it."""
    lay = layout(graph)
    frontier = set(graph.frontier)
    edges_svg = []
    for edge in graph.edges:
        if edge.source not in lay.positions or edge.target not in lay.positions:
            continue
        sx, sy = lay.positions[edge.source]
        tx, ty = lay.positions[edge.target]
        x1, y1 = sx + NODE_W, sy + NODE_H / 2
        x2, y2 = tx, ty + NODE_H / 2
        if x2 <= x1:  # same or earlier layer (only in cyclic stores): loop around
            x2, x1 = tx + NODE_W / 2, sx + NODE_W / 2
        bend = max(40.0, (x2 - x1) / 2)
        path = f"M{x1:.1f},{y1:.1f} C{x1 + bend:.1f},{y1:.1f} {x2 - bend:.1f},{y2:.1f} {x2:.1f},{y2:.1f}"
        mx, my = (x1 + x2) / 2, (y1 + y2) / 2 - 4
        cls = "edge" + ("" if edge.event_type in ("INPUT", "OUTPUT") else " internal")
        edges_svg.append(
            f'<g class="{cls}" data-s="{_esc(edge.source)}" data-t="{_esc(edge.target)}">'
            f'<path d="{path}" marker-end="url(#arrow)"/>'
            f"<title>{_esc(edge.event_type)} {_esc(edge.label)}</title>"
            f'<text x="{mx:.1f}" y="{my:.1f}">{_esc(_clip(edge.label, 24))}</text></g>'
        )
    nodes_svg = [
        _node_svg(node, *lay.positions[node.key], root=node.key == graph.root, frontier=node.key in frontier)
        for node in graph.nodes
    ]
    states = sorted({n.state for n in graph.nodes})
    legend = "".join(
        f'<span><i style="background:{STATE_COLORS.get(s, DEFAULT_COLORS)[0]};'
        f'border-color:{STATE_COLORS.get(s, DEFAULT_COLORS)[1]}"></i>{_esc(s)}</span>'
        for s in states
    )
    legend += ('<span><i style="border-radius:7px"></i>artifact</span>'
               '<span><i></i>execution</span>'
               '<span><i style="border-style:dashed"></i>lineage continues (raise --depth)</span>')
    depth = "unlimited" if graph.depth is None else str(graph.depth)
    heading = title or f"{graph.direction.capitalize()} lineage of {graph.root_node.label}"
    meta = (f"{len(graph.artifacts)} artifacts · {len(graph.executions)} executions · "
            f"{len(graph.edges)} events · depth {depth}")
    data = json.dumps(graph.to_dict(), default=str).replace("</", "<\\/")
    svg = (
        f'<svg id="graph" xmlns="http://www.w3.org/2000/svg" width="{lay.width:.0f}" '
        f'height="{lay.height:.0f}" viewBox="0 0 {lay.width:.0f} {lay.height:.0f}">'
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#8a8a8a"/>'
        "</marker></defs>" + "".join(edges_svg) + "".join(nodes_svg) + "</svg>"
    )
    caption_html = f'<pre class="caption">{_esc(caption)}</pre>' if caption else ""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{_esc(heading)}</title><style>{_CSS}</style></head><body>"
        f'<header><h1>{_esc(heading)}</h1><div class="meta">{_esc(meta)}'
        '<span class="tools"><button id="zout" type="button">−</button>'
        '<button id="zreset" type="button">100%</button><button id="zin" type="button">+</button></span>'
        f'</div><div class="legend">{legend}</div></header>'
        f'{caption_html}<main><div id="canvas">{svg}</div>'
        '<aside><h2 id="detail-title">Details</h2><pre id="detail">Click a node to see its type, state, URI, '
        "properties and custom properties.</pre></aside></main>"
        f'<script type="application/json" id="lineage-data">{data}</script>'
        f"<script>{_JS}</script></body></html>\n"
    )
