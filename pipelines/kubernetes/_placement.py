"""A node's image and placement in its pod: what ``execution_job`` adds on top of the runner's config.

Pure functions over manifests (dictionaries). The runner's options (``KubernetesConfig.node_selector``,
``tolerations``, ``service_account``, ``image``) apply to every node; a node's own placement is added on top
(its node selector labels win over the runner's for the same key, its tolerations are added, its service
account replaces the runner's, ``api_access`` mounts its token), and a node asking for GPUs with
``gpu_toleration=True`` tolerates the usual ``nvidia.com/gpu`` taint.
"""

from __future__ import annotations

from typing import Any

from headwater.components.api import Resources
from headwater.components.placement import GPU_TOLERATION, Placement

Manifest = dict[str, Any]


def node_tolerations(placement: Placement | None, resources: Resources | None) -> list[Manifest]:
    """The node's own tolerations as manifests (its placement's, then the GPU one when asked for)."""
    tolerations = list(placement.tolerations) if placement else []
    if resources is not None and resources.gpu and resources.gpu_toleration and GPU_TOLERATION not in tolerations:
        tolerations.append(GPU_TOLERATION)
    return [t.to_manifest() for t in tolerations]


def apply_placement(pod: Manifest, placement: Placement | None, resources: Resources | None) -> Manifest:
    """``pod`` (a pod spec built from the runner's config) with the node's placement added, in place."""
    if placement is not None and placement.node_selector:
        pod["nodeSelector"] = {**pod.get("nodeSelector", {}), **placement.node_selector}
    tolerations = list(pod.get("tolerations", []))
    tolerations += [t for t in node_tolerations(placement, resources) if t not in tolerations]
    if tolerations:
        pod["tolerations"] = tolerations
    affinity = placement.node_affinity() if placement is not None else None
    if affinity:
        pod["affinity"] = affinity
    if placement is not None and placement.service_account:
        pod["serviceAccountName"] = placement.service_account
    if placement is not None and placement.api_access:
        pod["automountServiceAccountToken"] = True
    return pod
