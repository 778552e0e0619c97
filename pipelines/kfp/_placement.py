"""A node's placement in KFP's Kubernetes platform spec (``KubernetesExecutorConfig``).

What KFP v2 can say per task, and how headwater writes it:

* node selector → ``nodeSelector.labels``;
* tolerations (the placement's, and ``nvidia.com/gpu`` when ``gpu_toleration=True``) → ``tolerations``;
* node pool → ``nodeAffinity`` (one required term: the pool label ``In`` [pool]);
* GPUs → the container's ``resources.accelerator`` in the pipeline spec (set by the compiler).

A per-task service account cannot be said: KFP runs every task of a run under the run's service account
(chosen when the run is submitted), so a node's ``service_account`` is reported as a compile warning.
"""

from __future__ import annotations

from typing import Any

from headwater.components.api import Node
from headwater.pipelines.kubernetes._placement import node_tolerations


def platform_placement(node: Node, warnings: list[str]) -> dict[str, Any]:
    """The ``KubernetesExecutorConfig`` fields placing ``node`` (empty when it says nothing)."""
    placement = node.effective_placement
    out: dict[str, Any] = {}
    if placement is not None and placement.node_selector:
        out["nodeSelector"] = {"labels": dict(sorted(placement.node_selector.items()))}
    tolerations = node_tolerations(placement, node.resources)
    if tolerations:
        out["tolerations"] = tolerations
    if placement is not None and placement.node_pool:
        out["nodeAffinity"] = [{"matchExpressions": [
            {"key": placement.node_pool_label, "operator": "In", "values": [placement.node_pool]}]}]
    if placement is not None and placement.service_account:
        warnings.append(
            f"node {node.id!r}: service account {placement.service_account!r} is not set per task under KFP (a "
            "run's tasks all use the run's service account, chosen when the run is submitted); give the run "
            "that service account, or run the pipeline with the Kubernetes runner"
        )
    return out
