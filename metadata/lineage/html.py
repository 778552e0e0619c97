"""A self-contained HTML page for a lineage graph: inline SVG, a little inline JS, no network.

The layout is a plain layered drawing: longest-path layers in data-flow order (top to bottom), nodes
ordered inside each layer by a few barycenter sweeps to reduce crossings, edges as curves.
Click a node to see all its properties; hover to highlight its edges.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from itertools import pairwise

from headwater.metadata.lineage.graph import ArtifactNode, LineageGraph, LineageNode
from headwater.metadata.lineage.render import DEFAULT_COLORS, STATE_COLORS, short_uri

__all__ = ["Layout", "layout", "render_html"]

NODE_W, NODE_H = 210, 58
GAP_X, GAP_Y = 90, 22  # left to right
GAP_TB, GAP_X_TB = 62, 26  # top to bottom
DUMMY_H = 10
MARGIN = 30


@dataclass(frozen=True)
class Layout:
    """Top-left corners of the nodes, the bend points of every edge, and the canvas size.

    ``routes`` maps ``(source key, target key)`` to the points an edge passes through: edges that span
    several layers get one point pair per layer they cross (Sugiyama-style dummy nodes), so they run
    between nodes instead of through them.
    """

    positions: dict[str, tuple[float, float]]
    layers: dict[str, int]
    routes: dict[tuple[str, str], list[tuple[float, float]]]
    width: float
    height: float
    vertical: bool = True


def _layers(graph: LineageGraph) -> dict[str, int]:
    """Longest-path layers; sources are then pulled right, next to their first consumer."""
    order = graph.topological_order()
    layer: dict[str, int] = {}
    for node in order:
        parents = [e.source for e in graph.in_edges(node) if e.source in layer]
        layer[node.key] = 1 + max((layer[p] for p in parents), default=-1)
    for node in reversed(order):
        succ = [layer[e.target] for e in graph.out_edges(node) if layer[e.target] > layer[node.key]]
        if not graph.in_edges(node) and succ:
            layer[node.key] = min(succ) - 1
    return layer


def layout(graph: LineageGraph, *, rankdir: str = "TB", sweeps: int = 8) -> Layout:
    """Layered layout of ``graph``: data flows top to bottom (``rankdir="TB"``) or left to right ("LR")."""
    if rankdir not in ("TB", "LR"):
        raise ValueError(f"rankdir must be 'TB' or 'LR', got {rankdir!r}")
    vertical = rankdir == "TB"
    order = graph.topological_order()
    layer = _layers(graph)
    n_layers = 1 + max(layer.values(), default=0)
    rows: list[list[str]] = [[] for _ in range(n_layers)]
    for node in order:
        rows[layer[node.key]].append(node.key)
    preds: dict[str, list[str]] = {n.key: [] for n in order}
    succs: dict[str, list[str]] = {n.key: [] for n in order}
    chains: dict[tuple[str, str], list[str]] = {}
    for edge in graph.edges:
        s, t = edge.source, edge.target
        if s not in layer or t not in layer or (s, t) in chains:
            continue
        chain = [s]
        for li in range(layer[s] + 1, layer[t]):  # one dummy per crossed layer
            dummy = f"~{s}>{t}@{li}"
            rows[li].append(dummy)
            preds[dummy], succs[dummy] = [], []
            chain.append(dummy)
        chain.append(t)
        for a, b in pairwise(chain):
            succs[a].append(b)
            preds[b].append(a)
        chains[(s, t)] = chain
    pos = {key: float(i) for row in rows for i, key in enumerate(row)}

    def reorder(row: list[str], neighbours: dict[str, list[str]]) -> None:
        def bary(key: str) -> float:
            near = [pos[n] for n in neighbours.get(key, ())]
            return sum(near) / len(near) if near else pos[key]

        row.sort(key=bary)
        for i, key in enumerate(row):
            pos[key] = float(i)

    for _ in range(sweeps):
        for row in rows[1:]:
            reorder(row, preds)
        for row in reversed(rows[:-1]):
            reorder(row, succs)

    along = NODE_H if vertical else NODE_W  # node size along the flow
    gap_layer, gap_order = (GAP_TB, GAP_X_TB) if vertical else (GAP_X, GAP_Y)

    def across(key: str) -> float:  # node size across the flow
        return DUMMY_H if key.startswith("~") else (NODE_W if vertical else NODE_H)

    def extent(row: list[str]) -> float:
        return sum(across(k) for k in row) + gap_order * max(len(row) - 1, 0)

    widest = max((extent(r) for r in rows), default=across(""))
    corners: dict[str, tuple[float, float]] = {}
    for li, row in enumerate(rows):
        o = MARGIN + (widest - extent(row)) / 2
        lc = MARGIN + li * (along + gap_layer)
        for key in row:
            corners[key] = (o, lc) if vertical else (lc, o)
            o += across(key) + gap_order

    def exit_point(key: str) -> tuple[float, float]:
        x, y = corners[key]
        return (x + across(key) / 2, y + along) if vertical else (x + along, y + across(key) / 2)

    def entry_point(key: str) -> tuple[float, float]:
        x, y = corners[key]
        return (x + across(key) / 2, y) if vertical else (x, y + across(key) / 2)

    routes: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for (s, t), chain in chains.items():
        points = [exit_point(s)]
        for dummy in chain[1:-1]:
            points += [entry_point(dummy), exit_point(dummy)]
        points.append(entry_point(t))
        routes[(s, t)] = points
    # spread the ends of several edges over the side of a node (ports), ordered by where they come from
    ports: dict[str, list[tuple[tuple[str, str], int, float]]] = {}
    for route_key, points in routes.items():
        s, t = route_key
        ports.setdefault(f"out|{s}", []).append((route_key, 0, points[1][0 if vertical else 1]))
        ports.setdefault(f"in|{t}", []).append((route_key, len(points) - 1, points[-2][0 if vertical else 1]))
    for side, ends in ports.items():
        if len(ends) < 2:
            continue
        key = side.split("|", 1)[1]
        x, y = corners[key]
        for rank, (route_key, index, _) in enumerate(sorted(ends, key=lambda e: e[2])):
            frac = 0.2 + 0.6 * rank / (len(ends) - 1)
            px, py = routes[route_key][index]
            shift = across(key) * frac
            routes[route_key][index] = (x + shift, py) if vertical else (px, y + shift)
    positions = {k: v for k, v in corners.items() if not k.startswith("~")}
    length = 2 * MARGIN + n_layers * along + max(n_layers - 1, 0) * gap_layer
    breadth = 2 * MARGIN + widest
    width, height = (breadth, length) if vertical else (length, breadth)
    return Layout(positions, layer, routes, width, height, vertical)


def _path(points: list[tuple[float, float]], vertical: bool) -> str:
    """Curves between layers, straight runs across the layers an edge passes."""
    (x, y), rest = points[0], points[1:]
    parts = [f"M{x:.1f},{y:.1f}"]
    for i, (nx, ny) in enumerate(rest):
        if i % 2 == 1:  # across a dummy slot
            parts.append(f"L{nx:.1f},{ny:.1f}")
        elif vertical:
            bend = max(24.0, abs(ny - y) / 2)
            parts.append(f"C{x:.1f},{y + bend:.1f} {nx:.1f},{ny - bend:.1f} {nx:.1f},{ny:.1f}")
        else:
            bend = max(30.0, abs(nx - x) / 2)
            parts.append(f"C{x + bend:.1f},{y:.1f} {nx - bend:.1f},{ny:.1f} {nx:.1f},{ny:.1f}")
        x, y = nx, ny
    return " ".join(parts)


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _node_svg(node: LineageNode, x: float, y: float, *, root: bool, frontier: bool) -> str:
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
aside{width:360px;border-left:1px solid #ddd;overflow:auto;padding:10px 14px;background:#fcfcfc;
font-size:12.5px}
aside h2{font-size:14px;margin:4px 0 8px}
aside pre,.caption{white-space:pre-wrap;word-break:break-word;
font:12px/1.45 ui-monospace,Menlo,Consolas,monospace}
.caption{margin:0;padding:10px 18px;border-bottom:1px solid #ddd;max-height:38vh;overflow:auto;
background:#fffdf5}
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
  var room = document.getElementById('canvas').clientWidth - 8;
  if (baseW > room && room > 0) { zoom(Math.max(0.6, room / baseW)); }
  function edgesOf(key){ return svg.querySelectorAll('.edge[data-s="'+key+'"], .edge[data-t="'+key+'"]'); }
  svg.querySelectorAll('.node').forEach(function(g){
    var key = g.getAttribute('data-key');
    function mark(on){ edgesOf(key).forEach(function(e){ e.classList.toggle('hl', on); }); }
    g.addEventListener('mouseenter', function(){ mark(true); });
    g.addEventListener('mouseleave', function(){ mark(false); });
    g.addEventListener('click', function(){
      svg.querySelectorAll('.node.sel').forEach(function(s){ s.classList.remove('sel'); });
      g.classList.add('sel');
      var n = byKey[key];
      var name = n.kind === 'artifact' ? n.type : n.type.split('.').pop();
      document.getElementById('detail-title').textContent = name + ' #' + n.id;
      document.getElementById('detail').textContent = JSON.stringify(n, null, 2);
    });
  });
  var root = svg.querySelector('.node[data-key="' + data.root + '"]');
  if (root) { root.dispatchEvent(new MouseEvent('click')); }
})();
"""


