"""Compiling for Kubeflow Pipelines: the spec parses as KFP's own proto, has the structure KFP needs, matches
the golden file, and its tasks — run as KFP would run them — write the same ML Metadata as a LocalRunner.

Regenerate the golden files with ``HEADWATER_UPDATE_GOLDEN=1 pytest tests/pipelines/test_compile_kfp.py``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import hw_gate_components as g
import hw_test_components as c
import pytest
import yaml
from google.protobuf import json_format
from headwater.components import Param
from headwater.metadata import connect
from headwater.metadata.conventions import P_PEAK_RSS, P_PEAK_RSS_CHILDREN
from headwater.metadata.errors import PipelineDefinitionError
from headwater.pipelines import LocalRunner, Pipeline
from headwater.pipelines.kfp.compile import compile_kfp, compile_kfp_package, headwater_version
from headwater.pipelines.kfp.task import main as task_main
from headwater.pipelines.plan import pipeline_from_plan, pipeline_to_plan
from kfp.pipeline_spec import pipeline_spec_pb2 as pb
from kfp_local import kfp_text, resolve_command, run_compiled

TESTS = Path(__file__).resolve().parent.parent
GOLDEN = TESTS / "golden" / "kfp"
SUPPORT = TESTS / "support"
IMAGE = "registry.example/headwater:test"
TASK_ENV = {"PYTHONPATH": str(SUPPORT)}


def parse(spec: dict[str, Any]) -> pb.PipelineSpec:
    """Parse as KFP's PipelineSpec proto; unknown fields fail (deploymentSpec is a Struct: parsed separately)."""
    message = json_format.ParseDict(spec, pb.PipelineSpec(), ignore_unknown_fields=False)
    json_format.ParseDict(spec["deploymentSpec"], pb.PipelineDeploymentConfig(), ignore_unknown_fields=False)
    return message


