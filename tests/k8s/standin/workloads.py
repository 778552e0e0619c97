"""The stand-in's controllers for long-running workloads: Deployment, ReplicaSet and Endpoints.

- **Deployment controller** (apps/v1): one ReplicaSet per pod template, named ``<deployment>-<pod-template-hash>``
  with the ``pod-template-hash`` label in its selector and template, a controller ownerReference and the
  ``deployment.kubernetes.io/revision`` annotation (a template seen before gets its old ReplicaSet back with the
  next revision, as ``kubectl rollout undo`` relies on). ``RollingUpdate`` (``maxSurge``/``maxUnavailable``,
  25 % each by default, percentages rounded up and down like the real controller) or ``Recreate``. Status
  counters (``replicas``, ``updatedReplicas``, ``readyReplicas``, ``availableReplicas``,
  ``unavailableReplicas``, ``observedGeneration``) and the conditions ``Available``
  (``MinimumReplicasAvailable``/``MinimumReplicasUnavailable``) and ``Progressing`` (``NewReplicaSetCreated``,
  ``FoundNewReplicaSet``, ``ReplicaSetUpdated``, ``NewReplicaSetAvailable``, and ``ProgressDeadlineExceeded``
  once a rollout made no progress for ``progressDeadlineSeconds``). Old ReplicaSets beyond
  ``revisionHistoryLimit`` are deleted. ``minReadySeconds`` is taken as 0 (a ready pod is available).
- **ReplicaSet controller**: creates pods from the template (``<replicaset>-xxxxx``) until ``replicas`` are
  active, deletes the surplus (not-ready and unscheduled pods first, then the newest), replaces pods that
  ended (``Failed``/``Succeeded``); status ``replicas``, ``fullyLabeledReplicas``, ``readyReplicas``,
  ``availableReplicas``, ``observedGeneration``.
- **Endpoints controller**: an ``Endpoints`` object per Service with a selector, named like the Service:
  ready pods under ``addresses``, the others (running, with an IP) under ``notReadyAddresses``, the Service's
  ports with named target ports resolved against each pod's container ports.
- **Garbage collector**: ReplicaSets of a Deployment that is gone and pods of a ReplicaSet that is gone are
  deleted (``Background`` propagation, the apps/v1 default; ``Foreground`` is treated the same way).
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .store import ObjectStore, now_rfc3339
from .validation import generate_name, prepare_create

__all__ = ["WorkloadControllers", "is_ready", "pod_template_hash"]

Obj = dict[str, Any]
REVISION = "deployment.kubernetes.io/revision"
HASH_LABEL = "pod-template-hash"
_SAFE = "bcdfghjklmnpqrstvwxz2456789"


def pod_template_hash(template: Obj) -> str:
    """A stable short hash of a pod template, in the alphabet of the real controller's ``SafeEncodeString``."""
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    return "".join(_SAFE[b % len(_SAFE)] for b in digest[:10])


def is_ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (pod.get("status") or {}).get("conditions") or [])


def _active(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed") and not pod["metadata"].get(
        "deletionTimestamp")


def _by_owner(objects: list[Obj]) -> dict[str, list[Obj]]:
    """The objects grouped by the uid of their controller."""
    grouped: dict[str, list[Obj]] = defaultdict(list)
    for obj in objects:
        ref = _owner(obj)
        if ref is not None:
            grouped[ref["uid"]].append(obj)
    return grouped


def _owner(obj: Obj) -> Obj | None:
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def _scaled(value: Any, total: int, *, round_up: bool) -> int:
    """An IntOrString (``2`` or ``"25%"``) of ``total``, as intstr.GetScaledValueFromIntOrPercent does."""
    if isinstance(value, int):
        return value
    text = str(value)
    if text.endswith("%"):
        amount = int(text[:-1]) * total / 100
        return math.ceil(amount) if round_up else math.floor(amount)
    return int(text)


