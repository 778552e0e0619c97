"""Pod diagnosis as pure functions: realistic Pod and Job objects (as the API server returns them, as JSON)
in, messages out. No stand-in and no client: these run in milliseconds."""

from __future__ import annotations

from typing import Any

import pytest
from headwater.components.api import Resources
from headwater.pipelines.kubernetes._diagnose import (
    Failure,
    Patience,
    asks,
    container_failure,
    container_state,
    job_conditions,
    job_failure,
    limit,
    missing_result,
    pod_issues,
    settled,
    stuck_failure,
)

POD = "k8s-demo-a-7-1f2e3-x9v4k"
IMAGE = "registry.example/headwater:0.1.0"
PATIENCE = Patience(unschedulable_timeout=600, image_pull_timeout=300, config_error_timeout=120, pending_timeout=1800)


def pod(phase: str, *, name: str = POD, conditions: list[dict[str, Any]] | None = None,
        state: dict[str, Any] | None = None, reason: str | None = None, message: str | None = None,
        sidecar: bool = False) -> dict[str, Any]:
    """A Pod of an executor Job as ``GET /api/v1/namespaces/headwater/pods/NAME`` returns it (trimmed to the
    fields the kubelet and scheduler fill in)."""
    status: dict[str, Any] = {"phase": phase, "qosClass": "Burstable", "startTime": "2026-01-01T00:00:00Z"}
    if conditions is not None:
        status["conditions"] = conditions
    if state is not None:
        statuses = [{"name": "executor", "state": state, "ready": False, "restartCount": 0, "image": IMAGE,
                     "imageID": "", "started": "running" in state}]
        if sidecar:  # a mesh proxy injected first: the executor is not the first container
            statuses.insert(0, {"name": "istio-proxy", "state": {"running": {"startedAt": "2026-01-01T00:00:01Z"}},
                                "ready": True, "restartCount": 0, "image": "istio/proxyv2", "imageID": ""})
        status["containerStatuses"] = statuses
    if reason:
        status["reason"] = reason
    if message:
        status["message"] = message
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": "headwater", "labels": {"job-name": "k8s-demo-a-7-1f2e3"},
                     "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"restartPolicy": "Never", "containers": [{"name": "executor", "image": IMAGE}]},
        "status": status,
    }


def scheduled(ok: bool, message: str = "") -> dict[str, Any]:
    condition = {"type": "PodScheduled", "status": "True" if ok else "False",
                 "lastTransitionTime": "2026-01-01T00:00:00Z"}
    if not ok:
        condition.update(reason="Unschedulable", message=message)
    return condition


def waiting(reason: str, message: str) -> dict[str, Any]:
    return {"waiting": {"reason": reason, "message": message}}


def terminated(exit_code: int, reason: str, message: str | None = None) -> dict[str, Any]:
    state = {"exitCode": exit_code, "reason": reason, "startedAt": "2026-01-01T00:00:02Z",
             "finishedAt": "2026-01-01T00:00:09Z", "containerID": "containerd://4f1c"}
    if message is not None:
        state["message"] = message
    return {"terminated": state}


def job(*conditions: dict[str, Any], deadline: int | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"backoffLimit": 0, "completions": 1, "parallelism": 1}
    if deadline is not None:
        spec["activeDeadlineSeconds"] = deadline
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "k8s-demo-a-7-1f2e3"}, "spec": spec,
            "status": {"conditions": list(conditions), "failed": 1, "startTime": "2026-01-01T00:00:00Z"}}


def condition(type_: str, reason: str = "", message: str = "", status: str = "True") -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason, "message": message,
            "lastProbeTime": "2026-01-01T00:01:00Z", "lastTransitionTime": "2026-01-01T00:01:00Z"}


INSUFFICIENT_CPU = ("0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are available: "
                    "3 No preemption victims found for incoming pod.")
EVICTED = ("The node was low on resource: memory. Threshold quantity: 100Mi, available: 52Mi. Container "
           "executor was using 1843Mi, request is 0, has larger consumption of memory. ")


