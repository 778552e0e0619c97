"""What a Job's pods say, in words a user can act on: pure functions on Job and Pod objects (the API's JSON
as dictionaries), no client calls, no clock — the backend supplies the time and decides when to act.

- :func:`pod_issues`: conditions worth reporting while a node runs (unschedulable, image pull failures,
  containers that cannot be created, a failed attempt: evicted, OOMKilled, exit code);
- :func:`stuck_failure`: the failure of a pod that has been unable to progress for longer than the
  configured patience;
- :func:`job_failure` / :func:`container_failure`: why a Job failed;
- :func:`missing_result`: a Job that completed without an executor result.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from headwater.components.api import Resources
from headwater.pipelines.kubernetes.manifests import EXECUTOR_CONTAINER

__all__ = [
    "CONFIG_WAITING",
    "PULL_WAITING",
    "Failure",
    "Issue",
    "Patience",
    "asks",
    "container_failure",
    "container_state",
    "is_pending",
    "job_conditions",
    "job_failure",
    "limit",
    "missing_result",
    "not_ready_reason",
    "pod_issues",
    "settled",
    "stuck_failure",
]

Obj = Mapping[str, Any]
PULL_WAITING = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")
CONFIG_WAITING = ("CreateContainerConfigError", "CreateContainerError", "RunContainerError")


@dataclass(frozen=True)
class Issue:
    """A pod condition to report once. ``key`` is ``<kind>:<pod>``: one report per (pod, condition), and the
    name of the clock that measures how long it lasts (kinds ``unschedulable``, ``pull``, ``config`` and
    ``failed``)."""

    key: str
    note: str

    @property
    def kind(self) -> str:
        return self.key.split(":", 1)[0]


@dataclass(frozen=True)
class Failure:
    """Why a node failed: the executor result's error type and its message."""

    error_type: str
    message: str


@dataclass(frozen=True)
class Patience:
    """Seconds a pod may stay unschedulable, unable to pull its image, unable to create its container, or
    Pending at all, before the node fails (the fields of KubernetesConfig with the same names)."""

    unschedulable_timeout: float
    image_pull_timeout: float
    config_error_timeout: float
    pending_timeout: float


def _status(pod: Obj) -> Obj:
    return pod.get("status") or {}


def container_state(pod: Obj) -> dict[str, Any]:
    """The state of the executor container (``{"waiting": …}``, ``{"running": …}``, ``{"terminated": …}``)."""
    statuses = _status(pod).get("containerStatuses") or []
    for cs in statuses:
        if cs.get("name") == EXECUTOR_CONTAINER:
            return dict(cs.get("state") or {})
    return dict(statuses[0].get("state") or {}) if statuses else {}


def _scheduled(pod: Obj) -> Obj | None:
    return next((c for c in _status(pod).get("conditions") or [] if c.get("type") == "PodScheduled"), None)


def is_pending(pod: Obj) -> bool:
    return _status(pod).get("phase") in (None, "Pending")


def job_conditions(job: Obj | None) -> dict[str, Obj]:
    """The Job's conditions that hold (status "True"), by type (``Complete``, ``Failed``, …)."""
    return {c["type"]: c for c in ((job or {}).get("status") or {}).get("conditions") or []
            if c.get("status") == "True"}


def settled(pods: list[Obj], *, complete: bool) -> bool:
    """Whether the pods are in their final state for a Job that completed (a pod Succeeded) or failed (the
    last pod Failed or Succeeded)."""
    phases = [_status(p).get("phase") for p in pods]
    return bool(pods) and ("Succeeded" in phases if complete else phases[-1] in ("Failed", "Succeeded"))


def asks(resources: Resources) -> str:
    """`` (the node requests cpu=…, memory=…)`` for messages; empty when the node asks for nothing."""
    parts = [f"{k}={v}" for k, v in (("cpu", resources.cpu), ("memory", resources.memory)) if v]
    if resources.gpu:
        parts.append(f"nvidia.com/gpu={resources.gpu}")
    return f" (the node requests {', '.join(parts)})" if parts else ""


def limit(resources: Resources, key: str) -> str:
    """The node's ``memory`` or ``cpu`` limit (its request when no limit is set) for messages."""
    value = (resources.memory_limit or resources.memory) if key == "memory" else (resources.cpu_limit or resources.cpu)
    return str(value) if value else "not set"


