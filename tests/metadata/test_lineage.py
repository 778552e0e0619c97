"""Lineage queries and push explanations on a store written with real MLMD calls in headwater's shape.

The store holds three runs of one pipeline (Ingest -> Transform -> Train -> Evaluate -> Push), written
the way the launcher writes: one ``put_execution`` per node, contexts pipeline / pipeline_run / node,
events with ``[key, index]`` paths. Run 2 evaluates against run 1's model as baseline; run 3 reuses
run 2's data through a CACHED ingest, is not blessed, and records a push with ``pushed=0``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from headwater.components.evaluate import ChangeThreshold, EvalConfig, Metric, ValueThreshold
from headwater.metadata.errors import ArtifactNotFoundError, MetadataError
from headwater.metadata.lineage import (
    ArtifactNode,
    ExecutionNode,
    LineageGraph,
    Threshold,
    downstream,
    explain_push,
    find_pushed_model,
    list_artifacts,
    resolve_artifact,
    trace,
    upstream,
)
from headwater.metadata.store import to_value
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

pb: Any = metadata_store_pb2  # the generated protos have no type stubs

PIPELINE = "taxi"
COMPONENTS = "headwater.components"
EVAL_CONFIG = {
    "metrics_specs": [
        {
            "metrics": [
                {
                    "class_name": "BinaryAccuracy",
                    "threshold": {
                        "value_threshold": {"lower_bound": 0.7},
                        "change_threshold": {"direction": "HIGHER_IS_BETTER", "absolute": -0.01},
                    },
                }
            ]
        }
    ],
    "model_specs": [{"label_key": "tips"}],
}


class StoreWriter:
    """Writes nodes the way headwater's launcher does, one transaction per execution."""

    def __init__(self, mlmd: metadata_store.MetadataStore, serving: str) -> None:
        self.mlmd = mlmd
        self.serving = serving
        self.artifact_types: dict[str, int] = {}
        examples = pb.ArtifactType(name="Examples")
        examples.properties["span"] = pb.INT
        examples.properties["version"] = pb.INT
        examples.properties["split_names"] = pb.STRING
        self.artifact_types["Examples"] = mlmd.put_artifact_type(examples)
        for name in (
            "Schema",
            "TransformGraph",
            "Model",
            "ModelRun",
            "ModelEvaluation",
            "ModelBlessing",
            "PushedModel",
        ):
            self.artifact_types[name] = mlmd.put_artifact_type(pb.ArtifactType(name=name))
        self.context_types = {
            n: mlmd.put_context_type(pb.ContextType(name=n)) for n in ("pipeline", "pipeline_run", "node")
        }
        [self.pipeline] = mlmd.put_contexts([pb.Context(type_id=self.context_types["pipeline"], name=PIPELINE)])
        self.nodes: dict[str, int] = {}

    def node(
        self,
        run_ctx: int,
        node_id: str,
        component: str,
        params: dict[str, Any],
        inputs: list[tuple[str, int]],
        outputs: list[tuple[str, str, dict[str, Any], dict[str, Any]]],
        state: int = pb.Execution.COMPLETE,
        reuse: list[tuple[str, int]] | None = None,
    ) -> dict[str, int]:
        type_id = self.mlmd.put_execution_type(pb.ExecutionType(name=f"{COMPONENTS}.{component}"))
        execution = pb.Execution(type_id=type_id, last_known_state=state)
        for k, v in params.items():  # as the launcher writes parameters: structured ones as JSON text
            to_value(v, execution.custom_properties[k], json_strings=True)
        pairs = []
        ids = [aid for _, aid in inputs] + [aid for _, aid in reuse or []]
        existing = {a.id: a for a in self.mlmd.get_artifacts_by_id(ids)} if ids else {}
        for key, aid in inputs:
            pairs.append((existing[aid], _event(pb.Event.INPUT, key)))
        for key, aid in reuse or []:  # a CACHED execution points at the artifacts it reused
            pairs.append((existing[aid], _event(pb.Event.OUTPUT, key)))
        for key, type_name, props, custom in outputs:
            artifact = pb.Artifact(
                type_id=self.artifact_types[type_name],
                state=pb.Artifact.LIVE,
                uri=f"/pipelines/{PIPELINE}/{node_id}/{key}/{{eid}}",
            )
            for k, v in props.items():
                _set(artifact.properties[k], v)
            for k, v in custom.items():
                _set(artifact.custom_properties[k], v)
            pairs.append((artifact, _event(pb.Event.OUTPUT, key)))
        if node_id not in self.nodes:
            [self.nodes[node_id]] = self.mlmd.put_contexts(
                [pb.Context(type_id=self.context_types["node"], name=f"{PIPELINE}.{node_id}")]
            )
        contexts = self.mlmd.get_contexts_by_id([self.pipeline, run_ctx, self.nodes[node_id]])
        eid, artifact_ids, _ = self.mlmd.put_execution(execution, pairs, contexts)
        out = {}
        stored = {a.id: a for a in self.mlmd.get_artifacts_by_id(artifact_ids)}
        fixed = []
        for (key, *_), aid in zip(inputs + (reuse or []) + [(o[0],) for o in outputs], artifact_ids, strict=True):
            out[key] = aid
            if "{eid}" in stored[aid].uri:
                stored[aid].uri = stored[aid].uri.replace("{eid}", str(eid))
                fixed.append(stored[aid])
        if fixed:
            self.mlmd.put_artifacts(fixed)
        out["execution"] = eid
        return out

    def run(
        self,
        name: str,
        *,
        span: int,
        steps: int,
        accuracy: float,
        baseline: dict[str, int] | None,
        cached_examples: dict[str, int] | None = None,
        version: int = 1,
        headwater_evaluate: bool = False,
    ) -> dict[str, dict[str, int]]:
        [run_ctx] = self.mlmd.put_contexts([pb.Context(type_id=self.context_types["pipeline_run"], name=name)])
        ingest_params = {
            "input_base": "/data/taxi",
            "input_pattern": "span-{SPAN}/*.csv",
            "span": span,
            "input_fingerprint": f"sha256:{span:064d}",
        }
        if cached_examples is None:
            ingest = self.node(
                run_ctx,
                "Ingest",
                "ingest.Ingest",
                ingest_params,
                [],
                [
                    (
                        "examples",
                        "Examples",
                        {"span": span, "version": 0, "split_names": '["train", "eval"]'},
                        {"input_fingerprint": f"sha256:{span:064d}"},
                    ),
                    ("schema", "Schema", {}, {}),
                ],
            )
        else:
            ingest = self.node(
                run_ctx,
                "Ingest",
                "ingest.Ingest",
                ingest_params,
                [],
                [],
                state=pb.Execution.CACHED,
                reuse=[("examples", cached_examples["examples"]), ("schema", cached_examples["schema"])],
            )
        code = {"module_file": "models/taxi.py", "code_fingerprint": f"sha256:{'c' * 64}"}
        transform = self.node(
            run_ctx,
            "Transform",
            "transform.Transform",
            {**code, "preprocessing_fn": "models.taxi.preprocessing_fn"},
            [("examples", ingest["examples"]), ("schema", ingest["schema"])],
            [
                ("transform_graph", "TransformGraph", {}, {}),
                ("transformed_examples", "Examples", {"split_names": '["train", "eval"]'}, {}),
            ],
        )
        train = self.node(
            run_ctx,
            "Train",
            "train.Train",
            {
                **code,
                "run_fn": "models.taxi.run_fn",
                "train_steps": steps,
                "eval_steps": 5,
                "hyperparameters": {"learning_rate": 0.01},
            },
            [
                ("examples", transform["transformed_examples"]),
                ("transform_graph", transform["transform_graph"]),
                ("schema", ingest["schema"]),
            ],
            [("model", "Model", {}, {}), ("model_run", "ModelRun", {}, {})],
        )
        inputs = [("examples", ingest["examples"]), ("model", train["model"])]
        if baseline:
            inputs.append(("baseline_model", baseline["model"]))
        blessed = int(accuracy >= 0.7)
        blessing_props: dict[str, Any] = {
            "blessed": blessed,
            "current_model_id": train["model"],
            "current_model": f"/pipelines/{PIPELINE}/Train/model/{train['execution']}",
        }
        if baseline:
            blessing_props |= {
                "baseline_model_id": baseline["model"],
                "baseline_model": f"/pipelines/{PIPELINE}/Train/model/{baseline['execution']}",
            }
        eval_params: dict[str, Any] = {"eval_config": EVAL_CONFIG}
        evaluation_props: dict[str, Any] = {"binary_accuracy": accuracy}
        if headwater_evaluate:  # what headwater's own Evaluate and launcher record
            eval_params = {
                "eval_config": EvalConfig(
                    label_key="tips",
                    metrics=(
                        Metric(
                            "BinaryAccuracy",
                            threshold=ValueThreshold(lower=0.7),
                            change=ChangeThreshold(absolute=-0.01),
                        ),
                        Metric("AUC"),
                    ),
                ).to_dict(),
                "__code_fingerprint__": "sha256:" + "e" * 64,
                "__run_id__": name,
                "__duration_s__": 12.5,
                "__cache_key__": "k" * 64,
            }
            evaluation_props = {
                "metrics": {"binary_accuracy": accuracy, "auc": 0.61},
                "blessed": blessed,
                "pictures": ["roc.svg"],
                "seconds": 11.9,
            }
            blessing_props["blessing_message"] = "BinaryAccuracy 0.5 is below the lower bound 0.7"
        evaluate = self.node(
            run_ctx,
            "Evaluate",
            "evaluate.Evaluate",
            eval_params,
            inputs,
            [
                ("evaluation", "ModelEvaluation", {}, evaluation_props),
                ("blessing", "ModelBlessing", {}, blessing_props),
            ],
        )
        push_custom: dict[str, Any] = {"pushed": blessed}
        if headwater_evaluate and not blessed:  # headwater's Push, skipped by the runner's gate
            push_custom["push_skipped"] = "model not blessed (blessed=0)"
        if blessed:
            push_custom |= {"pushed_destination": f"{self.serving}/{version}", "pushed_version": str(version)}
        push = self.node(
            run_ctx,
            "Push",
            "push.Push",
            {"destination": self.serving},
            [("model", train["model"]), ("blessing", evaluate["blessing"])],
            [("pushed_model", "PushedModel", {}, push_custom)],
        )
        return {
            "run": {"context": run_ctx},
            "ingest": ingest,
            "transform": transform,
            "train": train,
            "evaluate": evaluate,
            "push": push,
        }


