"""TF Serving on Kubernetes with a canary, through the API stand-in: rollout, share, promote, rollback, and a
canary that never gets ready (rolled back automatically, stable untouched). Requests go through the API server's
proxy to the Service and answer with real predictions (the kubelet runs ``headwater serve`` for TF Serving)."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import savedmodels
from golden import validate
from headwater.pipelines.kubernetes.manifests import KubernetesConfig
from headwater.pipelines.kubernetes.rollout import Serving, destination_versions
from headwater.pipelines.kubernetes.serving import (
    LABEL_TRACK,
    RolloutError,
    ServingSpec,
    config_map,
    deployment,
    model_config,
    service,
    split,
)
from k8s_support import SERVING_IMAGE, images, proxy_request
from standin import ApiStandIn

NS = "headwater"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Real SavedModels: version 1 answers total = x0 + x1, version 2 twice that; and a broken one."""
    root = tmp_path_factory.mktemp("serving-models")
    return {"v1": savedmodels.multi_input(root / "v1", scale=1.0),
            "v2": savedmodels.multi_input(root / "v2", scale=2.0),
            "broken": savedmodels.corrupt(root / "broken")}


class Env:
    def __init__(self, tmp_path: Path) -> None:
        self.volume = tmp_path / "volume"
        self.destination = self.volume / "serving" / "penguin"
        self.destination.mkdir(parents=True)
        self.standin = ApiStandIn(tmp_path / "cluster", namespaces=("default", NS), images=images(),
                                  claims={"models": str(self.volume)})
        self.standin.start()
        self.config = KubernetesConfig(namespace=NS, kubeconfig=self.standin.kubeconfig(namespace=NS),
                                       api_backoff=0.05)

    def spec(self, **changes: Any) -> ServingSpec:
        options: dict[str, Any] = {"model_name": "penguin", "destination": str(self.destination),
                                   "claim": "models", "claim_mount": str(self.volume), "replicas": 2,
                                   "canary_percent": 50, "ready_timeout": 90.0, "image": SERVING_IMAGE,
                                   "probe_period_seconds": 1, **changes}
        return ServingSpec(**options)

    def serving(self, **changes: Any) -> Serving:
        return Serving(self.spec(**changes), self.config, poll_seconds=0.1)

    def push(self, version: int, model: Path) -> None:
        shutil.copytree(model, self.destination / str(version))

    def predict(self, serving: Serving, x: list[float]) -> tuple[float, str]:
        """One request through the Service (the API server's proxy): (total, the pod that answered)."""
        path = f"/api/v1/namespaces/{NS}/services/penguin:http/proxy/v1/models/penguin:predict"
        status, data, headers = proxy_request(serving._client, "POST", path, {"instances": [{"x": x, "tag": "a"}]})
        assert status == 200, data
        return json.loads(data)["predictions"][0]["total"], headers["X-Standin-Pod"]

    def sent(self) -> list[dict[str, Any]]:
        """Every object body the product created or replaced."""
        return [r.body for r in self.standin.requests if r.verb in ("create", "update") and r.code in (200, 201)
                and r.resource in ("deployments", "services", "configmaps")]

    def tracks(self) -> dict[str, int]:
        pods = self.standin.objects("pods", NS, "headwater.dev/serving=penguin")
        return dict(Counter(p["metadata"]["labels"][LABEL_TRACK] for p in pods
                            if not p["metadata"].get("deletionTimestamp")))


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = Env(tmp_path)
    try:
        yield e
    finally:
        e.standin.stop()


def test_split_says_the_share_that_results() -> None:
    assert split(4, 25) == (3, 1, 25.0)
    assert split(4, 10) == (3, 1, 25.0)  # one pod is the least a canary gets
    assert split(10, 10) == (9, 1, 10.0)
    assert split(3, 90) == (1, 2, pytest.approx(66.67, 0.01))  # one stable pod stays
    assert split(5, 0) == (5, 0, 0.0)
    with pytest.raises(RolloutError, match="at least 2 replicas"):
        split(1, 50)


def test_manifests_are_valid_kubernetes_and_pin_the_version(tmp_path: Path) -> None:
    config = KubernetesConfig(namespace="ml", env={"AWS_REGION": "eu-west-1"}, env_from_secrets=("s3-credentials",))
    for spec in (ServingSpec("penguin", "/mnt/models/serving/penguin", claim="models"),
                 ServingSpec("penguin", "s3://models/serving/penguin")):
        spec.check()
        for manifest in (config_map(spec, 7, config), service(spec, config),
                         deployment(spec, "canary", 7, 1, config, artifact_id=42, previous=6)):
            validate(manifest)
    text = model_config(ServingSpec("penguin", "s3://models/serving/penguin/"), 7)
    assert 'base_path: "s3://models/serving/penguin"' in text
    assert "model_version_policy { specific { versions: 7 } }" in text
    bucket = deployment(ServingSpec("penguin", "s3://models/p"), "stable", 7, 3, config)
    pod = bucket["spec"]["template"]["spec"]
    assert [v["name"] for v in pod["volumes"]] == ["model-config"]  # a bucket needs no volume
    assert pod["containers"][0]["envFrom"] == [{"secretRef": {"name": "s3-credentials"}}]
    assert pod["containers"][0]["readinessProbe"]["httpGet"]["path"] == "/v1/models/penguin/versions/7/metadata"
    assert pod["securityContext"]["runAsNonRoot"] and pod["containers"][0]["securityContext"] == {
        "allowPrivilegeEscalation": False, "runAsNonRoot": True, "capabilities": {"drop": ["ALL"]}}


