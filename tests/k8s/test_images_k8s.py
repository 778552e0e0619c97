"""Per-node images and placement through the Kubernetes stand-in: Jobs in each node's image, a GPU node in
its pool, and an image that cannot serve the orchestrator (another headwater release, a missing module)
failing its node with a message naming the image."""

from __future__ import annotations

from pathlib import Path

import hw_test_components as c
import pytest
from golden import REPO_PLACEHOLDER, ROOT_PLACEHOLDER, compare, normalise, validate
from headwater.components._contract import headwater_version
from headwater.components.placement import Placement, Toleration
from headwater.pipelines import Pipeline
from headwater.pipelines.kubernetes import KubernetesRunner
from headwater.pipelines.kubernetes.manifests import LABEL_NODE
from k8s_support import REPO, K8sEnv, runtime_image_env
from standin import Image
from standin.cluster import Node

SUPPORT = REPO / "tests" / "support"
CPU_IMAGE = "registry.example/hw-cpu:0.1"
GPU_IMAGE = "registry.example/hw-gpu:0.1"
OLD_IMAGE = "registry.example/hw-old:0.0"
POOL_LABEL = "cloud.google.com/gke-nodepool"
RUN_ID = "20260101T000000-images"


def image_with(*paths: Path) -> Image:
    """The runtime image with more directories first on its PYTHONPATH (what else that image installs)."""
    env = runtime_image_env()
    env["PYTHONPATH"] = ":".join([*map(str, paths), env["PYTHONPATH"]])
    return Image(env=env)


@pytest.fixture
def cluster(tmp_path: Path):
    """Two CPU nodes and a GPU node in pool ``gpu-pool``, tainted as GPU pools are; three images."""
    nodes = [Node("cpu-1", labels={POOL_LABEL: "default-pool"}), Node("cpu-2", labels={POOL_LABEL: "default-pool"}),
             Node("gpu-1", gpu=1, labels={POOL_LABEL: "gpu-pool"},
                  taints=({"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"},))]
    env = K8sEnv(tmp_path, nodes=nodes)
    env.standin.cluster.images.update({
        CPU_IMAGE: image_with(), GPU_IMAGE: image_with(SUPPORT / "gpu_image"),
        OLD_IMAGE: image_with(SUPPORT / "old_image"),
    })
    env.standin.start()
    try:
        yield env
    finally:
        env.standin.stop()


def two_images(root: Path, metadata: str) -> Pipeline:
    """a, b on the default (CPU) image; j on the GPU image, one GPU, in the GPU pool."""
    a = c.produce(value="a").with_id("a")
    b = c.produce(value="b").with_id("b").with_placement(Placement(node_selector={POOL_LABEL: "default-pool"}))
    j = (c.join(a=a.outputs.data, b=b.outputs.data).with_id("j").with_image(GPU_IMAGE)
         .with_resources(cpu="1", memory="1Gi", gpu=1, gpu_toleration=True)
         .with_placement(Placement(node_pool="gpu-pool", service_account="trainer",
                                   tolerations=(Toleration("dedicated", "Equal", "ml", "NoSchedule"),))))
    return Pipeline("k8s-images", str(root), [a, b, j], metadata=metadata)


def created(k8s: K8sEnv, resource: str) -> dict[str, dict]:
    return {r.body["metadata"]["labels"][LABEL_NODE]: r.body for r in k8s.standin.requests
            if r.verb == "create" and r.code == 201 and r.resource == resource}