def _event(kind: int, key: str, index: int = 0) -> pb.Event:
    event = pb.Event(type=kind)
    event.path.steps.add().key = key
    event.path.steps.add().index = index
    return event


def _set(value: Any, v: Any) -> None:
    to_value(v, value)  # as executors' results are written: dicts and lists become structs


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    path = tmp_path_factory.mktemp("lineage") / "metadata.sqlite"
    config = pb.ConnectionConfig()
    config.sqlite.filename_uri = str(path)
    mlmd = metadata_store.MetadataStore(config)
    writer = StoreWriter(mlmd, "/serving/taxi")
    r1 = writer.run("run-2024-01-01", span=1, steps=100, accuracy=0.8, baseline=None, version=1)
    r2 = writer.run("run-2024-02-01", span=2, steps=100, accuracy=0.85, baseline=r1["train"], version=2)
    r3 = writer.run(
        "run-2024-03-01",
        span=2,
        steps=5,
        accuracy=0.5,
        baseline=r2["train"],
        cached_examples=r2["ingest"],
        headwater_evaluate=True,
    )
    return path, {"r1": r1, "r2": r2, "r3": r3}


@pytest.fixture
def store(built: tuple[Path, dict[str, Any]]) -> metadata_store.MetadataStore:
    config = pb.ConnectionConfig()
    config.sqlite.filename_uri = str(built[0])
    config.sqlite.connection_mode = pb.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(config)