@pytest.mark.parametrize(("changes", "message"), [
    ({"destination": "relative/dir"}, "give the folder's absolute path"),
    ({"claim": None}, "name the PersistentVolumeClaim that holds it"),
    ({"destination": "s3://b/m"}, "is a bucket: it needs no claim"),
    ({"model_name": "Penguin_Model"}, "cannot name Kubernetes objects"),
    ({"canary_percent": 120}, "canary_percent=120: give a share from 0 to 100"),
    ({"destination": ""}, "give its push destination"),
])
def test_bad_specs_name_the_parameter_and_the_fix(changes: dict[str, Any], message: str) -> None:
    spec = ServingSpec(**{"model_name": "penguin", "destination": "/mnt/m", "claim": "models", **changes})
    with pytest.raises(RolloutError, match=message):
        spec.check()


def test_a_destination_with_no_versions_is_a_clear_error(env: Env) -> None:
    (env.destination / ".push-tmp-1").mkdir()  # Push's unfinished folder is no version
    with env.serving() as serving, pytest.raises(RolloutError) as caught:
        serving.rollout()
    assert str(caught.value) == (
        f"push destination {env.destination} holds no version (no <N>/saved_model.pb under it): nothing to "
        "serve; run the pipeline's Push first, or give the destination Push writes to")
    assert not env.standin.objects("deployments", NS)
    env.push(1, env.destination / ".push-tmp-1")  # an empty folder: still no SavedModel
    assert destination_versions(str(env.destination)) == []
    with env.serving() as serving, pytest.raises(RolloutError, match=r"has no version 4 \(it holds"):
        (env.destination / "2").mkdir()
        (env.destination / "2" / "saved_model.pb").write_bytes(b"")
        serving.rollout(4)


@pytest.mark.slow
def test_a_first_rollout_that_never_gets_ready_leaves_nothing(env: Env, built: dict[str, Path]) -> None:
    env.push(1, built["broken"])
    with env.serving(ready_timeout=40.0) as serving:
        outcome = serving.rollout()
    assert not outcome.ok
    assert outcome.message.startswith("rollout of model 'penguin' version 1 failed: not ready within 40s: pod "
                                      "penguin-stable-")
    # HTTP 404 once the server answers, "connection refused" while it is still starting (on a loaded machine)
    assert "running, not ready: Readiness probe failed: " in outcome.message
    assert "nothing serves the model" in outcome.message
    env.standin.wait_for(lambda: not env.standin.objects("pods", NS), timeout=20)
    assert not env.standin.objects("deployments", NS) and not env.standin.objects("configmaps", NS)


@pytest.mark.slow
def test_canary_rollout_share_promote_rollback_with_real_predictions(env: Env, built: dict[str, Path]) -> None:
    env.push(1, built["v1"])
    with env.serving() as serving:
        first = serving.rollout(artifact_id=11)
        assert first.ok, first.message
        assert first.message.startswith("model 'penguin' version 1 is served by 2 pod(s) of Deployment "
                                        "penguin-stable behind Service penguin")
        assert {env.predict(serving, [1.0, 2.0])[0] for _ in range(4)} == {3.0}

        env.push(2, built["v2"])
        canary = serving.rollout()
        assert canary.ok, canary.message
        assert (canary.stable_version, canary.canary_version) == (1, 2)
        assert "version 2 on 1 pod(s) beside version 1 on 1: ~50% of requests go to the canary" in canary.message
        env.standin.wait_for(lambda: env.tracks() == {"stable": 1, "canary": 1}, timeout=30)
        answers = Counter(env.predict(serving, [1.0, 2.0])[0] for _ in range(8))
        assert answers == {3.0: 4, 6.0: 4}  # the Service spreads requests over both tracks' ready pods
        status = serving.status()
        assert "stable: version 1 on 1/1 ready pods (~50% of requests)" in status.message
        assert "canary: version 2 on 1/1 ready pods (~50% of requests)" in status.message

    with Serving(ServingSpec("penguin"), env.config, poll_seconds=0.1) as serving:  # promote needs only the name
        promoted = serving.promote()
        assert promoted.ok, promoted.message
        assert promoted.message.startswith("promoted: model 'penguin' version 2 is now stable on 2 pod(s) (was "
                                           "version 1); the canary is removed.")
        env.standin.wait_for(lambda: env.tracks() == {"stable": 2}, timeout=30)
        assert {env.predict(serving, [1.0, 2.0])[0] for _ in range(4)} == {6.0}
        stable = env.standin.store.get("deployments", NS, "penguin-stable")
        assert stable["metadata"]["annotations"]["headwater.dev/previous-version"] == "1"
        revisions = sorted(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
                           for rs in env.standin.objects("replicasets", NS, "headwater.dev/track=stable"))
        assert revisions == ["1", "2"]  # a rolling update: a new ReplicaSet, the old one kept at 0

        back = serving.rollback()  # no canary: the stable track goes back to the version before
        assert back.ok, back.message
        assert back.message.startswith("rolled back: model 'penguin' serves version 1 again on 2 pod(s) (was "
                                       "version 2).")
        env.standin.wait_for(lambda: env.tracks() == {"stable": 2}, timeout=30)
        assert {env.predict(serving, [1.0, 2.0])[0] for _ in range(4)} == {3.0}
    for body in env.sent():
        validate(body)


