"""``headwater lineage`` and ``headwater artifacts list`` through the real command line entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from headwater.metadata.store import to_value
from headwater.pipelines.cli import main
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

pb: Any = metadata_store_pb2  # the generated protos have no type stubs

FIXTURE = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "tfx-1.16-penguin" / "metadata.sqlite"


def _event(kind: int, key: str) -> pb.Event:
    event = pb.Event(type=kind)
    event.path.steps.add().key = key
    event.path.steps.add().index = 0
    return event


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, int]]:
    """One run of Ingest -> Train -> Evaluate -> Push written with MLMD calls, as the launcher writes it."""
    path = tmp_path_factory.mktemp("cli") / "metadata.sqlite"
    config = pb.ConnectionConfig()
    config.sqlite.filename_uri = str(path)
    mlmd = metadata_store.MetadataStore(config)
    examples_type = pb.ArtifactType(name="Examples")
    examples_type.properties["span"] = pb.INT
    types = {"Examples": mlmd.put_artifact_type(examples_type)}
    for name in ("Model", "ModelEvaluation", "ModelBlessing", "PushedModel"):
        types[name] = mlmd.put_artifact_type(pb.ArtifactType(name=name))
    ctx_types = {n: mlmd.put_context_type(pb.ContextType(name=n)) for n in ("pipeline", "pipeline_run", "node")}
    pipeline, run = mlmd.put_contexts(
        [
            pb.Context(type_id=ctx_types["pipeline"], name="penguin"),
            pb.Context(type_id=ctx_types["pipeline_run"], name="20240501-1200"),
        ]
    )
    ids: dict[str, int] = {}

    def node(name: str, params: dict[str, Any], inputs: list[str], outputs: list[tuple[str, str, dict]]) -> None:
        type_id = mlmd.put_execution_type(pb.ExecutionType(name=f"headwater.components.{name.lower()}.{name}"))
        execution = pb.Execution(type_id=type_id, last_known_state=pb.Execution.COMPLETE)
        for k, v in params.items():
            to_value(v, execution.custom_properties[k], json_strings=True)
        pairs = [(mlmd.get_artifacts_by_id([ids[key]])[0], _event(pb.Event.INPUT, key)) for key in inputs]
        for key, type_name, custom in outputs:
            artifact = pb.Artifact(type_id=types[type_name], uri=f"/root/{name}/{key}", state=pb.Artifact.LIVE)
            for k, v in custom.items():
                to_value(v, artifact.custom_properties[k])
            if key == "examples":
                artifact.properties["span"].int_value = 7
            pairs.append((artifact, _event(pb.Event.OUTPUT, key)))
        [node_ctx] = mlmd.put_contexts([pb.Context(type_id=ctx_types["node"], name=f"penguin.{name}")])
        contexts = mlmd.get_contexts_by_id([pipeline, run, node_ctx])
        eid, artifact_ids, _ = mlmd.put_execution(execution, pairs, contexts)
        ids[name] = eid
        keys = [*inputs, *(key for key, *_ in outputs)]
        ids.update(zip(keys, artifact_ids, strict=True))

    node("Ingest", {"input_base": "/data/penguins"}, [], [("examples", "Examples", {})])
    node("Train", {"module_file": "models/penguin.py"}, ["examples"], [("model", "Model", {})])
    node(
        "Evaluate",
        {"eval_config": {"label_key": "species", "metrics": [{"name": "accuracy", "threshold": {"lower": 0.9}}]}},
        ["examples", "model"],
        [
            ("evaluation", "ModelEvaluation", {"metrics": {"accuracy": 0.97}}),
            ("blessing", "ModelBlessing", {"blessed": 1}),
        ],
    )
    node(
        "Push",
        {},
        ["model", "blessing"],
        [
            (
                "pushed_model",
                "PushedModel",
                {"pushed": 1, "pushed_destination": "/serving/penguin/3", "pushed_version": "3"},
            )
        ],
    )
    return f"sqlite:///{path}", ids


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_lineage_upstream_text(store, capsys) -> None:
    uri, ids = store
    code, out, _ = _run(capsys, "lineage", str(ids["pushed_model"]), "--metadata", uri)
    assert code == 0
    assert out.startswith(f"upstream lineage of PushedModel #{ids['pushed_model']} (depth unlimited)")
    assert "Push #" in out and "Ingest #" in out and "examples: Examples #" in out and "span=7" in out


def test_lineage_down_with_depth_and_uri(store, capsys) -> None:
    uri, ids = store
    code, out, _ = _run(capsys, "lineage", "/root/Ingest/examples", "--down", "--depth", "1", "--metadata", uri)
    assert code == 0
    assert f"downstream lineage of Examples #{ids['examples']} (depth 1)" in out
    assert "Train #" in out and "Evaluate #" in out and "PushedModel" not in out
    assert "more downstream (raise --depth to see it)" in out


@pytest.mark.parametrize("fmt", ["json", "dot", "mermaid", "html"])
def test_lineage_formats_to_file(store, capsys, tmp_path, fmt) -> None:
    uri, ids = store
    target = tmp_path / f"lineage.{fmt}"
    code, out, err = _run(
        capsys, "lineage", str(ids["model"]), "--both", "--format", fmt, "-o", str(target), "--metadata", uri
    )
    assert code == 0 and out == "" and f"wrote {fmt} lineage to {target}" in err
    text = target.read_text()
    expected = {
        "json": '"direction": "both"',
        "dot": "digraph lineage {",
        "mermaid": "flowchart LR",
        "html": "<!DOCTYPE html>",
    }[fmt]
    assert expected in text
    if fmt == "json":
        assert {a["type"] for a in json.loads(text)["artifacts"]} == {
            "Examples",
            "Model",
            "ModelEvaluation",
            "ModelBlessing",
            "PushedModel",
        }


def test_explain_by_serving_path(store, capsys) -> None:
    uri, ids = store
    code, out, _ = _run(capsys, "lineage", "/serving/penguin/3", "--explain", "--metadata", uri)
    assert code == 0
    assert f"Push of PushedModel #{ids['pushed_model']}: pushed" in out
    assert "destination: /serving/penguin/3 (version 3)" in out
    assert "span 7" in out and "module_file = models/penguin.py" in out
    assert "accuracy: >= 0.9" in out and "accuracy = 0.97" in out and "BLESSED" in out
    code, out, _ = _run(capsys, "lineage", str(ids["pushed_model"]), "--explain", "-f", "json", "--metadata", uri)
    assert json.loads(out)["evaluation"]["blessed"] is True


def test_artifacts_list(store, capsys, monkeypatch) -> None:
    uri, ids = store
    code, out, _ = _run(capsys, "artifacts", "list", "--type", "Model", "--metadata", uri)
    assert code == 0
    header, row = out.splitlines()
    assert header.split()[:4] == ["ID", "TYPE", "STATE", "CREATED"]
    assert row.split()[:3] == [str(ids["model"]), "Model", "LIVE"] and row.endswith("/root/Train/model")
    monkeypatch.setenv("HEADWATER_METADATA", uri)
    code, out, _ = _run(capsys, "artifacts", "list", "--pipeline", "penguin", "--run", "20240501", "-f", "json")
    assert code == 0
    listed = json.loads(out)
    assert [a["id"] for a in listed] == sorted(a["id"] for a in listed) and len(listed) == 5
    assert next(a for a in listed if a["type"] == "PushedModel")["custom_properties"]["pushed"] == 1
    code, out, err = _run(capsys, "artifacts", "list", "--limit", "2")
    assert code == 0 and len(out.splitlines()) == 3 and "newest 2 shown" in err


def test_plain_sqlite_path_is_accepted(store, capsys) -> None:
    uri, _ = store
    path = uri.removeprefix("sqlite:///")
    code, out, _ = _run(capsys, "artifacts", "list", "--type", "PushedModel", "--metadata", path)
    assert code == 0 and "pushed=1 pushed_version=3" in out


def test_errors_name_the_problem_and_the_fix(store, capsys) -> None:
    uri, ids = store
    code, _, err = _run(capsys, "lineage", "9999", "--metadata", uri)
    assert code == 2
    assert "headwater: error: no artifact with id 9999 in metadata store" in err
    assert "headwater artifacts list" in err
    code, _, err = _run(capsys, "lineage", str(ids["model"]), "--explain", "--metadata", uri)
    assert code == 2 and "is a Model, not a PushedModel" in err
    code, _, err = _run(capsys, "artifacts", "list", "--type", "Modle", "--metadata", uri)
    assert code == 2 and "known types: Examples, Model, ModelBlessing" in err
    with pytest.raises(SystemExit, match="--depth does not apply to --explain"):
        main(["lineage", "1", "--explain", "--depth", "2", "--metadata", uri])
    with pytest.raises(SystemExit):
        main(["lineage", "1", "--depth", "-1", "--metadata", uri])
    assert "--depth must be 0 or more" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["lineage", "1", "--up", "--down"])
    assert "not allowed with argument" in capsys.readouterr().err


def test_help_explains_usage(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["lineage", "--help"])
    out = capsys.readouterr().out
    for expected in (
        "--explain",
        "--depth N",
        "text|json|dot|mermaid|html".replace("|", ","),
        "examples:",
        "HEADWATER_METADATA",
        "sqlite:////absolute/metadata.sqlite",
    ):
        assert expected in out, expected
    with pytest.raises(SystemExit):
        main(["artifacts", "list", "--help"])
    out = capsys.readouterr().out
    assert "--type T" in out and "--pipeline P" in out and "--run R" in out


def test_explain_in_a_fresh_process_imports_nothing_heavy(store) -> None:
    uri, ids = store
    script = (
        "import sys\n"
        "from headwater.pipelines.cli import main\n"
        f"code = main(['lineage', '{ids['pushed_model']}', '--explain', '--metadata', {uri!r}])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('tensorflow', 'apache_beam', 'tensorflow_model_analysis', 'tensorflow_transform'))\n"
        "print('HEAVY', heavy)\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HEADWATER_METADATA": ""},
    )
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout and "Push of PushedModel" in done.stdout


def test_tfx_store_through_the_cli(capsys, tmp_path) -> None:
    if not FIXTURE.exists():
        pytest.skip(f"the TFX-written store {FIXTURE} is absent (it lives in ../shared, outside this checkout)")
    copy = tmp_path / "tfx.sqlite"
    copy.write_bytes(FIXTURE.read_bytes())
    code, out, _ = _run(capsys, "artifacts", "list", "--type", "PushedModel", "-f", "json", "--metadata", str(copy))
    assert code == 0
    latest = json.loads(out)[-1]
    code, out, _ = _run(
        capsys,
        "lineage",
        latest["custom_properties"]["pushed_destination"],
        "--explain",
        "--metadata",
        str(copy),
    )
    assert code == 0 and "CsvExampleGen" in out and "beat baseline: Model #13" in out


def test_lineage_of_a_run_written_by_the_local_runner(tmp_path, capsys) -> None:
    """The launcher's own records (contexts, events, __bookkeeping__ properties) read back as lineage."""
    import hw_gate_components
    from headwater.pipelines import LocalRunner

    uri = f"sqlite:///{tmp_path / 'metadata.sqlite'}"
    pipeline = hw_gate_components.gated_pipeline(str(tmp_path / "root"), metadata=uri)
    result = LocalRunner(2, quiet=True).run(pipeline, {})
    assert result.ok
    code, out, _ = _run(capsys, "artifacts", "list", "--type", "PushedModel", "-f", "json", "--metadata", uri)
    [pushed] = json.loads(out)
    assert pushed["custom_properties"]["pushed"] == 1
    code, out, _ = _run(capsys, "lineage", str(pushed["id"]), "--explain", "-f", "json", "--metadata", uri)
    assert code == 0
    explained = json.loads(out)
    assert explained["push"]["execution"]["pipeline"] == "kfp-demo"
    assert explained["push"]["execution"]["node"] == "kfp-demo.push"
    run_id = explained["push"]["execution"]["run"]
    training = explained["training"]
    assert training["run"] == run_id and training["execution"]["type"].endswith(".join")
    assert len(training["code"]["code_fingerprint"]) == 64
    assert "cache_key" in training["recorded"] and "duration_s" in training["recorded"]
    assert sorted(d["uri"].split("/")[-3] for d in explained["data"]) == ["ingest", "other_data"]
    assert explained["evaluation"]["blessed"] is True
    assert explained["evaluation"]["execution"]["parameters"] == {"score": 0.9, "threshold": 0.5}
    code, out, _ = _run(capsys, "artifacts", "list", "--run", run_id, "--pipeline", "kfp-demo", "--metadata", uri)
    assert code == 0 and len(out.splitlines()) == 1 + 6  # header + every artifact of the run


