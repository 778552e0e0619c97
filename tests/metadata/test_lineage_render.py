"""Every renderer of a lineage graph: text, json, dot (parsed by pydot and Graphviz), mermaid, html."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import warnings
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from headwater.metadata.lineage import (
    FORMATS,
    ArtifactNode,
    ExecutionNode,
    LineageEdge,
    LineageGraph,
    explain_push,
    render,
    upstream,
)
from headwater.metadata.lineage.html import NODE_H, NODE_W, layout
from headwater.metadata.lineage.render import display_graph

FIXTURE = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "tfx-1.16-penguin" / "metadata.sqlite"
T0 = 1_700_000_000_000
NASTY_URI = 'gs://bucket/a "quoted" <dir> & c:\\path'


def _graph() -> LineageGraph:
    """Ingest -> examples, schema -> Train -> model; a Resolver (internal output); Ingest on the frontier."""
    a = ArtifactNode
    x = ExecutionNode
    return LineageGraph(
        root="artifact:3",
        direction="upstream",
        depth=2,
        artifacts=(
            a(1, "Examples", NASTY_URI, "LIVE", properties={"span": 4}, create_time_ms=T0),
            a(2, "Schema", "/root/Ingest/schema/10", "LIVE", create_time_ms=T0),
            a(3, "Model", "/root/Train/model/11", "LIVE", create_time_ms=T0 + 5000),
        ),
        executions=(
            x(10, "headwater.components.ingest.Ingest", "COMPLETE", create_time_ms=T0 - 1000),
            x(
                11,
                "headwater.components.train.Train",
                "COMPLETE",
                custom_properties={"train_steps": 10},
                create_time_ms=T0 + 1000,
            ),
            x(12, "tfx.dsl.components.common.resolver.Resolver", "COMPLETE", create_time_ms=T0 + 6000),
        ),
        edges=(
            LineageEdge(1, 10, "OUTPUT", (("examples", 0),)),
            LineageEdge(2, 10, "OUTPUT", (("schema", 0),)),
            LineageEdge(1, 11, "INPUT", (('ex"amples', 0),)),
            LineageEdge(2, 11, "INPUT", (("schema", 0),)),
            LineageEdge(3, 11, "OUTPUT", (("model", 0),)),
            LineageEdge(3, 12, "INTERNAL_OUTPUT", (("model", 2),)),
        ),
        frontier=("execution:10",),
    )


@pytest.fixture(scope="module")
def tfx_graph_and_explanation(tmp_path_factory: pytest.TempPathFactory):
    if not FIXTURE.exists():
        pytest.skip(f"the TFX-written store {FIXTURE} is absent (it lives in ../shared, outside this checkout)")
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2

    pb: Any = metadata_store_pb2  # the generated protos have no type stubs

    copy = tmp_path_factory.mktemp("tfx") / "metadata.sqlite"
    shutil.copy(FIXTURE, copy)
    config = pb.ConnectionConfig()
    config.sqlite.filename_uri = str(copy)
    store = metadata_store.MetadataStore(config)
    pushed = store.get_artifacts_by_type("PushedModel")[-1].id
    return upstream(store, pushed), explain_push(store, pushed)


def test_text_is_a_tree_from_the_root() -> None:
    text = render(_graph(), "text")
    lines = text.splitlines()
    assert lines[0] == "upstream lineage of Model #3 (depth 2): 3 artifacts, 3 executions"
    assert lines[2].startswith("Model #3  LIVE  /root/Train/model/11")
    assert "├── Train #11  COMPLETE" in text and "(wrote model)" in text
    assert "└── Resolver #12  COMPLETE" in text and "(internal output model[2])" in text
    assert f'ex"amples: Examples #1  LIVE  {NASTY_URI}  span=4' in text
    assert "… more upstream (raise --depth to see it)" in text  # under the frontier execution
    assert text.count("Ingest #10") == 2 and "(wrote schema)  (see above)" in text


def test_json_round_trips() -> None:
    graph = _graph()
    assert LineageGraph.from_dict(json.loads(render(graph, "json"))) == graph


def _check_dot(dot: str, graph: LineageGraph) -> None:
    import pydot

    graph = display_graph(graph)  # re-uses and selections are drawn as nodes reached from the artifact
    with warnings.catch_warnings():  # pydot's parser uses pyparsing names that pyparsing deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        [parsed] = pydot.graph_from_dot_data(dot)
    # (pydot 1.4 reports a phantom node named "\n" after an edge statement that ends a line)
    names = {n.get_name().strip('"') for n in parsed.get_nodes()} - {"node", "edge", "graph", "\\n"}
    assert names == {n.key for n in graph}
    edges = {(e.get_source().strip('"'), e.get_destination().strip('"')) for e in parsed.get_edges()}
    assert edges == {(e.source, e.target) for e in graph.edges}
    if shutil.which("dot"):
        done = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert "<svg" in done.stdout and graph.root_node.label in done.stdout


def test_dot_parses() -> None:
    graph = _graph()
    dot = render(graph, "dot")
    assert dot.startswith("digraph lineage {") and dot.rstrip().endswith("}")
    assert '"artifact:1" -> "execution:11" [label="ex\\"amples"];' in dot
    assert "style=dashed" in dot  # internal event, frontier node
    _check_dot(dot, graph)


def test_mermaid_flowchart() -> None:
    graph = _graph()
    text = render(graph, "mermaid")
    lines = text.splitlines()
    assert lines[0] == "flowchart LR"
    declared = [m.group(1) for line in lines if (m := re.match(r"  ([ae]\d+)[\[(]", line))]
    assert sorted(declared) == ["a1", "a2", "a3", "e10", "e11", "e12"]
    edges = [line for line in lines if "-->" in line or "-.->" in line]
    assert len(edges) == len(graph.edges)
    assert '  e12 -.->|"model[2]"| a3' in lines
    assert '  a1 -->|"ex#quot;amples"| e11' in lines
    for line in lines[1:]:  # no raw quote or angle bracket inside a label
        for label in re.findall(r'"([^"]*)"', line):
            assert "<" not in label.replace("<br/>", "") and ">" not in label.replace("<br/>", "")
    assert "class e10 frontier" in text and "classDef live" in text and "style a3 stroke-width:3px" in text


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.data_json = ""
        self._in_data = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_data = tag == "script" and dict(attrs).get("id") == "lineage-data"

    def handle_endtag(self, tag: str) -> None:
        self._in_data = False

    def handle_data(self, data: str) -> None:
        if self._in_data:
            self.data_json += data


def _check_html(page: str, graph: LineageGraph) -> _Collector:
    assert page.startswith("<!DOCTYPE html>")
    graph = display_graph(graph)
    parser = _Collector()
    parser.feed(page)
    # self-contained: no external scripts, styles, images or fonts
    for tag, attrs in parser.tags:
        assert not attrs.get("src"), (tag, attrs)
        assert tag != "link", attrs
    assert "https://" not in page and re.findall(r"http://[^\"]+", page) == ["http://www.w3.org/2000/svg"]
    nodes = [a for t, a in parser.tags if t == "g" and (a.get("class") or "").startswith("node")]
    assert sorted(a["data-key"] or "" for a in nodes) == sorted(n.key for n in graph)
    edges = [a for t, a in parser.tags if t == "g" and (a.get("class") or "").startswith("edge")]
    assert len(edges) == len(graph.edges)
    assert json.loads(parser.data_json) == json.loads(graph.to_json())
    return parser


def test_html_is_a_self_contained_page() -> None:
    graph = _graph()
    page = render(graph, "html")
    _check_html(page, graph)
    assert "&quot;quoted&quot; &lt;dir&gt;" in page  # escaped in the SVG tooltip/text
    assert "Upstream lineage of Model #3" in page and 'stroke-dasharray="5 3"' in page


@pytest.mark.parametrize("rankdir", ["TB", "LR"])
def test_layout_places_nodes_without_overlap_in_flow_order(rankdir: str) -> None:
    graph = _graph()
    lay = layout(graph, rankdir=rankdir)
    boxes = list(lay.positions.items())
    for i, (k1, (x1, y1)) in enumerate(boxes):
        assert 0 <= x1 <= lay.width - NODE_W and 0 <= y1 <= lay.height - NODE_H
        for k2, (x2, y2) in boxes[i + 1 :]:
            assert abs(x1 - x2) >= NODE_W or abs(y1 - y2) >= NODE_H, (k1, k2)
    axis = 1 if rankdir == "TB" else 0
    for edge in graph.edges:
        assert lay.positions[edge.source][axis] < lay.positions[edge.target][axis]
        assert lay.routes[(edge.source, edge.target)]
    with pytest.raises(ValueError, match="rankdir must be"):
        layout(graph, rankdir="RL")


def test_unknown_format() -> None:
    assert FORMATS == ("text", "json", "dot", "mermaid", "html")
    with pytest.raises(ValueError, match="unknown format 'svg'; choose one of text, json, dot, mermaid, html"):
        render(_graph(), "svg")


def test_every_format_on_a_tfx_store(tfx_graph_and_explanation) -> None:
    graph, explanation = tfx_graph_and_explanation
    _check_dot(render(graph, "dot"), graph)
    _check_html(render(graph, "html"), graph)
    assert render(graph, "mermaid").count("\n") > len(graph.nodes) + len(graph.edges)
    assert "CsvExampleGen #1" in render(graph, "text")
    # explanations: text and json say it; the graph formats draw its graph
    assert render(explanation, "text") == explanation.to_text()
    assert json.loads(render(explanation, "json"))["push"]["pushed"] is True
    _check_dot(render(explanation, "dot"), explanation.graph)
    page = render(explanation, "html")
    parser = _check_html(page, explanation.graph)
    assert any(t == "pre" and a.get("class") == "caption" for t, a in parser.tags)
    assert "Push of PushedModel" in page