def render_html(
    graph: LineageGraph, *, caption: str | None = None, title: str | None = None, rankdir: str = "TB"
) -> str:
    """One HTML page (no external resources) that draws ``graph``; ``caption`` is shown above it."""
    lay = layout(graph, rankdir=rankdir)
    frontier = set(graph.frontier)
    edges_svg = []
    for edge in graph.edges:
        points = lay.routes.get((edge.source, edge.target))
        if not points:
            continue
        # label close to the execution: near the end of an input edge, the start of an output edge
        (x1, y1), (x2, y2) = (points[-2], points[-1]) if edge.is_input else (points[1], points[0])
        mx, my = x1 + (x2 - x1) * 0.55, y1 + (y2 - y1) * 0.55 - 3
        cls = "edge" + ("" if edge.event_type in ("INPUT", "OUTPUT") else " internal")
        edges_svg.append(
            f'<g class="{cls}" data-s="{_esc(edge.source)}" data-t="{_esc(edge.target)}">'
            f'<path d="{_path(points, lay.vertical)}" marker-end="url(#arrow)"/>'
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
        '<span class="tools"><button id="zout" type="button">&minus;</button>'
        '<button id="zreset" type="button">100%</button><button id="zin" type="button">+</button></span>'
        f'</div><div class="legend">{legend}</div></header>'
        f'{caption_html}<main><div id="canvas">{svg}</div>'
        '<aside><h2 id="detail-title">Details</h2><pre id="detail">Click a node to see its type, state, URI, '
        "properties and custom properties.</pre></aside></main>"
        f'<script type="application/json" id="lineage-data">{data}</script>'
        f"<script>{_JS}</script></body></html>\n"
    )
