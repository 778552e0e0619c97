"""The Kubernetes runner with the pipeline root in an object store (S3 through a moto server).

No volume: the pods reach the bucket with the endpoint given as environment and the keys from a Secret
(envFrom), write their outputs and executor results there, and never see the metadata connection; the
orchestrator reads the results from the bucket, uploads the logs and deletes what a failed node left.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import hw_test_components as c
import pytest
from headwater.components import storage
from headwater.metadata import ArtifactState, connect
from headwater.metadata.errors import RunnerError
from headwater.pipelines import LocalRunner, Pipeline
from headwater.pipelines.kubernetes.deploy import RUNNER_RULES
from headwater.pipelines.kubernetes.manifests import LABEL_NODE, LABEL_ROLE
from k8s_pipelines import diamond, write_then_fail
from k8s_support import HERE, K8sEnv, clear_scratch, kill_when_running, orchestrator_outcome

NS = "headwater"


@pytest.fixture
def scratch():
    """Runs to clear from this machine's scratch folders afterwards: ``scratch.append((pipeline, run id))``."""
    runs: list[tuple[str, str]] = []
    yield runs
    for name, run_id in runs:
        clear_scratch(name, run_id)


def files_of(result) -> dict:
    """Node states and every output file's content, read where the artifacts are (bucket or disk)."""
    out = {}
    for nid, node in result.nodes.items():
        files = {}
        for key, arts in node.outputs.items():
            for art in arts:
                for f in storage.list_files(art.uri):
                    files[f"{key}/{f[len(art.uri):].lstrip('/')}"] = storage.read_bytes(f).decode()
                files[f"{key}:custom"] = json.dumps(dict(art.custom_properties), sort_keys=True)
        out[nid] = (node.state, files)
    return out


def test_diamond_with_the_root_in_a_bucket(k8s: K8sEnv, s3_root: str, tmp_path: Path, scratch: list) -> None:
    local = LocalRunner(quiet=True, metadata=f"sqlite:///{tmp_path / 'local.sqlite'}").run(
        diamond(tmp_path / "local-root"))
    config = k8s.object_store_config()
    from headwater.pipelines.kubernetes import KubernetesRunner

    result = KubernetesRunner(config, metadata=k8s.metadata, quiet=True).run(diamond(s3_root))
    scratch.append(("k8s-demo", result.run_id))
    assert result.ok, {n: r.error for n, r in result.nodes.items()}
    assert files_of(result) == files_of(local)
    # Artifacts, executor results and logs are objects in the bucket; nothing was written to a local root.
    store = connect(k8s.metadata)
    for node in result.nodes.values():
        for arts in node.outputs.values():
            assert all(a.uri.startswith(f"{s3_root}/{node.node_id}/") for a in arts)
        eid = node.execution_id
        log_url = store.get_execution(eid).properties["__log_path__"]
        assert log_url == f"{s3_root}/_logs/{result.run_id}/{node.node_id}.{eid}.log"
        log = storage.read_bytes(log_url).decode()
        assert f"headwater: node {node.node_id!r} execution {eid} succeeded" in log
        assert "uploaded 1 output artifact(s)" in log
        [written] = storage.glob(f"{s3_root}/_results/{result.run_id}/{node.node_id}.{eid}.*.json")
        assert json.loads(storage.read_bytes(written))["succeeded"] is True
    assert list(k8s.root.iterdir()) == []
    [model] = store.get_artifacts([result.outputs("j", "out")[0].id])
    assert model.state == ArtifactState.LIVE and model.uri.startswith(s3_root)
    # No volume in the pods; the endpoint as plain environment, the keys through the Secret only.
    for job in k8s.standin.objects("jobs", NS):
        pod = job["spec"]["template"]["spec"]
        [container] = pod["containers"]
        assert {v["name"] for v in pod["volumes"]} == {"execution-spec", "tmp"}
        assert container["envFrom"] == [{"secretRef": {"name": "s3-credentials"}}]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:") and "HEADWATER_METADATA" not in env
        assert "AWS_SECRET_ACCESS_KEY" not in json.dumps(job) and container["args"][3].startswith(s3_root)

    again = KubernetesRunner(config, metadata=k8s.metadata, quiet=True).run(diamond(s3_root))
    assert {n.state for n in again.nodes.values()} == {"cached"}
    # An output deleted from the bucket is no cache hit: that node runs again (in a pod).
    storage.remove(result.outputs("j", "out")[0].uri)
    third = KubernetesRunner(config, metadata=k8s.metadata, quiet=True).run(diamond(s3_root))
    scratch.append(("k8s-demo", third.run_id))
    assert third.nodes["j"].state == "done" and {third.nodes[n].state for n in "abd"} == {"cached"}
    assert storage.read_bytes(f"{third.outputs('j', 'out')[0].uri}/model.txt") == b"ab"


