"""Roll out TF Serving for a push destination with a canary: ``rollout``, ``promote``, ``rollback``, ``status``.

The objects are those of :mod:`.serving`. A first rollout creates the stable track; later rollouts start a
canary beside it (the stable track gives up the canary's share of the pods), wait until the canary's pods are
ready (its version loaded) and leave both serving. A canary that is not ready within ``ready_timeout`` is
rolled back automatically: the canary Deployment is removed, the stable track gets its pods back and is
otherwise untouched, and the verdict names the pod and why it is not ready. ``promote`` rolls the stable
track to the canary's version (a rolling update, waited for) and removes the canary; ``rollback`` removes the
canary, or — with no canary — rolls the stable track back to the version it served before (like ``kubectl
rollout undo``). Every call returns a :class:`RolloutOutcome` whose ``message`` says what was done and where
to look next.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from headwater.components import storage
from headwater.pipelines.kubernetes._api import KubeApi, load_api_client
from headwater.pipelines.kubernetes._diagnose import not_ready_reason
from headwater.pipelines.kubernetes.manifests import KubernetesConfig
from headwater.pipelines.kubernetes.serving import (
    ANNOTATION_DESTINATION,
    ANNOTATION_PREVIOUS,
    ANNOTATION_REPLICAS,
    ANNOTATION_VERSION,
    LABEL_SERVING,
    LABEL_TRACK,
    RolloutError,
    ServingSpec,
    config_map,
    config_name,
    deployment,
    names,
    service,
    split,
)

__all__ = ["RolloutOutcome", "Serving", "destination_versions"]

Obj = dict[str, Any]


@dataclass(frozen=True)
class RolloutOutcome:
    """How a command came out: ``ok``, what is served now, and the message to show."""

    ok: bool
    message: str
    stable_version: int | None = None
    canary_version: int | None = None


def destination_versions(destination: str) -> list[int]:
    """The versions under a push destination (``<destination>/<N>/saved_model.pb``), oldest first."""
    try:
        found = storage.glob(storage.join(destination, "*", "saved_model.pb"))
    except Exception as exc:
        raise RolloutError(f"cannot list the versions under {destination} ({type(exc).__name__}: {exc}); give "
                           "the version to serve with --version N") from exc
    versions = set()
    for path in found:
        folder = path.rstrip("/").split("/")[-2]
        if folder.isascii() and folder.isdigit():
            versions.add(int(folder))
    return sorted(versions)


def _version(obj: Obj | None) -> int | None:
    value = ((obj or {}).get("metadata", {}).get("annotations") or {}).get(ANNOTATION_VERSION)
    return int(value) if value and value.isdigit() else None


class Serving:
    """The serving objects of one model in one namespace, through the Kubernetes API."""

    def __init__(self, spec: ServingSpec, config: KubernetesConfig | None = None, *,
                 note: Callable[[str], None] | None = None, poll_seconds: float = 0.25) -> None:
        self.spec = spec
        self.config = config or KubernetesConfig()
        self.names = names(spec)
        self.poll_seconds = poll_seconds
        self._note = note or (lambda message: None)
        from kubernetes import client

        self._client = load_api_client(self.config)
        self._api = KubeApi(self._client, self.config, threading.Event(), self._note)
        self.apps = client.AppsV1Api(self._client)
        self.core = client.CoreV1Api(self._client)
        self.ns = self.config.namespace

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Serving:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------------ API helpers
    def _read(self, track: str) -> Obj | None:
        from kubernetes.client.exceptions import ApiException

        try:
            return self._api.call(f"read deployment {self.names[track]}", self.apps.read_namespaced_deployment,
                                  self.names[track], self.ns)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise

    def _apply(self, manifest: Obj, kind: str) -> Obj:
        """Create, or replace what exists (keeping its resourceVersion: a concurrent change is a conflict)."""
        from kubernetes.client.exceptions import ApiException

        api = self.apps if kind == "deployment" else self.core
        name = manifest["metadata"]["name"]
        try:
            return self._api.call(f"create {kind} {name}", getattr(api, f"create_namespaced_{kind}"), self.ns,
                                  manifest)
        except ApiException as exc:
            if exc.status != 409:
                raise
        current = self._api.call(f"read {kind} {name}", getattr(api, f"read_namespaced_{kind}"), name, self.ns)
        manifest = {**manifest, "metadata": {**manifest["metadata"],
                                             "resourceVersion": current["metadata"]["resourceVersion"]}}
        return self._api.call(f"replace {kind} {name}", getattr(api, f"replace_namespaced_{kind}"), name, self.ns,
                              manifest)

    def _scale(self, track: str, replicas: int) -> None:
        current = self._read(track)
        if current is None or current["spec"].get("replicas") == replicas:
            return
        current["spec"]["replicas"] = replicas
        self._api.call(f"scale deployment {self.names[track]}", self.apps.replace_namespaced_deployment,
                       self.names[track], self.ns, current)

    def _delete(self, track: str) -> None:
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        try:
            self._api.call(f"delete deployment {self.names[track]}", self.apps.delete_namespaced_deployment,
                           self.names[track], self.ns, body=client.V1DeleteOptions(propagation_policy="Background"))
        except ApiException as exc:
            if exc.status != 404:
                raise

    def _tidy_configs(self) -> None:
        """Delete the version ConfigMaps no Deployment uses any more."""
        from kubernetes.client.exceptions import ApiException

        used = {config_name(self.spec, v) for v in (_version(self._read("stable")), _version(self._read("canary")))
                if v is not None}
        maps = self._api.call("list configmaps", self.core.list_namespaced_config_map, self.ns,
                              label_selector=f"{LABEL_SERVING}={self.spec.model_name}")
        for cm in maps.get("items") or []:
            if cm["metadata"]["name"] not in used:
                try:
                    self._api.call("delete configmap", self.core.delete_namespaced_config_map,
                                   cm["metadata"]["name"], self.ns)
                except ApiException as exc:
                    if exc.status != 404:
                        raise

    def _pods(self, track: str) -> list[Obj]:
        selector = f"{LABEL_SERVING}={self.spec.model_name},{LABEL_TRACK}={track}"
        return list(self._api.call("list pods", self.core.list_namespaced_pod, self.ns,
                                   label_selector=selector).get("items") or [])

    def _wait_ready(self, track: str) -> str | None:
        """Wait until the track's Deployment has rolled out (all pods updated and ready); None, or why not."""
        deadline = time.monotonic() + self.spec.ready_timeout
        while True:
            dep = self._read(track)
            if dep is None:
                return f"Deployment {self.names[track]} disappeared"
            status, spec = dep.get("status") or {}, dep["spec"]
            want = spec.get("replicas", 1)
            if (status.get("observedGeneration", 0) >= dep["metadata"].get("generation", 1)
                    and status.get("updatedReplicas", 0) == want and status.get("readyReplicas", 0) == want
                    and status.get("replicas", 0) == want):
                return None
            conditions = {c["type"]: c for c in status.get("conditions") or []}
            exceeded = conditions.get("Progressing", {}).get("reason") == "ProgressDeadlineExceeded"
            if exceeded or time.monotonic() >= deadline:
                return self._why_not_ready(track)
            time.sleep(self.poll_seconds)

    def _why_not_ready(self, track: str) -> str:
        from kubernetes.client.exceptions import ApiException

        pods = self._pods(track)
        events = self._api.call("list events", self.core.list_namespaced_event, self.ns).get("items") or []
        stale = [p for p in pods if not p["metadata"].get("deletionTimestamp")
                 and not any(c.get("type") == "Ready" and c.get("status") == "True"
                             for c in (p.get("status") or {}).get("conditions") or [])]
        if not stale:
            return f"no pod of Deployment {self.names[track]} became ready"
        pod = stale[0]
        reason = not_ready_reason(pod, events)
        try:
            log = self.core.read_namespaced_pod_log(pod["metadata"]["name"], self.ns, tail_lines=3)
        except (ApiException, OSError, ValueError):
            log = None
        tail = ""
        if isinstance(log, str) and log.strip():
            tail = "; its log ends: " + " | ".join(line.strip() for line in log.strip().splitlines()[-3:])
        more = f" ({len(stale) - 1} more pod(s) not ready)" if len(stale) > 1 else ""
        return reason + more + tail

    def _adopt(self) -> None:
        """Take what the spec leaves open (destination, claim, image, replicas) from the stable Deployment, so
        that promote, rollback and status need only the model's name."""
        stable = self._read("stable")
        if stable is None or self.spec.destination:
            if self.spec.destination:
                self.spec.check()
            return
        annotations = stable["metadata"].get("annotations") or {}
        pod = stable["spec"]["template"]["spec"]
        claim = next((v["persistentVolumeClaim"]["claimName"] for v in pod.get("volumes") or []
                      if "persistentVolumeClaim" in v), None)
        mount = next((m["mountPath"] for m in pod["containers"][0].get("volumeMounts") or []
                      if m["name"] == "models"), None)
        replicas = annotations.get(ANNOTATION_REPLICAS, "")
        self.spec = dataclasses.replace(
            self.spec, destination=annotations.get(ANNOTATION_DESTINATION, ""), claim=claim, claim_mount=mount,
            image=pod["containers"][0]["image"],
            replicas=int(replicas) if replicas.isdigit() else self.spec.replicas)
        self.spec.check()

    # ------------------------------------------------------------------------------ commands
    def status(self) -> RolloutOutcome:
        stable, canary = self._read("stable"), self._read("canary")
        if stable is None and canary is None:
            return RolloutOutcome(False, f"model '{self.spec.model_name}' is not served in namespace {self.ns} "
                                         f"(no Deployment {self.names['stable']}); start with headwater k8s "
                                         "rollout")
        lines = [f"model '{self.spec.model_name}' in namespace {self.ns}, Service {self.names['service']} "
                 f"(port 8501 REST, 8500 gRPC):"]
        total = sum(d["spec"].get("replicas", 0) for d in (stable, canary) if d is not None)
        for track, dep in (("stable", stable), ("canary", canary)):
            if dep is None:
                continue
            status = dep.get("status") or {}
            want = dep["spec"].get("replicas", 0)
            share = 100.0 * want / total if total else 0.0
            lines.append(f"  {track}: version {_version(dep)} on {status.get('readyReplicas', 0)}/{want} ready "
                         f"pods (~{share:.0f}% of requests), Deployment {self.names[track]}")
        hint = ("promote it with headwater k8s promote, or roll it back with headwater k8s rollback"
                if canary is not None else "roll out a new version with headwater k8s rollout")
        lines.append(f"next: {hint}; pods: kubectl -n {self.ns} get pods -l {LABEL_SERVING}={self.spec.model_name}")
        return RolloutOutcome(True, "\n".join(lines), _version(stable), _version(canary))

    def rollout(self, version: int | None = None, *, artifact_id: int | None = None) -> RolloutOutcome:
        """Serve ``version`` (default: the newest under the destination): as the stable track on a first
        rollout, otherwise as a canary beside it."""
        self.spec.check()
        spec, model = self.spec, self.spec.model_name
        visible = storage.is_url(spec.destination) or _exists(spec.destination)
        if version is None and not visible:
            raise RolloutError(f"push destination {spec.destination} is not a folder on this machine (it is on "
                               f"claim {spec.claim}, in the cluster): give the version to serve with --version N")
        if visible:
            versions = destination_versions(spec.destination)
            if not versions:
                raise RolloutError(f"push destination {spec.destination} holds no version (no <N>/saved_model.pb "
                                   "under it): nothing to serve; run the pipeline's Push first, or give the "
                                   "destination Push writes to")
            if version is None:
                version = versions[-1]
            elif version not in versions:
                raise RolloutError(f"push destination {spec.destination} has no version {version} (it holds "
                                   f"{', '.join(map(str, versions))}); give one of those with --version")
        stable = self._read("stable")
        self._apply(config_map(spec, version, self.config), "config_map")
        self._apply(service(spec, self.config), "service")
        if stable is None:
            self._apply(deployment(spec, "stable", version, spec.replicas, self.config, artifact_id=artifact_id),
                        "deployment")
            why = self._wait_ready("stable")
            if why is not None:
                self._delete("stable")
                self._tidy_configs()
                return RolloutOutcome(False, f"rollout of model '{model}' version {version} failed: not ready within "
                                             f"{spec.ready_timeout:g}s: {why}. The Deployment was removed; nothing "
                                             f"serves the model. Look at the pod's log and events (kubectl -n "
                                             f"{self.ns} describe pods -l {LABEL_SERVING}={model}).")
            return RolloutOutcome(True, f"model '{model}' version {version} is served by {spec.replicas} pod(s) of "
                                        f"Deployment {self.names['stable']} behind Service {self.names['service']} "
                                        f"(REST: http://{self.names['service']}.{self.ns}:8501/v1/models/{model}). "
                                        "next: roll out a newer version as a canary with headwater k8s rollout",
                                  version, None)
        current = _version(stable)
        if current == version:
            self._delete("canary")
            self._scale("stable", spec.replicas)
            return RolloutOutcome(True, f"model '{model}' version {version} is already the stable version; nothing "
                                        "to roll out", version, None)
        stable_pods, canary_pods, share = split(spec.replicas, spec.canary_percent)
        asked = f" (asked {spec.canary_percent}%: with {spec.replicas} replicas a pod is "\
                f"{100 / spec.replicas:.0f}% of requests)" if abs(share - spec.canary_percent) >= 0.5 else ""
        self._apply(deployment(spec, "canary", version, canary_pods, self.config, artifact_id=artifact_id),
                    "deployment")
        why = self._wait_ready("canary")
        if why is not None:
            self._delete("canary")
            self._scale("stable", spec.replicas)
            self._tidy_configs()
            return RolloutOutcome(False, f"canary of model '{model}' version {version} did not become ready within "
                                         f"{spec.ready_timeout:g}s: {why}. Rolled back automatically: the canary is "
                                         f"removed, the stable track still serves version {current} on "
                                         f"{spec.replicas} pod(s); nothing was promoted. Look at the pushed model "
                                         f"({spec.destination}/{version}) and the pod's events (kubectl -n {self.ns} "
                                         "get events --field-selector involvedObject.kind=Pod).",
                                  current, None)
        self._scale("stable", stable_pods)
        return RolloutOutcome(True, f"canary of model '{model}': version {version} on {canary_pods} pod(s) beside "
                                    f"version {current} on {stable_pods}: ~{share:.0f}% of requests go to the "
                                    f"canary{asked}. next: compare them, then headwater k8s promote {model} (version "
                                    f"{version} for all) or headwater k8s rollback {model}", current, version)

    def promote(self) -> RolloutOutcome:
        """The canary's version becomes the stable version on all pods; the canary is removed."""
        self._adopt()
        model = self.spec.model_name
        canary, stable = self._read("canary"), self._read("stable")
        if canary is None or stable is None:
            raise RolloutError(f"model '{model}' has no canary to promote in namespace {self.ns}; start one with "
                               "headwater k8s rollout")
        status = canary.get("status") or {}
        if status.get("readyReplicas", 0) < canary["spec"].get("replicas", 1):
            raise RolloutError(f"the canary of model '{model}' (version {_version(canary)}) is not ready "
                               f"({status.get('readyReplicas', 0)}/{canary['spec'].get('replicas', 1)} pods); "
                               "promote only a ready canary, or remove it with headwater k8s rollback")
        version, previous = _version(canary), _version(stable)
        assert version is not None
        artifact = (canary["metadata"].get("annotations") or {}).get("headwater.dev/artifact-id")
        self._apply(deployment(self.spec, "stable", version, self.spec.replicas, self.config, previous=previous,
                               artifact_id=int(artifact) if artifact else None), "deployment")
        why = self._wait_ready("stable")
        if why is not None:
            assert previous is not None
            self._apply(deployment(self.spec, "stable", previous, self.spec.replicas, self.config), "deployment")
            return RolloutOutcome(False, f"promoting version {version} of model '{model}' failed: the stable track "
                                         f"did not become ready within {self.spec.ready_timeout:g}s: {why}. The stable "
                                         f"track is set back to version {previous}; the canary is kept. Look at: "
                                         f"headwater k8s status {model}", previous, version)
        self._delete("canary")
        self._tidy_configs()
        return RolloutOutcome(True, f"promoted: model '{model}' version {version} is now stable on "
                                    f"{self.spec.replicas} pod(s) (was version {previous}); the canary is removed. "
                                    f"next: headwater k8s rollback {model} goes back to version {previous}",
                              version, None)

    def rollback(self) -> RolloutOutcome:
        """Remove the canary; with no canary, serve the stable track's previous version again."""
        self._adopt()
        model = self.spec.model_name
        canary, stable = self._read("canary"), self._read("stable")
        if stable is None:
            raise RolloutError(f"model '{model}' is not served in namespace {self.ns}: nothing to roll back")
        current = _version(stable)
        if canary is not None:
            self._delete("canary")
            self._scale("stable", self.spec.replicas)
            self._tidy_configs()
            return RolloutOutcome(True, f"rolled back: the canary (version {_version(canary)}) of model '{model}' is "
                                        f"removed; version {current} serves all requests on {self.spec.replicas} "
                                        f"pod(s). next: headwater k8s status {model}", current, None)
        previous = (stable["metadata"].get("annotations") or {}).get(ANNOTATION_PREVIOUS)
        if not previous:
            raise RolloutError(f"model '{model}' has no canary and no earlier stable version to go back to "
                               f"(version {current} was the first rollout)")
        back = int(previous)
        self._apply(config_map(self.spec, back, self.config), "config_map")
        self._apply(deployment(self.spec, "stable", back, self.spec.replicas, self.config), "deployment")
        why = self._wait_ready("stable")
        self._tidy_configs()
        if why is not None:
            return RolloutOutcome(False, f"rolling model '{model}' back to version {back} did not finish within "
                                         f"{self.spec.ready_timeout:g}s: {why}. Look at: headwater k8s status {model}",
                                  back, None)
        return RolloutOutcome(True, f"rolled back: model '{model}' serves version {back} again on "
                                    f"{self.spec.replicas} pod(s) (was version {current}). next: headwater k8s "
                                    f"status {model}", back, None)


def _exists(path: str) -> bool:
    import os

    return os.path.isdir(path)
