"""Executors shared by tasks: one per distinct (image, placement, resources, deadline).

KFP keeps a task's container — image, command, arguments, environment, resources — in an *executor*
(``deploymentSpec.executors``), and the Kubernetes platform spec places executors, not tasks (node
selector, tolerations, affinity, ``activeDeadlineSeconds``). headwater's task command is the same for every
node (the node id, the run id and the output-parameter requests are the task's input parameters, read
through ``{{$.inputs.parameters[...]}}`` placeholders; the plan is the whole pipeline's), so tasks whose
container and platform config are equal share one executor. An executor is named after its image
(``exec-<image name>``; ``-2``, ``-3`` … for the same image with another placement or resources).
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["ExecutorTable"]


def _image_name(image: str) -> str:
    """``registry.example/team/penguin-gpu:0.1`` → ``penguin-gpu`` (lowercase letters, digits, '-')."""
    repo = image.split("@", 1)[0]
    last = repo.rsplit("/", 1)[-1]
    last = last.split(":", 1)[0]
    return re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", last.lower())).strip("-") or "task"


class ExecutorTable:
    """Executors and their platform configs, deduplicated; :meth:`label` gives a task's executor label."""

    def __init__(self) -> None:
        self.executors: dict[str, Any] = {}
        self.platform: dict[str, Any] = {}
        self._labels: dict[str, str] = {}

    def label(self, container: dict[str, Any], config: dict[str, Any]) -> str:
        key = json.dumps([container, config], sort_keys=True)
        found = self._labels.get(key)
        if found is not None:
            return found
        base = f"exec-{_image_name(container['image'])}"
        name, n = base, 1
        while name in self.executors:
            n += 1
            name = f"{base}-{n}"
        self._labels[key] = name
        self.executors[name] = {"container": container}
        if config:
            self.platform[name] = config
        return name