@pytest.fixture
def ids(built: tuple[Path, dict[str, Any]]) -> dict[str, Any]:
    return built[1]


# ------------------------------------------------------------------------------------------ tracing
def test_upstream_of_pushed_model_reaches_ingested_examples(store, ids) -> None:
    r2 = ids["r2"]
    graph = upstream(store, r2["push"]["pushed_model"])
    assert graph.root == f"artifact:{r2['push']['pushed_model']}"
    [pusher] = graph.parents(graph.root)
    assert isinstance(pusher, ExecutionNode) and pusher.type_name == "headwater.components.push.Push"
    assert {k: a.id for k, a in graph.inputs(pusher)} == {
        "model": r2["train"]["model"],
        "blessing": r2["evaluate"]["blessing"],
    }
    ancestors = {n.key for n in graph.ancestors(graph.root)}
    assert f"artifact:{r2['ingest']['examples']}" in ancestors
    assert f"execution:{r2['ingest']['execution']}" in ancestors
    # the baseline (run 1's model) is an input of the evaluation, so its history is upstream too
    assert f"artifact:{ids['r1']['train']['model']}" in ancestors
    evaluate = graph.execution(r2["evaluate"]["execution"])
    assert ("baseline_model", graph.artifact(ids["r1"]["train"]["model"])) in graph.inputs(evaluate)
    assert graph.producers(r2["train"]["model"]) == (graph.execution(r2["train"]["execution"]),)
    assert graph.frontier == ()
    assert all(node.key in graph for node in graph)


def test_downstream_of_examples_reaches_the_pushes(store, ids) -> None:
    r1, r2 = ids["r1"], ids["r2"]
    graph = downstream(store, r1["ingest"]["examples"])
    keys = {n.key for n in graph.descendants(graph.root)}
    assert f"artifact:{r1['push']['pushed_model']}" in keys
    # run 1's model was run 2's baseline: run 2's blessing and push derive from run 1's examples too
    assert f"artifact:{r2['evaluate']['blessing']}" in keys
    assert f"artifact:{r2['push']['pushed_model']}" in keys
    # but run 2's own examples do not
    assert f"artifact:{r2['ingest']['examples']}" not in graph
    consumers = {x.type_name.rsplit(".", 1)[-1] for x in graph.consumers(graph.root)}
    assert consumers == {"Transform", "Evaluate"}