@pytest.mark.slow
def test_a_canary_that_never_gets_ready_is_rolled_back_and_stable_is_untouched(env: Env,
                                                                               built: dict[str, Path]) -> None:
    env.push(1, built["v1"])
    with env.serving() as serving:
        assert serving.rollout().ok
        stable_before = env.standin.store.get("deployments", NS, "penguin-stable")
        env.push(2, built["broken"])
    with env.serving(ready_timeout=40.0) as serving:
        outcome = serving.rollout()
        assert not outcome.ok
        assert outcome.message.startswith("canary of model 'penguin' version 2 did not become ready within 40s: pod "
                                          "penguin-canary-")
        assert "running, not ready: Readiness probe failed: " in outcome.message
        assert ("Rolled back automatically: the canary is removed, the stable track still serves version 1 on 2 "
                "pod(s); nothing was promoted.") in outcome.message
        assert env.standin.store.get("deployments", NS, "penguin-canary") is None
        stable = env.standin.store.get("deployments", NS, "penguin-stable")
        assert stable["spec"] == stable_before["spec"]  # replicas back to 2, same template
        env.standin.wait_for(lambda: env.tracks() == {"stable": 2}, timeout=30)
        assert {env.predict(serving, [1.0, 2.0])[0] for _ in range(4)} == {3.0}
        assert [c["metadata"]["name"] for c in env.standin.objects("configmaps", NS)] == ["penguin-v1"]
        with pytest.raises(RolloutError, match="has no canary to promote"):
            serving.promote()


def test_a_destination_this_machine_cannot_see_needs_a_version(env: Env) -> None:
    elsewhere = env.volume / "on-the-claim-only"
    with env.serving(destination=str(elsewhere)) as serving, pytest.raises(RolloutError) as caught:
        serving.rollout()
    assert str(caught.value) == (f"push destination {elsewhere} is not a folder on this machine (it is on claim "
                                 "models, in the cluster): give the version to serve with --version N")
    assert not env.standin.objects("deployments", NS)


def test_a_first_rollout_whose_image_cannot_be_pulled_is_removed_with_the_reason(env: Env) -> None:
    (env.destination / "1").mkdir()
    (env.destination / "1" / "saved_model.pb").write_bytes(b"")  # never loaded: the pods never start
    with env.serving(image="tensorflow/serving:0.0.0-missing", ready_timeout=3.0) as serving:
        outcome = serving.rollout()
    assert not outcome.ok
    assert outcome.message.startswith(
        "rollout of model 'penguin' version 1 failed: not ready within 3s: pod penguin-stable-")
    assert (": its image cannot be pulled (ErrImagePull): Failed to pull image \"tensorflow/serving:0.0.0-missing\""
            in outcome.message or ": its image cannot be pulled (ImagePullBackOff): Back-off pulling image"
            in outcome.message)
    assert outcome.message.endswith("The Deployment was removed; nothing serves the model. Look at the pod's log "
                                    "and events (kubectl -n headwater describe pods -l headwater.dev/serving=penguin).")
    env.standin.wait_for(lambda: not env.standin.objects("pods", NS), timeout=20)
    assert not env.standin.objects("deployments", NS) and not env.standin.objects("replicasets", NS)
    for body in env.sent():
        validate(body)


def test_the_commands_say_how_they_came_out(env: Env, capsys: pytest.CaptureFixture[str]) -> None:
    from headwater.pipelines.cli import main

    base = ["--namespace", NS, "--kubeconfig", env.config.kubeconfig or ""]
    code = main(["k8s", "rollout", "penguin", "--destination", str(env.destination), "--claim", "models", *base])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"headwater: error: k8s rollout: push destination {env.destination} holds no version")
    assert main(["k8s", "status", "penguin", *base]) == 1
    assert capsys.readouterr().err == (
        "headwater k8s status: model 'penguin' is not served in namespace headwater (no Deployment penguin-stable); "
        "start with headwater k8s rollout\n")
    assert main(["k8s", "promote", "penguin", *base]) == 2
    assert "has no canary to promote in namespace headwater" in capsys.readouterr().err
    assert main(["k8s", "rollback", "penguin", *base]) == 2
    assert capsys.readouterr().err == ("headwater: error: k8s rollback: model 'penguin' is not served in namespace "
                                       "headwater: nothing to roll back\n")
