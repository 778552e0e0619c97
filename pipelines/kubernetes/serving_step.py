"""``RolloutServing``: the pipeline step after Push that rolls the pushed version out on Kubernetes.

Wired after a Push, it serves the version Push wrote with TF Serving through :class:`~.rollout.Serving`: as
the stable track on the first rollout, otherwise as a canary beside the stable track, with the traffic share
asked for. It runs wherever the runner runs its nodes (in a pod of the KubernetesRunner, with a service
account allowed to manage Deployments, Services and ConfigMaps; or locally with a kubeconfig). A push that did
not happen (not blessed, or not infra-blessed) skips it, so nothing unblessed is ever rolled out. A canary
that does not become ready is rolled back automatically (the stable track untouched) and the node fails with
the verdict, which ``headwater run`` prints. ``promote`` and ``rollback`` stay decisions a person makes after
comparing the tracks: ``headwater k8s promote|rollback MODEL``.
"""

from __future__ import annotations

import json
import posixpath
from pathlib import Path
from typing import Any

from headwater.components import ExecutionContext, Input, Output, component
from headwater.components.errors import ExecutionError
from headwater.metadata import types
from headwater.metadata.artifact import Artifact
from headwater.metadata.conventions import (
    A_PUSH_SKIPPED,
    A_PUSHED,
    A_PUSHED_DESTINATION,
    A_PUSHED_VERSION,
    A_ROLLOUT_MESSAGE,
    TYPE_SERVING_ROLLOUT,
)
from headwater.pipelines.kubernetes.serving import DEFAULT_SERVING_IMAGE

__all__ = ["RolloutServing", "ServingRollout"]

ROLLOUT_FILE = "rollout.json"


class ServingRollout(Artifact):
    """What a RolloutServing step did: custom properties ``rollout_message``, ``model_name``, ``namespace``,
    ``stable_version`` and ``canary_version``; the same as JSON in ``rollout.json``."""

    TYPE_NAME = TYPE_SERVING_ROLLOUT
    __slots__ = ()


def _skip_unless_pushed(inputs: dict[str, list[Artifact]], parameters: dict[str, Any]) -> str | None:
    del parameters
    pushed = (inputs.get("pushed_model") or [None])[0]
    if pushed is None:
        return "no PushedModel: nothing to roll out"
    if pushed.custom_properties.get(A_PUSHED) not in (1, True):
        why = pushed.custom_properties.get(A_PUSH_SKIPPED)
        return "nothing was pushed" + (f" ({why})" if why else "") + ": the serving tracks are left as they are"
    return None


def _record(rollout: Artifact, message: str, **fields: Any) -> None:
    rollout.custom_properties[A_ROLLOUT_MESSAGE] = message
    for key, value in fields.items():
        if value is not None:
            rollout.custom_properties[key] = value
    Path(rollout.path, ROLLOUT_FILE).write_text(json.dumps({"message": message, **fields}, indent=2) + "\n")


def _on_skip(outputs: dict[str, Artifact], reason: str) -> None:
    _record(outputs["rollout"], f"not rolled out: {reason}")


@component(version="1", skip_if=_skip_unless_pushed, on_skip=_on_skip)
def RolloutServing(
    *,
    pushed_model: Input[types.PushedModel],
    rollout: Output[ServingRollout],
    model_name: str,
    namespace: str = "default",
    claim: str = "",
    claim_mount: str = "",
    replicas: int = 4,
    canary_percent: int = 25,
    image: str = DEFAULT_SERVING_IMAGE,
    ready_timeout: float = 300.0,
    kubeconfig: str = "",
    context: str = "",
    ctx: ExecutionContext,
) -> None:
    """Serve the version ``pushed_model`` names with TF Serving on Kubernetes: the stable track on a first
    rollout, else a canary taking ``canary_percent`` of the requests (see ``headwater k8s rollout``).

    A folder destination is read from the PersistentVolumeClaim ``claim`` (mounted at ``claim_mount``, the
    path of the volume's root; default: the destination itself); gs:// and s3:// destinations need none."""
    from headwater.pipelines.kubernetes.manifests import KubernetesConfig
    from headwater.pipelines.kubernetes.rollout import Serving
    from headwater.pipelines.kubernetes.serving import RolloutError, ServingSpec

    props = pushed_model.custom_properties
    where, version = str(props.get(A_PUSHED_DESTINATION) or ""), str(props.get(A_PUSHED_VERSION) or "")
    if not where or not version.isdigit():
        raise ExecutionError(f"node {ctx.node_id!r}: input pushed_model ({pushed_model.uri}) records no pushed "
                             f"destination/version ({A_PUSHED_DESTINATION}={where!r}, {A_PUSHED_VERSION}={version!r});"
                             " wire it to a Push's pushed_model")
    destination = where.rstrip("/").rsplit("/", 1)[0] if "://" in where else posixpath.dirname(where.rstrip("/"))
    spec = ServingSpec(model_name=model_name, destination=destination, claim=claim or None,
                       claim_mount=claim_mount or None, replicas=replicas, canary_percent=canary_percent,
                       image=image, ready_timeout=ready_timeout)
    config = KubernetesConfig(namespace=namespace, kubeconfig=kubeconfig or None, context=context or None)
    try:
        spec.check()
        with Serving(spec, config, note=lambda message: print(f"RolloutServing: {message}", flush=True)) as serving:
            outcome = serving.rollout(int(version), artifact_id=pushed_model.id)
    except RolloutError as exc:
        raise ExecutionError(f"node {ctx.node_id!r}: {exc}") from None
    print(f"RolloutServing: {outcome.message}", flush=True)
    if not outcome.ok:
        raise ExecutionError(f"node {ctx.node_id!r}: {outcome.message}")
    _record(rollout, outcome.message, model_name=model_name, namespace=namespace,
            stable_version=outcome.stable_version, canary_version=outcome.canary_version)