def test_depth_limits_and_frontier(store, ids) -> None:
    pushed = ids["r2"]["push"]["pushed_model"]
    zero = upstream(store, pushed, depth=0)
    assert [n.key for n in zero] == [f"artifact:{pushed}"] and zero.edges == ()
    assert zero.frontier == (f"artifact:{pushed}",)
    one = upstream(store, pushed, depth=1)
    assert {n.key for n in one} == {
        f"artifact:{pushed}",
        f"execution:{ids['r2']['push']['execution']}",
        f"artifact:{ids['r2']['train']['model']}",
        f"artifact:{ids['r2']['evaluate']['blessing']}",
    }
    assert set(one.frontier) == {
        f"artifact:{ids['r2']['train']['model']}",
        f"artifact:{ids['r2']['evaluate']['blessing']}",
    }
    two = upstream(store, pushed, depth=2)
    assert len(one) < len(two) < len(upstream(store, pushed))
    deep = upstream(store, pushed, depth=40)
    assert deep.to_dict() | {"depth": None} == upstream(store, pushed).to_dict()
    for _, dist in two.walk():
        assert dist <= 4  # two executions = four hops
    down = downstream(store, ids["r3"]["push"]["pushed_model"], depth=3)
    assert len(down) == 1 and down.frontier == ()  # nothing derives from the last push


def test_mlmd_query_and_event_walk_agree(store, ids) -> None:
    starts = [
        ids["r2"]["push"]["pushed_model"],
        ids["r1"]["ingest"]["examples"],
        ids["r2"]["train"]["model"],
        ids["r3"]["evaluate"]["blessing"],
    ]
    for start in starts:
        for direction in ("upstream", "downstream", "both"):
            for depth in (0, 1, 2, None):
                a = trace(store, start, direction=direction, depth=depth, method="mlmd")
                b = trace(store, start, direction=direction, depth=depth, method="events")
                assert a == b, (start, direction, depth)


def test_both_directions_is_the_union(store, ids) -> None:
    model = ids["r1"]["train"]["model"]
    up, down = upstream(store, model, depth=2), downstream(store, model, depth=2)
    both = trace(store, model, direction="both", depth=2)
    assert {n.key for n in both} == {n.key for n in up} | {n.key for n in down}
    assert set(both.edges) == set(up.edges) | set(down.edges)


def test_cached_reuse_is_not_a_producer_and_belongs_to_its_run(store, ids) -> None:
    """Run 3's CACHED ingest re-used run 2's examples: never their producer; shown only when asked, only
    in the history of what run 3 made (and downstream of the examples), attached to run 3."""
    examples = ids["r2"]["ingest"]["examples"]
    cached_ingest = ids["r3"]["ingest"]["execution"]
    graph = upstream(store, examples)
    assert [x.state for x in graph.producers(examples)] == ["COMPLETE"]
    assert f"execution:{cached_ingest}" not in graph and graph.uses == ()
    # run 2's examples are older than run 3: asking for re-uses does not pull run 3 into their history
    assert upstream(store, examples, show_cached=True).uses == ()
    # the history of run 3's model: its transform read the examples through run 3's cached ingest
    model3 = upstream(store, ids["r3"]["train"]["model"], show_cached=True)
    [use] = model3.uses_of(examples)
    assert (use.kind, use.execution.id, use.run, use.verb) == ("cached", cached_ingest, "run-2024-03-01", "reused by")
    assert use.label == "examples" and f"execution:{cached_ingest}" not in model3
    assert [x.state for x in model3.producers(examples)] == ["COMPLETE"]
    # run 2's model was made before run 3: none of run 3's re-uses are in its history
    assert upstream(store, ids["r2"]["train"]["model"], show_cached=True, show_resolvers=True).uses == ()
    # downstream, every later re-use is part of what happened to the examples
    down = downstream(store, examples, show_cached=True)
    assert [u.execution.id for u in down.uses_of(examples)] == [cached_ingest]
    assert downstream(store, examples).uses == ()
    assert LineageGraph.from_dict(json.loads(down.to_json())) == down


def test_resolve_by_id_uri_and_object(store, ids, built) -> None:
    model_id = ids["r2"]["train"]["model"]
    node = resolve_artifact(store, model_id)
    assert node.type_name == "Model" and node.state == "LIVE"
    assert node.uri == f"/pipelines/{PIPELINE}/Train/model/{ids['r2']['train']['execution']}"
    assert resolve_artifact(store, str(model_id)) == node
    assert resolve_artifact(store, node.uri) == node
    assert resolve_artifact(store, node.uri + "/") == node
    assert resolve_artifact(store, node) == node
    assert resolve_artifact(store, store.get_artifacts_by_id([model_id])[0]) == node

    from headwater.metadata.store import connect

    wrapper = connect(f"sqlite:///{built[0]}", readonly=True)
    assert resolve_artifact(wrapper, model_id) == node
    [artifact] = wrapper.get_artifacts([model_id])  # headwater's own Artifact object
    assert resolve_artifact(wrapper, artifact) == node
    assert upstream(wrapper, model_id) == upstream(store, model_id)


