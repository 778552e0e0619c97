"""TF Serving on Kubernetes for a push destination: the objects of a rollout with a canary (pure functions).

A model is served by two Deployments of the ``tensorflow/serving`` image behind one Service:

- ``<model>-stable`` serves the current version, ``<model>-canary`` (while a rollout is under way) the
  candidate. Each pins its version with TF Serving's model config file (``model_version_policy { specific {
  versions: N } }``) from a ConfigMap ``<model>-v<N>``, so a Deployment never drifts to a newer folder Push
  writes, and a version change is a change of the pod template (a rolling update with a new ReplicaSet).
- The Service ``<model>`` selects both tracks: plain Service load balancing spreads requests over ready pods,
  so the canary's traffic share is its share of the replicas (:func:`split`).
- A pod is ready when its version is loaded: the readiness probe asks ``GET
  /v1/models/<model>/versions/<N>/metadata``, which answers 200 only once version N is loaded and serving
  (``GET /v1/models/<model>`` answers 200 too for a version that failed to load, with state ``END``).
- The push destination is a folder on a PersistentVolumeClaim (mounted read-only at its own path) or a
  bucket (``gs://``, ``s3://``), which TF Serving reads natively with credentials given as environment
  (``KubernetesConfig.env``, ``env_from_secrets``).

What was rolled out is recorded on the Deployments as annotations (``headwater.dev/model-version``, the
destination, the pushed model's MLMD artifact id when given, the stable track's ``previous-version``).
"""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from headwater.components import storage
from headwater.components.api import Resources
from headwater.pipelines.kubernetes.manifests import (
    ANNOTATION_PREFIX,
    LABEL_MANAGED_BY,
    KubernetesConfig,
    Manifest,
    resource_requirements,
    scheduling,
)

__all__ = ["DEFAULT_SERVING_IMAGE", "RolloutError", "ServingSpec", "config_map", "deployment", "model_config",
           "names", "service", "split"]

DEFAULT_SERVING_IMAGE = "tensorflow/serving:2.16.1"
LABEL_SERVING = "headwater.dev/serving"
LABEL_TRACK = "headwater.dev/track"
ANNOTATION_VERSION = ANNOTATION_PREFIX + "model-version"
ANNOTATION_PREVIOUS = ANNOTATION_PREFIX + "previous-version"
ANNOTATION_DESTINATION = ANNOTATION_PREFIX + "destination"
ANNOTATION_ARTIFACT = ANNOTATION_PREFIX + "artifact-id"
ANNOTATION_REPLICAS = ANNOTATION_PREFIX + "serving-replicas"
CONFIG_DIR = "/etc/headwater-serving"
CONFIG_FILE = "models.config"
REST_PORT = 8501
GRPC_PORT = 8500
CONTAINER = "tfserving"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class RolloutError(Exception):
    """A rollout that cannot start or did not succeed; the message says what happened and what to do."""


