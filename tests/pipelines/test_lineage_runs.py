"""Lineage shows what happened, on a store of several real runs with caching and a baseline resolver.

Three runs of ingest(span) -> train -> LatestBlessedModel(exclude=candidate) -> evaluate -> push:

* run 1 (span 1, blessed) makes everything and pushes to ``serving/1``;
* run 2 (span 1, not blessed) re-uses run 1's examples and model from cache (CACHED executions with
  OUTPUT events to them), evaluates again and skips the push;
* run 3 (span 2, blessed) trains a new model; its resolver selects run 1's model as the baseline
  (INTERNAL_OUTPUT event) and it pushes to ``serving/2``.

A trace is production; re-uses and selections appear only when asked, for the run that did them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from headwater.pipelines.cli import main


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out, _ = capsys.readouterr()
    return code, out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    import hw_test_components as c
    from headwater.components.push import Push
    from headwater.components.resolvers import LatestBlessedModel
    from headwater.pipelines import LocalRunner, Param, Pipeline

    tmp = tmp_path_factory.mktemp("runs")
    uri = f"sqlite:///{tmp / 'metadata.sqlite'}"
    serving = tmp / "serving"
    ingest = c.examples_of_span(span=Param("span", default=1)).with_id("ingest")
    train = c.train_on(examples=ingest.outputs.examples).with_id("train")
    baseline = LatestBlessedModel(exclude=train.outputs.model).with_id("baseline")
    evaluate = c.evaluate_against(examples=ingest.outputs.examples, model=train.outputs.model,
                                  baseline_model=baseline.outputs.model,
                                  blessed=Param("blessed", default=1)).with_id("evaluate")
    push = Push(model=train.outputs.model, blessing=evaluate.outputs.blessing,
                destination=str(serving)).with_id("push")
    pipeline = Pipeline(name="lineage-runs", root=str(tmp / "root"), metadata=uri,
                        nodes=[ingest, train, baseline, evaluate, push])
    results = []
    for span, blessed in ((1, 1), (1, 0), (2, 1)):
        result = LocalRunner(1, quiet=True).run(pipeline, {"span": span, "blessed": blessed})
        assert result.ok, {n: r.error for n, r in result.nodes.items() if r.error}
        results.append(result)
    r1, r2, r3 = results
    assert r2.nodes["ingest"].state == "cached" and r2.nodes["train"].state == "cached"
    assert r3.outputs("baseline", "model")[0].id == r1.outputs("train", "model")[0].id
    return {"uri": uri, "serving": serving, "r1": r1, "r2": r2, "r3": r3}


def _json(capsys: pytest.CaptureFixture[str], runs: dict[str, Any], *argv: str) -> dict[str, Any]:
    code, out = _run(capsys, "lineage", *argv, "-f", "json", "--metadata", runs["uri"])
    assert code == 0
    data: dict[str, Any] = json.loads(out)
    return data


def _run_of(execution: dict[str, Any]) -> str:
    return str(execution["custom_properties"]["__run_id__"])


def test_first_push_history_holds_only_what_made_it(runs, capsys) -> None:
    """Before: run 2's CACHED executions were drawn as more producers (two ingests, two trainers) and
    run 3's resolver as a producer of run 1's model; and ``serving/1`` was refused without --explain."""
    r1 = runs["r1"]
    graph = _json(capsys, runs, str(runs["serving"] / "1"))  # a serving path works in --up mode
    assert graph["root"] == f"artifact:{r1.outputs('push', 'pushed_model')[0].id}"
    types = sorted(x["type"].rsplit(".", 1)[-1] for x in graph["executions"])
    assert types == sorted(["evaluate_against", "examples_of_span", "train_on", "Push"])
    assert {x["state"] for x in graph["executions"]} == {"COMPLETE"}
    assert {_run_of(x) for x in graph["executions"]} == {r1.run_id}
    assert not [e for e in graph["edges"] if e["type"] not in ("INPUT", "OUTPUT")] and graph["uses"] == []
    code, text = _run(capsys, "lineage", str(runs["serving"] / "1"), "--metadata", runs["uri"])
    assert code == 0 and text.count("examples_of_span #") == 1 and text.count("train_on #") == 1
    assert "LatestBlessedModel" not in text and "CACHED" not in text
    # asked for, still nothing of the later runs: they re-used or selected these artifacts afterwards
    shown = _json(capsys, runs, str(runs["serving"] / "1"), "--show-cached", "--show-resolvers")
    assert shown["uses"] == [] and shown["executions"] == graph["executions"]


def test_cached_reuses_are_shown_for_the_run_that_did_them(runs, capsys) -> None:
    r1, r2 = runs["r1"], runs["r2"]
    blessing = r2.outputs("evaluate", "blessing")[0].id
    plain = _json(capsys, runs, str(blessing))
    assert {x["state"] for x in plain["executions"]} == {"COMPLETE"} and plain["uses"] == []
    # run 2 evaluated run 1's model and examples, which run 2 re-used from cache
    graph = _json(capsys, runs, str(blessing), "--show-cached")
    assert plain["executions"] == graph["executions"]
    uses = {(u["artifact_id"], u["execution"]["type"].rsplit(".", 1)[-1], u["kind"], u["run"]) for u in graph["uses"]}
    assert uses == {
        (r1.outputs("ingest", "examples")[0].id, "examples_of_span", "cached", r2.run_id),
        (r1.outputs("train", "model")[0].id, "train_on", "cached", r2.run_id),
    }
    code, text = _run(capsys, "lineage", str(blessing), "--show-cached", "--metadata", runs["uri"])
    assert code == 0 and "2 cached re-uses" in text.splitlines()[0]
    assert f"reused by train_on #{runs['r2'].nodes['train'].execution_id}" in text and f"(run {r2.run_id})" in text
    # downstream of run 1's examples: every later re-use is part of what happened to them
    down = _json(capsys, runs, str(r1.outputs("ingest", "examples")[0].id), "--down", "--show-cached")
    assert {(u["kind"], u["run"]) for u in down["uses"]} == {("cached", r2.run_id)}
    assert not [x for x in down["executions"] if x["state"] == "CACHED"]


def test_resolver_selection_is_shown_for_its_run_only(runs, capsys) -> None:
    r1, r3 = runs["r1"], runs["r3"]
    serving2 = str(runs["serving"] / "2")
    plain = _json(capsys, runs, serving2)
    assert not [x for x in plain["executions"] if x["type"].endswith("LatestBlessedModel")]
    # run 3's evaluation compared against run 1's model: made by run 1, selected by run 3's resolver
    model1 = r1.outputs("train", "model")[0].id
    assert f"artifact:{model1}" in {a["key"] for a in plain["artifacts"]}
    makers = [e["execution_id"] for e in plain["edges"] if e["artifact_id"] == model1 and e["type"] == "OUTPUT"]
    assert makers == [r1.nodes["train"].execution_id]
    graph = _json(capsys, runs, serving2, "--show-resolvers")
    [use] = graph["uses"]
    assert (use["artifact_id"], use["kind"], use["run"]) == (model1, "resolver", r3.run_id)
    assert use["execution"]["id"] == r3.nodes["baseline"].execution_id
    code, text = _run(capsys, "lineage", serving2, "--show-resolvers", "--metadata", runs["uri"])
    assert code == 0 and f"selected by LatestBlessedModel #{use['execution']['id']}" in text
    assert "as model" in text and f"(run {r3.run_id})" in text


@pytest.mark.parametrize("fmt", ["dot", "mermaid", "html"])
def test_graph_formats_draw_uses_from_the_artifact(runs, capsys, fmt) -> None:
    r1, r3 = runs["r1"], runs["r3"]
    serving2 = str(runs["serving"] / "2")
    code, plain = _run(capsys, "lineage", serving2, "-f", fmt, "--metadata", runs["uri"])
    assert code == 0 and "LatestBlessedModel" not in plain
    code, out = _run(capsys, "lineage", serving2, "-f", fmt, "--show-resolvers", "--metadata", runs["uri"])
    assert code == 0 and "LatestBlessedModel" in out
    model1, resolver = r1.outputs("train", "model")[0].id, r3.nodes["baseline"].execution_id
    if fmt == "dot":  # the edge runs from the artifact to the resolver, dashed, never resolver -> artifact
        assert f'"artifact:{model1}" -> "execution:{resolver}" [label="selected as model", style=dashed];' in out
        assert f'"execution:{resolver}" -> "artifact:{model1}"' not in out
    elif fmt == "mermaid":
        assert f'a{model1} -.->|"selected as model"| e{resolver}' in out
    else:
        assert f'data-s="artifact:{model1}" data-t="execution:{resolver}"' in out and "not a producer" in out


def test_explain_rejects_show_flags(runs, capsys) -> None:
    with pytest.raises(SystemExit, match="--show-cached does not apply to --explain"):
        main(["lineage", str(runs["serving"] / "1"), "--explain", "--show-cached", "--metadata", runs["uri"]])


def test_python_api_matches(runs) -> None:
    from headwater.metadata import connect
    from headwater.metadata.lineage import downstream, upstream

    store = connect(runs["uri"], readonly=True)
    r1, r2 = runs["r1"], runs["r2"]
    serving1 = Path(runs["serving"] / "1")
    assert upstream(store, serving1).root_node.id == r1.outputs("push", "pushed_model")[0].id
    examples = r1.outputs("ingest", "examples")[0].id
    down = downstream(store, examples, show_cached=True)
    assert [u.run for u in down.uses_of(examples)] == [r2.run_id]
    assert downstream(store, examples).uses == ()


def test_tfx_store_every_mode(tfx_store_path, capsys) -> None:
    """TFX records re-use as CACHED executions and its Resolver with INTERNAL_OUTPUT events: the same
    rules hold (run 2 re-used run 1's outputs and selected run 1's model #13 as the baseline)."""
    uri = str(tfx_store_path)
    code, out = _run(capsys, "artifacts", "list", "--type", "PushedModel", "-f", "json", "--metadata", uri)
    first, second = (p["custom_properties"]["pushed_destination"] for p in json.loads(out))
    code, out = _run(capsys, "lineage", first, "--show-cached", "--show-resolvers", "-f", "json", "--metadata", uri)
    graph = json.loads(out)
    assert code == 0 and graph["uses"] == [] and {x["state"] for x in graph["executions"]} == {"COMPLETE"}
    assert sorted(x["id"] for x in graph["executions"]) == [1, 3, 4, 5, 6, 7, 8]  # run 1 only
    code, out = _run(capsys, "lineage", second, "--show-cached", "--show-resolvers", "-f", "json", "--metadata", uri)
    graph = json.loads(out)
    kinds = {(u["execution"]["type"].rsplit(".", 1)[-1], u["kind"]) for u in graph["uses"]}
    assert ("Resolver", "resolver") in kinds and ("Trainer", "cached") in kinds
    assert {u["run"] for u in graph["uses"]} == {"2026-11-23T14:24:00.493462"}
    assert not [x for x in graph["executions"] if x["state"] == "CACHED" or x["type"].endswith("Resolver")]
    for mode in ("--down", "--both"):
        code, out = _run(capsys, "lineage", second, mode, "--metadata", uri)
        assert code == 0 and "PushedModel #19" in out