def test_unknown_artifacts_raise_clear_errors(store) -> None:
    with pytest.raises(ArtifactNotFoundError, match=r"no artifact with id 4242 .*headwater artifacts list"):
        upstream(store, 4242)
    with pytest.raises(ArtifactNotFoundError,
                       match=r"no artifact with id or URI '/nowhere/model'.*exactly as.*serving path"):
        downstream(store, "/nowhere/model")
    with pytest.raises(
        ArtifactNotFoundError,
        match=r"no artifact with id or URI '/serving/other/1' and no "
        r"PushedModel pushed to it",
    ):
        explain_push(store, "/serving/other/1")
    with pytest.raises(TypeError, match="expected an ml_metadata MetadataStore"):
        upstream(object(), 1)
    with pytest.raises(ValueError, match="depth must be >= 0"):
        upstream(store, 1, depth=-1)
    with pytest.raises(ValueError, match="direction must be"):
        trace(store, 1, direction="sideways")


def test_shared_uri_is_ambiguous(tmp_path: Path) -> None:
    config = pb.ConnectionConfig()
    config.fake_database.SetInParent()
    mlmd = metadata_store.MetadataStore(config)
    type_id = mlmd.put_artifact_type(pb.ArtifactType(name="Examples"))
    a, b = mlmd.put_artifacts(
        [pb.Artifact(type_id=type_id, uri="/data/x"), pb.Artifact(type_id=type_id, uri="/data/x")]
    )
    with pytest.raises(
        ArtifactNotFoundError,
        match=rf"recorded for 2 artifacts: Examples #{a} .*Examples #{b}"
        r".*pass one of their ids",
    ):
        resolve_artifact(mlmd, "/data/x")


# ------------------------------------------------------------------------------------------ graph object
def test_graph_serialises_and_round_trips(store, ids) -> None:
    graph = trace(store, ids["r2"]["train"]["model"], direction="both", depth=2)
    data = json.loads(graph.to_json())
    assert data["root"] == graph.root and data["direction"] == "both" and data["depth"] == 2
    assert {e["type"] for e in data["edges"]} <= {"INPUT", "OUTPUT"}
    assert LineageGraph.from_dict(data) == graph
    examples = next(a for a in data["artifacts"] if a["id"] == ids["r2"]["ingest"]["examples"])
    assert examples["properties"] == {"span": 2, "split_names": '["train", "eval"]', "version": 0}
    train = next(x for x in data["executions"] if x["id"] == ids["r2"]["train"]["execution"])
    assert train["custom_properties"]["train_steps"] == 100
    assert train["create_time"].endswith("Z")


def test_graph_walking_methods(store, ids) -> None:
    graph = upstream(store, ids["r2"]["push"]["pushed_model"])
    order = [n.key for n in graph.topological_order()]
    assert sorted(order) == sorted(n.key for n in graph)
    for edge in graph.edges:
        assert order.index(edge.source) < order.index(edge.target)
    model = graph.artifact(ids["r2"]["train"]["model"])
    assert graph.children(model) and all(isinstance(c, ExecutionNode) for c in graph.children(model))
    assert graph.root_node in graph.descendants(model)
    with pytest.raises(KeyError, match="not in this lineage graph"):
        graph.node("artifact:999999")
    unset = graph.artifact(ids["r2"]["train"]["model"])
    assert unset.get("span") is None and "span" not in unset.properties