def pod_issues(pod: Obj, *, attempt: int, retries: int, image: str, resources: Resources) -> list[Issue]:
    """What to tell the user about ``pod``, attempt ``attempt`` (1-based) of a node allowed ``retries``."""
    name = pod["metadata"]["name"]
    status = _status(pod)
    issues = []
    scheduled = _scheduled(pod)
    if scheduled and scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
        issues.append(Issue(f"unschedulable:{name}",
                            f"Pending: cannot be scheduled: {scheduled.get('message', '')}{asks(resources)}"))
    state = container_state(pod)
    waiting = state.get("waiting") or {}
    reason = waiting.get("reason")
    if reason in PULL_WAITING:
        issues.append(Issue(f"pull:{name}", f"Pending: image {image!r} cannot be pulled ({reason}): "
                                            f"{waiting.get('message', '')}"))
    elif reason in CONFIG_WAITING:
        issues.append(Issue(f"config:{name}", f"Pending: container cannot be created ({reason}): "
                                              f"{waiting.get('message', '')}"))
    terminated = state.get("terminated") or {}
    if status.get("phase") == "Failed":
        if status.get("reason") == "Evicted":
            what = f"evicted: {status.get('message', '').strip()}"
        elif terminated.get("reason") == "OOMKilled":
            what = f"OOMKilled (memory limit {limit(resources, 'memory')})"
        else:
            what = f"failed (exit code {terminated.get('exitCode')}, {terminated.get('reason', 'Error')})"
        left = retries - (attempt - 1)
        tail = f"; retrying ({left} retr{'y' if left == 1 else 'ies'} left)" if left > 0 else ""
        issues.append(Issue(f"failed:{name}", f"attempt {attempt} (pod {name}) {what}{tail}"))
    return issues


def stuck_failure(pod: Obj, since: Mapping[str, float], now: float, *, patience: Patience, node_id: str,
                  image: str, resources: Resources, namespace: str) -> Failure | None:
    """The failure of a Pending ``pod`` that has shown one condition for longer than its patience allows.

    ``since`` holds when each condition was first seen, by :class:`Issue` key, and ``pending:<pod>`` for
    when the pod was first seen Pending (missing: now)."""
    if not is_pending(pod):
        return None
    name = pod["metadata"]["name"]
    scheduled = _scheduled(pod)
    start = since.get(f"unschedulable:{name}")
    if (start is not None and scheduled and scheduled.get("status") == "False"
            and now - start >= patience.unschedulable_timeout):
        message = scheduled.get("message", "")
        short = sorted({m.rstrip(".") for m in re.findall(r"Insufficient ([\w./-]+)", message)})
        which = (f"not enough {', '.join(short)} on any node" if short
                 else "no node fits its node selector, tolerations or volumes")
        return Failure(
            "Unschedulable",
            f"node {node_id!r} could not be scheduled for {patience.unschedulable_timeout:g}s: "
            f"{which}{asks(resources)}. Scheduler: {message} Lower .with_resources(...), or add capacity "
            "to the cluster",
        )
    waiting = container_state(pod).get("waiting") or {}
    reason = waiting.get("reason")
    start = since.get(f"pull:{name}")
    if start is not None and reason in PULL_WAITING and (
        reason == "InvalidImageName" or now - start >= patience.image_pull_timeout
    ):
        return Failure(
            "ImagePullError",
            f"node {node_id!r}: image {image!r} cannot be pulled ({reason}): "
            f"{waiting.get('message', '')}. Check the image name and tag (--image), that it was pushed "
            "or loaded into the cluster, and the pull secrets",
        )
    start = since.get(f"config:{name}")
    if start is not None and reason in CONFIG_WAITING and now - start >= patience.config_error_timeout:
        return Failure(
            "ContainerConfigError",
            f"node {node_id!r}: the container cannot be created ({reason}): {waiting.get('message', '')}. "
            "Create the missing Secret/ConfigMap or fix the volume configuration",
        )
    if now - since.get(f"pending:{name}", now) >= patience.pending_timeout:
        return Failure(
            "PodPending",
            f"node {node_id!r}: pod {name} stayed Pending for {patience.pending_timeout:g}s "
            f"({reason or 'not started'}: {waiting.get('message', '') or 'no message'}); check "
            f"'kubectl -n {namespace} describe pod {name}' for its events",
        )
    return None


def _after(attempts: int) -> str:
    return f" after {attempts} attempt{'s' if attempts != 1 else ''}" if attempts > 1 else ""


