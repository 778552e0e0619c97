"""The stand-in's controllers: Job controller, scheduler, garbage/TTL collector, and a subprocess kubelet.

- **Job controller** (batch/v1, NonIndexed, completions 1): creates pods from the template with the
  ``job-name`` / ``controller-uid`` labels and a controller ownerReference, replaces failed pods after an
  exponential back-off until ``backoffLimit`` is exceeded, enforces ``activeDeadlineSeconds`` and writes
  the conditions (``SuccessCriteriaMet``/``Complete``, ``FailureTarget``/``Failed`` with reason
  ``BackoffLimitExceeded`` or ``DeadlineExceeded``) and counters a real controller writes.
- **Scheduler**: binds pods to nodes by their requests, node selectors and taints; otherwise the pod stays
  Pending with ``PodScheduled=False``, reason ``Unschedulable`` and kube-scheduler's message
  (``0/3 nodes are available: 3 Insufficient cpu.``).
- **Garbage collector / TTL**: dependents of a deleted Job are deleted (Background) or the Job waits for
  them (Foreground); finished Jobs with ``ttlSecondsAfterFinished`` are deleted.
- **Deployments, ReplicaSets, Services/Endpoints**: see ``workloads.py``; readiness probes: ``probes.py``.
- **Kubelet** (``kubelet.py``): runs each bound pod's container command as a local subprocess with the pod's environment
  (``env``, ``envFrom``, ConfigMap/Secret references, field references, ``$(VAR)`` expansion) and
  volumes (ConfigMap/Secret/emptyDir materialised per pod; PersistentVolumeClaims and hostPaths mapped to
  host directories), records stdout/stderr in CRI log format, and reports container states and pod phases.

What a subprocess cannot do is documented where it matters: a ConfigMap/Secret/emptyDir mounted at a path
that does not exist on this machine is reached by rewriting that path prefix in the container's command,
args, env values and workingDir (URLs — an ``s3://`` pipeline root, an endpoint — are left as they are);
a claim or hostPath must be mounted at its own host path (pipeline roots are, by construction). Pods that
mount their service account token receive ``KUBECONFIG`` pointing at a kubeconfig for that service
account — the stand-in's equivalent of the token mount.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from kubernetes.utils.quantity import parse_quantity

from .faults import PodFault
from .kubelet import _PodRunner
from .objects import Image, Node, Obj, _condition, _set_condition
from .store import ApiError, ObjectStore, now_rfc3339
from .validation import generate_name, prepare_create
from .workloads import WorkloadControllers

__all__ = ["Cluster", "Image", "Node"]

TERMINAL = ("Succeeded", "Failed")


@dataclass
class _JobState:
    started: float | None = None
    finished: float | None = None
    last_failure: float = 0.0
    seen: set[str] = field(default_factory=set)
    succeeded: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)


def pod_requests(pod: Obj) -> dict[str, Decimal]:
    total: dict[str, Decimal] = defaultdict(Decimal)
    for c in pod["spec"].get("containers", []):
        for key, value in ((c.get("resources") or {}).get("requests") or {}).items():
            total[key] += parse_quantity(value)
    return total


def _qos(pod: Obj) -> str:
    containers = pod["spec"].get("containers", [])
    res = [c.get("resources") or {} for c in containers]
    if all(not r.get("requests") and not r.get("limits") for r in res):
        return "BestEffort"
    for r in res:
        limits, requests = r.get("limits") or {}, r.get("requests") or {}
        if not {"cpu", "memory"} <= set(limits) or any(
            parse_quantity(requests.get(k, limits[k])) != parse_quantity(limits[k]) for k in ("cpu", "memory")
        ):
            return "Burstable"
    return "Guaranteed"


def _term_matches(term: Obj, labels: dict[str, str]) -> bool:
    """A node selector term (its matchExpressions ANDed) against a node's labels, as the scheduler does."""
    for expr in term.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        results = {"In": labels.get(key) in values, "NotIn": labels.get(key) not in values,
                   "Exists": key in labels, "DoesNotExist": key not in labels}
        if not results.get(op, False):
            return False
    return bool(term.get("matchExpressions"))


def _controller_ref(obj: Obj) -> Obj | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