# ---------------------------------------------------------------------------------------------- issues
def test_unschedulable_pod_is_reported_with_what_the_node_asks() -> None:
    p = pod("Pending", conditions=[scheduled(False, INSUFFICIENT_CPU)])
    [issue] = pod_issues(p, attempt=1, retries=0, image=IMAGE, resources=Resources(cpu="64", memory="1Gi"))
    assert issue.key == f"unschedulable:{POD}" and issue.kind == "unschedulable"
    assert issue.note == f"Pending: cannot be scheduled: {INSUFFICIENT_CPU} (the node requests cpu=64, memory=1Gi)"


@pytest.mark.parametrize("reason", ["ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"])
def test_image_pull_failures_are_reported(reason: str) -> None:
    message = f'Back-off pulling image "{IMAGE}"'
    p = pod("Pending", conditions=[scheduled(True)], state=waiting(reason, message))
    [issue] = pod_issues(p, attempt=1, retries=0, image=IMAGE, resources=Resources())
    assert issue.key == f"pull:{POD}"
    assert issue.note == f"Pending: image {IMAGE!r} cannot be pulled ({reason}): {message}"


def test_missing_secret_is_a_container_config_issue() -> None:
    p = pod("Pending", conditions=[scheduled(True)],
            state=waiting("CreateContainerConfigError", 'secret "cloud-credentials" not found'))
    [issue] = pod_issues(p, attempt=1, retries=0, image=IMAGE, resources=Resources())
    assert (issue.kind, issue.note) == (
        "config", 'Pending: container cannot be created (CreateContainerConfigError): secret "cloud-credentials" '
                  "not found")


def test_a_pod_starting_normally_has_no_issue() -> None:
    creating = pod("Pending", conditions=[scheduled(True)], state=waiting("ContainerCreating", ""))
    running = pod("Running", conditions=[scheduled(True)], state={"running": {"startedAt": "2026-01-01T00:00:02Z"}})
    for p in (pod("Pending"), creating, running):
        assert pod_issues(p, attempt=1, retries=2, image=IMAGE, resources=Resources()) == []


def test_oom_killed_attempt_names_the_limit_and_the_retries_left() -> None:
    p = pod("Failed", conditions=[scheduled(True)], state=terminated(137, "OOMKilled"))
    [issue] = pod_issues(p, attempt=1, retries=2, image=IMAGE, resources=Resources(memory="1Gi", memory_limit="2Gi"))
    assert issue.key == f"failed:{POD}"
    assert issue.note == f"attempt 1 (pod {POD}) OOMKilled (memory limit 2Gi); retrying (2 retries left)"
    [last] = pod_issues(p, attempt=3, retries=2, image=IMAGE, resources=Resources())
    assert last.note == f"attempt 3 (pod {POD}) OOMKilled (memory limit not set)"  # no retry left: no tail


def test_evicted_and_exited_attempts() -> None:
    evicted = pod("Failed", reason="Evicted", message=EVICTED)
    [issue] = pod_issues(evicted, attempt=2, retries=2, image=IMAGE, resources=Resources())
    assert issue.note == f"attempt 2 (pod {POD}) evicted: {EVICTED.strip()}; retrying (1 retry left)"
    crashed = pod("Failed", conditions=[scheduled(True)], state=terminated(1, "Error", "Traceback ..."))
    [issue] = pod_issues(crashed, attempt=1, retries=0, image=IMAGE, resources=Resources())
    assert issue.note == f"attempt 1 (pod {POD}) failed (exit code 1, Error)"


def test_the_executor_container_is_found_behind_a_sidecar() -> None:
    p = pod("Pending", state=waiting("ImagePullBackOff", "x"), sidecar=True)
    assert container_state(p) == {"waiting": {"reason": "ImagePullBackOff", "message": "x"}}
    assert [i.kind for i in pod_issues(p, attempt=1, retries=0, image=IMAGE, resources=Resources())] == ["pull"]
    assert container_state(pod("Pending")) == {}


# ---------------------------------------------------------------------------------------------- stuck
def stuck(p: dict[str, Any], since: dict[str, float], now: float, **kwargs: Any) -> Failure | None:
    options = {"patience": PATIENCE, "node_id": "a", "image": IMAGE, "resources": Resources(),
               "namespace": "headwater", **kwargs}
    return stuck_failure(p, since, now, **options)