@dataclass(frozen=True)
class ServingSpec:
    """What to serve and how: the model's name (in URLs and object names), its push destination, and the
    serving pods. A folder destination lives on the PersistentVolumeClaim ``claim``, mounted read-only at
    ``claim_mount`` (the path of the volume's root in the paths Push wrote, e.g. the pipeline root; default: the
    destination itself). ``replicas`` counts the pods of both tracks together; ``canary_percent`` is the traffic share
    asked for the canary (the share that results is the canary's share of ``replicas``: see :func:`split`).
    ``ready_timeout``: seconds a Deployment may take to become ready (its ``progressDeadlineSeconds``); a canary
    that is not ready by then is rolled back automatically."""

    model_name: str
    destination: str = ""
    claim: str | None = None
    claim_mount: str | None = None
    replicas: int = 4
    canary_percent: int = 25
    image: str = DEFAULT_SERVING_IMAGE
    ready_timeout: float = 300.0
    resources: Resources | None = None
    probe_period_seconds: int = 2
    labels: Mapping[str, str] = field(default_factory=dict)

    def check(self) -> None:
        """Raise :class:`RolloutError` naming the parameter, the rule and the fix."""
        if not self.destination:
            raise RolloutError(f"model '{self.model_name}': give its push destination (--destination: the folder "
                               "Push writes to, on a volume, or a gs:// or s3:// URL)")
        if not _NAME.match(self.model_name) or len(self.model_name) > 40:
            raise RolloutError(f"model name {self.model_name!r} cannot name Kubernetes objects: use lower-case "
                               "letters, digits and '-' (at most 40 characters, starting and ending alphanumeric)")
        if self.replicas < 1:
            raise RolloutError(f"replicas={self.replicas}: at least 1 pod must serve the model")
        if not 0 <= self.canary_percent <= 100:
            raise RolloutError(f"canary_percent={self.canary_percent}: give a share from 0 to 100")
        if self.ready_timeout < 1:
            raise RolloutError(f"ready_timeout={self.ready_timeout}: give at least 1 second")
        if storage.is_url(self.destination):
            if self.claim:
                raise RolloutError(f"destination {self.destination} is a bucket: it needs no claim (drop "
                                   f"--claim {self.claim}); give the pods its credentials with --env-from-secret")
            if not self.destination.startswith(("gs://", "s3://")):
                raise RolloutError(f"destination {self.destination}: TF Serving reads gs:// and s3:// buckets; "
                                   "copy the model to one of those or to a volume")
        elif not self.claim:
            raise RolloutError(f"destination {self.destination} is a folder: name the PersistentVolumeClaim that "
                               "holds it (--claim PVC; it is mounted read-only at the folder's own path), or push "
                               "to a bucket (gs://, s3://)")
        elif not posixpath.isabs(self.destination):
            raise RolloutError(f"destination {self.destination}: give the folder's absolute path on the volume")
        elif self.claim_mount and posixpath.relpath(self.destination, self.claim_mount).startswith(".."):
            raise RolloutError(f"destination {self.destination} is not under --claim-mount {self.claim_mount}, where "
                               f"claim {self.claim} is mounted; give the folder the volume's root is at")


def names(spec: ServingSpec) -> dict[str, str]:
    """The objects' names: ``service``, ``stable`` and ``canary`` (Deployments)."""
    return {"service": spec.model_name, "stable": f"{spec.model_name}-stable", "canary": f"{spec.model_name}-canary"}


def config_name(spec: ServingSpec, version: int) -> str:
    return f"{spec.model_name}-v{version}"


def split(replicas: int, percent: int) -> tuple[int, int, float]:
    """(stable pods, canary pods, the canary's resulting share in percent) for ``percent`` of ``replicas``.

    Requests are spread evenly over ready pods, so the share is canary/replicas: at least one canary pod
    (when ``percent`` > 0) and at least one stable pod (when ``percent`` < 100)."""
    if percent <= 0:
        return replicas, 0, 0.0
    if percent >= 100:
        return 0, replicas, 100.0
    if replicas < 2:
        raise RolloutError(f"a canary beside the stable track needs at least 2 replicas (replicas={replicas}); "
                           "give --replicas 2 or more")
    canary = min(replicas - 1, max(1, math.floor(replicas * percent / 100 + 0.5)))
    return replicas - canary, canary, 100.0 * canary / replicas


def model_config(spec: ServingSpec, version: int) -> str:
    """TF Serving's model config file serving exactly ``version`` of the model."""
    base = spec.destination.rstrip("/")
    return (
        "model_config_list {\n"
        "  config {\n"
        f'    name: "{spec.model_name}"\n'
        f'    base_path: "{base}"\n'
        '    model_platform: "tensorflow"\n'
        f"    model_version_policy {{ specific {{ versions: {version} }} }}\n"
        "  }\n"
        "}\n"
    )


def _labels(spec: ServingSpec, track: str | None = None) -> dict[str, str]:
    labels = {**spec.labels, LABEL_MANAGED_BY: "headwater", "app.kubernetes.io/name": spec.model_name,
              "app.kubernetes.io/component": "model-server", LABEL_SERVING: spec.model_name}
    if track:
        labels[LABEL_TRACK] = track
    return labels


def config_map(spec: ServingSpec, version: int, config: KubernetesConfig) -> Manifest:
    return {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": config_name(spec, version), "namespace": config.namespace,
                     "labels": _labels(spec), "annotations": {ANNOTATION_VERSION: str(version)}},
        "data": {CONFIG_FILE: model_config(spec, version)},
    }


