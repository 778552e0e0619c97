"""A pipeline file for ``headwater run ... --runner kubernetes`` in tests (configured through the environment)."""

import os

from k8s_pipelines import diamond

pipeline = diamond(
    os.environ["HW_K8S_ROOT"],
    name=os.environ.get("HW_K8S_NAME", "k8s-demo"),
    seconds=float(os.environ.get("HW_K8S_SECONDS", "0")),
)
