"""``--detach``: the orchestrator itself as a Job, with the runner's Role, metadata from a Secret."""

from __future__ import annotations

import io
import re
from contextlib import redirect_stdout
from pathlib import Path

import pytest
from golden import validate
from headwater.metadata import connect
from headwater.pipelines.cli import main
from headwater.pipelines.cli.k8s import DetachedRunner
from headwater.pipelines.kubernetes.deploy import RUNNER_RULES
from k8s_pipelines import diamond
from k8s_support import HERE, K8sEnv, orchestrator_outcome

NS = "headwater"


@pytest.mark.db
def test_detached_orchestrator_runs_the_pipeline_in_the_cluster(k8s: K8sEnv, mysql_uri: str) -> None:
    from kubernetes import client, config

    cfg = client.Configuration()
    config.load_kube_config(config_file=k8s.kubeconfig, client_configuration=cfg)
    with client.ApiClient(cfg) as api:
        client.CoreV1Api(api).create_namespaced_secret(NS, client.V1Secret(
            metadata=client.V1ObjectMeta(name="headwater-metadata"), string_data={"uri": mysql_uri}))
        k8s.standin.bind_role(NS, "headwater-runner", RUNNER_RULES)
        join_image = "registry.example/hw-join:0.1"  # j's own image, named in the pipeline file
        k8s.standin.cluster.images[join_image] = k8s.standin.cluster.images["headwater:test"]
        runner = DetachedRunner(k8s.config.with_options(env={"HW_K8S_ROOT": str(k8s.root),
                                                             "HW_K8S_JOIN_IMAGE": join_image}),
                                pipeline_file=str(HERE / "k8s_pipeline_file.py"), quiet=True, api_client=api)
        pipeline = diamond(k8s.root)
        detached = runner.run(pipeline)
    assert detached.ok and detached.job_name.startswith("hw-run-k8s-demo-")

    verdict, _, text = orchestrator_outcome(k8s, NS)
    assert verdict == ["Complete"], text
    assert f"run {detached.run_id} succeeded" in text
    # Executor Jobs were created by the orchestrator's service account, within its Role.
    executors = [r for r in k8s.standin.requests if r.verb == "create" and r.resource == "jobs" and r.code == 201]
    users = {r.user for r in executors}
    assert users == {"admin", "system:serviceaccount:headwater:headwater-runner"}
    assert not [r for r in k8s.standin.requests if r.code == 403]
    images = {r.body["metadata"]["labels"].get("headwater.dev/node-id"): r.body["spec"]["template"]["spec"][
        "containers"][0]["image"] for r in executors}
    assert images == {None: "headwater:test", "a": "headwater:test", "b": "headwater:test", "d": "headwater:test",
                      "j": join_image}  # None: the orchestrator Job; each executor in its node's image
    # Progress and results are in MLMD: `headwater runs show` reads them.
    store = connect(mysql_uri)
    artifacts = [a for a in store.mlmd.get_artifacts() if "/j/out/" in a.uri]
    assert [(Path(a.uri) / "model.txt").read_text() for a in artifacts] == ["ab"]
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["runs", "show", detached.run_id, "--metadata", mysql_uri])
    assert code == 0 and "j" in out.getvalue()


def test_orchestrator_manifest(k8s: K8sEnv) -> None:
    runner = DetachedRunner(k8s.config, pipeline_file="pipeline.py", extra_args=("--no-cache",))
    manifest = runner.manifest(diamond("/mnt/root"), {"delay": 2}, "20260101T000000-abcdef")
    pod = manifest["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["args"] == [
        "run", "pipeline.py", "--runner", "kubernetes", "--namespace", NS, "--image", "headwater:test",
        "--run-id", "20260101T000000-abcdef", "--pipeline-root-claim", "headwater-root", "--param", "delay=2",
        "--no-cache"]
    assert pod["serviceAccountName"] == "headwater-runner" and pod["automountServiceAccountToken"] is True
    env = {e["name"]: e for e in container["env"]}
    assert env["HEADWATER_METADATA"]["valueFrom"]["secretKeyRef"] == {"name": "headwater-metadata", "key": "uri"}


def test_orchestrator_manifest_with_the_root_in_a_bucket(k8s: K8sEnv) -> None:
    """The orchestrator gets the store's environment and Secrets itself (it reads results, uploads logs) and
    passes every executor-pod option on to the runner it starts; no volume is mounted anywhere."""
    config = k8s.config.with_options(
        pipeline_root_claim=None, env={"AWS_ENDPOINT_URL": "http://minio.storage:9000", "AWS_REGION": "eu-west-1"},
        secret_env={"AWS_SESSION_TOKEN": ("sts", "token")}, env_from_secrets=("headwater-object-store",),
        node_selector={"pool": "cpu"}, image_pull_policy="IfNotPresent", max_parallel=4,
    )
    runner = DetachedRunner(config, pipeline_file="pipeline.py")
    manifest = runner.manifest(diamond("s3://models/k8s-demo"), None, "20260101T000000-abcdef")
    validate(manifest)
    pod = manifest["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["args"] == [
        "run", "pipeline.py", "--runner", "kubernetes", "--namespace", NS, "--image", "headwater:test",
        "--run-id", "20260101T000000-abcdef",
        "--env", "AWS_ENDPOINT_URL=http://minio.storage:9000", "--env", "AWS_REGION=eu-west-1",
        "--secret-env", "AWS_SESSION_TOKEN=sts:token", "--env-from-secret", "headwater-object-store",
        "--node-selector", "pool=cpu", "--image-pull-policy", "IfNotPresent", "--max-parallel", "4"]
    assert container["envFrom"] == [{"secretRef": {"name": "headwater-object-store"}}]
    env = {e["name"]: e for e in container["env"]}
    assert env["AWS_ENDPOINT_URL"]["value"] == "http://minio.storage:9000"
    assert env["AWS_SESSION_TOKEN"]["valueFrom"] == {"secretKeyRef": {"name": "sts", "key": "token"}}
    assert {v["name"] for v in pod["volumes"]} == {"tmp"}
    # The options the orchestrator is given make the same executor-pod configuration again.
    from headwater.pipelines.cli import build_parser
    from headwater.pipelines.cli.k8s import config_from_args

    args = build_parser().parse_args(container["args"])
    again = config_from_args(args)
    for field in ("env", "secret_env", "env_from_secrets", "node_selector", "image_pull_policy", "max_parallel",
                  "namespace", "image", "pipeline_root_claim"):
        assert getattr(again, field) == getattr(config, field), field