class Cluster:
    """Controllers and kubelet over one :class:`ObjectStore`."""

    def __init__(
        self,
        store: ObjectStore,
        workdir: Path,
        *,
        nodes: list[Node],
        images: dict[str, Image] | None,
        claims: dict[str, str],
        backoff_base: float = 0.05,
        grace_cap: float = 2.0,
        kubeconfig_for: Callable[[str, str], str | None] | None = None,
    ) -> None:
        self.store = store
        self.workdir = workdir
        self.nodes = list(nodes)
        self.images = images
        self.claims = dict(claims)
        self.backoff_base = backoff_base
        self.grace_cap = grace_cap
        self.kubeconfig_for = kubeconfig_for
        self.pod_faults: list[PodFault] = []
        self._faults_lock = threading.Lock()
        self._jobs: dict[str, _JobState] = {}
        self._kubelets: dict[str, _PodRunner] = {}
        self.workloads = WorkloadControllers(store, lambda ns, name: self.delete_pod(ns, name))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="standin-controllers", daemon=True)

    # -- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.store.close()
        self._thread.join(5)
        for runner in list(self._kubelets.values()):
            runner.kill()
        for runner in list(self._kubelets.values()):
            runner.thread.join(5)

    def take_faults(self, pod: Obj) -> list[PodFault]:
        labels = pod["metadata"].get("labels") or {}
        with self._faults_lock:
            return [f for f in self.pod_faults if f.take(labels)]

    def _loop(self) -> None:
        seen = -1
        while not self._stop.is_set():
            current = self.store.resource_version
            if current == seen:
                self.store.wait(current, 0.05)
            seen = self.store.resource_version
            try:
                self.reconcile()
            except Exception as exc:  # keep the controllers alive; the test sees the failure in pod state
                print(f"stand-in controller error: {exc!r}")
            time.sleep(0.005)

    # -- deletion ------------------------------------------------------------------------------------
    def delete_pod(self, namespace: str, name: str, grace: int | None = None) -> Obj | None:
        """Graceful deletion: mark, let the kubelet stop the container, then remove the object."""
        pod = self.store.get("pods", namespace, name)
        if pod is None:
            return None
        runner = self._kubelets.get(pod["metadata"]["uid"])
        if runner is None or not runner.has_process():
            if runner is not None:
                runner.deleting.set()
            return self.store.remove("pods", namespace, name)
        seconds = grace if grace is not None else pod["spec"].get("terminationGracePeriodSeconds", 30)

        def mark(p: Obj) -> None:
            p["metadata"].setdefault("deletionTimestamp", now_rfc3339())
            p["metadata"].setdefault("deletionGracePeriodSeconds", seconds)

        marked = self.store.modify("pods", namespace, name, mark)
        runner.request_delete(min(float(seconds), self.grace_cap))
        return marked

    def delete_job(self, namespace: str, name: str, propagation: str) -> Obj:
        job = self.store.get("jobs", namespace, name)
        if job is None:
            raise ApiError.not_found("jobs", name)
        uid = job["metadata"]["uid"]
        if propagation == "Foreground":

            def mark(j: Obj) -> None:
                j["metadata"].setdefault("deletionTimestamp", now_rfc3339())
                j["metadata"]["deletionGracePeriodSeconds"] = 0
                fins = j["metadata"].setdefault("finalizers", [])
                if "foregroundDeletion" not in fins:
                    fins.append("foregroundDeletion")

            marked = self.store.modify("jobs", namespace, name, mark)
            assert marked is not None
            return marked
        self.store.remove("jobs", namespace, name)
        if propagation == "Orphan":
            pods, _ = self.store.list("pods", namespace)
            for pod in pods:
                if any(r.get("uid") == uid for r in pod["metadata"].get("ownerReferences") or []):

                    def orphan(p: Obj) -> None:
                        refs = [r for r in p["metadata"].get("ownerReferences") or [] if r.get("uid") != uid]
                        if refs:
                            p["metadata"]["ownerReferences"] = refs
                        else:
                            p["metadata"].pop("ownerReferences", None)

                    self.store.modify("pods", namespace, pod["metadata"]["name"], orphan)
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {"name": name, "group": "batch", "kind": "jobs", "uid": uid},
        }

    # -- reconcile -----------------------------------------------------------------------------------
    def reconcile(self) -> None:
        jobs, _ = self.store.list("jobs")
        pods, _ = self.store.list("pods")
        by_owner: dict[str, list[Obj]] = defaultdict(list)
        for pod in pods:
            for ref in pod["metadata"].get("ownerReferences") or []:
                by_owner[ref["uid"]].append(pod)
        job_uids = {j["metadata"]["uid"] for j in jobs}
        for pod in pods:  # garbage collector: dependents of a Job that is gone
            ref = _controller_ref(pod)
            gone = ref and ref.get("kind") == "Job" and not self._owner_exists(pod, ref)
            if gone and not pod["metadata"].get("deletionTimestamp"):
                self.delete_pod(pod["metadata"]["namespace"], pod["metadata"]["name"])
        configmaps, _ = self.store.list("configmaps")
        for cm in configmaps:  # garbage collector: ConfigMaps owned by a Job that is gone
            refs = cm["metadata"].get("ownerReferences") or []
            if refs and all(r.get("kind") == "Job" and r["uid"] not in job_uids for r in refs) and not any(
                self._owner_exists(cm, r) for r in refs
            ):
                self.store.remove("configmaps", cm["metadata"]["namespace"], cm["metadata"]["name"])
        for job in jobs:
            self._reconcile_job(job, by_owner.get(job["metadata"]["uid"], []))
        for uid in list(self._jobs):
            if uid not in job_uids:
                del self._jobs[uid]
        self.workloads.reconcile()
        pods, _ = self.store.list("pods")
        self._schedule(pods)

    def host_port(self, pod: Obj, target: Any) -> int | None:
        """The port of this machine a pod's container port (a number or a port name) is reached at."""
        if isinstance(target, str) and not target.isdigit():
            named = {p.get("name"): p["containerPort"] for c in pod["spec"].get("containers") or []
                     for p in c.get("ports") or []}
            target = named.get(target)
        runner = self._kubelets.get(pod["metadata"]["uid"])
        if target is None or runner is None or not runner.has_process():
            return None
        return runner.ports.get(int(target))

    def _owner_exists(self, obj: Obj, ref: Obj) -> bool:
        """A live look-up, as the garbage collector does before deleting: the snapshot it works from may
        predate an owner created a moment ago."""
        owner = self.store.get("jobs", obj["metadata"]["namespace"], ref["name"])
        return owner is not None and owner["metadata"]["uid"] == ref["uid"]

    def _reconcile_job(self, job: Obj, pods: list[Obj]) -> None:
        meta, spec = job["metadata"], job["spec"]
        ns, name, uid = meta["namespace"], meta["name"], meta["uid"]
        if meta.get("deletionTimestamp"):  # foreground deletion: remove dependents first
            for pod in pods:
                if not pod["metadata"].get("deletionTimestamp"):
                    self.delete_pod(ns, pod["metadata"]["name"])
            if not pods:
                self.store.remove("jobs", ns, name)
            return
        state = self._jobs.setdefault(uid, _JobState())
        now = time.monotonic()
        conditions = {c["type"]: c for c in (job.get("status") or {}).get("conditions") or []}
        finished = any(conditions.get(t, {}).get("status") == "True" for t in ("Complete", "Failed"))
        if finished:
            ttl = spec.get("ttlSecondsAfterFinished")
            if state.finished is None:
                state.finished = now
            if ttl is not None and now - state.finished >= ttl:
                self.delete_job(ns, name, "Background")
            return
        if spec.get("suspend"):
            return
        if state.started is None:
            state.started = now
        present = {p["metadata"]["uid"] for p in pods}
        for pod in pods:
            pid = pod["metadata"]["uid"]
            state.seen.add(pid)
            phase = (pod.get("status") or {}).get("phase")
            if phase == "Succeeded":
                state.succeeded.add(pid)
            elif phase == "Failed":
                if pid not in state.failed:
                    state.last_failure = now
                state.failed.add(pid)
        for pid in state.seen - present - state.succeeded - state.failed:  # deleted before finishing
            state.failed.add(pid)
            state.last_failure = now
        active = [
            p for p in pods
            if (p.get("status") or {}).get("phase") not in TERMINAL and not p["metadata"].get("deletionTimestamp")
        ]
        terminating = [
            p for p in pods
            if (p.get("status") or {}).get("phase") not in TERMINAL and p["metadata"].get("deletionTimestamp")
        ]
        ready = sum(
            1 for p in active
            if any(c["type"] == "Ready" and c["status"] == "True"
                   for c in (p.get("status") or {}).get("conditions") or [])
        )
        verdict: tuple[str, str, str] | None = None
        interim = conditions.get("FailureTarget") or conditions.get("SuccessCriteriaMet")
        if interim is not None and interim.get("status") == "True":  # decided already: keep the reason
            verdict = ("Failed" if interim["type"] == "FailureTarget" else "Complete", interim.get("reason", ""),
                       interim.get("message", ""))
        elif len(state.succeeded) >= spec.get("completions", 1):
            verdict = ("Complete", "CompletionsReached", "Reached expected number of succeeded pods")
        elif len(state.failed) > spec.get("backoffLimit", 6):
            verdict = ("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
        elif spec.get("activeDeadlineSeconds") is not None and now - state.started >= spec["activeDeadlineSeconds"]:
            verdict = ("Failed", "DeadlineExceeded", "Job was active longer than specified deadline")
        if verdict is not None and verdict[0] == "Failed":
            for pod in active:
                self.delete_pod(ns, pod["metadata"]["name"])
        elif verdict is None and not active and not terminating:
            failures = len(state.failed)
            delay = self.backoff_base * (2 ** (failures - 1)) if failures else 0.0
            if now - state.last_failure >= delay:
                self._create_pod(job)
                active = [None]  # type: ignore[list-item]

        def update(j: Obj) -> None:
            status = j.setdefault("status", {})
            status.setdefault("startTime", now_rfc3339())
            for key, value in (("active", len(active)), ("succeeded", len(state.succeeded)),
                               ("failed", len(state.failed))):
                if value:
                    status[key] = value
                else:
                    status.pop(key, None)
            status["ready"] = ready
            status["terminating"] = len(terminating)
            status["uncountedTerminatedPods"] = {}
            if verdict is not None:
                type_, reason, message = verdict
                interim = "SuccessCriteriaMet" if type_ == "Complete" else "FailureTarget"
                _set_condition(status, _condition(interim, "True", reason, message))
                if not terminating and (type_ == "Complete" or not active):
                    _set_condition(status, _condition(type_, "True", reason, message))
                    if type_ == "Complete":
                        status["completionTime"] = now_rfc3339()
                    status.pop("active", None)

        self.store.modify("jobs", ns, name, update)

    def _create_pod(self, job: Obj) -> None:
        meta, template = job["metadata"], job["spec"]["template"]
        tmeta = template.get("metadata") or {}
        pod: Obj = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": generate_name(meta["name"] + "-"),
                "labels": dict(tmeta.get("labels") or {}),
                "ownerReferences": [
                    {
                        "apiVersion": "batch/v1",
                        "kind": "Job",
                        "name": meta["name"],
                        "uid": meta["uid"],
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": copy.deepcopy(template["spec"]),
        }
        if tmeta.get("annotations"):
            pod["metadata"]["annotations"] = dict(tmeta["annotations"])
        prepare_create("pods", pod, meta["namespace"])
        pod["status"] = {"phase": "Pending", "qosClass": _qos(pod)}
        self.store.create("pods", pod)

    # -- scheduler -----------------------------------------------------------------------------------
    def _schedule(self, pods: list[Obj]) -> None:
        used: dict[str, dict[str, Decimal]] = {n.name: defaultdict(Decimal) for n in self.nodes}
        for pod in pods:
            node = pod["spec"].get("nodeName")
            if node in used and (pod.get("status") or {}).get("phase") not in TERMINAL:
                for k, v in pod_requests(pod).items():
                    used[node][k] += v
                used[node]["pods"] += 1
        pending = [
            p for p in pods
            if not p["spec"].get("nodeName") and not p["metadata"].get("deletionTimestamp")
            and (p.get("status") or {}).get("phase") == "Pending"
        ]
        pending.sort(key=lambda p: int(p["metadata"]["resourceVersion"]))
        for pod in pending:
            message = None
            for vol in pod["spec"].get("volumes") or []:
                claim = (vol.get("persistentVolumeClaim") or {}).get("claimName")
                if claim and claim not in self.claims:
                    message = f'0/{len(self.nodes)} nodes are available: persistentvolumeclaim "{claim}" not found.'
            chosen = None
            if message is None:
                requests = pod_requests(pod)
                histogram: dict[str, int] = defaultdict(int)
                for node in self.nodes:
                    reasons = self._misfit(pod, requests, node, used[node.name])
                    if not reasons and chosen is None:
                        chosen = node
                    for r in reasons:
                        histogram[r] += 1
                if chosen is None:
                    parts = sorted(f"{n} {reason}" for reason, n in histogram.items())
                    message = f"0/{len(self.nodes)} nodes are available: {', '.join(parts)}."
            ns, name = pod["metadata"]["namespace"], pod["metadata"]["name"]
            if chosen is not None:
                for k, v in pod_requests(pod).items():
                    used[chosen.name][k] += v
                used[chosen.name]["pods"] += 1
                node_name = chosen.name

                def bind(p: Obj, node_name: str = node_name) -> None:
                    p["spec"]["nodeName"] = node_name
                    _set_condition(p["status"], _condition("PodScheduled", "True"))

                bound = self.store.modify("pods", ns, name, bind)
                if bound is not None:
                    runner = _PodRunner(self, bound, chosen)
                    self._kubelets[bound["metadata"]["uid"]] = runner
                    runner.thread.start()
            else:
                assert message is not None

                def unschedulable(p: Obj, message: str = message) -> None:
                    _set_condition(p["status"], _condition("PodScheduled", "False", "Unschedulable", message))

                self.store.modify("pods", ns, name, unschedulable)

    @staticmethod
    def _misfit(pod: Obj, requests: dict[str, Decimal], node: Node, used: dict[str, Decimal]) -> list[str]:
        selector = pod["spec"].get("nodeSelector") or {}
        if any(node.labels.get(k) != v for k, v in selector.items()):
            return ["node(s) didn't match Pod's node affinity/selector"]
        required = (((pod["spec"].get("affinity") or {}).get("nodeAffinity") or {})
                    .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
        terms = required.get("nodeSelectorTerms") or []
        if terms and not any(_term_matches(term, node.labels) for term in terms):  # terms are ORed
            return ["node(s) didn't match Pod's node affinity/selector"]
        tolerations = pod["spec"].get("tolerations") or []
        for taint in node.taints:
            if taint.get("effect") not in ("NoSchedule", "NoExecute"):
                continue
            if not any(
                (t.get("operator") == "Exists" and t.get("key") in (None, "", taint["key"]))
                or (t.get("key") == taint["key"] and t.get("value") == taint.get("value"))
                for t in tolerations
                if t.get("effect") in (None, "", taint.get("effect"))
            ):
                return [f"node(s) had untolerated taint {{{taint['key']}: {taint.get('value', '')}}}"]
        allocatable = {
            "cpu": parse_quantity(node.cpu),
            "memory": parse_quantity(node.memory),
            "nvidia.com/gpu": Decimal(node.gpu),
        }
        reasons = []
        if used["pods"] + 1 > node.pods:
            reasons.append("Too many pods")
        for key, amount in sorted(requests.items()):
            if amount and used[key] + amount > allocatable.get(key, Decimal(0)):
                reasons.append(f"Insufficient {key}")
        return reasons

    # -- logs ----------------------------------------------------------------------------------------
    def log_lines(
        self, namespace: str, name: str, container: str | None, *, follow: bool, tail: int | None,
        timestamps: bool, since: int | None, should_stop: Callable[[], bool],
    ) -> Iterator[bytes]:
        pod = self.store.get("pods", namespace, name)
        if pod is None:
            raise ApiError.not_found("pods", name)
        names = [c["name"] for c in pod["spec"]["containers"]]
        if container is None:
            if len(names) > 1:
                raise ApiError(
                    400, "BadRequest",
                    f"a container name must be specified for pod {name}, choose one of: [{' '.join(names)}]",
                )
            container = names[0]
        if container not in names:
            raise ApiError(400, "BadRequest", f"container {container} is not valid for pod {name}")
        runner = self._kubelets.get(pod["metadata"]["uid"])
        if runner is None or not runner.started.is_set():
            waiting = "ContainerCreating"
            for cs in (pod.get("status") or {}).get("containerStatuses") or []:
                if cs["name"] == container and "waiting" in (cs.get("state") or {}):
                    waiting = cs["state"]["waiting"].get("reason", waiting)
            if waiting in ("ErrImagePull", "ImagePullBackOff"):
                waiting = "trying and failing to pull image"
            raise ApiError(400, "BadRequest", f'container "{container}" in pod "{name}" is waiting to start: {waiting}')
        return runner.read_log(follow=follow, tail=tail, timestamps=timestamps, since=since, should_stop=should_stop)
