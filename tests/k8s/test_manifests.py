"""Manifests: golden files of what the runner creates, deploy/ in sync, all valid per the OpenAPI schema."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import pytest
import yaml
from golden import REPO_PLACEHOLDER, ROOT_PLACEHOLDER, as_manifest, compare, normalise, validate
from headwater.components.api import Resources
from headwater.components.executor import ExecutionSpec
from headwater.metadata.errors import RunnerError
from headwater.pipelines.kubernetes.deploy import deploy_manifests
from headwater.pipelines.kubernetes.manifests import (
    DEFAULT_EXECUTOR_RESOURCES,
    LABEL_NODE,
    KubernetesConfig,
    check_pipeline_root,
    check_resources,
    effective_resources,
    execution_configmap,
    execution_job,
    job_name,
    label_value,
    orchestrator_job,
    resource_requirements,
)
from k8s_pipelines import diamond
from k8s_support import REPO, K8sEnv, clear_scratch

DEPLOY = REPO / "deploy"
RUN_ID = "20260101T000000-golden"


def created_bodies(k8s: K8sEnv) -> dict[str, dict]:
    objects = {}
    for record in k8s.standin.requests:
        if record.verb == "create" and record.code == 201 and record.resource in ("jobs", "configmaps"):
            body = record.body
            kind = "job" if record.resource == "jobs" else "configmap"
            objects[f"{body['metadata']['labels'][LABEL_NODE]}-{kind}"] = body
    return objects


def test_golden_manifests_of_a_small_pipeline(k8s: K8sEnv) -> None:
    config = k8s.config.with_options(
        image="registry.example/headwater:0.1.0", image_pull_policy="IfNotPresent",
        service_account="headwater-executor", ttl_seconds_after_finished=86400,
    )
    k8s.standin.cluster.images["registry.example/headwater:0.1.0"] = k8s.standin.cluster.images["headwater:test"]
    # a and b start together (execution ids 1, 2 in node order), j after both (3): ids are deterministic.
    nodes = {n.id: n for n in diamond(k8s.root).nodes if n.id != "d"}
    nodes["j"] = nodes["j"].with_resources(cpu="2", memory="4Gi").with_retries(2).with_timeout(3600)
    from headwater.pipelines import Pipeline
    from headwater.pipelines.kubernetes import KubernetesRunner

    pipeline = Pipeline("k8s-demo", str(k8s.root), list(nodes.values()), metadata=k8s.metadata)
    result = KubernetesRunner(config, metadata=k8s.metadata, quiet=True).run(pipeline, run_id=RUN_ID)
    assert result.ok
    bodies = created_bodies(k8s)
    assert len(bodies) == 6
    for body in bodies.values():
        validate(body)
    replacements = {str(k8s.root): ROOT_PLACEHOLDER, str(REPO): REPO_PLACEHOLDER}
    compare("diamond", {stem: normalise(body, replacements) for stem, body in bodies.items()})


def test_golden_manifests_with_the_root_in_a_bucket(k8s: K8sEnv, s3_root: str) -> None:
    """The same pipeline with its root in S3: no volume, the store's endpoint as environment and its keys
    from a Secret (envFrom), results and URIs in the bucket; logs in the orchestrator's scratch folder
    until they are uploaded."""
    config = k8s.object_store_config().with_options(
        image="registry.example/headwater:0.1.0", image_pull_policy="IfNotPresent",
        service_account="headwater-executor", ttl_seconds_after_finished=86400,
    )
    k8s.standin.cluster.images["registry.example/headwater:0.1.0"] = k8s.standin.cluster.images["headwater:test"]
    nodes = {n.id: n for n in diamond(s3_root).nodes if n.id != "d"}
    nodes["j"] = nodes["j"].with_resources(cpu="2", memory="4Gi").with_retries(2).with_timeout(3600)
    from headwater.pipelines import Pipeline
    from headwater.pipelines.kubernetes import KubernetesRunner

    run_id = f"{RUN_ID}-s3"
    pipeline = Pipeline("k8s-demo", s3_root, list(nodes.values()))
    clear_scratch(pipeline.name, run_id)
    try:
        result = KubernetesRunner(config, metadata=k8s.metadata, quiet=True).run(pipeline, run_id=run_id)
    finally:
        clear_scratch(pipeline.name, run_id)
    assert result.ok, {n: r.error for n, r in result.nodes.items()}
    bodies = created_bodies(k8s)
    assert len(bodies) == 6
    for body in bodies.values():
        validate(body)
    replacements = {s3_root: "s3://bucket/root", os.environ["AWS_ENDPOINT_URL"]: "http://s3.example:9000",
                    str(Path(tempfile.gettempdir(), "headwater")): "/tmp/headwater", str(REPO): REPO_PLACEHOLDER}
    compare("diamond-s3", {stem: normalise(body, replacements) for stem, body in bodies.items()})


def test_golden_files_are_valid_kubernetes() -> None:
    files = sorted((REPO / "tests" / "golden" / "k8s").rglob("*.yaml"))
    assert files
    for path in files:
        validate(as_manifest(yaml.safe_load(path.read_text())))


# ------------------------------------------------------------------------------ deploy/
def deploy_files() -> dict[str, list[dict]]:
    base = deploy_manifests("headwater", database=None)
    return {
        "headwater.yaml": base,
        "headwater-object-store.yaml": deploy_manifests("headwater", database=None, object_store=True),
        "metadata-mariadb.yaml": deploy_manifests("headwater", database="mariadb")[len(base):],
        "metadata-postgresql.yaml": deploy_manifests("headwater", database="postgresql")[len(base):],
    }


@pytest.mark.parametrize("name", sorted(deploy_files()))
def test_deploy_yaml_is_in_sync_and_valid(name: str) -> None:
    path = DEPLOY / name
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    assert docs == deploy_files()[name], f"{path} is stale: regenerate it with 'headwater k8s manifests' (see docs)"
    for doc in docs:
        validate(doc)


def test_runner_role_is_exactly_what_the_runner_needs() -> None:
    [role] = [d for d in deploy_manifests(database=None) if d["kind"] == "Role"]
    granted = {(g, r, v) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]
               for v in rule["verbs"]}
    assert granted == {
        ("batch", "jobs", v) for v in ("create", "get", "list", "watch", "delete")
    } | {("", "pods", v) for v in ("get", "list", "watch")} | {("", "pods/log", "get")} | {
        ("", "configmaps", v) for v in ("create", "get", "delete")}


def test_dockerfile_runs_as_non_root_with_the_pinned_stack() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^USER 1000(:1000)?$", text, re.M)
    assert "-c constraints.txt" in text and "[ml,ui]" in text


def test_k8s_manifests_command_prints_deploy(capsys: pytest.CaptureFixture[str]) -> None:
    from headwater.pipelines.cli import main

    assert main(["k8s", "manifests", "--database", "none"]) == 0
    docs = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    assert docs == deploy_files()["headwater.yaml"]
    assert main(["k8s", "manifests", "--database", "none", "--object-store"]) == 0
    docs = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    assert docs == deploy_files()["headwater-object-store.yaml"]


def test_object_store_deploy_has_a_credentials_secret_and_no_volume(capsys: pytest.CaptureFixture[str]) -> None:
    from headwater.pipelines.cli import main

    assert main(["k8s", "manifests", "--namespace", "team-a", "--object-store-endpoint", "http://minio.storage:9000",
                 "--database", "postgresql"]) == 0
    docs = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    for doc in docs:
        validate(doc)
    assert "PersistentVolumeClaim" not in [d["kind"] for d in docs]
    [store] = [d for d in docs if d["metadata"]["name"] == "headwater-object-store"]
    assert store["metadata"]["namespace"] == "team-a"
    assert store["stringData"] == {"AWS_ACCESS_KEY_ID": "change-me", "AWS_SECRET_ACCESS_KEY": "change-me",
                                   "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": "http://minio.storage:9000"}
    assert main(["k8s", "manifests", "--object-store", "--database", "postgresql", "--database-only"]) == 0
    only = [d for d in yaml.safe_load_all(capsys.readouterr().out) if d]
    assert [d["kind"] for d in only] == ["Secret", "Service", "StatefulSet"]
    assert only[0]["metadata"]["name"] == "headwater-metadata"


# ------------------------------------------------------------------------------ content
def spec(**changes: object) -> ExecutionSpec:
    base = {
        "pipeline_name": "penguin", "pipeline_root": "/mnt/root", "run_id": RUN_ID, "node_id": "train",
        "execution_id": 42, "component_module": "headwater.components.train", "component_function": "Train",
        "component_file": None, "inputs": {}, "outputs": {"model": [{"uri": "/mnt/root/train/model/42"}]},
        "parameters": {"train_steps": 100}, "tmp_dir": "/mnt/root/_tmp/42", "log_path": "/mnt/root/_logs/x.log",
    }
    return ExecutionSpec(**{**base, **changes})  # type: ignore[arg-type]


def test_resources_become_requests_and_limits() -> None:
    assert resource_requirements(Resources()) == {}
    assert resource_requirements(Resources(cpu="2", memory="4Gi")) == {
        "requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}}
    assert resource_requirements(Resources(cpu="500m", memory="1Gi", gpu=1, cpu_limit="2")) == {
        "requests": {"cpu": "500m", "memory": "1Gi", "nvidia.com/gpu": "1"},
        "limits": {"cpu": "2", "memory": "1Gi", "nvidia.com/gpu": "1"}}


def test_executor_jobs_get_default_requests_and_limits_for_what_the_node_leaves_unset() -> None:
    """Regression: a node without .with_resources() ran BestEffort (no requests, no limits)."""
    config = KubernetesConfig(pipeline_root_claim="root")

    def resources(res: Resources | None, cfg: KubernetesConfig = config) -> dict[str, object]:
        job = execution_job(spec(), cfg, resources=res)
        validate(job)
        return job["spec"]["template"]["spec"]["containers"][0].get("resources", {})

    default = {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}}
    assert config.default_resources == DEFAULT_EXECUTOR_RESOURCES
    assert resources(None) == resources(Resources()) == default
    # Per kind: what the node sets stays as it is (its limit = its request), the rest is the default.
    assert resources(Resources(cpu="4")) == {"requests": {"cpu": "4", "memory": "1Gi"},
                                             "limits": {"cpu": "4", "memory": "4Gi"}}
    assert resources(Resources(memory_limit="16Gi")) == {"requests": {"cpu": "500m"},
                                                         "limits": {"cpu": "2", "memory": "16Gi"}}
    assert resources(Resources(gpu=1)) == {"requests": {**default["requests"], "nvidia.com/gpu": "1"},
                                           "limits": {**default["limits"], "nvidia.com/gpu": "1"}}
    assert resources(Resources(cpu="2", memory="4Gi")) == resource_requirements(Resources(cpu="2", memory="4Gi"))
    # Configurable, and can be turned off.
    small = config.with_options(default_resources=Resources(cpu="100m", memory="256Mi"))
    assert resources(None, small) == {"requests": {"cpu": "100m", "memory": "256Mi"},
                                      "limits": {"cpu": "100m", "memory": "256Mi"}}
    assert resources(None, config.with_options(default_resources=None)) == {}
    assert effective_resources(None, None) == Resources()


def test_bad_default_resources_are_refused_before_anything_runs() -> None:
    from headwater.pipelines.kubernetes import KubernetesBackend

    with pytest.raises(RunnerError, match=r"^KubernetesConfig\.default_resources: memory='lots' is not a Kubernetes "
                                          r"quantity \(e\.g\. 500m or 2 for CPU, 512Mi or 4Gi for memory\)$"):
        KubernetesBackend(KubernetesConfig(default_resources=Resources(memory="lots")), api_client=object())
    with pytest.raises(RunnerError, match="the cpu limit 1 is below the cpu request 2; Kubernetes requires limit >= "
                                          "request"):
        check_resources(Resources(cpu="2", cpu_limit="1"), "x")


def test_every_option_reaches_the_job() -> None:
    config = KubernetesConfig(
        namespace="ml", image="img:1", image_pull_policy="Always", image_pull_secrets=("regcred",),
        service_account="headwater-executor", pipeline_root_claim="root-pvc", node_selector={"pool": "cpu"},
        tolerations=({"key": "dedicated", "operator": "Equal", "value": "ml", "effect": "NoSchedule"},),
        env={"TF_CPP_MIN_LOG_LEVEL": "2"}, secret_env={"AWS_ACCESS_KEY_ID": ("s3", "key")},
        env_from_secrets=("gcs",), ttl_seconds_after_finished=600, active_deadline_seconds=7200,
        tmp_size_limit="2Gi",
    )
    job = execution_job(spec(), config, resources=Resources(cpu="1", memory="2Gi", gpu=1), retries=3)
    validate(job)
    pod = job["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert job["metadata"]["namespace"] == "ml"
    assert (job["spec"]["backoffLimit"], job["spec"]["activeDeadlineSeconds"],
            job["spec"]["ttlSecondsAfterFinished"]) == (3, 7200, 600)
    assert execution_job(spec(), config, timeout_seconds=60)["spec"]["activeDeadlineSeconds"] == 60
    assert (container["image"], container["imagePullPolicy"]) == ("img:1", "Always")
    assert pod["imagePullSecrets"] == [{"name": "regcred"}] and pod["serviceAccountName"] == "headwater-executor"
    assert pod["nodeSelector"] == {"pool": "cpu"} and pod["tolerations"][0]["key"] == "dedicated"
    assert container["envFrom"] == [{"secretRef": {"name": "gcs"}}]
    env = {e["name"]: e for e in container["env"]}
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"] == {"secretKeyRef": {"name": "s3", "key": "key"}}
    assert env["TF_CPP_MIN_LOG_LEVEL"]["value"] == "2" and "HEADWATER_METADATA" not in env
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    # Security: non-root, no privilege escalation, read-only root with /tmp as an emptyDir, no API token.
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["automountServiceAccountToken"] is False
    assert container["securityContext"] == {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                            "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    assert mounts == {"/var/run/headwater/spec": "execution-spec", "/tmp": "tmp", "/mnt/root": "pipeline-root"}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["tmp"]["emptyDir"] == {"sizeLimit": "2Gi"}
    assert volumes["pipeline-root"]["persistentVolumeClaim"] == {"claimName": "root-pvc"}
    assert container["args"] == ["--spec", "/var/run/headwater/spec/spec.json", "--result",
                                 f"/mnt/root/_results/{RUN_ID}/train.42.$(HEADWATER_POD_NAME).json"]


def test_configmap_carries_the_pod_spec_and_the_original() -> None:
    owner = {"metadata": {"name": "penguin-train-42-abcde", "uid": "0000"}}
    cm = execution_configmap(spec(), KubernetesConfig(), owner=owner)
    validate(cm)
    pod_spec = json.loads(cm["data"]["spec.json"])
    original = json.loads(cm["data"]["execution-spec.json"])
    assert original == spec().to_json()
    assert pod_spec["log_path"] is None and pod_spec["tmp_dir"] == f"/tmp/headwater/{RUN_ID}/42"
    assert cm["metadata"]["ownerReferences"] == [{"apiVersion": "batch/v1", "kind": "Job",
                                                  "name": "penguin-train-42-abcde", "uid": "0000"}]


def test_names_and_labels_are_always_valid() -> None:
    long = spec(pipeline_name="A" * 63, node_id="Very_Long_Node_Name_" * 3, run_id="run " * 30)
    name = job_name(long)
    assert len(name) <= 63 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name)
    assert job_name(long) != job_name(spec(pipeline_name="A" * 63, node_id="Very_Long_Node_Name_" * 3,
                                           run_id="run " * 30, execution_id=43))
    for value in ("train_", "run " * 30, "-x-", "ok.value"):
        label = label_value(value)
        assert len(label) <= 63 and re.fullmatch(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?", label)
    assert label_value("train_") != label_value("train-")
    validate(execution_job(long, KubernetesConfig()))


def test_object_store_root_mounts_no_volume_and_needs_no_claim() -> None:
    config = KubernetesConfig(env={"AWS_ENDPOINT_URL": "http://minio.storage:9000"},
                              env_from_secrets=("headwater-object-store",))
    s3 = spec(pipeline_root="s3://models/penguin", outputs={"model": [{"uri": "s3://models/penguin/train/model/42"}]})
    job = execution_job(s3, config)
    validate(job)
    pod = job["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert {v["name"] for v in pod["volumes"]} == {"execution-spec", "tmp"}
    assert container["args"][-1] == f"s3://models/penguin/_results/{RUN_ID}/train.42.$(HEADWATER_POD_NAME).json"
    assert container["envFrom"] == [{"secretRef": {"name": "headwater-object-store"}}]
    check_pipeline_root("s3://models/penguin", config)
    check_pipeline_root("gs://models/penguin/", config)
    with pytest.raises(RunnerError, match=r"'s3://models/penguin' is in an object store, so the volume claim 'pvc'"):
        check_pipeline_root("s3://models/penguin", config.with_options(pipeline_root_claim="pvc"))
    with pytest.raises(RunnerError, match=r"'/mnt/root' is a local path, but executor pods cannot see"):
        check_pipeline_root("/mnt/root", config)
    with pytest.raises(RunnerError, match=r"'runs/x' is relative"):
        check_pipeline_root("runs/x", config.with_options(pipeline_root_claim="pvc"))
    # A file:// root is a local path: mounted at the path, the result written there.
    claimed = config.with_options(pipeline_root_claim="pvc")
    check_pipeline_root("file:///mnt/root", claimed)
    local = execution_job(spec(pipeline_root="file:///mnt/root"), claimed)
    validate(local)
    mounts = {m["name"]: m["mountPath"] for m in local["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]}
    assert mounts["pipeline-root"] == "/mnt/root"
    assert local["spec"]["template"]["spec"]["containers"][0]["args"][-1].startswith("file:///mnt/root/_results/")


def test_orchestrator_job_is_valid() -> None:
    job = orchestrator_job(KubernetesConfig(namespace="ml", pipeline_root_claim="root", metadata_secret="db"),
                           pipeline_name="penguin", pipeline_file="pipeline.py", pipeline_root="/mnt/root",
                           run_id=RUN_ID, params={"train_steps": 10})
    validate(job)
    assert job["spec"]["template"]["spec"]["serviceAccountName"] == "headwater-runner"


def test_deploy_manifests_options() -> None:
    docs = deploy_manifests("team-a", storage_class="nfs-client", storage_size="100Gi", database="postgresql")
    for doc in docs:
        validate(doc)
    [pvc] = [d for d in docs if d["kind"] == "PersistentVolumeClaim"]
    assert pvc["spec"] == {"accessModes": ["ReadWriteMany"], "resources": {"requests": {"storage": "100Gi"}},
                           "storageClassName": "nfs-client"}
    [secret] = [d for d in docs if d["kind"] == "Secret"]
    assert secret["stringData"]["uri"].startswith("postgresql://postgres:")
    assert {d["metadata"].get("namespace", d["metadata"]["name"]) for d in docs} == {"team-a"}
    with pytest.raises(ValueError, match="database must be 'mariadb', 'postgresql' or None"):
        deploy_manifests(database="sqlite")
