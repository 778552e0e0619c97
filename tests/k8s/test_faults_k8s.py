"""Every injected fault, through the KubernetesRunner and the stand-in, with its message pinned."""

from __future__ import annotations

import io
import re
import threading
import time
from pathlib import Path

import hw_test_components as c
import pytest
from headwater.metadata import connect
from headwater.pipelines import Pipeline
from headwater.pipelines.kubernetes.deploy import RUNNER_RULES
from headwater.pipelines.kubernetes.manifests import LABEL_NODE
from k8s_pipelines import diamond, env_echo
from k8s_support import K8sEnv
from standin import ApiFault, PodFault

NS = "headwater"
POD = r"k8s-faults-a-1-\w{5}-\w{5}"


def single(k8s: K8sEnv, node) -> Pipeline:
    return Pipeline("k8s-faults", str(k8s.root), [node], metadata=k8s.metadata)


def run_single(k8s: K8sEnv, node, **config):
    stream = io.StringIO()
    runner = k8s.runner(**config)
    runner.quiet = False
    runner.stream = stream
    result = runner.run(single(k8s, node))
    return result, stream.getvalue()


def node_a(seconds: float = 0.0):
    return c.produce(value="a", seconds=seconds).with_id("a")


def test_container_exit_code(k8s: K8sEnv) -> None:
    k8s.standin.inject(PodFault.exit(3, labels={LABEL_NODE: "a"}))
    result, _ = run_single(k8s, node_a())
    assert re.fullmatch(
        rf"node 'a': the container in pod {POD} exited with code 3 \(Error\) without an executor result; "
        r"last output: stand-in fault: container exits with 3", result.nodes["a"].error)
    assert connect(k8s.metadata).get_execution(result.nodes["a"].execution_id).state == "FAILED"


def test_oom_killed(k8s: K8sEnv) -> None:
    k8s.standin.inject(PodFault.oom(after=0.3, labels={LABEL_NODE: "a"}))
    result, console = run_single(k8s, node_a(seconds=5).with_resources(cpu="1", memory="2Gi"))
    assert re.fullmatch(
        rf"node 'a': pod {POD} was OOMKilled: the container used more memory than its limit \(2Gi\); raise it "
        r"with \.with_resources\(memory=\.\.\.\)", result.nodes["a"].error)
    assert re.search(rf"node 'a': attempt 1 \(pod {POD}\) OOMKilled \(memory limit 2Gi\)", console)


def test_oom_killed_then_retried(k8s: K8sEnv) -> None:
    k8s.standin.inject(PodFault.oom(after=0.2, labels={LABEL_NODE: "a"}, times=1))
    result, console = run_single(k8s, node_a(seconds=0.5).with_retries(1))
    assert result.ok
    # The node sets no memory: the default limit of executor pods is the one it hit.
    assert re.search(rf"attempt 1 \(pod {POD}\) OOMKilled \(memory limit 4Gi\); retrying \(1 retry left\)",
                     console)
    pods = k8s.standin.objects("pods", NS, f"{LABEL_NODE}=a")
    assert len(pods) == 2 and k8s.standin.count("create", "jobs") == 1  # retried by the Job, not the runner
    assert "--- attempt 2: pod " in Path(result.nodes["a"].log_path).read_text()


def test_retries_exhausted(k8s: K8sEnv) -> None:
    k8s.standin.inject(PodFault.exit(1, labels={LABEL_NODE: "a"}, times=None))
    result, _ = run_single(k8s, node_a().with_retries(2))
    assert re.fullmatch(rf"node 'a': the container in pod {POD} exited with code 1 \(Error\) after 3 attempts "
                        r"without an executor result; last output: .*", result.nodes["a"].error)
    assert len(k8s.standin.objects("pods", NS, f"{LABEL_NODE}=a")) == 3
    job = k8s.standin.objects("jobs", NS)[0]
    assert job["spec"]["backoffLimit"] == 2 and k8s.standin.count("create", "jobs") == 1


def test_unschedulable_names_the_resource(k8s: K8sEnv) -> None:
    result, console = run_single(k8s, node_a().with_resources(cpu="64", memory="1Gi"), unschedulable_timeout=0.3)
    assert result.nodes["a"].error == (
        "node 'a' could not be scheduled for 0.3s: not enough cpu on any node (the node requests cpu=64, "
        "memory=1Gi). Scheduler: 0/3 nodes are available: 3 Insufficient cpu. Lower .with_resources(...), or "
        "add capacity to the cluster"
    )
    assert re.search(r"node 'a': Pending: cannot be scheduled: 0/3 nodes are available: 3 Insufficient cpu\.",
                     console)
    k8s.standin.wait_for(lambda: not k8s.standin.objects("jobs", NS))  # the stuck Job was deleted