def test_unschedulable_fails_after_its_patience_and_names_the_resources() -> None:
    p = pod("Pending", conditions=[scheduled(False, "0/3 nodes are available: 2 Insufficient memory, "
                                                    "3 Insufficient nvidia.com/gpu.")])
    since = {f"unschedulable:{POD}": 100.0, f"pending:{POD}": 100.0}
    assert stuck(p, since, 699.0) is None
    failure = stuck(p, since, 700.0, resources=Resources(memory="8Gi", gpu=1))
    assert failure == Failure(
        "Unschedulable",
        "node 'a' could not be scheduled for 600s: not enough memory, nvidia.com/gpu on any node (the node requests "
        "memory=8Gi, nvidia.com/gpu=1). Scheduler: 0/3 nodes are available: 2 Insufficient memory, 3 Insufficient "
        "nvidia.com/gpu. Lower .with_resources(...), or add capacity to the cluster")


def test_unschedulable_without_a_missing_resource_points_at_selectors() -> None:
    message = "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector."
    p = pod("Pending", conditions=[scheduled(False, message)])
    failure = stuck(p, {f"unschedulable:{POD}": 0.0}, 600.0)
    assert failure is not None and "no node fits its node selector, tolerations or volumes. Scheduler: " in (
        failure.message)


def test_image_pull_waits_but_an_invalid_name_fails_at_once() -> None:
    backoff = pod("Pending", conditions=[scheduled(True)], state=waiting("ImagePullBackOff", "Back-off"))
    since = {f"pull:{POD}": 10.0}
    assert stuck(backoff, since, 309.0) is None
    failure = stuck(backoff, since, 310.0)
    assert failure is not None and failure.error_type == "ImagePullError"
    assert failure.message == (
        f"node 'a': image {IMAGE!r} cannot be pulled (ImagePullBackOff): Back-off. Check the image name and tag "
        "(--image), that it was pushed or loaded into the cluster, and the pull secrets")
    invalid = pod("Pending", state=waiting("InvalidImageName", 'Failed to apply default image tag "Bad:Name"'))
    assert stuck(invalid, {f"pull:{POD}": 10.0}, 10.0) is not None
    assert stuck(invalid, {}, 10.0) is None  # not seen by pod_issues yet: no clock started


def test_container_config_error_fails_after_its_patience() -> None:
    p = pod("Pending", state=waiting("CreateContainerConfigError", 'configmap "x" not found'))
    assert stuck(p, {f"config:{POD}": 0.0}, 119.0) is None
    assert stuck(p, {f"config:{POD}": 0.0}, 120.0) == Failure(
        "ContainerConfigError",
        "node 'a': the container cannot be created (CreateContainerConfigError): configmap \"x\" not found. Create "
        "the missing Secret/ConfigMap or fix the volume configuration")


def test_pending_too_long_points_at_the_pod_events() -> None:
    p = pod("Pending", conditions=[scheduled(True)], state=waiting("ContainerCreating", ""))
    assert stuck(p, {f"pending:{POD}": 0.0}, 1799.0) is None
    assert stuck(p, {f"pending:{POD}": 0.0}, 1800.0) == Failure(
        "PodPending",
        f"node 'a': pod {POD} stayed Pending for 1800s (ContainerCreating: no message); check "
        f"'kubectl -n headwater describe pod {POD}' for its events")


def test_running_and_finished_pods_are_never_stuck() -> None:
    since = {f"pending:{POD}": 0.0, f"pull:{POD}": 0.0, f"unschedulable:{POD}": 0.0}
    running = pod("Running", conditions=[scheduled(True)], state={"running": {}})
    assert stuck(running, since, 1e9) is None
    assert stuck(pod("Succeeded", state=terminated(0, "Completed")), since, 1e9) is None


# ---------------------------------------------------------------------------------------------- Job verdicts
def test_job_conditions_keep_those_that_hold() -> None:
    j = job(condition("FailureTarget", "BackoffLimitExceeded"), condition("Failed", "BackoffLimitExceeded"),
            condition("Suspended", status="False"))
    assert set(job_conditions(j)) == {"FailureTarget", "Failed"}
    assert job_conditions(None) == {} and job_conditions({"status": {}}) == {}