def golden_text(package: Any) -> str:
    return package.to_yaml().replace(f"headwater-{headwater_version()}", "headwater-VERSION") \
        .replace(f"headwater {headwater_version()} ", "headwater VERSION ") \
        .replace(f'"headwater_version":"{headwater_version()}"', '"headwater_version":"VERSION"')


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("HEADWATER_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"golden file {path} is missing; run with HEADWATER_UPDATE_GOLDEN=1 to create it"
    assert text == path.read_text(), f"{name} differs from the golden file; if intended, regenerate it"


# ---------------------------------------------------------------------------------------------- structure
@pytest.fixture(scope="module")
def demo_package() -> Any:
    return compile_kfp_package(g.gated_pipeline("/mnt/headwater/kfp-demo"), image=IMAGE,
                               pipeline_root_claim="headwater-root",
                               pipeline_root_mount="/mnt/headwater")


def test_spec_parses_as_kfp_pipeline_spec(demo_package):
    message = parse(demo_package.pipeline_spec)
    assert message.schema_version == "2.1.0"
    assert message.sdk_version == f"headwater-{headwater_version()}"
    assert message.pipeline_info.name == "kfp-demo"
    platform = json_format.ParseDict(demo_package.platform_spec, pb.PlatformSpec(), ignore_unknown_fields=False)
    assert set(platform.platforms["kubernetes"].deployment_spec.executors) == set(
        demo_package.pipeline_spec["deploymentSpec"]["executors"])
    # The multi-document YAML reads back to the same documents.
    docs = list(yaml.safe_load_all(demo_package.to_yaml()))
    assert docs == [demo_package.pipeline_spec, demo_package.platform_spec]


def test_tasks_follow_the_dag(demo_package):
    message = parse(demo_package.pipeline_spec)
    tasks = message.root.dag.tasks
    assert set(tasks) == {"ingest", "other-data", "train", "evaluate", "describe", "push", "push-not-blessed"}
    assert list(tasks["train"].dependent_tasks) == ["ingest", "other-data"]
    assert list(tasks["evaluate"].dependent_tasks) == ["train"]
    assert list(tasks["push"].dependent_tasks) == ["evaluate", "train"]
    assert not tasks["ingest"].dependent_tasks and not tasks["describe"].dependent_tasks
    config = pb.PipelineDeploymentConfig()
    json_format.ParseDict(demo_package.pipeline_spec["deploymentSpec"], config)
    for name, task in tasks.items():
        component = message.components[task.component_ref.name]
        container = config.executors[component.executor_label].container
        assert container.image == IMAGE
        assert list(container.command) == ["python", "-m", "headwater.pipelines.kfp_task"]
        args = list(container.args)
        # The node is the task's input parameter, read by the shared command through a placeholder.
        assert args[args.index("--node") + 1] == "{{$.inputs.parameters['headwater-node']}}"
        node = task.inputs.parameters["headwater-node"].runtime_value.constant.string_value
        assert name in (node.replace("_", "-"), f"{node}-not-blessed")
        # KFP's cache cannot see headwater's cache key: always off, headwater's own cache decides.
        assert task.caching_options.enable_cache is False
        assert task.inputs.parameters["headwater-run-id"].runtime_value.constant.string_value == \
            "{{$.pipeline_job_uuid}}"
        plan = json.loads(args[args.index("--plan") + 1])
        assert node in [n["id"] for n in plan["nodes"]] and plan["root"] == "/mnt/headwater/kfp-demo"
        assert plan["graph"]["nodes"]["push"] == ["evaluate", "train"]


def test_runtime_parameters_have_types_and_defaults(demo_package):
    message = parse(demo_package.pipeline_spec)
    params = message.root.input_definitions.parameters
    enum = pb.ParameterType.ParameterTypeEnum
    expected = {"delay": (enum.NUMBER_DOUBLE, 0.0), "greeting": (enum.STRING, "hello"),
                "threshold": (enum.NUMBER_DOUBLE, 0.5), "values": (enum.LIST, [1, 2]),
                "options": (enum.STRUCT, {"lr": 0.5}), "flag": (enum.BOOLEAN, True)}
    assert set(params) == set(expected)
    for name, (kind, default) in expected.items():
        assert params[name].parameter_type == kind, name
        assert params[name].is_optional
        assert json_format.MessageToDict(params[name].default_value) == default, name
    assert params["delay"].description == "seconds to wait"
    # Every task receives every runtime parameter from the root (they are recorded on the run).
    for task in message.root.dag.tasks.values():
        for name in expected:
            assert task.inputs.parameters[name].component_input_parameter == name
    header = demo_package.to_yaml().splitlines()[:10]
    assert "#    threshold: float [Default: 0.5]" in header


def test_resources_retries_and_timeouts(demo_package):
    spec = demo_package.pipeline_spec
    message = parse(spec)
    config = pb.PipelineDeploymentConfig()
    json_format.ParseDict(spec["deploymentSpec"], config)
    labels = {n: message.components[t.component_ref.name].executor_label for n, t in parse(spec).root.dag.tasks.items()}
    res = config.executors[labels["train"]].container.resources
    assert (res.resource_cpu_request, res.resource_cpu_limit) == ("500m", "2")
    assert (res.resource_memory_request, res.resource_memory_limit) == ("1Gi", "1Gi")
    assert (res.cpu_request, res.cpu_limit) == (0.5, 2.0)
    assert res.memory_limit == pytest.approx(1.073741824)  # KFP's numeric fields count memory in GB
    assert (res.accelerator.resource_type, res.accelerator.resource_count, res.accelerator.count) == \
        ("nvidia.com/gpu", "1", 1)
    assert not config.executors[labels["ingest"]].container.HasField("resources")
    tasks = parse(spec).root.dag.tasks
    assert tasks["train"].retry_policy.max_retry_count == 2
    assert tasks["train"].retry_policy.backoff_max_duration.seconds == 3600
    assert not tasks["evaluate"].HasField("retry_policy")
    executors = demo_package.platform_spec["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert executors[labels["evaluate"]]["activeDeadlineSeconds"] == "900"  # timeout 600 s + grace
    for config_ in executors.values():
        assert config_["secretAsEnv"] == [{"secretName": "headwater-metadata",
                                           "keyToEnv": [{"secretKey": "uri", "envVar": "HEADWATER_METADATA"}]}]
        assert config_["pvcMount"] == [{"constant": "headwater-root", "mountPath": "/mnt/headwater"}]


def test_push_is_gated_on_the_blessing(demo_package):
    message = parse(demo_package.pipeline_spec)
    evaluate = message.components["comp-evaluate"]
    assert evaluate.output_definitions.parameters["blessed"].parameter_type == \
        pb.ParameterType.ParameterTypeEnum.BOOLEAN
    push, twin = message.root.dag.tasks["push"], message.root.dag.tasks["push-not-blessed"]
    channel = "pipelinechannel--evaluate-blessed"
    for task in (push, twin):
        source = task.inputs.parameters[channel].task_output_parameter
        assert (source.producer_task, source.output_parameter_key) == ("evaluate", "blessed")
        assert task.component_ref.name == "comp-push"
    assert push.trigger_policy.condition == f"inputs.parameter_values['{channel}'] == true"
    assert twin.trigger_policy.condition == f"!(inputs.parameter_values['{channel}'] == true)"
    # The request is the task's input parameter; the file is named by KFP's executor input ({{$}}).
    requests = message.root.dag.tasks["evaluate"].inputs.parameters["headwater-output-parameters"]
    assert json.loads(requests.runtime_value.constant.string_value) == {"blessed": "blessing.blessed"}
    assert json.loads(message.root.dag.tasks["train"].inputs.parameters["headwater-output-parameters"]
                      .runtime_value.constant.string_value) == {}
    args = demo_package.pipeline_spec["deploymentSpec"]["executors"][evaluate.executor_label]["container"]["args"]
    i = args.index("--output-parameters")
    assert args[i:i + 4] == ["--output-parameters", "{{$.inputs.parameters['headwater-output-parameters']}}",
                             "--executor-input", "{{$}}"]
    # Nothing else is conditional.
    assert {n for n, t in message.root.dag.tasks.items() if t.trigger_policy.condition} == {"push", "push-not-blessed"}


def test_golden_demo(demo_package):
    check_golden("kfp-demo.yaml", golden_text(demo_package))


PENGUIN = TESTS.parent / "templates" / "penguin" / "pipeline.py"


def test_golden_penguin():
    from headwater.pipelines.loader import load_pipeline

    pipeline = load_pipeline(PENGUIN)
    package = compile_kfp_package(pipeline, image=IMAGE, pipeline_root="gs://headwater-example/penguin")
    message = parse(package.pipeline_spec)
    tasks = message.root.dag.tasks
    assert set(tasks) == {"ingest", "statistics", "importschema", "previousstatistics", "validate", "transform",
                          "train", "baseline", "evaluate", "infravalidate", "push", "push-not-blessed",
                          "ingestholdout", "batchpredict", "batchpredict-not-blessed"}
    assert list(tasks["evaluate"].dependent_tasks) == ["baseline", "ingest", "train", "validate"]
    passed = "inputs.parameter_values['pipelinechannel--validate-passed'] == true"
    assert tasks["transform"].trigger_policy.condition == passed
    # Push runs only when the data passed, and both the evaluation and InfraValidate blessed the model.
    blessed = ("inputs.parameter_values['pipelinechannel--evaluate-blessed'] == true && "
               "inputs.parameter_values['pipelinechannel--infravalidate-blessed'] == true")
    assert tasks["push"].trigger_policy.condition == f"{passed} && {blessed}"
    assert tasks["push-not-blessed"].trigger_policy.condition == f"{passed} && !({blessed})"
    # BatchPredict runs only with a model the evaluation blessed (its ModelBlessing input).
    evaluated = "inputs.parameter_values['pipelinechannel--evaluate-blessed'] == true"
    assert evaluated in tasks["batchpredict"].trigger_policy.condition
    assert f"!({evaluated})" in tasks["batchpredict-not-blessed"].trigger_policy.condition
    assert message.components["comp-infravalidate"].output_definitions.parameters["blessed"]
    assert message.components["comp-evaluate"].output_definitions.parameters["blessed"]
    params = message.root.input_definitions.parameters
    assert json_format.MessageToDict(params["train_steps"].default_value) == \
        pipeline.runtime_parameters["train_steps"].default
    # The data, module files and serving directory are taken as they are: the compiler says so.
    assert any("parameter 'module_file' is the local path" in w for w in package.warnings)
    # The plan rebuilds the same pipeline (the ML stack is not imported for that).
    rebuilt = pipeline_from_plan(pipeline_to_plan(pipeline))
    assert pipeline_to_plan(rebuilt) == pipeline_to_plan(pipeline)
    check_golden("penguin.yaml", golden_text(package).replace(str(PENGUIN.parent), "/opt/penguin"))


def test_a_node_that_opens_its_blessing_gate_is_not_made_conditional():
    # Regression: BatchPredict(require_blessing=False) was still gated on the evaluation under KFP.
    from headwater.components import BatchPredict
    from headwater.pipelines.kfp.compile import blessing_gates
    from headwater.pipelines.loader import load_pipeline

    penguin = load_pipeline(PENGUIN)
    predict = penguin.node("BatchPredict")
    opened = BatchPredict(**predict.inputs, **{**predict.parameters, "require_blessing": False})
    pipeline = Pipeline(name="penguin", root="gs://headwater-example/penguin", nodes=[
        *(penguin.node(n) for n in penguin.node_ids if n != "BatchPredict"), opened])
    assert "BatchPredict" in blessing_gates(penguin) and "Push" in blessing_gates(penguin)
    gates = blessing_gates(pipeline)
    assert "BatchPredict" not in gates and "Push" in gates
    tasks = parse(compile_kfp_package(pipeline, image=IMAGE).pipeline_spec).root.dag.tasks
    assert "batchpredict-not-blessed" not in tasks
    assert "evaluate-blessed" not in tasks["batchpredict"].trigger_policy.condition


def test_plan_round_trip():
    pipeline = g.gated_pipeline("/data/root")
    plan = pipeline_to_plan(pipeline)
    rebuilt = pipeline_from_plan(json.loads(json.dumps(plan)))
    assert rebuilt.node_ids == pipeline.node_ids
    assert pipeline_to_plan(rebuilt) == plan
    assert rebuilt.resolve_params({"threshold": "0.7"})["threshold"] == 0.7
    # A node's plan holds it and its ancestors, and every runtime parameter.
    partial = pipeline_to_plan(pipeline, ["evaluate"])
    assert [n["id"] for n in partial["nodes"]] == ["ingest", "other_data", "train", "evaluate"]
    assert {p["name"] for p in partial["params"]} == set(pipeline.runtime_parameters)


def test_kfp_placeholder_text_matches_the_launcher():
    assert [kfp_text(v) for v in (100, 0.5, 1.0, True, [1, 2], {"lr": 0.5}, "a b")] == \
        ["100", "0.5", "1", "true", "[1,2]", '{"lr":0.5}', "a b"]


# ---------------------------------------------------------------------------------------------- errors
def test_compile_errors_are_listed_together(tmp_path):
    a = c.produce().with_id("a_b").with_resources(cpu="lots", memory="2GB")
    b = c.consume(examples=a.outputs.data).with_id("a-b")
    p = Pipeline(name="bad", root="runs/bad", nodes=[a, b], params=[Param("9lives", default=1)])
    with pytest.raises(PipelineDefinitionError) as info:
        compile_kfp(p, image=IMAGE)
    text = str(info.value)
    assert "cpu request 'lots' is not a Kubernetes quantity" in text
    assert "memory request '2GB' is not a Kubernetes quantity" in text
    assert "pipeline root 'runs/bad' is a relative local path" in text
    assert "nodes 'a_b' and 'a-b' both become KFP task 'a-b'" in text
    assert "runtime parameter '9lives'" in text
    with pytest.raises(PipelineDefinitionError, match="holds a password, which must not be written"):
        compile_kfp(Pipeline(name="pw", root="/mnt/x", nodes=[c.produce()],
                             metadata="mysql://u:secret@db:3306/mlmd"), image=IMAGE, metadata_secret=None)
    with pytest.raises(PipelineDefinitionError, match="is not under the volume mount path '/mnt/headwater'"):
        compile_kfp(Pipeline(name="v", root="/data/x", nodes=[c.produce()]), image=IMAGE,
                    pipeline_root_claim="claim", pipeline_root_mount="/mnt/headwater")


def test_root_volume_is_mounted_where_the_root_is():
    p = Pipeline(name="vol", root="/data/roots/vol", nodes=[c.produce()])
    package = compile_kfp_package(p, image=IMAGE, pipeline_root_claim="roots")  # as the Kubernetes runner does
    [config] = package.platform_spec["platforms"]["kubernetes"]["deploymentSpec"]["executors"].values()
    assert config["pvcMount"] == [{"constant": "roots", "mountPath": "/data/roots/vol"}]
    assert not package.warnings
    with pytest.raises(PipelineDefinitionError, match="holds a local root, but the root 'gs://b/r' is an object"):
        compile_kfp(p, image=IMAGE, pipeline_root="gs://b/r", pipeline_root_claim="roots")
    warned = compile_kfp_package(p, image=IMAGE, metadata_secret=None)
    assert any("no volume is mounted" in w for w in warned.warnings)
    assert any("tasks will use SQLite under the pipeline root" in w for w in warned.warnings)
    assert warned.platform_spec is None


def test_password_never_reaches_the_spec():
    p = Pipeline(name="pw", root="gs://bucket/pw", nodes=[c.produce()], metadata="mysql://u:s3cret@db:3306/mlmd")
    package = compile_kfp_package(p, image=IMAGE)  # the default Secret carries the connection
    assert "s3cret" not in package.to_yaml()
    p2 = Pipeline(name="nopw", root="gs://bucket/p", nodes=[c.produce()], metadata="mysql://reader@db:3306/mlmd")
    spec = compile_kfp(p2, image=IMAGE, metadata_secret=None)
    [executor] = spec["deploymentSpec"]["executors"].values()
    plan = json.loads(executor["container"]["args"][-1])
    assert plan["metadata"] == "mysql://reader@db:3306/mlmd" and plan["root"] == "gs://bucket/p"


# ---------------------------------------------------------------------------------------------- MLMD parity
VOLATILE = {"__owner__", "__log_path__", "__duration_s__", "__cache_key__", "__run_id__", "__attempts__",
            "__code_fingerprint__", P_PEAK_RSS, P_PEAK_RSS_CHILDREN}


def store_shape(uri: str, root: Path, run_id: str) -> dict[str, Any]:
    """What a run wrote, without ids, times, paths and owners: per node, execution type/state/properties,
    events with their artifacts (type, state, relative URI, properties) and the contexts."""
    store = connect(uri)
    mlmd = store.mlmd
    shape: dict[str, Any] = {}
    for proto in sorted(store.executions_in_context("pipeline_run", run_id), key=lambda e: e.id):
        record = store.record(proto)
        node = record.properties["__node_id__"]
        events = []
        for kind, key, index, aid in store.events_by_execution([proto.id])[proto.id]:
            [art] = store.get_artifacts([aid])
            rel = Path(art.uri).relative_to(root).parts
            events.append((kind, key, index, art.type_name, art.state.name, "/".join(rel[:2]),
                           json.dumps({k: v for k, v in art.custom_properties.items() if not k.endswith("_id")},
                                      sort_keys=True).replace(str(root), "ROOT"),
                           json.dumps(dict(art.properties), sort_keys=True)))
        contexts = []
        for ctx in mlmd.get_contexts_by_execution(proto.id):
            kind = mlmd.get_context_types_by_id([ctx.type_id])[0].name
            # cache keys hash input artifact ids, which differ between two stores
            contexts.append((kind, "KEY" if kind == "execution_cache" else ctx.name.replace(run_id, "RUN")))
        contexts.sort()
        props = {k: v for k, v in record.properties.items() if k not in VOLATILE}
        shape.setdefault(node, []).append((record.type, record.state, props, sorted(events), contexts))
    run_ctx = mlmd.get_context_by_type_and_name("pipeline_run", run_id)
    shape["<run>"] = sorted((k, json_format.MessageToDict(v).popitem()[1]) for k, v in run_ctx.custom_properties.items()
                            if k.startswith("param:") or k in ("pipeline_name", "pipeline_root", "status"))
    shape["<run>"] = [(k, v.replace(str(root), "ROOT") if isinstance(v, str) else v) for k, v in shape["<run>"]]
    return shape


def kfp_run(tmp_path: Path, pipeline: Pipeline, uri: str, run_id: str, **kwargs: Any) -> dict[str, Any]:
    package = compile_kfp_package(pipeline, image=IMAGE, metadata_secret="mlmd")
    return run_compiled(package.pipeline_spec, package.platform_spec, run_id=run_id, run_name="demo run",
                        secrets={"mlmd": {"uri": uri}}, env=TASK_ENV, **kwargs)


def test_compiled_tasks_write_what_a_local_run_writes(tmp_path, store_uri):
    local_root, kfp_root = tmp_path / "local", tmp_path / "kfp"
    local_uri = f"sqlite:///{tmp_path / 'local.sqlite'}"
    local = LocalRunner(quiet=True, metadata=local_uri).run(g.gated_pipeline(str(local_root)),
                                                            params={"greeting": "hi"})
    assert local.ok
    runs = kfp_run(tmp_path, g.gated_pipeline(str(kfp_root)), store_uri, "kfp-run-1",
                   params={"greeting": "hi"})
    assert {n: r.state for n, r in runs.items()} == {
        "ingest": "succeeded", "other-data": "succeeded", "train": "succeeded", "evaluate": "succeeded",
        "describe": "succeeded", "push": "succeeded", "push-not-blessed": "skipped"}, \
        {n: r.output for n, r in runs.items()}
    assert runs["evaluate"].outputs == {"blessed": True}
    assert store_shape(store_uri, kfp_root, "kfp-run-1") == store_shape(local_uri, local_root, local.run_id)
    store = connect(store_uri)
    run_ctx = store.mlmd.get_context_by_type_and_name("pipeline_run", "kfp-run-1")
    assert run_ctx.custom_properties["status"].string_value == "succeeded"
    assert run_ctx.custom_properties["kfp_run_name"].string_value == "demo run"
    assert (kfp_root / "push" / "pushed").is_dir()
    # The executor's output reached the pod log (KFP UI) and the node's log file.
    assert "score 0.9 vs threshold 0.5: blessed" in runs["evaluate"].output
    [log] = (kfp_root / "_logs" / "kfp-run-1").glob("evaluate.*.log")
    assert "score 0.9 vs threshold 0.5: blessed" in log.read_text()


def test_compiled_tasks_with_the_root_in_a_bucket(tmp_path, s3_root):
    """Tasks reach the bucket with what the compiled spec gives them — the endpoint as container env, the
    keys from a Secret (secretAsEnv), as for KFP's own MinIO — and nothing they inherit; MLMD holds what a
    local run of the same pipeline holds, the artifacts and logs are objects in the bucket."""
    from headwater.components import storage

    local_root, local_uri = tmp_path / "local", f"sqlite:///{tmp_path / 'local.sqlite'}"
    local = LocalRunner(quiet=True, metadata=local_uri).run(g.gated_pipeline(str(local_root)))
    assert local.ok
    uri = f"sqlite:///{tmp_path / 'kfp.sqlite'}"
    store_env = ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_EC2_METADATA_DISABLED", "AWS_ACCESS_KEY_ID",
                 "AWS_SECRET_ACCESS_KEY")
    package = compile_kfp_package(
        g.gated_pipeline(s3_root), image=IMAGE, metadata_secret="mlmd",
        env={k: os.environ[k] for k in store_env[:3]},
        secret_env={"AWS_ACCESS_KEY_ID": ("minio", "accesskey"), "AWS_SECRET_ACCESS_KEY": ("minio", "secretkey")})
    parse(package.pipeline_spec)
    [config, *_] = package.platform_spec["platforms"]["kubernetes"]["deploymentSpec"]["executors"].values()
    assert config["secretAsEnv"] == [
        {"secretName": "mlmd", "keyToEnv": [{"secretKey": "uri", "envVar": "HEADWATER_METADATA"}]},
        {"secretName": "minio", "keyToEnv": [{"secretKey": "accesskey", "envVar": "AWS_ACCESS_KEY_ID"},
                                             {"secretKey": "secretkey", "envVar": "AWS_SECRET_ACCESS_KEY"}]}]
    keys = {"accesskey": os.environ["AWS_ACCESS_KEY_ID"], "secretkey": os.environ["AWS_SECRET_ACCESS_KEY"]}
    runs = run_compiled(package.pipeline_spec, package.platform_spec, run_id="kfp-run-s3", run_name="s3",
                        secrets={"mlmd": {"uri": uri}, "minio": keys}, env=TASK_ENV, drop_env=store_env)
    assert {r.state for n, r in runs.items() if n != "push-not-blessed"} == {"succeeded"}, \
        {n: r.output for n, r in runs.items()}
    assert store_shape(uri, s3_root, "kfp-run-s3") == store_shape(local_uri, local_root, local.run_id)
    store = connect(uri)
    [pushed] = [a for a in store.mlmd.get_artifacts() if "/push/" in a.uri]
    assert pushed.uri.startswith(f"{s3_root}/push/") and storage.list_files(pushed.uri)
    [log] = storage.glob(f"{s3_root}/_logs/kfp-run-s3/evaluate.*.log")
    assert "score 0.9 vs threshold 0.5: blessed" in storage.read_bytes(log).decode()
    assert [p for p in tmp_path.rglob("model.txt") if local_root not in p.parents] == []


def test_not_blessed_push_is_skipped_and_recorded(tmp_path):
    local_root, kfp_root = tmp_path / "local", tmp_path / "kfp"
    local_uri, kfp_uri = (f"sqlite:///{tmp_path / n}.sqlite" for n in ("local", "kfp"))
    local = LocalRunner(quiet=True, metadata=local_uri).run(g.gated_pipeline(str(local_root), score=0.2))
    assert local.nodes["push"].state == "skipped"
    runs = kfp_run(tmp_path, g.gated_pipeline(str(kfp_root), score=0.2), kfp_uri, "kfp-run-2")
    assert runs["evaluate"].outputs == {"blessed": False}
    # KFP skips the gated task (its CEL condition is false); the twin records the skip, as a local run does.
    assert (runs["push"].state, runs["push-not-blessed"].state) == ("skipped", "succeeded")
    kfp_shape = store_shape(kfp_uri, kfp_root, "kfp-run-2")
    assert kfp_shape == store_shape(local_uri, local_root, local.run_id)
    [(_, state, props, events, _)] = kfp_shape["push"]
    assert state == "COMPLETE" and props["__skipped__"] == "the model is not blessed"
    assert next(e for e in events if e[0] == "OUTPUT")[6] == '{"pushed": 0}'
    assert ("status", "succeeded") in kfp_shape["<run>"]


def test_second_run_is_served_from_headwater_cache(tmp_path):
    uri = f"sqlite:///{tmp_path / 'md.sqlite'}"
    pipeline = g.gated_pipeline(str(tmp_path / "root"))
    first = kfp_run(tmp_path, pipeline, uri, "run-a")
    assert first["push"].state == "succeeded"
    kfp_run(tmp_path, pipeline, uri, "run-b")
    states = {n: [e[1] for e in execs] for n, execs in store_shape(uri, tmp_path / "root", "run-b").items()
              if n != "<run>"}
    # other_data has caching off; everything downstream of it sees a new input and runs again.
    assert states == {"ingest": ["CACHED"], "other_data": ["COMPLETE"], "train": ["COMPLETE"],
                      "evaluate": ["COMPLETE"], "describe": ["CACHED"], "push": ["COMPLETE"]}


# ---------------------------------------------------------------------------------------------- task mode
def tiny(root: Path, node: Any) -> Pipeline:
    a = c.produce(value="a").with_id("a")
    return Pipeline(name="tiny", root=str(root), nodes=[a, node(a)])


def task_args(pipeline: Pipeline, node: str, run_id: str, uri: str) -> list[str]:
    """The task's arguments with its input parameters (constants here) substituted as KFP's launcher does."""
    import tempfile

    spec = compile_kfp(pipeline, image=IMAGE, metadata_secret=None)
    task = spec["root"]["dag"]["tasks"][node]
    component = spec["components"][task["componentRef"]["name"]]
    job = {"{{$.pipeline_job_uuid}}": run_id, "{{$.pipeline_job_name}}": "n"}
    values = {k: job.get(v["runtimeValue"]["constant"], v["runtimeValue"]["constant"])
              for k, v in task["inputs"]["parameters"].items()}
    container = spec["deploymentSpec"]["executors"][component["executorLabel"]]["container"]
    _, args, _, _ = resolve_command(container, component, values, Path(tempfile.mkdtemp(prefix="kfp-task-")))
    return [*args, "--metadata", uri]


def test_failure_retries_and_run_status(tmp_path):
    uri = f"sqlite:///{tmp_path / 'md.sqlite'}"
    pipeline = tiny(tmp_path / "root", lambda a: c.fail(examples=a.outputs.data, message="bad data")
                    .with_id("b").with_retries(1))
    package = compile_kfp_package(pipeline, image=IMAGE, metadata_secret="mlmd")
    runs = run_compiled(package.pipeline_spec, package.platform_spec, run_id="r", run_name="r",
                        secrets={"mlmd": {"uri": uri}}, env=TASK_ENV)
    assert runs["b"].state == "failed" and runs["b"].attempts == 2
    assert "bad data" in runs["b"].output and "about to fail" in runs["b"].output
    shape = store_shape(uri, tmp_path / "root", "r")
    # Each KFP attempt is its own execution (the retry is a new pod).
    assert [e[1] for e in shape["b"]] == ["FAILED", "FAILED"]
    assert "raised ValueError: bad data" in shape["b"][0][2]["__error__"]
    assert ("status", "failed") in shape["<run>"]


def test_executor_crash_and_timeout_are_recorded(tmp_path):
    uri = f"sqlite:///{tmp_path / 'md.sqlite'}"
    crash = tiny(tmp_path / "root", lambda a: c.die().with_id("b"))
    assert task_main(task_args(crash, "a", "r1", uri)) == 0
    assert task_main(task_args(crash, "b", "r1", uri)) == 1
    [(_, state, props, _, _)] = store_shape(uri, tmp_path / "root", "r1")["b"]
    assert state == "FAILED" and "exited with status 3 without writing a result" in props["__error__"]
    slow = tiny(tmp_path / "root", lambda a: c.sleeper(seconds=60).with_id("b").with_timeout(1))
    started = time.time()
    assert task_main(task_args(slow, "b", "r2", uri)) == 1
    assert time.time() - started < 30
    [(_, state, props, _, _)] = store_shape(uri, tmp_path / "root", "r2")["b"]
    assert state == "FAILED" and "did not finish within its timeout of 1 s" in props["__error__"]


def test_killed_attempt_is_taken_over_by_the_retry(tmp_path):
    uri = f"sqlite:///{tmp_path / 'md.sqlite'}"
    marker = tmp_path / "started"
    seconds = tmp_path / "seconds"
    seconds.write_text("60")
    pipeline = tiny(tmp_path / "root", lambda a: c.sleeper(seconds=60, marker=str(marker),
                                                          seconds_file=str(seconds)).with_id("b"))
    assert task_main(task_args(pipeline, "a", "r", uri)) == 0
    env = {**os.environ, "PYTHONPATH": str(SUPPORT)}
    proc = subprocess.Popen([sys.executable, "-m", "headwater.pipelines.kfp_task",
                             *task_args(pipeline, "b", "r", uri)], env=env, start_new_session=True)
    deadline = time.time() + 60
    while not marker.exists() and time.time() < deadline:
        time.sleep(0.1)
    assert marker.exists()
    os.killpg(proc.pid, signal.SIGKILL)  # the pod is killed: the task and its executor die, nothing published
    proc.wait()
    assert [e[1] for e in store_shape(uri, tmp_path / "root", "r")["b"]] == ["RUNNING"]
    seconds.write_text("0")
    assert task_main(task_args(pipeline, "b", "r", uri)) == 0  # KFP's retry: a new attempt
    states = [(e[1], e[2].get("__error__", "")) for e in store_shape(uri, tmp_path / "root", "r")["b"]]
    assert states[0][0] == "FAILED" and "abandoned: the KFP task attempt" in states[0][1]
    assert states[1][0] == "COMPLETE"


def test_stopped_task_records_cancel(tmp_path):
    uri = f"sqlite:///{tmp_path / 'md.sqlite'}"
    marker = tmp_path / "started"
    pipeline = tiny(tmp_path / "root", lambda a: c.sleeper(seconds=60, marker=str(marker)).with_id("b"))
    assert task_main(task_args(pipeline, "a", "r", uri)) == 0
    env = {**os.environ, "PYTHONPATH": str(SUPPORT)}
    proc = subprocess.Popen([sys.executable, "-m", "headwater.pipelines.kfp_task",
                             *task_args(pipeline, "b", "r", uri)], env=env)
    deadline = time.time() + 60
    while not marker.exists() and time.time() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)  # what Kubernetes sends when KFP stops the run
    assert proc.wait(timeout=30) == 143
    [(_, state, props, _, _)] = store_shape(uri, tmp_path / "root", "r")["b"]
    assert state == "CANCELED" and "the KFP task was stopped" in props["__error__"]
    assert ("status", "canceled") in store_shape(uri, tmp_path / "root", "r")["<run>"]
    executor_pid = int(marker.read_text())
    assert not Path(f"/proc/{executor_pid}").exists()  # the executor was stopped with its task


