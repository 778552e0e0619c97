"""Resolvers as pipeline nodes on real MLMD: latest blessed model (TFX semantics), latest artifact, span range."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from headwater.components import Param, ResolverContext
from headwater.components.resolvers import LatestArtifact, LatestBlessedModel, SpanRange, latest_blessed_model
from headwater.metadata import connect, types
from headwater.metadata.errors import ParameterError
from headwater.pipelines import LocalRunner, Pipeline

sys.path.insert(0, str(Path(__file__).resolve().parent / "testdata"))
import resolver_components as rc


def run(name, root, nodes, **params):
    pipeline = Pipeline(name=name, root=str(root), nodes=nodes, metadata=f"sqlite:///{root / 'metadata.sqlite'}")
    result = LocalRunner(quiet=True).run(pipeline, params=params)
    assert result.ok, {n: r.error for n, r in result.nodes.items() if r.error}
    return result


def produce_and_bless(name, root, tag, blessed):
    model = rc.make_model(tag=tag)
    verdict = rc.bless(model=model.outputs.model, blessed=blessed)
    result = run(name, root, [model, verdict])
    return result.outputs("make_model", "model")[0], result.outputs("bless", "blessing")[0]


def resolve(name, root):
    result = run(name, root, [LatestBlessedModel()])
    return ([a.id for a in result.outputs("LatestBlessedModel", "model")],
            [a.id for a in result.outputs("LatestBlessedModel", "model_blessing")])


def test_latest_blessed_model_follows_tfx_semantics(tmp_path):
    assert resolve("models", tmp_path) == ([], [])  # nothing yet: empty, not an error
    a, a_blessing = produce_and_bless("models", tmp_path, "a", 1)
    b, _ = produce_and_bless("models", tmp_path, "b", 0)  # newer, but NOT blessed
    assert resolve("models", tmp_path) == ([a.id], [a_blessing.id])
    produce_and_bless("other", tmp_path, "d", 1)  # blessed, but in another pipeline
    assert resolve("models", tmp_path) == ([a.id], [a_blessing.id])
    c, c_blessing = produce_and_bless("models", tmp_path, "c", 1)
    assert resolve("models", tmp_path) == ([c.id], [c_blessing.id])
    assert b.id < c.id
    # The resolver's choice is recorded as TFX records it: INTERNAL_OUTPUT events to the chosen artifacts.
    store = connect(f"sqlite:///{tmp_path / 'metadata.sqlite'}")
    result = run("models", tmp_path, [LatestBlessedModel().with_id("again")])
    events = store.events_by_execution([result.nodes["again"].execution_id])
    assert sorted(e[:3] for e in next(iter(events.values()))) == [("INTERNAL_OUTPUT", "model", 0),
                                                                   ("INTERNAL_OUTPUT", "model_blessing", 0)]
    # exclude= leaves the candidate out: the next blessed one back is the baseline.
    ctx = ResolverContext(store, "models", "r", "latest")
    found = latest_blessed_model(ctx, exclude=[c.id])
    assert found is not None and found[0].id == a.id
    assert latest_blessed_model(ctx, exclude=[a.id, c.id]) is None


def test_latest_blessed_model_reads_a_store_written_by_tfx(tfx_store_path):
    store = connect(f"sqlite:///{tfx_store_path}", readonly=True)
    ctx = ResolverContext(store, "penguin_tfx", "r", "latest")
    out = LatestBlessedModel.fn(ctx=ctx, exclude=None)
    [model] = out["model"]
    [blessing] = out["model_blessing"]
    assert model.id == 13 and model.uri.endswith("Trainer/model/6") and model.type_name == "Model"
    assert blessing.custom_properties["current_model_id"] == 13
    assert LatestBlessedModel.fn(ctx=ctx, exclude=[model]) == {"model": [], "model_blessing": []}
    assert LatestBlessedModel.fn(ctx=ResolverContext(store, "no_such_pipeline", "r", "x"), exclude=None) == {
        "model": [], "model_blessing": []}


def test_span_range_gives_a_rolling_window_of_the_latest_spans(tmp_path):
    examples = rc.make_examples(span=Param("span", default=1), version=Param("version", default=0))
    window = SpanRange(examples=examples.outputs.examples, spans=2)
    consumer = rc.read_window(examples=window.outputs.examples)
    nodes = [examples, window, consumer]

    def windows(span, version=0):
        result = run("spans", tmp_path, nodes, span=span, version=version)
        [model] = result.outputs("read_window", "model")
        return [tuple(w[:2]) for w in model.custom_properties["window"]]

    assert windows(1) == [(1, 0)]
    assert windows(2) == [(1, 0), (2, 0)]
    assert windows(3) == [(2, 0), (3, 0)]  # span 1 left the window
    assert windows(2, version=1) == [(2, 1), (3, 0)]  # the newest version of each span
    # Examples of another producer (another node) never enter the window.
    other = rc.make_examples(span=9).with_id("elsewhere")
    run("spans", tmp_path, [other])
    assert windows(3) == [(2, 1), (3, 0)]


def test_span_range_rejects_an_empty_window(tmp_path):
    store = connect(f"sqlite:///{tmp_path / 'metadata.sqlite'}")
    with pytest.raises(ParameterError, match=r"SpanRange: spans=0; give the number of latest spans to keep"):
        SpanRange.fn(ctx=ResolverContext(store, "p", "r", "w"), examples=types.Examples("x", id=1), spans=0)


def test_latest_artifact_by_type_producer_or_channel(tmp_path):
    first = rc.make_examples(span=1).with_id("ingest_a")
    second = rc.make_examples(span=2).with_id("ingest_b")
    run("latest", tmp_path, [first])
    run("latest", tmp_path, [second])  # published later: the newest
    newest = run("latest", tmp_path, [LatestArtifact(types.Examples)]).outputs("LatestArtifact", "artifact")
    by_producer = run("latest", tmp_path, [LatestArtifact(types.Examples, producer="ingest_a")])
    by_channel = run("latest", tmp_path, [LatestArtifact(first.outputs.examples).with_id("from_channel")])
    assert [a.properties["span"] for a in newest] == [2]
    assert [a.properties["span"] for a in by_producer.outputs("LatestArtifact", "artifact")] == [1]
    assert [a.properties["span"] for a in by_channel.outputs("from_channel", "artifact")] == [1]
    assert run("latest", tmp_path, [LatestArtifact(types.Model)]).outputs("LatestArtifact", "artifact") == []
    with pytest.raises(ParameterError, match="LatestArtifact needs an artifact type such as types.Model"):
        LatestArtifact("Model")