def test_explain_after_a_later_run_used_the_model_as_baseline(tmp_path, capsys) -> None:
    """A model's training data is what its trainer consumed, not what later runs did with the model.

    Four real runs of span -> train -> (latest blessed model as baseline) -> evaluate -> push. The runs
    after run 2 evaluate against run 2's model: their LatestBlessedModel records an OUTPUT event to it
    and consumes their own candidate (``exclude``). Walking those events upstream from run 2's model
    would reach the later spans; the explanation follows only the executions that made each artifact.
    """
    import hw_test_components as c
    from headwater.components.push import Push
    from headwater.components.resolvers import LatestBlessedModel
    from headwater.metadata import connect
    from headwater.metadata.lineage import explain_push
    from headwater.pipelines import LocalRunner, Param, Pipeline

    uri = f"sqlite:///{tmp_path / 'metadata.sqlite'}"
    serving = tmp_path / "serving"
    ingest = c.examples_of_span(span=Param("span", default=1)).with_id("ingest")
    train = c.train_on(examples=ingest.outputs.examples).with_id("train")
    baseline = LatestBlessedModel(exclude=train.outputs.model).with_id("baseline")
    evaluate = c.evaluate_against(examples=ingest.outputs.examples, model=train.outputs.model,
                                  baseline_model=baseline.outputs.model,
                                  blessed=Param("blessed", default=1)).with_id("evaluate")
    push = Push(model=train.outputs.model, blessing=evaluate.outputs.blessing,
                destination=str(serving)).with_id("push")
    pipeline = Pipeline(name="retrain", root=str(tmp_path / "root"), metadata=uri,
                        nodes=[ingest, train, baseline, evaluate, push])
    runs = {}
    for span, blessed in ((1, 1), (2, 1), (3, 0), (4, 1)):  # run 3 is not blessed: its push is skipped
        result = LocalRunner(1, quiet=True).run(pipeline, {"span": span, "blessed": blessed})
        assert result.ok, {n: r.error for n, r in result.nodes.items() if r.error}
        runs[span] = result
    model = {s: r.outputs("train", "model")[0].id for s, r in runs.items()}
    examples = {s: r.outputs("ingest", "examples")[0].id for s, r in runs.items()}
    # runs 3 and 4 both compared against run 2's model (run 3's was not blessed)
    assert [runs[s].outputs("baseline", "model")[0].id for s in (3, 4)] == [model[2], model[2]]

    code, out, _ = _run(capsys, "lineage", str(serving / "2"), "--explain", "-f", "json", "--metadata", uri)
    assert code == 0
    explained = json.loads(out)
    assert explained["model"]["id"] == model[2]
    assert [(d["examples"], d["used_for"]) for d in explained["data"]] == [
        (f"artifact:{examples[2]}", ["training", "evaluation"])
    ]
    assert explained["training"]["run"] == runs[2].run_id and explained["training"]["reused_by"] == []
    assert explained["evaluation"]["execution"]["run"] == runs[2].run_id
    assert explained["evaluation"]["execution"]["reused_by"] == []
    assert explained["evaluation"]["baseline"] == f"artifact:{model[1]}"
    # the push's history holds run 1 (the baseline's) and run 2, nothing of the runs after it
    in_graph = {a["id"] for a in explained["graph"]["artifacts"]}
    assert {model[1], examples[1], model[2], examples[2]} <= in_graph
    assert not in_graph & {model[3], examples[3], model[4], examples[4]}
    code, text, _ = _run(capsys, "lineage", str(serving / "2"), "--explain", "--metadata", uri)
    assert code == 0 and "span 3" not in text and "span 4" not in text and "reused by" not in text

    store = connect(uri, readonly=True)
    pushed = {s: r.outputs("push", "pushed_model")[0] for s, r in runs.items()}
    by_id = explain_push(store, pushed[2].id)
    assert by_id.to_dict() == explained

    # the skipped push of run 3: its own span and model, run 2's model as the baseline it did not beat
    skipped = explain_push(store, pushed[3].id)
    assert skipped.push.pushed is False and skipped.push.skipped_because is not None
    assert skipped.model is not None and skipped.model.id == model[3]
    assert [(d.examples.id, d.used_for) for d in skipped.data] == [(examples[3], ("training", "evaluation"))]
    assert skipped.evaluation is not None and skipped.evaluation.blessed is False
    assert skipped.evaluation.baseline is not None and skipped.evaluation.baseline.id == model[2]
    assert skipped.training is not None and skipped.training.run == runs[3].run_id
    assert not {a.id for a in skipped.graph.artifacts} & {model[4], examples[4]}


def test_lineage_id_out_of_range_and_output_in_a_missing_folder_are_clear_errors(store, capsys, tmp_path) -> None:
    uri, ids = store
    code, _, err = _run(capsys, "lineage", "99999999999999999999999", "--metadata", uri)
    assert code == 2 and "artifact id 99999999999999999999999 is out of range" in err
    assert "Traceback" not in err
    target = tmp_path / "nonexistent" / "dir" / "x.html"
    code, _, err = _run(capsys, "lineage", str(ids["model"]), "-f", "html", "-o", str(target), "--metadata", uri)
    assert code == 2 and f"folder {target.parent} does not exist" in err
    assert not target.parent.exists()
