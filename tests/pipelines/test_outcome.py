"""How a run came out: the outcome lines at the end of a run, in ``runs show`` (text and JSON) and on
``RunResult``; exact node states and counts in ``runs list`` / ``runs show``; run-id prefixes and ``latest``."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from headwater.metadata.errors import ExecutionError, MetadataError
from headwater.metadata.store import connect
from headwater.pipelines import Pipeline
from headwater.pipelines.cli import main
from headwater.pipelines.history import list_runs, resolve_run_id, show_run
from headwater.pipelines.runner import LocalRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))
import hw_gate_components as g
import hw_test_components as c


def _run(pipeline: Pipeline, **kwargs):
    stream = io.StringIO()
    result = LocalRunner(1, stream=stream).run(pipeline, **kwargs)
    return result, stream.getvalue()


def test_blessed_and_pushed_run_says_so_everywhere(tmp_path, capsys):
    pipeline = g.gated_pipeline(str(tmp_path / "root"), score=0.9)
    result, printed = _run(pipeline)
    assert result.ok and result.blessed is True and result.pushed is True
    pushed_uri = result.outputs("push", "pushed")[0].uri
    expected = [
        f"outcome of run {result.run_id}:",
        "  evaluate: BLESSED",
        "    verdict: score 0.9 meets the threshold 0.5",
        f"  push: pushed to {pushed_uri} (version 1)",
        f"  logs: headwater runs logs {result.run_id} [NODE]",
    ]
    assert result.summary().splitlines() == expected
    assert printed.splitlines()[-len(expected):] == expected
    assert result.exit_code(require_push=True) == 0
    # runs show (text and JSON) reads the same outcome back from ML Metadata
    store = connect(None, default_sqlite=pipeline.metadata_default())
    detail = show_run(store, result.run_id)
    assert detail.to_text().splitlines()[-len(expected):] == expected
    assert detail.summary.counts == {"done": 6} and detail.summary.node_count == 6
    meta = ["--metadata", f"sqlite:///{pipeline.metadata_default()}"]
    assert main(["runs", "show", result.run_id[:10], "--format", "json", *meta]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["outcome"]["blessed"] is True and data["outcome"]["pushed"] is True
    assert data["outcome"]["pushes"] == [{"node_id": "push", "pushed": True, "destination": pushed_uri,
                                          "version": "1", "reason": None}]


def test_not_blessed_run_names_the_failing_threshold_and_require_push_fails(tmp_path, capsys):
    pipeline = g.gated_pipeline(str(tmp_path / "root"), score=0.3)
    result, printed = _run(pipeline)
    assert printed.rstrip().endswith(f"logs: headwater runs logs {result.run_id} [NODE]")
    assert result.ok and result.blessed is False and result.pushed is False
    expected = [
        f"outcome of run {result.run_id}:",
        "  evaluate: NOT BLESSED",
        "    why: score 0.3 is below the threshold 0.5",
        "  push: not pushed — the model is not blessed",
        f"  logs: headwater runs logs {result.run_id} [NODE]",
    ]
    assert result.summary().splitlines() == expected
    assert result.exit_code() == 0 and result.exit_code(require_push=True) == 3
    with pytest.raises(ExecutionError, match=r"pushed no model: push: the model is not blessed"):
        result.raise_for_status(require_push=True)
    store = connect(None, default_sqlite=pipeline.metadata_default())
    detail = show_run(store, "latest")
    push = [n for n in detail.nodes if n.node_id == "push"]
    assert [(n.state, n.reason) for n in push] == [("skipped", "the model is not blessed")]
    text = detail.to_text()
    assert "push                     skipped" in text and "skipped: the model is not blessed" in text
    # runs list: the blessed / pushed columns and counts that add up to the pipeline's six nodes
    [summary] = list_runs(store)
    assert (summary.blessed, summary.pushed, summary.node_count) == (False, False, 6)
    assert summary.counts == {"done": 5, "skipped": 1}
    assert main(["runs", "list", "--metadata", f"sqlite:///{pipeline.metadata_default()}"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split() == ["RUN", "ID", "PIPELINE", "STATUS", "STARTED", "(UTC)", "NODES", "BLESSED", "PUSHED",
                              "DURATION", "STATES"]
    assert out[1].split()[5:9] == ["6", "no", "no", summary.duration_text]


def test_failed_run_shows_blocked_and_not_run_nodes_with_reasons(tmp_path):
    a = c.produce().with_id("a")
    b = c.fail(examples=a.outputs.data).with_id("b")
    d = c.use_model(model=b.outputs.model).with_id("d")
    e = c.produce(value="e").with_id("e")
    pipeline = Pipeline(name="blocked", root=str(tmp_path / "root"), nodes=[a, b, d, e])
    result, printed = _run(pipeline, to_node="d")
    assert not result.ok
    store = connect(None, default_sqlite=pipeline.metadata_default())
    detail = show_run(store, result.run_id)
    states = {n.node_id: (n.state, n.reason) for n in detail.nodes}
    assert states == {
        "a": ("done", None), "b": ("failed", None),
        "d": ("blocked", "upstream node 'b' failed"), "e": ("not_run", "not selected (--from/--to)"),
    }
    assert [n.node_id for n in detail.nodes] == ["a", "b", "d", "e"]
    assert detail.summary.counts == {"done": 1, "failed": 1, "blocked": 1, "not_run": 1}
    lines = result.summary().splitlines()
    assert lines[1] == "  node 'b' failed: component 'fail' (hw_test_components.fail) raised ValueError: boom"
    assert lines[2].startswith("    log: ") and lines[2].endswith(".log")
    assert lines[3:5] == ["  node 'd' blocked: upstream node 'b' failed",
                          "  node 'e' not run: not selected (--from/--to)"]
    assert "node 'd' blocked: upstream node 'b' failed" in printed


def test_run_ids_by_prefix_and_latest(tmp_path):
    pipeline = Pipeline(name="ids", root=str(tmp_path / "root"), nodes=[c.produce().with_id("a")])
    first, _ = _run(pipeline, run_id="20260101T000000-aaaaaa")
    second, _ = _run(pipeline, run_id="20260101T000001-bbbbbb")
    store = connect(None, default_sqlite=pipeline.metadata_default())
    assert resolve_run_id(store, "latest") == second.run_id
    assert resolve_run_id(store, "20260101T000000") == first.run_id
    assert resolve_run_id(store, first.run_id) == first.run_id
    with pytest.raises(MetadataError, match=r"run id prefix '2026' is ambiguous .*: it matches "
                                            r"20260101T000001-bbbbbb, 20260101T000000-aaaaaa; give more characters"):
        resolve_run_id(store, "2026")
    with pytest.raises(MetadataError, match=r"no run 'nope' in .*; recent runs: 20260101T000001-bbbbbb, "
                                            r"20260101T000000-aaaaaa \(or use 'latest'\)"):
        show_run(store, "nope")


def test_artifacts_list_takes_latest_and_prefixes(tmp_path, capsys):
    pipeline = Pipeline(name="ids", root=str(tmp_path / "root"), nodes=[c.produce().with_id("a")])
    _run(pipeline, run_id="20260101T000000-aaaaaa", cache=False)
    second, _ = _run(pipeline, run_id="20260101T000001-bbbbbb", cache=False)
    meta = ["--metadata", f"sqlite:///{pipeline.metadata_default()}"]
    assert main(["artifacts", "list", "--run", "latest", "--format", "json", *meta]) == 0
    assert [a["uri"] for a in json.loads(capsys.readouterr().out)] == [second.outputs("a", "data")[0].uri]
    assert main(["artifacts", "list", "--run", "2026", *meta]) == 2
    assert "run id prefix '2026' is ambiguous" in capsys.readouterr().err


def test_parameters_read_back_with_their_types(tmp_path):
    """Regression: a parameter left at None printed as year='null'; lists and dicts came back as JSON text."""
    from headwater.pipelines import Param

    node = c.describe(values=Param("values", default=[1, 2]), options=Param("options", default={"lr": 0.5}),
                      flag=Param("year", type=bool)).with_id("d")
    pipeline = Pipeline(name="params", root=str(tmp_path / "root"), nodes=[node])
    result, _ = _run(pipeline)
    detail = show_run(connect(None, default_sqlite=pipeline.metadata_default()), result.run_id)
    assert detail.summary.params == {"values": [1, 2], "options": {"lr": 0.5}, "year": None}
    assert "parameters: options={'lr': 0.5}, values=[1, 2], year=None" in detail.to_text()


def test_a_resolver_selecting_a_blessing_is_not_a_verdict(tmp_path):
    """Regression: a resolver's pick (INTERNAL_OUTPUT) of an earlier blessing was listed as a verdict."""
    root = str(tmp_path / "root")
    assert _run(g.gated_pipeline(root, score=0.9))[0].pushed
    second = g.gated_pipeline(root, score=0.3)
    picked = g.latest_blessing().with_id("previous")
    pipeline = Pipeline(name=second.name, root=root, nodes=[*(second.node(n) for n in second.node_ids), picked])
    result, _ = _run(pipeline)
    assert [v.node_id for v in result.outcome.verdicts] == ["evaluate"]
    assert result.blessed is False
    assert "  push: not pushed — the model is not blessed" in result.summary().splitlines()