def test_settled_pods() -> None:
    done, failed, running = (pod("Succeeded"), pod("Failed", name="p2"), pod("Running", name="p3"))
    assert settled([failed, done], complete=True) and not settled([running], complete=True)
    assert settled([done, failed], complete=False) and not settled([failed, running], complete=False)
    assert not settled([], complete=False)


def verdict(j: dict[str, Any], pods: list[dict[str, Any]], resources: Resources | None = None) -> Failure | None:
    [failed] = [c for c in j["status"]["conditions"] if c["type"] == "Failed"]
    return job_failure(j, failed, pods, node_id="a", job_name="k8s-demo-a-7-1f2e3", resources=resources or Resources())


def test_deadline_exceeded() -> None:
    j = job(condition("Failed", "DeadlineExceeded", "Job was active longer than specified deadline"), deadline=60)
    assert verdict(j, [pod("Failed", state=terminated(143, "Error"))]) == Failure(
        "DeadlineExceeded",
        "node 'a' ran longer than its deadline of 60s (Job activeDeadlineSeconds) and was stopped; raise it with "
        ".with_timeout(seconds)")


def test_job_failed_before_any_pod() -> None:
    j = job(condition("Failed", "PodFailurePolicy", "quota exceeded"))
    assert verdict(j, []) == Failure(
        "JobFailed", "node 'a': Job k8s-demo-a-7-1f2e3 failed (PodFailurePolicy: quota exceeded) before any pod ran")


def test_evicted_and_oom_killed_jobs() -> None:
    j = job(condition("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit"))
    evicted = verdict(j, [pod("Failed", name="p1", reason="Evicted", message=EVICTED),
                          pod("Failed", reason="Evicted", message=EVICTED)])
    assert evicted == Failure("Evicted", f"node 'a': pod {POD} was evicted after 2 attempts: {EVICTED.strip()}")
    oom = verdict(j, [pod("Failed", state=terminated(137, "OOMKilled"))], Resources(memory="2Gi"))
    assert oom == Failure(
        "OOMKilled",
        f"node 'a': pod {POD} was OOMKilled: the container used more memory than its limit (2Gi); raise it with "
        ".with_resources(memory=...)")


def test_a_plain_exit_is_left_to_the_executor_result_then_named() -> None:
    j = job(condition("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit"))
    output = "Traceback (most recent call last):\n  ...\nValueError: boom\n"
    pods = [pod("Failed", name="p1", state=terminated(1, "Error", output)),
            pod("Failed", state=terminated(1, "Error", output))]
    assert verdict(j, pods) is None
    [failed] = j["status"]["conditions"]
    assert container_failure(failed, pods, node_id="a") == Failure(
        "ContainerFailed",
        f"node 'a': the container in pod {POD} exited with code 1 (Error) after 2 attempts without an executor "
        "result; last output: Traceback (most recent call last): |   ... | ValueError: boom")
    killed = [pod("Failed", state={"terminated": {"exitCode": 137}})]  # no reason, no message: the Job's reason
    assert container_failure(failed, killed, node_id="a").message == (
        f"node 'a': the container in pod {POD} exited with code 137 (BackoffLimitExceeded) without an executor "
        "result")


def test_missing_result_hints_at_the_shared_root() -> None:
    on_volume = missing_result(node_id="a", job_name="j", where="/mnt/root/_results/r/a.7.p.json", object_store=False)
    assert on_volume.error_type == "ExecutorContractError"
    assert on_volume.message.endswith("must see the same pipeline root (mount the volume at the same path)")
    in_store = missing_result(node_id="a", job_name="j", where="s3://b/_results/r/a.7.p.json", object_store=True)
    assert "at s3://b/_results/r/a.7.p.json; the orchestrator and the pods must reach the same object store" in (
        in_store.message)


def test_resource_wording() -> None:
    assert asks(Resources()) == ""
    assert asks(Resources(cpu="500m", gpu=2)) == " (the node requests cpu=500m, nvidia.com/gpu=2)"
    assert limit(Resources(cpu="1", cpu_limit="2"), "cpu") == "2"
    assert limit(Resources(memory="1Gi"), "memory") == "1Gi"
    assert limit(Resources(), "memory") == "not set"