def test_each_node_runs_in_its_image_where_it_must(cluster: K8sEnv) -> None:
    runner = KubernetesRunner(cluster.config.with_options(image=CPU_IMAGE), metadata=cluster.metadata, quiet=True)
    result = runner.run(two_images(cluster.root, cluster.metadata), run_id=RUN_ID)
    assert result.ok, {n: r.error for n, r in result.nodes.items()}
    jobs = created(cluster, "jobs")
    images = {n: job["spec"]["template"]["spec"]["containers"][0]["image"] for n, job in jobs.items()}
    assert images == {"a": CPU_IMAGE, "b": CPU_IMAGE, "j": GPU_IMAGE}
    pods = {p["metadata"]["labels"][LABEL_NODE]: p for p in cluster.standin.cluster.store.list("pods", "headwater")[0]}
    assert pods["j"]["spec"]["nodeName"] == "gpu-1"  # the only node in the pool, and its taint is tolerated
    assert pods["a"]["spec"]["nodeName"] != "gpu-1" and pods["b"]["spec"]["nodeName"] != "gpu-1"
    gpu = jobs["j"]["spec"]["template"]["spec"]
    assert gpu["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in gpu["tolerations"]
    assert gpu["serviceAccountName"] == "trainer" and "serviceAccountName" not in jobs["a"]["spec"]["template"]["spec"]
    for body in [*jobs.values(), *created(cluster, "configmaps").values()]:
        validate(body)
    stems = {f"{n}-job": body for n, body in jobs.items()}
    replacements = {str(cluster.root): ROOT_PLACEHOLDER, str(REPO): REPO_PLACEHOLDER}
    compare("two-images", {stem: normalise(body, replacements) for stem, body in stems.items()})


def test_gpu_node_without_its_toleration_stays_pending_and_is_reported(cluster: K8sEnv) -> None:
    """Faithfulness check of the placement: the same GPU node without the toleration cannot be scheduled."""
    j = c.produce(value="j").with_id("j").with_resources(gpu=1).with_placement(Placement(node_pool="gpu-pool"))
    pipeline = Pipeline("k8s-untolerated", str(cluster.root), [j], metadata=cluster.metadata)
    runner = KubernetesRunner(cluster.config.with_options(image=CPU_IMAGE, unschedulable_timeout=1.0),
                              metadata=cluster.metadata, quiet=True)
    result = runner.run(pipeline)
    assert not result.ok
    assert "nvidia.com/gpu" in (result.nodes["j"].error or "")


def test_image_with_another_headwater_release_fails_the_node_clearly(cluster: K8sEnv) -> None:
    a = c.produce(value="a").with_id("a").with_image(OLD_IMAGE)
    pipeline = Pipeline("k8s-old-image", str(cluster.root), [a], metadata=cluster.metadata)
    runner = KubernetesRunner(cluster.config.with_options(image=CPU_IMAGE), metadata=cluster.metadata, quiet=True)
    result = runner.run(pipeline)
    node = result.nodes["a"]
    assert not result.ok and node.error_type == "ExecutorContractError", node.error
    assert (f"image {OLD_IMAGE} has headwater 0.0.1, the orchestrator that sent this node runs headwater "
            f"{headwater_version()}") in (node.error or "")
    assert "Traceback" not in (node.error or "")


def test_module_missing_from_the_image_is_named(cluster: K8sEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    """``fit``'s module imports a library only the GPU image has: run on the CPU image, the node says so."""
    monkeypatch.syspath_prepend(str(SUPPORT / "gpu_image"))  # the orchestrator has it (it loads the pipeline)
    import hw_image_components as ic

    ok = ic.fit().with_id("ok")  # the component's own image: the GPU one
    cpu = ic.fit().with_id("cpu").with_image(CPU_IMAGE)
    pipeline = Pipeline("k8s-missing-module", str(cluster.root), [ok, cpu], metadata=cluster.metadata)
    runner = KubernetesRunner(cluster.config.with_options(image=CPU_IMAGE), metadata=cluster.metadata, quiet=True)
    result = runner.run(pipeline)
    assert result.nodes["ok"].state == "done", result.nodes["ok"].error
    error = result.nodes["cpu"].error or ""
    assert result.nodes["cpu"].error_type == "ExecutorContractError", error
    assert (f"its module 'hw_image_components' imports 'hw_gpu_stack', which image {CPU_IMAGE} does not have"
            in error)


def test_runner_refuses_a_default_image_that_cannot_be_valid(cluster: K8sEnv) -> None:
    from headwater.components.errors import RunnerError
    from headwater.pipelines.kubernetes import KubernetesBackend

    with pytest.raises(RunnerError, match=r"KubernetesConfig.image \(--image\): image 'Registry/Team:1' is not a "
                                          r"valid reference"):
        KubernetesBackend(cluster.config.with_options(image="Registry/Team:1"))