def test_task_without_upstream_in_this_run_says_why(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'md.sqlite'}"
    pipeline = tiny(tmp_path / "root", lambda a: c.consume(examples=a.outputs.data).with_id("b"))
    assert task_main(task_args(pipeline, "b", "r", uri)) == 2
    err = capsys.readouterr().err
    assert "node 'b' needs the outputs of node 'a', which has no successful execution in run 'r'" in err
    assert "Did KFP reuse a cached task" in err


# ---------------------------------------------------------------------------------------------- CLI
PIPELINE_FILE = '''
from pathlib import Path
from headwater.components import Input, Output, component
from headwater.metadata import types
from headwater.pipelines import Param, Pipeline


@component
def write(out: Output[types.Examples], text: str = "x") -> None:
    (Path(out.uri) / "text.txt").write_text(text)


@component
def shout(data: Input[types.Examples], out: Output[types.Model]) -> None:
    (Path(out.uri) / "text.txt").write_text(Path(data.uri, "text.txt").read_text().upper())


w = write(text=Param("text", default="hello"))
pipeline = Pipeline(name="cli_demo", root="runs/cli", nodes=[w, shout(data=w.outputs.out).with_resources(memory="1Gi")])
'''


def test_cli_compile_and_run_tasks(tmp_path, monkeypatch):
    (tmp_path / "pipeline.py").write_text(PIPELINE_FILE)
    monkeypatch.chdir(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(SUPPORT)}
    code = ("import sys; from headwater.pipelines.cli import main; rc = main(sys.argv[1:]); "
            "heavy = [m for m in ('tensorflow', 'apache_beam') if m in sys.modules]; "
            "print('heavy:', heavy); raise SystemExit(rc)")
    out = subprocess.run([sys.executable, "-c", code, "compile", "pipeline.py", "--target", "kfp", "-o", "out.yaml",
                          "--image", IMAGE, "--pipeline-root-claim", "root-claim", "--metadata-secret", "md:conn"],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert "wrote out.yaml (KFP v2 pipeline spec: 2 tasks, 1 runtime parameters" in out.stdout
    assert "heavy: []" in out.stdout
    spec, platform = yaml.safe_load_all((tmp_path / "out.yaml").read_text())
    parse(spec)
    shout_exec = spec["components"]["comp-shout"]["executorLabel"]
    args = spec["deploymentSpec"]["executors"][shout_exec]["container"]["args"]
    plan = json.loads(args[args.index("--plan") + 1])
    assert plan["root"] == "/mnt/headwater/runs/cli"
    assert plan["nodes"][0]["component"]["file"] == "pipeline.py"  # relative: the image's working directory
    assert platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"][shout_exec]["secretAsEnv"][0] == {
        "secretName": "md", "keyToEnv": [{"secretKey": "conn", "envVar": "HEADWATER_METADATA"}]}
    # The compiled tasks run, loading the components from the pipeline file (root moved off the volume).
    uri = f"sqlite:///{tmp_path / 'md.sqlite'}"
    spec = json.loads(json.dumps(spec).replace("/mnt/headwater/runs/cli", str(tmp_path / "kfproot")))
    runs = run_compiled(spec, platform, run_id="cli-run", run_name="cli", params={"text": "hey"},
                        secrets={"md": {"conn": uri}}, env=TASK_ENV, workdir=str(tmp_path))
    assert {n: r.state for n, r in runs.items()} == {"write": "succeeded", "shout": "succeeded"}, runs["write"].output
    [(_, _, _, events, _)] = store_shape(uri, tmp_path / "kfproot", "cli-run")["shout"]
    [output] = [e for e in events if e[0] == "OUTPUT"]
    [model_dir] = (tmp_path / "kfproot" / "shout" / "out").iterdir()
    assert (model_dir / "text.txt").read_text() == "HEY" and output[5] == "shout/out"