def job_failure(job: Obj | None, condition: Obj, pods: list[Obj], *, node_id: str, job_name: str,
                resources: Resources) -> Failure | None:
    """Why a Job failed, when the Job and its last pod tell (deadline, no pod, eviction, OOM); ``None``:
    ask the executor result, then :func:`container_failure`."""
    reason = condition.get("reason", "")
    if reason == "DeadlineExceeded":
        deadline = ((job or {}).get("spec") or {}).get("activeDeadlineSeconds")
        return Failure(
            "DeadlineExceeded",
            f"node {node_id!r} ran longer than its deadline of {deadline}s (Job activeDeadlineSeconds) "
            "and was stopped; raise it with .with_timeout(seconds)",
        )
    if not pods:
        return Failure("JobFailed", f"node {node_id!r}: Job {job_name} failed ({reason}: "
                                    f"{condition.get('message', '')}) before any pod ran")
    last = pods[-1]
    name = last["metadata"]["name"]
    status = _status(last)
    terminated = container_state(last).get("terminated") or {}
    after = _after(len(pods))
    if status.get("reason") == "Evicted":
        return Failure("Evicted", f"node {node_id!r}: pod {name} was evicted{after}: "
                                  f"{status.get('message', '').strip()}")
    if terminated.get("reason") == "OOMKilled":
        return Failure(
            "OOMKilled",
            f"node {node_id!r}: pod {name} was OOMKilled{after}: the container used more memory than its "
            f"limit ({limit(resources, 'memory')}); raise it with .with_resources(memory=...)",
        )
    return None


def container_failure(condition: Obj, pods: list[Obj], *, node_id: str) -> Failure:
    """A Job whose last container exited in failure without an executor result."""
    last = pods[-1]
    terminated = container_state(last).get("terminated") or {}
    code = terminated.get("exitCode")
    tail = (terminated.get("message") or "").strip().splitlines()[-5:]
    shown = ("; last output: " + " | ".join(tail)) if tail else ""
    return Failure(
        "ContainerFailed",
        f"node {node_id!r}: the container in pod {last['metadata']['name']} exited with code {code} "
        f"({terminated.get('reason', condition.get('reason', ''))}){_after(len(pods))} without an executor "
        f"result{shown}",
    )


def missing_result(*, node_id: str, job_name: str, where: str, object_store: bool) -> Failure:
    """A Job that completed, but whose executor result the orchestrator cannot find at ``where``."""
    if object_store:
        hint = ("the orchestrator and the pods must reach the same object store: give the pods the endpoint "
                "and credentials the orchestrator uses (AWS_ENDPOINT_URL / STORAGE_EMULATOR_HOST, keys "
                "through env, secret_env or env_from_secrets)")
    else:
        hint = "the orchestrator and the pods must see the same pipeline root (mount the volume at the same path)"
    return Failure(
        "ExecutorContractError",
        f"node {node_id!r}: Job {job_name} completed but no executor result was found at {where}; {hint}",
    )


def not_ready_reason(pod: Obj, events: list[Obj]) -> str:
    """Why a long-running pod (a model server) is not ready, in words: unschedulable, image, configuration,
    crash loop (with the last exit), or running but failing its readiness probe (the kubelet's last
    ``Unhealthy`` Event on it)."""
    name = pod["metadata"]["name"]
    scheduled = _scheduled(pod)
    if scheduled and scheduled.get("status") == "False" and scheduled.get("reason") == "Unschedulable":
        return f"pod {name} cannot be scheduled: {scheduled.get('message', '')}"
    state = container_state(pod)
    waiting = state.get("waiting") or {}
    reason = waiting.get("reason")
    statuses = _status(pod).get("containerStatuses") or []
    if reason in PULL_WAITING:
        return f"pod {name}: its image cannot be pulled ({reason}): {waiting.get('message', '')}"
    if reason in CONFIG_WAITING:
        return f"pod {name}: its container cannot be created ({reason}): {waiting.get('message', '')}"
    if reason == "CrashLoopBackOff":
        last = ((statuses[0].get("lastState") or {}).get("terminated") or {}) if statuses else {}
        restarts = statuses[0].get("restartCount", 0) if statuses else 0
        return (f"pod {name}: the server keeps exiting (CrashLoopBackOff, {restarts} restarts, last exit code "
                f"{last.get('exitCode')}, {last.get('reason', 'Error')})")
    if "running" in state:
        probes = [e for e in events if e.get("reason") == "Unhealthy"
                  and (e.get("involvedObject") or {}).get("name") == name]
        probes.sort(key=lambda e: str(e.get("lastTimestamp") or ""))
        said = f": {probes[-1].get('message', '')}" if probes else " (no probe answered yet)"
        return f"pod {name}: running, not ready{said}"
    if is_pending(pod):
        return f"pod {name}: Pending ({reason or 'ContainerCreating'})"
    return f"pod {name}: {_status(pod).get('phase', 'Unknown')}"