# ------------------------------------------------------------------------------------------ explain
def test_explain_push_answers_every_question(store, ids) -> None:
    r1, r2 = ids["r1"], ids["r2"]
    e = explain_push(store, r2["push"]["pushed_model"])
    assert e.push.pushed is True
    assert e.push.destination == "/serving/taxi/2" and e.push.version == "2"
    assert e.push.step is not None and e.push.step.run == "run-2024-02-01" and e.push.step.pipeline == PIPELINE
    assert e.push.step.node == f"{PIPELINE}.Push"
    assert e.model is not None and e.model.id == r2["train"]["model"]
    # data: run 2's span only (the baseline's data is not this model's data)
    assert [(d.examples.id, d.span, d.version) for d in e.data] == [(r2["ingest"]["examples"], 2, 0)]
    [data] = e.data
    assert data.split_names == ("train", "eval") and data.used_for == ("training", "evaluation")
    assert data.fingerprint == f"sha256:{2:064d}"
    assert data.ingest is not None and data.ingest.parameters["input_base"] == "/data/taxi"
    # transform and training with parameters and code
    assert e.transform is not None and e.transform.execution.id == r2["transform"]["execution"]
    assert e.transform.code["preprocessing_fn"] == "models.taxi.preprocessing_fn"
    assert e.training is not None and e.training.execution.id == r2["train"]["execution"]
    assert e.training.parameters["train_steps"] == 100
    assert e.training.parameters["hyperparameters"] == {"learning_rate": 0.01}
    assert e.training.code["module_file"] == "models/taxi.py"
    assert e.training.code["code_fingerprint"] == f"sha256:{'c' * 64}"
    assert e.training.run == "run-2024-02-01"
    # evaluation: metrics, thresholds, blessing, baseline
    ev = e.evaluation
    assert ev is not None and ev.blessed is True
    assert ev.metrics == {"binary_accuracy": 0.85}
    [threshold] = ev.thresholds
    assert threshold.metric == "BinaryAccuracy"
    assert threshold.value_threshold == {"lower_bound": 0.7}
    assert threshold.change_threshold == {"direction": "HIGHER_IS_BETTER", "absolute": -0.01}
    assert ev.candidate is not None and ev.candidate.id == r2["train"]["model"]
    assert ev.baseline is not None and ev.baseline.id == r1["train"]["model"]
    assert e.notes == ()
    text = e.to_text()
    for expected in (
        "Push of PushedModel",
        "destination: /serving/taxi/2 (version 2)",
        "span 2",
        "train_steps = 100",
        "BinaryAccuracy: >= 0.7; change vs baseline (higher, absolute -0.01)",
        f"beat baseline: Model #{r1['train']['model']}",
        "binary_accuracy = 0.85",
    ):
        assert expected in text, expected
    assert json.loads(e.to_json())["evaluation"]["baseline"] == f"artifact:{r1['train']['model']}"


def test_explain_by_serving_path_and_base_directory(store, ids) -> None:
    assert explain_push(store, "/serving/taxi/1").push.pushed_model.id == ids["r1"]["push"]["pushed_model"]
    assert find_pushed_model(store, "/serving/taxi/2/").id == ids["r2"]["push"]["pushed_model"]
    with pytest.raises(
        ArtifactNotFoundError,
        match=r"'/serving/taxi' is a push base directory.*versions pushed "
        r"under it: 1 \(PushedModel #\d+\), 2 .*'/serving/taxi/2'",
    ):
        explain_push(store, "/serving/taxi")


def test_explain_first_push_has_no_baseline(store, ids) -> None:
    e = explain_push(store, ids["r1"]["push"]["pushed_model"])
    assert e.evaluation is not None and e.evaluation.baseline is None and e.evaluation.baseline_uri is None
    assert "baseline: none" in e.to_text()


def test_explain_unblessed_push(store, ids) -> None:
    r2, r3 = ids["r2"], ids["r3"]
    e = explain_push(store, r3["push"]["pushed_model"])
    assert e.push.pushed is False and e.push.destination is None
    assert e.evaluation is not None and e.evaluation.blessed is False
    assert e.evaluation.baseline is not None and e.evaluation.baseline.id == r2["train"]["model"]
    assert e.training is not None and e.training.parameters["train_steps"] == 5
    # the examples came through a CACHED ingest: the original ingest is reported, the reuse noted
    [data] = e.data
    assert data.examples.id == r2["ingest"]["examples"]
    assert data.ingest is not None and data.ingest.execution.id == r2["ingest"]["execution"]
    assert [x.id for x in data.ingest.reused_by] == [r3["ingest"]["execution"]]
    text = e.to_text()
    assert "NOT pushed (pushed=0)" in text and "NOT BLESSED" in text and "compared against baseline" in text


def test_explain_reads_headwater_evaluate_records(store, ids) -> None:
    e = explain_push(store, ids["r3"]["push"]["pushed_model"])
    ev = e.evaluation
    assert ev is not None and ev.step is not None
    assert ev.metrics == {"binary_accuracy": 0.5, "auc": 0.61}
    assert ev.thresholds == (
        Threshold("BinaryAccuracy", {"lower_bound": 0.7}, {"absolute": -0.01, "direction": "HIGHER_IS_BETTER"}),
    )
    assert ev.message == "BinaryAccuracy 0.5 is below the lower bound 0.7"
    assert ev.step.code == {"code_fingerprint": "sha256:" + "e" * 64}
    assert ev.step.recorded == {"run_id": "run-2024-03-01", "duration_s": 12.5, "cache_key": "k" * 64}
    assert not any(k.startswith("__") for k in ev.step.parameters)
    assert ev.step.parameters["eval_config"]["label_key"] == "tips"
    text = e.to_text()
    assert "BinaryAccuracy: >= 0.7; change vs baseline (higher, absolute -0.01)" in text
    assert "blessing: ModelBlessing" in text and "NOT BLESSED: BinaryAccuracy 0.5 is below the lower bound" in text
    assert "auc = 0.61, binary_accuracy = 0.5" in text and "recorded: duration_s 12.5" in text
    assert e.push.skipped_because == "model not blessed (blessed=0)"
    assert "NOT pushed (pushed=0): model not blessed (blessed=0)" in text