def test_gpu_request_is_unschedulable_without_gpu_nodes(k8s: K8sEnv) -> None:
    result, _ = run_single(k8s, node_a().with_resources(gpu=1), unschedulable_timeout=0.3)
    assert ("not enough nvidia.com/gpu on any node (the node requests cpu=500m, memory=1Gi, nvidia.com/gpu=1)"
            in result.nodes["a"].error)
    [job] = k8s.standin.created("jobs", NS)
    limits = job["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert limits == {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"}  # CPU and memory: the defaults


def test_image_pull_failure(k8s: K8sEnv) -> None:
    result, console = run_single(k8s, node_a(), image="registry.example/headwater:missing",
                                 image_pull_timeout=0.3)
    assert re.fullmatch(
        r"node 'a': image 'registry\.example/headwater:missing' cannot be pulled \((ErrImagePull|ImagePullBackOff)\): "
        r".*\. Check the image name and tag \(--image\), that it was pushed or loaded into the cluster, and the "
        r"pull secrets", result.nodes["a"].error)
    assert 'Failed to pull image "registry.example/headwater:missing"' in console


def test_missing_secret_is_a_config_error(k8s: K8sEnv) -> None:
    result, _ = run_single(k8s, node_a(), env_from_secrets=("cloud-credentials",), config_error_timeout=0.3)
    assert result.nodes["a"].error == (
        "node 'a': the container cannot be created (CreateContainerConfigError): secret \"cloud-credentials\" not "
        "found. Create the missing Secret/ConfigMap or fix the volume configuration"
    )


def test_env_from_secret_reaches_the_pod(k8s: K8sEnv) -> None:
    from kubernetes import client, config

    cfg = client.Configuration()
    config.load_kube_config(config_file=k8s.kubeconfig, client_configuration=cfg)
    with client.ApiClient(cfg) as api:
        client.CoreV1Api(api).create_namespaced_secret(NS, client.V1Secret(
            metadata=client.V1ObjectMeta(name="cloud"), string_data={"HW_VALUE": "from-secret"}))
    result, _ = run_single(k8s, env_echo().with_id("a"), env_from_secrets=("cloud",))
    assert result.ok
    assert result.outputs("a", "out")[0].custom_properties["value"] == "from-secret"


def test_pod_pending_too_long(k8s: K8sEnv) -> None:
    k8s.standin.inject(PodFault.slow_start(30, labels={LABEL_NODE: "a"}))
    result, _ = run_single(k8s, node_a(), pending_timeout=0.5)
    assert re.fullmatch(
        rf"node 'a': pod {POD} stayed Pending for 0.5s \(ContainerCreating: no message\); check "
        rf"'kubectl -n headwater describe pod {POD}' for its events", result.nodes["a"].error)


def test_evicted(k8s: K8sEnv) -> None:
    k8s.standin.inject(PodFault.evict(after=0.3, labels={LABEL_NODE: "a"}))
    result, _ = run_single(k8s, node_a(seconds=5))
    assert re.fullmatch(rf"node 'a': pod {POD} was evicted: The node was low on resource: memory\. .*",
                        result.nodes["a"].error)


def test_deadline_exceeded(k8s: K8sEnv) -> None:
    t0 = time.monotonic()
    result, _ = run_single(k8s, node_a(seconds=30).with_timeout(1))
    assert result.nodes["a"].error == (
        "node 'a' ran longer than its deadline of 1s (Job activeDeadlineSeconds) and was stopped; raise it "
        "with .with_timeout(seconds)"
    )
    assert time.monotonic() - t0 < 10


def test_throttling_and_server_errors_are_retried(k8s: K8sEnv) -> None:
    k8s.standin.inject(ApiFault("create", "jobs", 429, times=1, retry_after=1))
    k8s.standin.inject(ApiFault("create", "configmaps", 500, times=2))
    k8s.standin.inject(ApiFault("list", "pods", 503, times=1))
    t0 = time.monotonic()
    result = k8s.runner().run(diamond(k8s.root, metadata=k8s.metadata))
    assert result.ok
    assert time.monotonic() - t0 >= 1.0  # Retry-After honoured
    assert k8s.standin.count("create", "jobs", code=429) == 1
    assert k8s.standin.count("create", "configmaps", code=500) == 2
    assert k8s.standin.count("create", "jobs", code=201) == 4