def deployment(spec: ServingSpec, track: str, version: int, replicas: int, config: KubernetesConfig, *,
               artifact_id: int | None = None, previous: int | None = None) -> Manifest:
    """The Deployment of one track serving ``version`` on ``replicas`` pods."""
    labels = _labels(spec, track)
    annotations = {ANNOTATION_VERSION: str(version), ANNOTATION_DESTINATION: spec.destination,
                   ANNOTATION_REPLICAS: str(spec.replicas)}
    if artifact_id is not None:
        annotations[ANNOTATION_ARTIFACT] = str(artifact_id)
    if previous is not None:
        annotations[ANNOTATION_PREVIOUS] = str(previous)
    volumes: list[Manifest] = [{"name": "model-config", "configMap": {"name": config_name(spec, version)}}]
    mounts: list[Manifest] = [{"name": "model-config", "mountPath": CONFIG_DIR, "readOnly": True}]
    if spec.claim and not storage.is_url(spec.destination):
        volumes.append({"name": "models", "persistentVolumeClaim": {"claimName": spec.claim, "readOnly": True}})
        mount = (spec.claim_mount or spec.destination).rstrip("/") or "/"
        mounts.append({"name": "models", "mountPath": mount, "readOnly": True})
    container: Manifest = {
        "name": CONTAINER,
        "image": spec.image,
        "command": ["tensorflow_model_server"],
        "args": [f"--port={GRPC_PORT}", f"--rest_api_port={REST_PORT}",
                 f"--model_config_file={CONFIG_DIR}/{CONFIG_FILE}"],
        "ports": [{"name": "http", "containerPort": REST_PORT}, {"name": "grpc", "containerPort": GRPC_PORT}],
        "readinessProbe": {
            "httpGet": {"path": f"/v1/models/{spec.model_name}/versions/{version}/metadata", "port": "http"},
            "periodSeconds": spec.probe_period_seconds, "timeoutSeconds": 5, "failureThreshold": 3,
        },
        "volumeMounts": mounts,
    }
    env = [{"name": k, "value": str(v)} for k, v in sorted(config.env.items())]
    env += [{"name": k, "valueFrom": {"secretKeyRef": {"name": s, "key": key}}}
            for k, (s, key) in sorted(config.secret_env.items())]
    if env:
        container["env"] = env
    if config.env_from_secrets:
        container["envFrom"] = [{"secretRef": {"name": s}} for s in config.env_from_secrets]
    if spec.resources is not None:
        container["resources"] = resource_requirements(spec.resources)
    if config.image_pull_policy:
        container["imagePullPolicy"] = config.image_pull_policy
    # The namespace of deploy/headwater.yaml enforces Pod Security "restricted": the server runs as the
    # runner's non-root user, without privileges (TF Serving writes nothing but its logs).
    container["securityContext"] = {"allowPrivilegeEscalation": False, "runAsNonRoot": True,
                                    "capabilities": {"drop": ["ALL"]}}
    pod: Manifest = {"containers": [container], "volumes": volumes,
                     "securityContext": {"runAsNonRoot": True, "runAsUser": config.run_as_user,
                                         "runAsGroup": config.run_as_group,
                                         "seccompProfile": {"type": "RuntimeDefault"}}}
    pod.update(scheduling(config, config.service_account))
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": names(spec)[track], "namespace": config.namespace, "labels": labels,
                     "annotations": annotations},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {LABEL_SERVING: spec.model_name, LABEL_TRACK: track}},
            "progressDeadlineSeconds": max(1, math.ceil(spec.ready_timeout)),
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
            "template": {"metadata": {"labels": {**labels, ANNOTATION_VERSION: str(version)},
                                      "annotations": {ANNOTATION_VERSION: str(version)}},
                         "spec": pod},
        },
    }


def service(spec: ServingSpec, config: KubernetesConfig) -> Manifest:
    """One Service over both tracks: REST on 8501 (``http``), gRPC on 8500 (``grpc``)."""
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": names(spec)["service"], "namespace": config.namespace, "labels": _labels(spec)},
        "spec": {"selector": {LABEL_SERVING: spec.model_name},
                 "ports": [{"name": "http", "port": REST_PORT, "targetPort": "http"},
                           {"name": "grpc", "port": GRPC_PORT, "targetPort": "grpc"}]},
    }
