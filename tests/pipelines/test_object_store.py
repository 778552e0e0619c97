"""Pipelines whose root is an object store (S3 through a moto server, GCS through an emulator).

Executors see local folders (``artifact.path``): inputs are downloaded before the component runs, outputs
uploaded after it succeeded; MLMD records the object-store URIs. Logs end up under ``<root>/_logs``.
"""

from __future__ import annotations

import hw_gate_components as g
import hw_test_components as c
import pytest
from headwater.components import Push, storage
from headwater.components.executor import ExecutionSpec, run_execution
from headwater.metadata import ArtifactState, connect, types
from headwater.metadata.errors import MetadataError, StorageError
from headwater.pipelines import LocalRunner, Pipeline
from headwater.pipelines.cli import main


def run(pipeline, **kwargs):
    return LocalRunner(quiet=True).run(pipeline, **kwargs)


def diamond(root: str, metadata: str) -> Pipeline:
    a = c.produce(value="a").with_id("a")
    b = c.produce(value="b").with_id("b")
    j = c.join(a=a.outputs.data, b=b.outputs.data)
    return Pipeline(name="diamond", root=root, nodes=[a, b, j], metadata=metadata)


def test_artifacts_logs_and_cache_live_in_the_object_store(object_root, tmp_path):
    metadata = f"sqlite:///{tmp_path / 'md.sqlite'}"
    result = run(diamond(object_root, metadata))
    assert result.ok, result
    [model] = result.outputs("join", "out")
    eid = result.nodes["join"].execution_id
    assert model.uri == f"{object_root}/join/out/{eid}"
    assert storage.read_bytes(f"{model.uri}/model.txt") == b"ab"
    store = connect(metadata)
    [stored] = store.get_artifacts([model.id])
    assert stored.uri == model.uri and stored.state == ArtifactState.LIVE
    # The log was uploaded next to the artifacts and MLMD points there.
    log = store.get_execution(eid).properties["__log_path__"]
    assert log == f"{object_root}/_logs/{result.run_id}/join.{eid}.log"
    assert b"succeeded" in storage.read_bytes(log)
    # Nothing landed on local disk under a folder named like the root.
    assert not list(tmp_path.rglob("model.txt"))

    again = run(diamond(object_root, metadata))
    assert {n.state for n in again.nodes.values()} == {"cached"}
    # An output deleted from the bucket is no cache hit: the node runs again.
    storage.remove(model.uri)
    third = run(diamond(object_root, metadata))
    assert third.nodes["join"].state == "done" and {third.nodes[n].state for n in "ab"} == {"cached"}
    assert storage.read_bytes(f"{third.outputs('join', 'out')[0].uri}/model.txt") == b"ab"


def test_a_failed_node_leaves_no_objects_and_keeps_its_log(s3_root, tmp_path, capsys):
    metadata = f"sqlite:///{tmp_path / 'md.sqlite'}"
    a = c.produce(value="a").with_id("a")
    bad = c.fail(examples=a.outputs.data, message="kaput").with_id("bad")
    result = run(Pipeline(name="failing", root=s3_root, nodes=[a, bad], metadata=metadata))
    assert result.nodes["bad"].state == "failed"
    eid = result.nodes["bad"].execution_id
    assert not storage.exists(f"{s3_root}/bad/model/{eid}")
    execution = connect(metadata).get_execution(eid)
    assert execution.state == "FAILED"
    assert b"kaput" in storage.read_bytes(execution.properties["__log_path__"])
    # The run result names the uploaded log; the local scratch copy is gone.
    assert result.nodes["bad"].log_path == execution.properties["__log_path__"]
    assert not list(tmp_path.rglob("bad.*.log"))
    # `headwater runs logs` reads it from the bucket.
    assert main(["runs", "logs", result.run_id, "bad", "--metadata", metadata]) == 0
    assert "kaput" in capsys.readouterr().out
    again = run(Pipeline(name="failing", root=s3_root, nodes=[a], metadata=metadata))
    assert main(["runs", "logs", again.run_id, "--metadata", metadata]) == 0
    assert "(no log: served from the cache)" in capsys.readouterr().out
    assert main(["runs", "logs", result.run_id, "nope", "--metadata", metadata]) == 2
    assert "has no node 'nope'; its nodes: a, bad" in capsys.readouterr().err