def test_detach_refuses_a_root_the_pods_cannot_reach(k8s: K8sEnv) -> None:
    from headwater.metadata.errors import RunnerError

    runner = DetachedRunner(k8s.config.with_options(pipeline_root_claim=None), pipeline_file="pipeline.py",
                            api_client=object())
    with pytest.raises(RunnerError, match="executor pods cannot see this machine's disk"):
        runner.run(diamond("/mnt/root"))


def test_cli_options_for_the_pods_environment() -> None:
    from headwater.metadata.errors import ParameterError
    from headwater.pipelines.cli import build_parser
    from headwater.pipelines.cli.k8s import config_from_args

    parser = build_parser()
    args = parser.parse_args(["run", "p.py", "--runner", "kubernetes", "--env", "AWS_ENDPOINT_URL=http://m:9000",
                              "--env", "X=a=b", "--secret-env", "AWS_ACCESS_KEY_ID=s3:key",
                              "--env-from-secret", "creds"])
    config = config_from_args(args)
    assert config.env == {"AWS_ENDPOINT_URL": "http://m:9000", "X": "a=b"}
    assert config.secret_env == {"AWS_ACCESS_KEY_ID": ("s3", "key")} and config.env_from_secrets == ("creds",)
    for bad, message in (
        (["--secret-env", "AWS_ACCESS_KEY_ID=s3"], "--secret-env expects VAR=SECRET:KEY, got 'AWS_ACCESS_KEY_ID=s3'"),
        (["--secret-env", "V=:k"], "--secret-env expects VAR=SECRET:KEY, got 'V=:k'"),
        (["--env", "NOVALUE"], "--env expects KEY=VALUE, got 'NOVALUE'"),
    ):
        with pytest.raises(ParameterError, match=f"^{re.escape(message)}$"):
            config_from_args(parser.parse_args(["run", "p.py", *bad]))
    with pytest.raises(Exception, match="pods never get database credentials"):
        from headwater.pipelines.kubernetes import KubernetesBackend

        KubernetesBackend(config_from_args(parser.parse_args(["run", "p.py", "--env", "HEADWATER_METADATA=x"])),
                          api_client=object())


def test_cli_default_resources_for_executor_pods() -> None:
    from headwater.components.api import Resources
    from headwater.metadata.errors import ParameterError
    from headwater.pipelines.cli import build_parser
    from headwater.pipelines.cli.k8s import config_from_args
    from headwater.pipelines.kubernetes.manifests import DEFAULT_EXECUTOR_RESOURCES, KubernetesConfig, orchestrator_job

    parser = build_parser()

    def defaults(*options: str) -> Resources | None:
        args = parser.parse_args(["run", "p.py", "--runner", "kubernetes", *options])
        return config_from_args(args).default_resources

    assert defaults() == DEFAULT_EXECUTOR_RESOURCES
    # A kind given replaces that kind of the default; its limit, when not given, is its request.
    assert defaults("--default-resource", "memory=8Gi") == Resources(cpu="500m", cpu_limit="2", memory="8Gi")
    assert defaults("--default-resource", "memory=8Gi", "--default-resource", "memory-limit=16Gi",
                    "--default-resource", "cpu=1") == Resources(cpu="1", memory="8Gi", memory_limit="16Gi")
    assert defaults("--no-default-resources") is None
    assert defaults("--no-default-resources", "--default-resource", "memory=2Gi") == Resources(memory="2Gi")
    for bad, message in (
        (["cpus=2"], "--default-resource: unknown kind 'cpus'; use cpu, cpu-limit, memory or memory-limit"),
        (["memory"], "--default-resource expects KEY=VALUE, got 'memory'"),
        (["memory=lots"], "--default-resource: memory='lots' is not a Kubernetes quantity"),
        (["cpu=2", "cpu-limit=100m"], "--default-resource: the cpu limit 100m is below the cpu request 2"),
    ):
        with pytest.raises(ParameterError, match=f"^{re.escape(message)}"):
            defaults(*[a for item in bad for a in ("--default-resource", item)])
    # --detach passes them on: the orchestrator in the cluster gives the pods the same defaults.
    for value in (Resources(memory="2Gi"), Resources(cpu="1", cpu_limit="4", memory="3Gi"), None):
        config = KubernetesConfig(pipeline_root_claim="root", default_resources=value)
        job = orchestrator_job(config, pipeline_name="p", pipeline_file="p.py", pipeline_root="/mnt/r", run_id="r")
        args = job["spec"]["template"]["spec"]["containers"][0]["args"]
        assert "--no-default-resources" in args
        assert config_from_args(parser.parse_args(args)).default_resources == value
    plain = orchestrator_job(KubernetesConfig(), pipeline_name="p", pipeline_file="p.py", pipeline_root="s3://b",
                             run_id="r")
    assert not any("default-resource" in a for a in plain["spec"]["template"]["spec"]["containers"][0]["args"])