def test_a_failed_node_leaves_no_objects_and_its_log_is_in_the_bucket(k8s: K8sEnv, s3_root: str,
                                                                      scratch: list) -> None:
    a = c.produce(value="a").with_id("a")
    bad = write_then_fail(examples=a.outputs.data).with_id("bad").with_retries(1)
    after = c.consume(examples=a.outputs.data).with_id("after")
    pipeline = Pipeline("failing", s3_root, [a, bad, after], metadata=k8s.metadata)
    from headwater.pipelines.kubernetes import KubernetesRunner

    result = KubernetesRunner(k8s.object_store_config(), metadata=k8s.metadata, quiet=True).run(pipeline)
    scratch.append(("failing", result.run_id))
    assert (result.nodes["bad"].state, result.nodes["after"].state) == ("failed", "done")
    assert "raised RuntimeError: the disk of the parameter server is full" in result.nodes["bad"].error
    eid = result.nodes["bad"].execution_id
    # Both attempts wrote part of the model into the bucket; the orchestrator deleted it when it failed.
    assert len(k8s.standin.objects("pods", NS, f"{LABEL_NODE}=bad")) == 2
    assert storage.list_files(f"{s3_root}/bad") == []
    execution = connect(k8s.metadata).get_execution(eid)
    assert execution.state == "FAILED" and execution.properties["__user_error__"] is True
    log_url = execution.properties["__log_path__"]
    assert log_url == f"{s3_root}/_logs/{result.run_id}/bad.{eid}.log"
    log = storage.read_bytes(log_url).decode()
    assert log.count("wrote part of the model, about to fail") == 2 and "--- attempt 2: pod " in log
    assert "RuntimeError: the disk of the parameter server is full" in log
    # Each attempt's executor result is an object of its own.
    results = storage.glob(f"{s3_root}/_results/{result.run_id}/bad.{eid}.*.json")
    assert len(results) == 2 and not any(json.loads(storage.read_bytes(r))["succeeded"] for r in results)


def test_a_root_the_pods_cannot_reach_is_refused_before_anything_runs(k8s: K8sEnv, s3_root: str) -> None:
    with pytest.raises(RunnerError, match=r"pipeline root 's3://hw-\w+/root' is in an object store, so the volume "
                                          r"claim 'headwater-root' \(--pipeline-root-claim\) would not be used"):
        k8s.runner().run(diamond(s3_root, metadata=k8s.metadata))
    with pytest.raises(RunnerError, match="executor pods cannot see this machine's disk"):
        k8s.runner(pipeline_root_claim=None).run(diamond(k8s.root, metadata=k8s.metadata))
    assert k8s.standin.count("create", "jobs") == 0