def test_skipped_push_uploads_its_record(s3_root, tmp_path):
    metadata = f"sqlite:///{tmp_path / 'md.sqlite'}"
    ex = c.examples_of_span(span=1).with_id("ex")
    model = c.train_on(examples=ex.outputs.examples).with_id("train")
    blessing = c.evaluate_against(examples=ex.outputs.examples, model=model.outputs.model, blessed=0).with_id("eval")
    push = Push(model=model.outputs.model, blessing=blessing.outputs.blessing,
                destination=str(tmp_path / "serving"))
    result = run(Pipeline(name="gate", root=s3_root, nodes=[ex, model, blessing, push], metadata=metadata))
    assert result.nodes["Push"].state == "skipped"
    [pushed] = result.outputs("Push", "pushed_model")
    assert pushed.uri.startswith(s3_root) and pushed.custom_properties["pushed"] == 0
    assert b'"pushed": 0' in storage.read_bytes(f"{pushed.uri}/push.json")
    assert not (tmp_path / "serving").exists()


def test_gated_push_reads_the_blessing_from_the_bucket(s3_root, tmp_path):
    metadata = f"sqlite:///{tmp_path / 'md.sqlite'}"
    a = c.produce(value="m").with_id("a")
    model = c.consume(examples=a.outputs.data).with_id("model")
    blessing = g.bless(model=model.outputs.model, score=0.9).with_id("bless")
    push = g.push(model=model.outputs.model, blessing=blessing.outputs.blessing).with_id("push")
    result = run(Pipeline(name="gated", root=s3_root, nodes=[a, model, blessing, push], metadata=metadata))
    assert result.ok, result
    [pushed] = result.outputs("push", "pushed")
    assert storage.read_bytes(f"{pushed.uri}/model.txt") == b"m"


def test_object_store_root_needs_a_metadata_connection(s3_root, monkeypatch):
    monkeypatch.delenv("HEADWATER_METADATA", raising=False)
    p = Pipeline(name="nometa", root=s3_root, nodes=[c.produce().with_id("a")])
    with pytest.raises(MetadataError, match=r"root in an object store .* give a metadata connection"):
        run(p)


def test_executor_upload_failure_is_a_failed_result(tmp_path, s3_root):
    bucket_missing = s3_root.replace("s3://hw-", "s3://gone-")
    spec = ExecutionSpec(
        pipeline_name="p", pipeline_root=bucket_missing, run_id="r1", node_id="n", execution_id=3,
        component_module=c.produce.spec.module, component_function=c.produce.spec.function,
        component_file=c.produce.spec.source_file, inputs={},
        outputs={"data": [types.Examples(f"{bucket_missing}/n/data/3").to_json()]},
        parameters={"value": "x"}, tmp_dir=str(tmp_path / "tmp"), log_path=str(tmp_path / "n.log"),
    )
    result = run_execution(spec)
    assert not result.succeeded and result.error_type == "StorageError"
    assert f"cannot upload to {bucket_missing}/n/data/3" in (result.error_message or "")
    assert not (tmp_path / "tmp" / "staged").exists()


def test_leftovers_of_a_killed_attempt_are_never_uploaded(tmp_path, s3_root):
    out_uri = f"{s3_root}/n/data/4"
    stale = tmp_path / "tmp" / "staged" / "outputs" / "data" / "0"
    stale.mkdir(parents=True)
    (stale / "stale.txt").write_text("from a killed attempt")
    spec = ExecutionSpec(
        pipeline_name="p", pipeline_root=s3_root, run_id="r1", node_id="n", execution_id=4,
        component_module=c.produce.spec.module, component_function=c.produce.spec.function,
        component_file=c.produce.spec.source_file, inputs={},
        outputs={"data": [types.Examples(out_uri).to_json()]},
        parameters={"value": "x"}, tmp_dir=str(tmp_path / "tmp"), log_path=str(tmp_path / "n.log"),
    )
    assert run_execution(spec).succeeded
    assert storage.list_files(out_uri) == [f"{out_uri}/data.txt"]
    assert not (tmp_path / "tmp" / "staged").exists()


def test_artifact_path_outside_an_executor_is_a_clear_error():
    art = types.Model("s3://bucket/m/1")
    with pytest.raises(StorageError, match=r"Model artifact s3://bucket/m/1 lives in an object store"):
        _ = art.path
    assert types.Model("file:///tmp/m").path == "/tmp/m"
