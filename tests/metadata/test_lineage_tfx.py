"""Lineage on an ML Metadata store written by TFX 1.16 itself (its penguin example, two runs).

Run 1 (CsvExampleGen -> ... -> Trainer -> Evaluator -> Pusher) pushed model #13 as PushedModel #16.
Run 2 reused every upstream output through CACHED executions and re-ran Evaluator (model #13 against
itself as the latest blessed baseline, via a Resolver) and Pusher (PushedModel #19).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from headwater.metadata.lineage import ArtifactNode, explain_push, list_artifacts, render, upstream
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

pb: Any = metadata_store_pb2  # the generated protos have no type stubs

FIXTURE = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "tfx-1.16-penguin" / "metadata.sqlite"
RUN_1, RUN_2 = "2026-11-23T14:23:06.598575", "2026-11-23T14:24:00.493462"


@pytest.fixture(scope="module")
def tfx_store(tmp_path_factory: pytest.TempPathFactory) -> metadata_store.MetadataStore:
    if not FIXTURE.exists():
        pytest.skip(f"the TFX-written store {FIXTURE} is absent (it lives in ../shared, outside this checkout)")
    copy = tmp_path_factory.mktemp("tfx") / "metadata.sqlite"
    shutil.copy(FIXTURE, copy)
    config = pb.ConnectionConfig()
    config.sqlite.filename_uri = str(copy)
    config.sqlite.connection_mode = pb.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(config)


def _pushed_models(store: metadata_store.MetadataStore) -> list[ArtifactNode]:
    return list_artifacts(store, type="PushedModel")


def test_trace_pushed_model_back_to_csv_example_gen(tfx_store) -> None:
    latest = _pushed_models(tfx_store)[-1]
    graph = upstream(tfx_store, latest.id)
    # walk producer by producer: PushedModel <- Pusher <- Model <- Trainer <- Examples <- Transform
    #                            <- Examples <- CsvExampleGen
    chain = []
    node = graph.root_node
    for step in ("Pusher", "Trainer", "Transform", "CsvExampleGen"):
        producer = next(x for x in graph.producers(node) if x.state == "COMPLETE")
        assert producer.short_type == step
        chain.append(producer)
        wanted = {"Pusher": "model", "Trainer": "examples", "Transform": "examples"}.get(step)
        if wanted:
            node = dict(graph.inputs(producer))[wanted]
    raw_examples = graph.outputs(chain[-1])
    assert [(k, a.type_name) for k, a in raw_examples] == [("examples", "Examples")]
    examples = raw_examples[0][1]
    assert examples.uri.endswith("/CsvExampleGen/examples/1")
    assert examples.get("span") == 0 and examples.get("split_names") == '["train", "eval"]'
    assert chain[-1].type_name == "tfx.components.example_gen.csv_example_gen.component.CsvExampleGen"
    assert chain[-1].get("input_base") == "/tmp/peer/penguin/data/labelled"
    # the second run's CACHED executions re-used the same artifacts: not producers, shown when asked
    assert [x.state for x in graph.producers(examples)] == ["COMPLETE"]
    assert not [x for x in graph.executions if x.state == "CACHED"] and graph.uses == ()
    shown = upstream(tfx_store, latest.id, show_cached=True)
    [use] = shown.uses_of(examples)
    assert (use.execution.short_type, use.execution.state, use.run) == ("CsvExampleGen", "CACHED", RUN_2)
    assert {u.run for u in shown.uses} == {RUN_2} and {u.kind for u in shown.uses} == {"cached"}


def test_explain_blessing_of_second_run_against_first_model(tfx_store) -> None:
    _, second = _pushed_models(tfx_store)
    e = explain_push(tfx_store, second.id)
    assert e.push.pushed is True
    assert e.push.destination is not None and e.push.destination.startswith("/tmp/tfx-penguin/serving/")
    assert e.push.version == e.push.destination.rsplit("/", 1)[-1]
    assert e.push.step is not None and (e.push.step.pipeline, e.push.step.run) == ("penguin_tfx", RUN_2)
    ev = e.evaluation
    assert ev is not None and ev.step is not None
    assert ev.step.execution.short_type == "Evaluator" and ev.step.run == RUN_2
    assert ev.blessed is True and ev.blessing is not None and ev.blessing.get("blessed") == 1
    # the baseline is run 1's model: the Resolver picked the latest blessed model, which is the same
    # model run 2 pushed (its Trainer was CACHED)
    assert e.model is not None and e.model.uri.endswith("/Trainer/model/6")
    assert ev.baseline is not None and ev.baseline.id == e.model.id == ev.blessing.get("baseline_model_id")
    assert ev.baseline_uri == e.model.uri
    assert ev.candidate is not None and ev.candidate.id == e.model.id
    [threshold] = ev.thresholds
    assert threshold.metric == "SparseCategoricalAccuracy"
    assert threshold.value_threshold == {"lower_bound": 0.6}
    assert threshold.change_threshold == {"absolute": -1e-10, "direction": "HIGHER_IS_BETTER"}
    assert ev.evaluation is not None and ev.evaluation.type_name == "ModelEvaluation"
    assert ev.metrics == {}  # TFX keeps metric values in files, not in MLMD: said in a note
    assert any("metric values are not recorded in the store" in n for n in e.notes)
    # training: run 1's Trainer with its parameters and user code, reused by run 2's cached Trainer
    assert e.training is not None and e.training.execution.state == "COMPLETE" and e.training.run == RUN_1
    assert e.training.parameters["train_args"] == {"num_steps": 100}
    assert e.training.code["module_path"].startswith("penguin_utils_keras@")
    assert len(e.training.code["module_path.sha256"]) == 64
    assert [x.state for x in e.training.reused_by] == ["CACHED"]
    assert e.transform is not None and e.transform.execution.short_type == "Transform"
    [data] = e.data
    assert data.examples.uri.endswith("/CsvExampleGen/examples/1") and data.span == 0
    assert data.fingerprint is not None and data.fingerprint.startswith("split:single_split,num_files:1")
    assert data.used_for == ("training", "evaluation")
    assert data.ingest is not None and data.ingest.execution.short_type == "CsvExampleGen"
    text = render(e, "text")
    assert f"beat baseline: Model #{e.model.id}" in text
    assert "the candidate itself: its training was reused from cache" in text
    assert "SparseCategoricalAccuracy: >= 0.6" in text


def test_first_push_had_no_baseline(tfx_store) -> None:
    first, _ = _pushed_models(tfx_store)
    e = explain_push(tfx_store, first.id)
    assert e.evaluation is not None and e.evaluation.baseline is None
    assert e.evaluation.step is not None and e.evaluation.step.run == RUN_1
    assert e.push.step is not None and e.push.step.run == RUN_1


def test_explain_by_serving_path(tfx_store) -> None:
    first, second = _pushed_models(tfx_store)
    assert explain_push(tfx_store, first.get("pushed_destination")).push.pushed_model.id == first.id
    assert explain_push(tfx_store, second.get("pushed_destination") + "/").push.pushed_model.id == second.id


def test_resolver_selection_is_shown_for_its_run_only(tfx_store) -> None:
    """Run 2's Resolver picked model #13 (INTERNAL_OUTPUT): never its producer, shown only when asked and
    only in the history of run 2's push, never in run 1's (the Resolver ran after it)."""
    first, second = _pushed_models(tfx_store)
    graph = upstream(tfx_store, second.id)
    model = next(a for a in graph.artifacts if a.type_name == "Model")
    assert not [x for x in graph.executions if x.short_type == "Resolver"]
    assert not [e for e in graph.edges if e.event_type == "INTERNAL_OUTPUT"]
    assert [x.short_type for x in graph.producers(model)] == ["Trainer"]
    assert [x.state for x in graph.producers(model)] == ["COMPLETE"]
    shown = upstream(tfx_store, second.id, show_resolvers=True)
    [use] = shown.uses
    assert (use.artifact_id, use.kind, use.execution.short_type, use.run) == (model.id, "resolver", "Resolver", RUN_2)
    assert use.label == "model"
    text = render(shown, "text")
    assert "selected by Resolver #10" in text and "(run 2026-11-23T14:24:00.493462)" in text
    # run 1's push: nothing of run 2 (its cached re-uses and its resolver came later)
    earlier = upstream(tfx_store, first.id, show_cached=True, show_resolvers=True)
    assert earlier.uses == () and len(earlier.executions) == len(upstream(tfx_store, first.id).executions)
    assert {x.id for x in earlier.executions} == {1, 3, 4, 5, 6, 7, 8}
    # an artifact consumed under two keys is one event with two [key, index] pairs
    evaluator = next(x for x in graph.executions if x.short_type == "Evaluator")
    assert [k for k, a in graph.inputs(evaluator) if a.id == model.id] == ["model", "baseline_model"]


def test_list_artifacts_of_a_tfx_run(tfx_store) -> None:
    run2 = list_artifacts(tfx_store, pipeline="penguin_tfx", run=RUN_2[:16])
    types = sorted({a.type_name for a in run2})
    assert "PushedModel" in types and "Examples" in types
    pushed = [a for a in run2 if a.type_name == "PushedModel"]
    assert len(pushed) == 1 and pushed[0].get("pushed_version") is not None