def test_lost_create_answer_does_not_duplicate_the_job(k8s: K8sEnv) -> None:
    # The server creates the Job but the answer is a 500: the retry meets 409 and adopts its own Job.
    k8s.standin.inject(ApiFault("create", "jobs", 500, times=1, after_commit=True))
    result = k8s.runner().run(diamond(k8s.root, metadata=k8s.metadata))
    assert result.ok
    assert k8s.standin.count("create", "jobs", code=409) == 1
    nodes = sorted(j["metadata"]["labels"][LABEL_NODE] for j in k8s.standin.objects("jobs", NS))
    assert nodes == ["a", "b", "d", "j"]


@pytest.mark.parametrize("abrupt", [True, False])
def test_dropped_watches_resume(k8s: K8sEnv, abrupt: bool) -> None:
    pipeline = diamond(k8s.root, metadata=k8s.metadata, seconds=1.0)
    dropped = []

    def drop() -> None:
        k8s.standin.wait_for(lambda: k8s.standin.open_watches("pods") and k8s.standin.objects("pods", NS), 10)
        time.sleep(0.3)
        dropped.append(k8s.standin.drop_watches(abrupt=abrupt))

    thread = threading.Thread(target=drop)
    thread.start()
    result = k8s.runner().run(pipeline)
    thread.join()
    assert result.ok and dropped == [2]
    assert k8s.standin.count("watch", "jobs") >= 2 and k8s.standin.count("watch", "pods") >= 2


def test_compacted_history_relists(k8s: K8sEnv) -> None:
    pipeline = diamond(k8s.root, metadata=k8s.metadata, seconds=1.0)

    def compact() -> None:
        k8s.standin.wait_for(lambda: k8s.standin.open_watches("pods") and k8s.standin.objects("pods", NS), 10)
        k8s.standin.drop_watches(abrupt=True)
        # While the runner backs off before watching again: one more write, then compaction, so the
        # resourceVersion it resumes from is older than anything kept.
        k8s.standin.store.create("configmaps", {"apiVersion": "v1", "kind": "ConfigMap",
                                               "metadata": {"name": "unrelated", "namespace": NS}})
        k8s.standin.compact()

    thread = threading.Thread(target=compact)
    thread.start()
    result = k8s.runner().run(pipeline)
    thread.join()
    assert result.ok
    assert k8s.standin.count("list", "pods") >= 2  # the 410 made it list again


def test_runner_role_is_enough_and_a_smaller_one_is_reported(tmp_path: Path) -> None:
    env = K8sEnv(tmp_path)
    with env.standin:
        token = env.standin.service_account_token(NS, "headwater-runner")
        env.standin.bind_role(NS, "headwater-runner", RUNNER_RULES)
        config = env.config.with_options(kubeconfig=env.standin.kubeconfig(namespace=NS, token=token))
        from headwater.pipelines.kubernetes import KubernetesRunner

        result = KubernetesRunner(config, metadata=env.metadata, quiet=True).run(
            diamond(env.root, metadata=env.metadata))
        assert result.ok
        runner_user = "system:serviceaccount:headwater:headwater-runner"
        assert {r.user for r in env.standin.requests if r.resource} == {runner_user}
        assert not [r for r in env.standin.requests if r.code == 403]

        no_configmaps = [r for r in RUNNER_RULES if "configmaps" not in r["resources"]]
        env.standin.bind_role(NS, "headwater-runner", no_configmaps)
        result = KubernetesRunner(config, metadata=env.metadata, quiet=True).run(
            diamond(env.root, name="other", metadata=env.metadata))
        assert re.fullmatch(
            r"node 'a': creating Job other-a-\d+-\w{5} failed: 403 Forbidden: configmaps is forbidden: User "
            r"\"system:serviceaccount:headwater:headwater-runner\" cannot create resource \"configmaps\" in API "
            r"group \"\" in the namespace \"headwater\" \(the service account lacks a permission; apply deploy/ "
            r"\(Role 'headwater-runner'\) in namespace 'headwater'\)", result.nodes["a"].error)