@pytest.mark.db
def test_detached_orchestrator_with_the_root_in_a_bucket(k8s: K8sEnv, s3_root: str, postgres_uri: str) -> None:
    """The orchestrator Job gets the store's environment and Secret itself, and passes them on to the pods."""
    from headwater.pipelines.cli.k8s import DetachedRunner
    from kubernetes import client, config

    run_id = "20260101T000000-detached-s3"
    clear_scratch("k8s-demo", run_id)
    settings = k8s.object_store_config()
    cfg = client.Configuration()
    config.load_kube_config(config_file=k8s.kubeconfig, client_configuration=cfg)
    with client.ApiClient(cfg) as api:
        client.CoreV1Api(api).create_namespaced_secret(NS, client.V1Secret(
            metadata=client.V1ObjectMeta(name="headwater-metadata"), string_data={"uri": postgres_uri}))
        k8s.standin.bind_role(NS, "headwater-runner", RUNNER_RULES)
        runner = DetachedRunner(settings.with_options(env={**settings.env, "HW_K8S_ROOT": s3_root}),
                                pipeline_file=str(HERE / "k8s_pipeline_file.py"), quiet=True, api_client=api)
        detached = runner.run(diamond(s3_root), run_id=run_id)
    try:
        verdict, pod, text = orchestrator_outcome(k8s, NS)
        assert verdict == ["Complete"], text
        assert f"run {detached.run_id} succeeded" in text
        runner_pod = pod["spec"]
        assert {v["name"] for v in runner_pod["volumes"]} == {"tmp"}
        assert runner_pod["containers"][0]["envFrom"] == [{"secretRef": {"name": "s3-credentials"}}]
        executors = [j for j in k8s.standin.objects("jobs", NS) if j["metadata"]["labels"][LABEL_ROLE] == "executor"]
        assert len(executors) == 4
        for job in executors:
            [container] = job["spec"]["template"]["spec"]["containers"]
            assert container["envFrom"] == [{"secretRef": {"name": "s3-credentials"}}]
            assert {e["name"] for e in container["env"]} >= {"AWS_ENDPOINT_URL", "AWS_REGION", "HW_K8S_ROOT"}
            assert "HEADWATER_METADATA" not in {e["name"] for e in container["env"]}
        store = connect(postgres_uri)
        [model] = [a for a in store.mlmd.get_artifacts() if "/j/out/" in a.uri]
        assert model.uri.startswith(f"{s3_root}/j/out/")
        assert storage.read_bytes(f"{model.uri}/model.txt") == b"ab"
        logs = storage.list_files(f"{s3_root}/_logs/{run_id}")
        assert sorted(re.sub(r"\.\d+\.log$", "", Path(p).name) for p in logs) == ["a", "b", "d", "j"]
    finally:
        clear_scratch("k8s-demo", run_id)


def test_restarted_orchestrator_reattaches_with_fresh_scratch_space(k8s: K8sEnv, s3_root: str, scratch: list) -> None:
    """A restarted orchestrator (a new pod of the --detach Job: an empty /tmp) re-attaches to the running
    Jobs, streams their logs into new local files and uploads them; nothing runs twice."""
    import os
    import subprocess
    import sys

    from k8s_support import REPO, RUNTIME_IMAGE

    run_id = "20260101T000000-reattach-s3"
    scratch.append(("k8s-demo", run_id))
    clear_scratch("k8s-demo", run_id)
    config = k8s.object_store_config()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "tests" / "support"), str(HERE)]),
           "HW_K8S_ROOT": s3_root, "HW_K8S_SECONDS": "3"}
    argv = [sys.executable, "-m", "headwater.pipelines.cli", "run", str(HERE / "k8s_pipeline_file.py"),
            "--runner", "kubernetes", "--namespace", NS, "--image", RUNTIME_IMAGE, "--kubeconfig", k8s.kubeconfig,
            "--metadata", k8s.metadata, "--run-id", run_id, "--env-from-secret", "s3-credentials",
            *[a for k, v in config.env.items() for a in ("--env", f"{k}={v}")]]
    first = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    kill_when_running(k8s, first, NS, "b")
    clear_scratch("k8s-demo", run_id, pods=False)  # the new orchestrator pod starts with an empty /tmp
    second = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=90)
    assert second.returncode == 0, second.stdout + second.stderr
    adopted = re.search(rf"re-attached to \d Job\(s\) of run {run_id}: ((a, )?b)\n", second.stderr)
    assert adopted, second.stderr
    created = [j["metadata"]["labels"][LABEL_NODE] for j in k8s.standin.created("jobs", NS)]
    assert sorted(created) == ["a", "b", "d", "j"], second.stderr  # nothing ran twice
    store = connect(k8s.metadata)
    for node in adopted.group(1).split(", "):
        [done] = [store.record(e) for e in store.mlmd.get_executions()
                  if store.record(e).properties.get("__node_id__") == node and store.record(e).state == "COMPLETE"]
        log_url = done.properties["__log_path__"]
        assert log_url == f"{s3_root}/_logs/{run_id}/{node}.{done.id}.log"
        assert f"headwater: node {node!r} execution {done.id} succeeded" in storage.read_bytes(log_url).decode()
