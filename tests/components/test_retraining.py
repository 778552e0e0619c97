"""The retraining scenario, end to end on the real Palmer penguins data and checked in ML Metadata.

A new year of data arrives as a new span (2007, 2008, 2009 → spans 1, 2, 3). Each run ingests the new
span, validates it (the curated penguin schema, drift from the previous span that passed), transforms
and trains on a rolling window of the latest two spans, evaluates the candidate on the new span's eval
split against the model blessed before it (an accuracy bar, and "not worse than the baseline" with a
small tolerance), and pushes only a blessed model. A fourth run with nothing changed is fully cached
and pushes nothing. Then a span whose body mass was exported in kilograms drifts and is blocked: nothing
is trained or pushed; the clean span after it is compared with the last span that passed, trains on a
window without the blocked span, and is pushed.

The test reads the outcome back from the store, not from the runner: which spans each model saw (walking
the lineage from the Model to the Examples that Ingest wrote), which baseline each blessing compared
against, and which pushes happened.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from headwater.components._data import penguins_csv
from headwater.components.evaluate import ChangeThreshold, EvalConfig, Evaluate, Metric, ValueThreshold
from headwater.components.ingest import Ingest
from headwater.components.push import Push
from headwater.components.resolvers import LatestBlessedModel, SpanRange
from headwater.components.train import Train
from headwater.components.transform import Transform
from headwater.components.validation import Drift, ImportSchema, PreviousStatistics, Statistics, Validate
from headwater.metadata import connect, types
from headwater.metadata.lineage import upstream
from headwater.pipelines import LocalRunner, Pipeline

pytestmark = pytest.mark.ml

MODULE = str(Path(__file__).resolve().parent / "testdata" / "penguin_module.py")
YEARS = {1: 2007, 2: 2008, 3: 2009}
BAR = 0.9  # accuracy every pushed model reaches on the new span
TOLERANCE = 0.01  # "not worse": less than one eval example (~37 a year), more than float noise
RESOLVERS = {"SpanRange", "baseline", "PreviousStatistics"}
EXECUTORS = {"Ingest", "Transform", "Train", "Evaluate", "Push"}
VALIDATION = {"Statistics", "ImportSchema", "Validate"}
SCHEMA = Path(__file__).resolve().parents[2] / "templates" / "penguin" / "schema" / "schema.pbtxt"
RULES = [Drift("island", linf=0.3), Drift("body_mass_g", jensen_shannon=0.3),
         Drift("flipper_length_mm", jensen_shannon=0.3)]

CONFIG = EvalConfig(
    label_key="species_xf",
    preprocessing_signatures=("transform_features",),
    metrics=(Metric("SparseCategoricalAccuracy", threshold=ValueThreshold(lower=BAR),
                    change=ChangeThreshold(absolute=-TOLERANCE)),),
    plots=False,
)


def retraining_pipeline(root: Path) -> Pipeline:
    ingest = Ingest(input_base=str(root / "data"), pattern="penguins-{SPAN}.csv", label="species")
    statistics = Statistics(examples=ingest.outputs.examples)
    schema = ImportSchema(schema_file=str(SCHEMA))
    previous = PreviousStatistics(statistics=statistics.outputs.statistics)
    validate = Validate(statistics=statistics.outputs.statistics, schema=schema.outputs.schema,
                        previous_statistics=previous.outputs.statistics, rules=RULES)
    window = SpanRange(examples=ingest.outputs.examples, spans=2)
    transform = Transform(examples=window.outputs.examples, schema=ingest.outputs.schema, module_file=MODULE)
    train = Train(examples=transform.outputs.transformed_examples, transform_graph=transform.outputs.transform_graph,
                  schema=ingest.outputs.schema, module_file=MODULE, train_steps=50, eval_steps=2, seed=1)
    baseline = LatestBlessedModel(exclude=train.outputs.model).with_id("baseline")
    evaluate = Evaluate(examples=ingest.outputs.examples, model=train.outputs.model,
                        baseline_model=baseline.outputs.model, eval_config=CONFIG)
    push = Push(model=train.outputs.model, blessing=evaluate.outputs.blessing, destination=str(root / "serving"))
    return Pipeline(name="penguin-retraining", root=str(root / "pipeline"),
                    metadata=f"sqlite:///{root / 'pipeline' / 'metadata.sqlite'}",
                    nodes=[ingest, statistics, schema, previous, validate, window, transform, train, baseline,
                           evaluate, push])


def spans_seen(store: Any, model_id: int) -> list[int]:
    """The spans of the Examples that Ingest wrote and that the model was derived from (MLMD lineage)."""
    graph = upstream(store, model_id)
    ingested = [a for a in graph.artifacts_of_type(types.Examples.TYPE_NAME)
                if any(x.short_type == "Ingest" for x in graph.producers(a))]
    return sorted(a.properties["span"] for a in ingested)


def inputs_of(store: Any, execution_id: int, key: str) -> list[int]:
    events = store.events_by_execution([execution_id])[execution_id]
    return [artifact_id for kind, k, _, artifact_id in sorted(events, key=lambda e: e[2])
            if kind == "INPUT" and k == key]


def versions(serving: Path) -> list[str]:
    return sorted((p.name for p in serving.iterdir() if not p.name.startswith(".")), key=int)


def test_spans_arrive_one_after_another_and_only_models_not_worse_are_pushed(tmp_path):
    pipeline = retraining_pipeline(tmp_path)
    runs = {}
    for span, year in YEARS.items():
        penguins_csv(tmp_path / "data" / f"penguins-{span}.csv", years=[year])  # a new year arrives
        # The pipeline is a chain: one worker process, which keeps its imports from node to node.
        result = LocalRunner(max_workers=1, quiet=True).run(pipeline)
        assert result.ok, {n: r.error for n, r in result.nodes.items() if r.error}
        assert {result.nodes[n].state for n in EXECUTORS - {"Push"}} == {"done"}
        runs[span] = result

    store = connect(pipeline.metadata)
    models = {span: r.outputs("Train", "model")[0].id for span, r in runs.items()}
    blessed_before: int | None = None  # the newest model blessed so far: each run's expected baseline
    pushes = []
    for span, result in runs.items():
        # Ingest took the new span; the window holds it and the span before.
        [examples] = result.outputs("Ingest", "examples")
        assert examples.properties["span"] == span
        window = [span - 1, span] if span > 1 else [1]
        assert [a.properties["span"] for a in result.outputs("SpanRange", "examples")] == window

        # Which spans each model saw: from the Model back through Train and Transform to Ingest's Examples.
        assert spans_seen(store, models[span]) == window
        [transformed] = store.get_artifacts([a.id for a in result.outputs("Transform", "transformed_examples")])
        assert transformed.custom_properties["spans"] == window and transformed.properties["span"] == span

        # The candidate was evaluated on the new span's examples, against the model blessed before it.
        evaluate = result.nodes["Evaluate"]
        assert inputs_of(store, evaluate.execution_id, "examples") == [examples.id]
        assert inputs_of(store, evaluate.execution_id, "model") == [models[span]]
        [blessing] = store.get_artifacts([result.outputs("Evaluate", "blessing")[0].id])
        props = blessing.custom_properties
        assert props["current_model_id"] == models[span]
        assert props.get("baseline_model_id") == blessed_before
        assert inputs_of(store, evaluate.execution_id, "baseline_model") == (
            [blessed_before] if blessed_before is not None else [])

        # Blessed iff the accuracy clears the bar and is not worse than the baseline's (within tolerance).
        [evaluation] = result.outputs("Evaluate", "evaluation")
        accuracy = json.loads(Path(evaluation.uri, "metrics.json").read_text())["slices"]["Overall"][
            "sparse_categorical_accuracy"]
        not_worse = blessed_before is None or accuracy["candidate"] >= accuracy["baseline"] - TOLERANCE
        expected = accuracy["candidate"] >= BAR and not_worse
        assert props["blessed"] == int(expected), (span, accuracy, props["blessing_message"])
        assert Path(blessing.uri, "BLESSED" if expected else "NOT_BLESSED").exists()

        # Pushed iff blessed; each push is the next version.
        [pushed] = store.get_artifacts([result.outputs("Push", "pushed_model")[0].id])
        assert pushed.custom_properties["pushed"] == int(expected)
        if expected:
            assert result.nodes["Push"].state == "done"
            pushes.append(span)
            assert pushed.custom_properties["pushed_version"] == str(len(pushes))
            assert pushed.custom_properties["pushed_destination"] == str(tmp_path / "serving" / str(len(pushes)))
            blessed_before = models[span]
        else:
            assert result.nodes["Push"].state == "skipped"
            assert "push_skipped" in pushed.custom_properties

    # The real data, a fixed seed: a deterministic story. Every year's model is at least as good on the new
    # year as the one before it, so each is pushed and becomes the next run's baseline.
    assert pushes == [1, 2, 3]
    assert [[m.id for m in runs[s].outputs("baseline", "model")] for s in YEARS] == [[], [models[1]], [models[2]]]
    assert versions(tmp_path / "serving") == ["1", "2", "3"]
    # Span 2 (2008) has no missing measurements, so its schema requires them; the window [1, 2] reads them as
    # optional because 2007 misses some (and so does the serving signature of model 2).
    [window_12] = runs[2].outputs("Transform", "transformed_examples")
    assert window_12.custom_properties["optional_in_window"] == [
        "bill_depth_mm", "bill_length_mm", "body_mass_g", "flipper_length_mm"]

    # Nothing changed: every executor is cached, the resolvers pick the same artifacts, nothing new exists.
    artifacts_before = len(store.mlmd.get_artifacts())
    again = LocalRunner(max_workers=1, quiet=True).run(pipeline)
    assert again.ok
    assert {again.nodes[n].state for n in EXECUTORS | VALIDATION} == {"cached"}
    for node_id in EXECUTORS | VALIDATION | RESOLVERS:
        for key, arts in runs[3].nodes[node_id].outputs.items():
            assert [a.id for a in again.outputs(node_id, key)] == [a.id for a in arts], (node_id, key)
    assert len(store.mlmd.get_artifacts()) == artifacts_before
    assert versions(tmp_path / "serving") == ["1", "2", "3"]

    # Span 4: body mass exported in kilograms. Validate blocks it; nothing after it runs, nothing is pushed.
    drifted = tmp_path / "data" / "penguins-4.csv"
    penguins_csv(drifted, years=[2009])
    lines = drifted.read_text().splitlines()
    column = lines[0].split(",").index("body_mass_g")
    rows = [line.split(",") for line in lines[1:]]
    for row in rows:
        row[column] = str(round(int(row[column]) / 1000)) if row[column] else ""
    drifted.write_text("\n".join([lines[0], *(",".join(r) for r in rows)]) + "\n")
    blocked = LocalRunner(max_workers=1, quiet=True).run(pipeline)
    assert not blocked.ok and blocked.failed == []
    assert blocked.nodes["Validate"].state == "done"
    assert {blocked.nodes[n].state for n in ("SpanRange", "Transform", "Train", "Evaluate", "Push")} == {"blocked"}
    assert blocked.nodes["Evaluate"].error.startswith(
        "data validation 'Validate' blocked the data: feature 'body_mass_g' (train): drift — Jensen-Shannon "
        "divergence "), blocked.nodes["Evaluate"].error
    assert "against span 3 is above the threshold 0.3" in blocked.nodes["Evaluate"].error
    assert versions(tmp_path / "serving") == ["1", "2", "3"]
    [anomalies] = store.get_artifacts([blocked.outputs("Validate", "anomalies")[0].id])
    assert anomalies.custom_properties["passed"] == 0
    assert anomalies.custom_properties["drift"]["body_mass_g"]["jensen_shannon"] > 0.3
    assert anomalies.custom_properties["drift"]["island"]["linf"] < 0.3  # recorded below the threshold too

    # Span 5, clean: compared with span 3 (the last that passed), trained on [3, 5], evaluated, pushed.
    penguins_csv(tmp_path / "data" / "penguins-5.csv", years=[2009])
    clean = LocalRunner(max_workers=1, quiet=True).run(pipeline)
    assert clean.ok, {n: r.error for n, r in clean.nodes.items() if r.error}
    assert [a.properties["span"] for a in clean.outputs("PreviousStatistics", "statistics")] == [3]
    assert [a.properties["span"] for a in clean.outputs("SpanRange", "examples")] == [3, 5]
    assert spans_seen(store, clean.outputs("Train", "model")[0].id) == [3, 5]
    assert clean.nodes["Push"].state == "done"
    assert versions(tmp_path / "serving") == ["1", "2", "3", "4"]
