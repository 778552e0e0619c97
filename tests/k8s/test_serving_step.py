"""``RolloutServing``, the pipeline step after Push: it rolls out only what was pushed, a rollout that does not
get ready fails the node with the verdict (nothing left serving it), and the run's outcome says what is served."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import hw_test_components as c
import pytest
import savedmodels
from headwater.pipelines import LocalRunner, Pipeline
from headwater.pipelines.kubernetes import RolloutServing
from headwater.pipelines.runner import RunResult
from k8s_support import SERVING_IMAGE, images
from standin import ApiStandIn

NS = "headwater"


class Cluster:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.volume = tmp_path / "volume"
        self.destination = self.volume / "serving" / "penguin"
        self.destination.mkdir(parents=True)
        self.standin = ApiStandIn(tmp_path / "cluster", namespaces=("default", NS), images=images(),
                                  claims={"models": str(self.volume)})
        self.standin.start()

    def run(self, version: int, *, pushed: int = 1, reason: str = "", **step: object) -> RunResult:
        push = c.pushed_record(destination=str(self.destination), version=version, pushed=pushed,
                               reason=reason).with_id("Push")
        rollout = RolloutServing(pushed_model=push.outputs.pushed_model, model_name="penguin", namespace=NS,
                                 claim="models", claim_mount=str(self.volume), replicas=2, canary_percent=50,
                                 kubeconfig=self.standin.kubeconfig(namespace=NS), **step)
        pipeline = Pipeline(name="serve", root=str(self.tmp_path / "root"), nodes=[push, rollout])
        return LocalRunner(quiet=True).run(pipeline)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    env = Cluster(tmp_path)
    try:
        yield env
    finally:
        env.standin.stop()


def test_a_push_that_did_not_happen_rolls_nothing_out(cluster: Cluster) -> None:
    result = cluster.run(1, pushed=0, reason="model not blessed (blessed=0)")
    assert result.ok, result
    node = result.nodes["RolloutServing"]
    assert node.state == "skipped"
    [record] = result.outputs("RolloutServing", "rollout")
    assert record.custom_properties["rollout_message"] == (
        "not rolled out: nothing was pushed (model not blessed (blessed=0)): the serving tracks are left as they are")
    assert result.outcome is not None
    assert ("  node 'RolloutServing' skipped: nothing was pushed (model not blessed (blessed=0)): the serving tracks "
            "are left as they are") in result.outcome.lines()
    assert not [r for r in cluster.standin.requests if r.verb == "create"]


def test_a_rollout_that_never_gets_ready_fails_the_node_and_leaves_nothing(cluster: Cluster) -> None:
    (cluster.destination / "1").mkdir()
    (cluster.destination / "1" / "saved_model.pb").write_bytes(b"")  # never loaded: the image is never pulled
    result = cluster.run(1, image="tensorflow/serving:0.0.0-missing", ready_timeout=3.0)
    assert not result.ok
    node = result.nodes["RolloutServing"]
    assert node.state == "failed"
    assert node.error is not None and node.error.startswith(
        "node 'RolloutServing': rollout of model 'penguin' version 1 failed: not ready within 3s: pod penguin-stable-")
    assert "its image cannot be pulled" in node.error
    assert not result.outputs("RolloutServing", "rollout")
    assert result.outcome is not None
    assert any(line.startswith("  node 'RolloutServing' failed: node 'RolloutServing': rollout of model 'penguin' "
                               "version 1 failed") for line in result.outcome.lines())
    cluster.standin.wait_for(lambda: not cluster.standin.objects("pods", NS), timeout=20)
    assert not cluster.standin.objects("deployments", NS)


def test_the_step_takes_only_a_pushed_model(cluster: Cluster) -> None:
    push = c.produce().with_id("other")  # an Examples, not a PushedModel: the pipeline refuses the wiring
    with pytest.raises(Exception, match="pushed_model"):
        Pipeline(name="bad", root=str(cluster.tmp_path / "bad"), nodes=[
            push, RolloutServing(pushed_model=push.outputs.data, model_name="penguin")])


@pytest.mark.slow
def test_each_push_is_rolled_out_stable_first_then_as_a_canary(cluster: Cluster, tmp_path: Path) -> None:
    shutil.copytree(savedmodels.multi_input(tmp_path / "v1", scale=1.0), cluster.destination / "1")
    first = cluster.run(1, image=SERVING_IMAGE, ready_timeout=120.0)
    assert first.ok, first
    [record] = first.outputs("RolloutServing", "rollout")
    assert record.custom_properties["stable_version"] == 1 and "canary_version" not in record.custom_properties
    assert first.outcome is not None
    assert any(line.startswith("  RolloutServing: model 'penguin' version 1 is served by 2 pod(s) of Deployment "
                               "penguin-stable") for line in first.outcome.lines())
    stable = cluster.standin.store.get("deployments", NS, "penguin-stable")
    assert stable["metadata"]["annotations"]["headwater.dev/artifact-id"] == str(
        first.outputs("Push", "pushed_model")[0].id)

    shutil.copytree(savedmodels.multi_input(tmp_path / "v2", scale=2.0), cluster.destination / "2")
    second = cluster.run(2, image=SERVING_IMAGE, ready_timeout=120.0)
    assert second.ok, second
    [record] = second.outputs("RolloutServing", "rollout")
    assert (record.custom_properties["stable_version"], record.custom_properties["canary_version"]) == (1, 2)
    assert second.outcome is not None
    assert any("version 2 on 1 pod(s) beside version 1 on 1: ~50% of requests go to the canary" in line
               for line in second.outcome.lines())