def test_explain_follows_makers_not_later_resolvers() -> None:
    """A later run's resolver that selected a model records an OUTPUT event to it and consumed that run's
    candidate (``exclude``); the model's training data is still only what its own trainer consumed."""
    config = pb.ConnectionConfig()
    config.fake_database.SetInParent()
    mlmd = metadata_store.MetadataStore(config)
    writer = StoreWriter(mlmd, "/serving/taxi")
    r1 = writer.run("run-a", span=1, steps=100, accuracy=0.8, baseline=None, version=1)
    r2 = writer.run("run-b", span=2, steps=100, accuracy=0.9, baseline=r1["train"], version=2)
    r3 = writer.run("run-c", span=3, steps=100, accuracy=0.5, baseline=r2["train"], headwater_evaluate=True)
    b, c = (  # each run's baseline, recorded as the launcher records a resolver
        writer.node(
            later["run"]["context"],
            "baseline",
            "resolvers.LatestBlessedModel",
            {},
            [("exclude", later["train"]["model"])],
            [],
            reuse=[("model", selected["train"]["model"]), ("model_blessing", selected["evaluate"]["blessing"])],
        )["execution"]
        for later, selected in ((r2, r1), (r3, r2))
    )
    # MLMD's upstream walk goes on through the resolver; the trace follows production only
    plain = upstream(mlmd, r2["push"]["pushed_model"])
    assert f"artifact:{r3['ingest']['examples']}" not in plain and f"execution:{c}" not in plain
    # asked for, a selection is shown for the run that used it: run b's resolver picked run a's model as
    # run b's baseline; run c's pick of run b's model is not part of run b's push
    shown = upstream(mlmd, r2["push"]["pushed_model"], show_resolvers=True, show_cached=True)
    assert [(u.artifact_id, u.execution.id, u.kind, u.run) for u in shown.uses] == [
        (r1["train"]["model"], b, "resolver", "run-b")
    ]
    assert upstream(mlmd, r1["push"]["pushed_model"], show_resolvers=True).uses == ()
    assert f"execution:{b}" not in shown and f"artifact:{r3['ingest']['examples']}" not in shown
    for run, baseline in ((r1, None), (r2, r1)):
        e = explain_push(mlmd, run["push"]["pushed_model"])
        [data] = e.data
        assert (data.examples.id, data.used_for) == (run["ingest"]["examples"], ("training", "evaluation"))
        assert e.training is not None and e.training.execution.id == run["train"]["execution"]
        assert e.training.reused_by == ()  # a resolver's selection is not a reuse
        assert e.evaluation is not None and e.evaluation.step is not None
        assert e.evaluation.step.execution.id == run["evaluate"]["execution"] and e.evaluation.step.reused_by == ()
        assert (e.evaluation.baseline.id if e.evaluation.baseline else None) == (
            baseline["train"]["model"] if baseline else None
        )
        newer = {r["train"]["model"] for r in (r2, r3) if r is not run} | {r3["ingest"]["examples"]}
        assert not newer & {a.id for a in e.graph.artifacts}
        assert not [x for x in e.graph.executions if x.short_type == "LatestBlessedModel"]
    # the unblessed push of run c: its own data; run b's model is the baseline it did not beat
    e = explain_push(mlmd, r3["push"]["pushed_model"])
    assert e.push.pushed is False and e.push.skipped_because == "model not blessed (blessed=0)"
    assert [d.examples.id for d in e.data] == [r3["ingest"]["examples"]]
    assert e.evaluation is not None and e.evaluation.baseline is not None
    assert e.evaluation.baseline.id == r2["train"]["model"]


def test_explain_rejects_other_artifact_types(store, ids) -> None:
    model = ids["r2"]["train"]["model"]
    with pytest.raises(
        ArtifactNotFoundError,
        match=rf"Model #{model} .* is a Model, not a PushedModel; explain "
        rf"a push by its PushedModel \(see `headwater lineage {model} "
        "--down`",
    ):
        explain_push(store, model)