def test_cli_compile_errors(tmp_path, capsys):
    from headwater.pipelines.cli import main

    (tmp_path / "pipeline.py").write_text(PIPELINE_FILE)
    assert main(["compile", str(tmp_path / "pipeline.py"), "-o", str(tmp_path / "x.yaml")]) == 2
    assert "pipeline root 'runs/cli' is a relative local path" in capsys.readouterr().err
    assert main(["compile", str(tmp_path / "pipeline.py"), "-o", "-", "--pipeline-root", "s3://b/cli",
                 "--metadata-secret", "none"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("# PIPELINE DEFINITION\n# Name: cli-demo\n")
    # An object-store root cannot hold an SQLite store: the tasks need a metadata connection.
    assert "no --image given" in captured.err and "tasks will use SQLite" not in captured.err
    assert "the root 's3://b/cli' is in an object store, where no SQLite store can live" in captured.err
    # What the tasks need to reach the store: plain environment and Secret keys.
    assert main(["compile", str(tmp_path / "pipeline.py"), "-o", "-", "--pipeline-root", "s3://b/cli",
                 "--env", "AWS_ENDPOINT_URL=http://minio-service.kubeflow:9000",
                 "--secret-env", "AWS_ACCESS_KEY_ID=mlpipeline-minio-artifact:accesskey"]) == 0
    spec, platform = yaml.safe_load_all(capsys.readouterr().out)
    parse(spec)
    for executor in spec["deploymentSpec"]["executors"].values():
        assert executor["container"]["env"] == [{"name": "AWS_ENDPOINT_URL",
                                                 "value": "http://minio-service.kubeflow:9000"},
                                                {"name": "HEADWATER_IMAGE",
                                                 "value": f"headwater:{headwater_version()}"}]
    for config in platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"].values():
        assert config["secretAsEnv"][1] == {"secretName": "mlpipeline-minio-artifact", "keyToEnv": [
            {"secretKey": "accesskey", "envVar": "AWS_ACCESS_KEY_ID"}]}
    for bad, message in ((["--secret-env", "AWS_ACCESS_KEY_ID=nokey"],
                          "--secret-env expects VAR=SECRET:KEY, got 'AWS_ACCESS_KEY_ID=nokey'"),
                         (["--env", "HEADWATER_METADATA=mysql://x"], "not --env/--secret-env HEADWATER_METADATA"),
                         (["--env", "BAD NAME=1"], "'BAD NAME' is not a valid environment variable name")):
        assert main(["compile", str(tmp_path / "pipeline.py"), "-o", "-", "--pipeline-root", "s3://b/cli",
                     *bad]) == 2
        assert message in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------- penguin
def _loose_shape(uri: str, root: Path, run_id: str) -> dict[str, Any]:
    """Per node: execution type and state, events (kind, key, artifact type, state, property names) and
    the gate's values; metric values may differ in the last digits between two trainings."""
    store = connect(uri)
    out: dict[str, Any] = {}
    for proto in sorted(store.executions_in_context("pipeline_run", run_id), key=lambda e: e.id):
        record = store.record(proto)
        events = []
        for kind, key, index, aid in store.events_by_execution([proto.id])[proto.id]:
            [art] = store.get_artifacts([aid])
            gate = {k: art.custom_properties[k] for k in ("blessed", "pushed") if k in art.custom_properties}
            events.append((kind, key, index, art.type_name, art.state.name, sorted(art.custom_properties), gate))
        out.setdefault(record.properties["__node_id__"], []).append((record.type, record.state, sorted(events)))
    return out


@pytest.mark.slow
@pytest.mark.ml
def test_penguin_through_compiled_tasks_matches_local_run(tmp_path):
    import shutil

    from headwater.pipelines.loader import load_pipeline

    records = {}
    for mode in ("local", "kfp"):
        project = tmp_path / mode
        shutil.copytree(PENGUIN.parent, project, ignore=shutil.ignore_patterns("runs", "serving", "__pycache__"))
        pipeline = load_pipeline(project / "pipeline.py")
        uri = f"sqlite:///{tmp_path / mode}.sqlite"
        if mode == "local":
            result = LocalRunner(quiet=True, metadata=uri).run(pipeline)
            assert result.ok, {n: r.error for n, r in result.nodes.items()}
            run_id = result.run_id
        else:
            package = compile_kfp_package(pipeline, image=IMAGE, metadata_secret="mlmd")
            runs = run_compiled(package.pipeline_spec, package.platform_spec, run_id="penguin-kfp",
                                run_name="penguin", secrets={"mlmd": {"uri": uri}}, env=TASK_ENV)
            assert all(r.state in ("succeeded", "skipped") for r in runs.values()), \
                {n: r.output[-3000:] for n, r in runs.items() if r.state == "failed"}
            assert runs["evaluate"].outputs == {"blessed": True}
            assert (runs["push"].state, runs["push-not-blessed"].state) == ("succeeded", "skipped")
            run_id = "penguin-kfp"
        records[mode] = _loose_shape(uri, Path(pipeline.root), run_id)
        assert sorted(p.name for p in (project / "serving").iterdir() if p.name.isdigit()) == ["1"]
    assert records["kfp"] == records["local"]
    assert records["kfp"]["Push"][0][1] == "COMPLETE"


# ---------------------------------------------------------------------------------------------- images
CPU_IMAGE = "registry.example/hw-cpu:0.1"
GPU_IMAGE = "registry.example/hw-gpu:0.1"


def two_images() -> Pipeline:
    """a, c on the default (CPU) image; b on it too, on CPU nodes; j on the GPU image with one GPU, in the GPU
    pool, as a trainer."""
    from headwater.components import Placement, Toleration

    a = c.produce(value="a").with_id("a")
    b = c.produce(value="b").with_id("b").with_placement(Placement(node_selector={"pool": "cpu"}))
    j = (c.join(a=a.outputs.data, b=b.outputs.data).with_id("j").with_image(GPU_IMAGE)
         .with_resources(cpu="1", memory="1Gi", gpu=1, gpu_toleration=True)
         .with_placement(Placement(node_pool="gpu-pool", service_account="trainer",
                                   tolerations=(Toleration("dedicated", "Equal", "ml", "NoSchedule"),))))
    c2 = c.produce(value="c").with_id("c")
    return Pipeline(name="kfp-images", root="/mnt/headwater/kfp-images", nodes=[a, b, j, c2])


def executor_of(spec: dict[str, Any]) -> dict[str, str]:
    return {name: spec["components"][t["componentRef"]["name"]]["executorLabel"]
            for name, t in spec["root"]["dag"]["tasks"].items()}


def test_each_task_runs_in_its_image_and_placement():
    package = compile_kfp_package(two_images(), image=CPU_IMAGE, pipeline_root_claim="headwater-root",
                                  pipeline_root_mount="/mnt/headwater")
    parse(package.pipeline_spec)
    executors = package.pipeline_spec["deploymentSpec"]["executors"]
    # One executor per distinct (image, placement): a and c share one.
    assert executor_of(package.pipeline_spec) == {"a": "exec-hw-cpu", "c": "exec-hw-cpu", "b": "exec-hw-cpu-2",
                                                  "j": "exec-hw-gpu"}
    assert {n: e["container"]["image"] for n, e in executors.items()} == {
        "exec-hw-cpu": CPU_IMAGE, "exec-hw-cpu-2": CPU_IMAGE, "exec-hw-gpu": GPU_IMAGE}
    for e in executors.values():
        assert {"name": "HEADWATER_IMAGE", "value": e["container"]["image"]} in e["container"]["env"]
    assert executors["exec-hw-gpu"]["container"]["resources"]["accelerator"]["count"] == "1"
    platform = package.platform_spec["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert platform["exec-hw-cpu-2"]["nodeSelector"] == {"labels": {"pool": "cpu"}}
    assert platform["exec-hw-gpu"]["tolerations"] == [
        {"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"},
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert platform["exec-hw-gpu"]["nodeAffinity"] == [{"matchExpressions": [
        {"key": "cloud.google.com/gke-nodepool", "operator": "In", "values": ["gpu-pool"]}]}]
    assert "nodeSelector" not in platform["exec-hw-cpu"] and "tolerations" not in platform["exec-hw-cpu"]
    assert any("node 'j': service account 'trainer' is not set per task under KFP" in w for w in package.warnings)
    check_golden("two-images.yaml", golden_text(package))


def _golden_pipelines() -> dict[str, tuple[Pipeline, str]]:
    from headwater.pipelines.loader import load_pipeline

    return {"kfp-demo": (g.gated_pipeline("/mnt/headwater/kfp-demo"), IMAGE),
            "penguin": (load_pipeline(PENGUIN), IMAGE),
            "two-images": (two_images(), CPU_IMAGE)}


@pytest.mark.parametrize("name", ["kfp-demo", "penguin", "two-images"])
def test_one_executor_per_image_and_placement(name):
    """Tasks share an executor exactly when their image, placement and the other executor-level fields
    (resources, the deadline from .with_timeout()) agree; the command is the same for all of them."""
    from headwater.pipelines.kfp._placement import platform_placement

    pipeline, image = _golden_pipelines()[name]
    package = compile_kfp_package(pipeline, image=image, pipeline_root="gs://b/r")
    spec = package.pipeline_spec
    executors = spec["deploymentSpec"]["executors"]
    by_task = executor_of(spec)

    def key(node_id: str, with_fields: bool) -> str:
        node = pipeline.node(node_id)
        what: list[Any] = [node.effective_image or image, platform_placement(node, [])]
        if with_fields:
            what += [repr(node.resources), node.timeout_seconds]
        return json.dumps(what, sort_keys=True, default=str)

    tasks = {n: t for n, t in spec["root"]["dag"]["tasks"].items()}
    node_of = {n: t["inputs"]["parameters"]["headwater-node"]["runtimeValue"]["constant"] for n, t in tasks.items()}
    assert len(executors) == len({key(n, True) for n in node_of.values()})
    for n, label in by_task.items():  # tasks of one executor: one image and placement
        assert {key(node_of[m], True) for m, lab in by_task.items() if lab == label} == {key(node_of[n], True)}
    if name != "kfp-demo":  # (kfp-demo: train has its own resources, evaluate its own deadline)
        assert len(executors) == len({key(n, False) for n in node_of.values()})
    else:
        assert len(executors) == 3 and len({key(n, False) for n in node_of.values()}) == 1
    commands = {json.dumps([e["container"]["command"], e["container"]["args"]]) for e in executors.values()}
    assert len(commands) == 1  # every executor runs the same command


def test_task_accepts_the_command_line_of_older_specs(tmp_path):
    """Specs compiled before executors were shared: the node's own plan and --output-parameter with a file."""
    uri = f"sqlite:///{tmp_path / 'md.sqlite'}"
    p = tiny(tmp_path / "root", lambda a: c.consume(examples=a.outputs.data).with_id("b"))
    for node in ("a", "b"):
        out = tmp_path / "out" / node
        assert task_main(["--node", node, "--run-id", "old", "--run-name", "n",
                          "--output-parameter", "made", "data.missing", str(out),
                          "--plan", json.dumps(pipeline_to_plan(p, [node])), "--metadata", uri]) == 0
        assert out.read_text() == "false"  # a missing property fails closed
    assert [e[1] for e in store_shape(uri, tmp_path / "root", "old")["b"]] == ["COMPLETE"]


def test_output_parameter_requests_need_the_executor_input(tmp_path, capsys):
    p = Pipeline(name="tiny", root=str(tmp_path / "root"), nodes=[c.produce().with_id("a")])
    code = task_main(["--plan", json.dumps(pipeline_to_plan(p)), "--node", "a", "--run-id", "r",
                      "--output-parameters", '{"blessed": "blessing.blessed"}', "--executor-input",
                      '{"outputs": {"parameters": {"other": {"outputFile": "/tmp/x"}}}}',
                      "--metadata", f"sqlite:///{tmp_path / 'm.sqlite'}"])
    assert code == 2
    assert "output parameter 'blessed' is not among the task's outputs in --executor-input (['other'])" in \
        capsys.readouterr().err


def test_an_image_that_cannot_be_valid_is_refused():
    with pytest.raises(PipelineDefinitionError, match=r"--image: image 'Registry/HW' is not a valid reference"):
        compile_kfp(two_images(), image="Registry/HW")


def test_task_in_an_image_with_another_headwater_release_says_so(tmp_path, capsys, monkeypatch):
    p = Pipeline(name="tiny", root=str(tmp_path / "root"), nodes=[c.produce().with_id("a")])
    plan = pipeline_to_plan(p)
    plan["headwater_version"] = "9.9.0"
    monkeypatch.setenv("HEADWATER_IMAGE", CPU_IMAGE)
    code = task_main(["--plan", json.dumps(plan), "--node", "a", "--run-id", "r1",
                      "--metadata", f"sqlite:///{tmp_path / 'm.sqlite'}"])
    assert code == 2
    err = capsys.readouterr().err
    assert (f"pipeline 'tiny': image {CPU_IMAGE} has headwater {headwater_version()}, the pipeline was compiled "
            "with headwater 9.9.0") in err and "Traceback" not in err


def test_a_task_imports_only_its_node_and_ancestors(tmp_path, capsys):
    """The plan is the whole pipeline's; a task in an image without a downstream node's module still runs."""
    uri = f"sqlite:///{tmp_path / 'md.sqlite'}"
    p = tiny(tmp_path / "root", lambda a: c.consume(examples=a.outputs.data).with_id("b"))
    plan = pipeline_to_plan(p)
    plan["nodes"][1]["component"]["module"] = "hw_not_in_this_image"
    args = ["--run-id", "r", "--plan", json.dumps(plan), "--metadata", uri]
    assert task_main(["--node", "a", *args]) == 0
    assert task_main(["--node", "b", *args]) == 2
    assert "cannot import module 'hw_not_in_this_image' of component 'consume'" in capsys.readouterr().err
    assert task_main(["--node", "zz", *args]) == 2
    assert "node 'zz' is not in the plan (it has ['a', 'b']); recompile the pipeline" in capsys.readouterr().err


# ------------------------------------------------------------------ data gates (Validate)
def test_data_gate_conditions_every_task_after_the_checked_data(tmp_path):
    import hw_data_gate as d

    package = compile_kfp_package(d.data_gated_pipeline("/data/root"), image=IMAGE)
    tasks = parse(package.pipeline_spec).root.dag.tasks
    passed = "inputs.parameter_values['pipelinechannel--validate-passed'] == true"
    assert {n: t.trigger_policy.condition for n, t in tasks.items() if t.trigger_policy.condition} == {
        "train": passed, "push": passed}
    assert list(tasks["train"].dependent_tasks) == ["ingest", "validate"]
    assert list(tasks["push"].dependent_tasks) == ["train", "validate"]
    validate = package.pipeline_spec["root"]["dag"]["tasks"]["validate"]["inputs"]["parameters"]
    requests = validate["headwater-output-parameters"]
    assert json.loads(requests["runtimeValue"]["constant"]) == {"passed": "anomalies.passed"}


@pytest.mark.parametrize("block", [False, True])
def test_data_gate_under_compiled_tasks(tmp_path, block):
    import hw_data_gate as d

    uri = f"sqlite:///{tmp_path / 'kfp.sqlite'}"
    runs = kfp_run(tmp_path, d.data_gated_pipeline(str(tmp_path / "root"), block=block), uri, "kfp-gate")
    assert runs["validate"].outputs == {"passed": not block}
    # Blocked: the consumer's condition is false (skipped); the task after it never starts (its own
    # condition would be false too).
    after = {"train": "skipped", "push": "not_run"} if block else {"train": "succeeded", "push": "succeeded"}
    assert {n: r.state for n, r in runs.items()} == {
        "ingest": "succeeded", "validate": "succeeded", "other": "succeeded", **after}, \
        {n: r.output for n, r in runs.items()}
    run_ctx = connect(uri).mlmd.get_context_by_type_and_name("pipeline_run", "kfp-gate")
    assert run_ctx.custom_properties["status"].string_value == ("failed" if block else "succeeded")