def _condition(type_: str, status: str, reason: str, message: str, previous: Obj | None, *,
               progress: bool = False) -> Obj:
    now = now_rfc3339()
    transition = previous["lastTransitionTime"] if previous and previous.get("status") == status else now
    update = now if progress or previous is None or previous.get("reason") != reason else previous.get(
        "lastUpdateTime", now)
    return {"type": type_, "status": status, "lastUpdateTime": update, "lastTransitionTime": transition,
            "reason": reason, "message": message}


@dataclass
class _Progress:
    signature: tuple[Any, ...] = ()
    since: float = 0.0


class WorkloadControllers:
    """Reconciles Deployments, ReplicaSets and Endpoints over ``store``; ``delete_pod`` deletes gracefully."""

    def __init__(self, store: ObjectStore, delete_pod: Callable[[str, str], Any]) -> None:
        self.store = store
        self.delete_pod = delete_pod
        self._progress: dict[str, _Progress] = {}

    def reconcile(self) -> None:
        deployments, _ = self.store.list("deployments")
        replicasets, _ = self.store.list("replicasets")
        self._collect_garbage(deployments, replicasets)
        by_owner = _by_owner(self.store.list("replicasets")[0])
        for deployment in deployments:
            self._reconcile_deployment(deployment, by_owner.get(deployment["metadata"]["uid"], []))
        live = {d["metadata"]["uid"] for d in deployments}
        for uid in list(self._progress):
            if uid not in live:
                del self._progress[uid]
        replicasets, _ = self.store.list("replicasets")
        pods_by_owner = _by_owner(self.store.list("pods")[0])
        for rs in replicasets:
            self._reconcile_replicaset(rs, pods_by_owner.get(rs["metadata"]["uid"], []))
        self._reconcile_endpoints()

    # -- garbage collector ---------------------------------------------------------------------------
    def _exists(self, resource: str, namespace: str, ref: Obj) -> bool:
        owner = self.store.get(resource, namespace, ref["name"])
        return owner is not None and owner["metadata"]["uid"] == ref["uid"]

    def _collect_garbage(self, deployments: list[Obj], replicasets: list[Obj]) -> None:
        for rs in replicasets:
            ref = _owner(rs)
            ns = rs["metadata"]["namespace"]
            if ref and ref.get("kind") == "Deployment" and not self._exists("deployments", ns, ref):
                self.store.remove("replicasets", ns, rs["metadata"]["name"])
        pods, _ = self.store.list("pods")
        for pod in pods:
            ref = _owner(pod)
            ns = pod["metadata"]["namespace"]
            if (ref and ref.get("kind") == "ReplicaSet" and not pod["metadata"].get("deletionTimestamp")
                    and not self._exists("replicasets", ns, ref)):
                self.delete_pod(ns, pod["metadata"]["name"])

    # -- deployments ---------------------------------------------------------------------------------
    def _reconcile_deployment(self, deployment: Obj, owned: list[Obj]) -> None:
        meta, spec = deployment["metadata"], deployment["spec"]
        ns = meta["namespace"]
        template = copy.deepcopy(spec["template"])
        template_hash = pod_template_hash(template)
        revisions = [int((rs["metadata"].get("annotations") or {}).get(REVISION, "0")) for rs in owned]
        new_rs = next((rs for rs in owned if (rs["metadata"].get("labels") or {}).get(HASH_LABEL) == template_hash),
                      None)
        replicas = spec.get("replicas", 1)
        created = False
        if new_rs is None:
            new_rs = self._create_replicaset(deployment, template, template_hash, max(revisions, default=0) + 1)
            created = True
        elif int((new_rs["metadata"].get("annotations") or {}).get(REVISION, "0")) < max(revisions, default=0):
            revision = str(max(revisions) + 1)  # an old template again: its ReplicaSet comes back, next revision

            def bump(rs: Obj) -> None:
                rs["metadata"].setdefault("annotations", {})[REVISION] = revision

            new_rs = self.store.modify("replicasets", ns, new_rs["metadata"]["name"], bump) or new_rs
        old = [rs for rs in owned if rs["metadata"]["uid"] != new_rs["metadata"]["uid"]]
        strategy = spec.get("strategy") or {}
        new_count = new_rs["spec"].get("replicas", 0)
        if strategy.get("type") == "Recreate":
            for rs in old:
                self._scale(rs, 0)
            old_pods = sum((rs.get("status") or {}).get("replicas", 0) for rs in old)
            if old_pods == 0:
                self._scale(new_rs, replicas)
        else:
            rolling = strategy.get("rollingUpdate") or {}
            surge = _scaled(rolling.get("maxSurge", "25%"), replicas, round_up=True)
            unavailable = _scaled(rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
            if surge == 0 and unavailable == 0:
                unavailable = 1
            total = sum(rs["spec"].get("replicas", 0) for rs in owned) + (new_count if created else 0)
            if new_count < replicas:
                target = min(replicas, new_count + max(0, replicas + surge - total))
                if target != new_count:
                    self._scale(new_rs, target)
                    total += target - new_count
                    new_count = target
            elif new_count > replicas:
                self._scale(new_rs, replicas)
                total -= new_count - replicas
                new_count = replicas
            available = sum((rs.get("status") or {}).get("availableReplicas", 0) for rs in [new_rs, *old])
            min_available = replicas - unavailable
            room = max(0, available - min_available)
            for rs in sorted(old, key=lambda r: r["metadata"]["creationTimestamp"]):
                count = rs["spec"].get("replicas", 0)
                if not count:
                    continue
                unhealthy = count - (rs.get("status") or {}).get("availableReplicas", 0)
                cut = min(count, unhealthy + room)  # unhealthy old pods go first: they serve nothing
                room -= max(0, cut - unhealthy)
                if cut:
                    self._scale(rs, count - cut)
        self._history_limit(spec.get("revisionHistoryLimit", 10), old)
        self._deployment_status(deployment, new_rs, old, created)

    def _create_replicaset(self, deployment: Obj, template: Obj, template_hash: str, revision: int) -> Obj:
        meta = deployment["metadata"]
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = template_hash
        selector = copy.deepcopy(deployment["spec"]["selector"])
        selector.setdefault("matchLabels", {})[HASH_LABEL] = template_hash
        replicas = deployment["spec"].get("replicas", 1)
        surge = _scaled(((deployment["spec"].get("strategy") or {}).get("rollingUpdate") or {}).get(
            "maxSurge", "25%"), replicas, round_up=True)
        rs: Obj = {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {
                "name": f"{meta['name']}-{template_hash}",
                "labels": dict(template["metadata"]["labels"]),
                "annotations": {REVISION: str(revision), "deployment.kubernetes.io/desired-replicas": str(replicas),
                                "deployment.kubernetes.io/max-replicas": str(replicas + surge)},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "Deployment", "name": meta["name"],
                                     "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}],
            },
            "spec": {"replicas": 0, "selector": selector, "template": template},
        }
        prepared = prepare_create("replicasets", rs, meta["namespace"])
        return self.store.create("replicasets", prepared)

    def _scale(self, rs: Obj, replicas: int) -> None:
        def mutate(r: Obj) -> None:
            if r["spec"].get("replicas") != replicas:
                r["spec"]["replicas"] = replicas
                r["metadata"]["generation"] = r["metadata"].get("generation", 1) + 1

        updated = self.store.modify("replicasets", rs["metadata"]["namespace"], rs["metadata"]["name"], mutate)
        if updated is not None:
            rs.update(updated)

    def _history_limit(self, limit: int, old: list[Obj]) -> None:
        idle = [rs for rs in old if not rs["spec"].get("replicas") and not (rs.get("status") or {}).get("replicas")]
        idle.sort(key=lambda r: int((r["metadata"].get("annotations") or {}).get(REVISION, "0")))
        for rs in idle[: max(0, len(idle) - limit)]:
            self.store.remove("replicasets", rs["metadata"]["namespace"], rs["metadata"]["name"])

    def _deployment_status(self, deployment: Obj, new_rs: Obj, old: list[Obj], created: bool) -> None:
        meta, spec = deployment["metadata"], deployment["spec"]
        replicas = spec.get("replicas", 1)
        everything = [new_rs, *old]

        def total(key: str) -> int:
            return sum((rs.get("status") or {}).get(key, 0) for rs in everything)

        rolling = (spec.get("strategy") or {}).get("rollingUpdate") or {}
        unavailable = 0 if (spec.get("strategy") or {}).get("type") == "Recreate" else _scaled(
            rolling.get("maxUnavailable", "25%"), replicas, round_up=False)
        new_status = new_rs.get("status") or {}
        updated, available = new_status.get("replicas", 0), total("availableReplicas")
        complete = (updated == replicas and new_status.get("availableReplicas", 0) == replicas
                    and total("replicas") == replicas)
        signature = (new_rs["metadata"]["name"], new_rs["spec"].get("replicas"), updated,
                     new_status.get("readyReplicas", 0), available, total("replicas"))
        progress = self._progress.setdefault(meta["uid"], _Progress())
        moved = progress.signature != signature
        if moved:
            progress.signature, progress.since = signature, time.monotonic()
        deadline = spec.get("progressDeadlineSeconds", 600)
        rs_name = new_rs["metadata"]["name"]

        def mutate(d: Obj) -> None:
            status = d.setdefault("status", {})
            status["observedGeneration"] = d["metadata"].get("generation", 1)
            for key, value in (("replicas", total("replicas")), ("updatedReplicas", updated),
                               ("readyReplicas", total("readyReplicas")), ("availableReplicas", available),
                               ("unavailableReplicas", max(0, replicas - available))):
                if value:
                    status[key] = value
                else:
                    status.pop(key, None)
            conditions = {c["type"]: c for c in status.get("conditions") or []}
            previous = conditions.get("Available")
            if available >= replicas - unavailable:
                conditions["Available"] = _condition("Available", "True", "MinimumReplicasAvailable",
                                                     "Deployment has minimum availability.", previous)
            else:
                conditions["Available"] = _condition("Available", "False", "MinimumReplicasUnavailable",
                                                     "Deployment does not have minimum availability.", previous)
            previous = conditions.get("Progressing")
            if complete:
                progressing = _condition("Progressing", "True", "NewReplicaSetAvailable",
                                         f'ReplicaSet "{rs_name}" has successfully progressed.', previous)
            elif created:
                progressing = _condition("Progressing", "True", "NewReplicaSetCreated",
                                         f'Created new replica set "{rs_name}"', previous, progress=True)
            elif moved or previous is None:
                progressing = _condition("Progressing", "True", "ReplicaSetUpdated",
                                         f'ReplicaSet "{rs_name}" is progressing.', previous, progress=True)
            elif (previous.get("reason") != "ProgressDeadlineExceeded"
                  and time.monotonic() - progress.since > deadline):
                progressing = _condition("Progressing", "False", "ProgressDeadlineExceeded",
                                         f'ReplicaSet "{rs_name}" has timed out progressing.', previous)
            else:
                progressing = previous
            conditions["Progressing"] = progressing
            status["conditions"] = [conditions[t] for t in ("Available", "Progressing")]

        self.store.modify("deployments", meta["namespace"], meta["name"], mutate)

    # -- replicasets ---------------------------------------------------------------------------------
    def _reconcile_replicaset(self, rs: Obj, pods: list[Obj]) -> None:
        meta = rs["metadata"]
        ns = meta["namespace"]
        for pod in pods:  # a pod that ended is replaced (restartPolicy Always rarely lets one end)
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed") and not pod["metadata"].get(
                    "deletionTimestamp"):
                self.delete_pod(ns, pod["metadata"]["name"])
        active = [p for p in pods if _active(p)]
        want = rs["spec"].get("replicas", 1)
        if len(active) < want:
            for _ in range(want - len(active)):
                self._create_pod(rs)
        elif len(active) > want:
            def rank(p: Obj) -> tuple[int, int, str]:
                scheduled = bool(p["spec"].get("nodeName"))
                return (int(scheduled), int(is_ready(p)), "~" + p["metadata"]["creationTimestamp"])

            for pod in sorted(active, key=rank)[: len(active) - want]:
                self.delete_pod(ns, pod["metadata"]["name"])
        pods, _ = self.store.list("pods", ns, lambda p: (_owner(p) or {}).get("uid") == meta["uid"])
        active = [p for p in pods if _active(p)]
        ready = sum(1 for p in active if is_ready(p))

        def mutate(r: Obj) -> None:
            status = r.setdefault("status", {})
            status["replicas"] = len(active)
            status["observedGeneration"] = r["metadata"].get("generation", 1)
            for key, value in (("fullyLabeledReplicas", len(active)), ("readyReplicas", ready),
                               ("availableReplicas", ready)):
                if value:
                    status[key] = value
                else:
                    status.pop(key, None)

        self.store.modify("replicasets", ns, meta["name"], mutate)

    def _create_pod(self, rs: Obj) -> None:
        meta, template = rs["metadata"], rs["spec"]["template"]
        tmeta = template.get("metadata") or {}
        pod: Obj = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": generate_name(meta["name"] + "-"),
                "labels": dict(tmeta.get("labels") or {}),
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": meta["name"],
                                     "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}],
            },
            "spec": copy.deepcopy(template["spec"]),
        }
        if tmeta.get("annotations"):
            pod["metadata"]["annotations"] = dict(tmeta["annotations"])
        prepare_create("pods", pod, meta["namespace"])
        pod["status"] = {"phase": "Pending", "qosClass": "BestEffort"}
        self.store.create("pods", pod)

    # -- endpoints -----------------------------------------------------------------------------------
    def _reconcile_endpoints(self) -> None:
        services, _ = self.store.list("services")
        wanted = set()
        for svc in services:
            selector = (svc.get("spec") or {}).get("selector")
            if not selector:
                continue
            ns, name = svc["metadata"]["namespace"], svc["metadata"]["name"]
            wanted.add((ns, name))
            pods, _ = self.store.list("pods", ns, lambda p, s=selector: all(
                (p["metadata"].get("labels") or {}).get(k) == v for k, v in s.items()))
            ready, not_ready = [], []
            ports: list[Obj] = []
            for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
                ip = (pod.get("status") or {}).get("podIP")
                if not ip or pod["metadata"].get("deletionTimestamp") or not _active(pod):
                    continue
                address = {"ip": ip, "nodeName": pod["spec"].get("nodeName", ""),
                           "targetRef": {"kind": "Pod", "namespace": ns, "name": pod["metadata"]["name"],
                                         "uid": pod["metadata"]["uid"]}}
                (ready if is_ready(pod) else not_ready).append(address)
                if not ports:
                    ports = [self._endpoint_port(p, pod) for p in svc["spec"].get("ports") or []]
            subset: Obj = {}
            if ready:
                subset["addresses"] = ready
            if not_ready:
                subset["notReadyAddresses"] = not_ready
            subsets = [{**subset, "ports": ports}] if subset else []
            body: Obj = {"apiVersion": "v1", "kind": "Endpoints",
                         "metadata": {"name": name, "namespace": ns, "labels": dict(svc["metadata"].get("labels")
                                                                                     or {})},
                         "subsets": subsets}
            if self.store.get("endpoints", ns, name) is None:
                self.store.create("endpoints", body)
            else:
                def mutate(e: Obj, body: Obj = body) -> None:
                    e["subsets"] = body["subsets"]
                    e["metadata"]["labels"] = body["metadata"]["labels"]

                self.store.modify("endpoints", ns, name, mutate)
        endpoints, _ = self.store.list("endpoints")
        for ep in endpoints:
            key = (ep["metadata"]["namespace"], ep["metadata"]["name"])
            if key not in wanted:
                self.store.remove("endpoints", *key)

    @staticmethod
    def _endpoint_port(port: Obj, pod: Obj) -> Obj:
        target = port.get("targetPort", port["port"])
        if isinstance(target, str):
            for c in pod["spec"].get("containers") or []:
                for p in c.get("ports") or []:
                    if p.get("name") == target:
                        target = p["containerPort"]
        out: Obj = {"port": target, "protocol": port.get("protocol", "TCP")}
        if port.get("name"):
            out["name"] = port["name"]
        return out