# ------------------------------------------------------------------------------------------ listing
def test_list_artifacts_filters(store, ids) -> None:
    models = list_artifacts(store, type="Model")
    assert [a.id for a in models] == [ids[r]["train"]["model"] for r in ("r1", "r2", "r3")]
    run2 = list_artifacts(store, run="run-2024-02-01")
    assert ids["r2"]["push"]["pushed_model"] in {a.id for a in run2}
    assert ids["r1"]["push"]["pushed_model"] not in {a.id for a in run2}
    # a run id prefix that is unambiguous works; the CACHED ingest of run 3 attributes run 2's examples too
    run3_examples = list_artifacts(store, type="Examples", pipeline=PIPELINE, run="run-2024-03")
    assert ids["r2"]["ingest"]["examples"] in {a.id for a in run3_examples}
    newest = list_artifacts(store, type="Model", limit=2, newest_first=True)
    assert [a.id for a in newest] == [ids["r3"]["train"]["model"], ids["r2"]["train"]["model"]]
    assert len(list_artifacts(store, pipeline=PIPELINE)) == len(list_artifacts(store))


def test_list_artifacts_unknown_filters(store) -> None:
    with pytest.raises(MetadataError, match=r"--type 'Modle': no artifact type .* known types: Examples, Model,"):
        list_artifacts(store, type="Modle")
    with pytest.raises(
        MetadataError,
        match=r"--pipeline 'cab': no pipeline .*known pipelines \(newest first\): "
        r"'taxi'",
    ):
        list_artifacts(store, pipeline="cab")
    with pytest.raises(MetadataError, match=r"--run 'run-2024': no run .*3 runs start with 'run-2024'.*give more"):
        list_artifacts(store, run="run-2024")
    with pytest.raises(ValueError, match="limit must be >= 1"):
        list_artifacts(store, limit=0)


def test_artifact_node_accessors() -> None:
    node = ArtifactNode(7, "Examples", "/x", "LIVE", properties={"span": 3}, custom_properties={"span": 9, "k": 1})
    assert node.get("span") == 3 and node.get("k") == 1 and node.get("missing", "d") == "d"
    assert node.key == "artifact:7" and node.label == "Examples #7" and node.create_time is None
    assert hash(node) == hash(ArtifactNode(7, "Examples", "/x", "LIVE"))


def test_contexts_of_more_executions_than_one_query_starts_from() -> None:
    from headwater.metadata.lineage.query import MLMD_MAX_STARTING_NODES, contexts_of_executions

    config = pb.ConnectionConfig()
    config.fake_database.SetInParent()
    mlmd = metadata_store.MetadataStore(config)
    type_id = mlmd.put_execution_type(pb.ExecutionType(name="headwater.components.train.Train"))
    run_type = mlmd.put_context_type(pb.ContextType(name="pipeline_run"))
    runs = mlmd.put_contexts([pb.Context(type_id=run_type, name=f"run-{i}") for i in range(3)])
    n = MLMD_MAX_STARTING_NODES * 2 + 5
    ids = mlmd.put_executions([pb.Execution(type_id=type_id) for _ in range(n)])
    mlmd.put_attributions_and_associations(
        [], [pb.Association(execution_id=e, context_id=runs[i % 3]) for i, e in enumerate(ids)]
    )
    found = contexts_of_executions(mlmd, ids)
    assert len(found) == n
    assert all(found[e] == {"pipeline_run": [f"run-{i % 3}"]} for i, e in enumerate(ids))


@pytest.mark.db
def test_trace_explain_and_list_on_every_backend(store_uri: str) -> None:
    from headwater.metadata.store import connect

    store = connect(store_uri)
    writer = StoreWriter(store.mlmd, "/serving/taxi")
    r1 = writer.run("run-a", span=1, steps=100, accuracy=0.8, baseline=None, version=1)
    r2 = writer.run("run-b", span=2, steps=100, accuracy=0.9, baseline=r1["train"], version=2)
    for start, direction in ((r2["push"]["pushed_model"], "upstream"), (r1["ingest"]["examples"], "both")):
        for depth in (1, None):
            by_query = trace(store, start, direction=direction, depth=depth, method="mlmd")
            assert by_query == trace(store, start, direction=direction, depth=depth, method="events")
    graph = trace(store, r2["push"]["pushed_model"])
    assert f"artifact:{r2['ingest']['examples']}" in graph and f"artifact:{r1['train']['model']}" in graph
    e = explain_push(store, "/serving/taxi/2")
    assert e.evaluation is not None and e.evaluation.baseline is not None
    assert e.evaluation.baseline.id == r1["train"]["model"]
    assert e.training is not None and e.training.run == "run-b" and e.training.pipeline == PIPELINE
    assert [d.span for d in e.data] == [2]
    # a run's artifacts are those it produced *and* those it used: run b evaluated against run a's model
    assert [a.id for a in list_artifacts(store, type="Model", pipeline=PIPELINE, run="run-b")] == [
        r1["train"]["model"],
        r2["train"]["model"],
    ]


def test_public_names_and_light_import() -> None:
    import subprocess
    import sys

    import headwater.metadata.lineage as lineage

    for name in lineage.__all__:
        assert hasattr(lineage, name), name
    code = "import sys, headwater.metadata.lineage; print('ml_metadata' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
