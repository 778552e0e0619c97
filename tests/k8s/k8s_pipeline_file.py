"""A pipeline file for ``headwater run ... --runner kubernetes`` in tests (configured through the environment)."""

import dataclasses
import os

from k8s_pipelines import diamond

pipeline = diamond(
    os.environ["HW_K8S_ROOT"],
    name=os.environ.get("HW_K8S_NAME", "k8s-demo"),
    seconds=float(os.environ.get("HW_K8S_SECONDS", "0")),
)
if os.environ.get("HW_K8S_JOIN_IMAGE"):  # a node in its own image (the orchestrator reads it from this file)
    pipeline = dataclasses.replace(pipeline, nodes=[
        n.with_image(os.environ["HW_K8S_JOIN_IMAGE"]) if n.id == "j" else n for n in pipeline.nodes])
