"""What the stand-in's controllers and its kubelet share: node and image descriptions, timestamps, conditions."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

from .store import now_rfc3339

__all__ = ["Image", "Node", "Obj"]

Obj = dict[str, Any]


@dataclass(frozen=True)
class Node:
    """A schedulable node: allocatable resources, labels and taints."""

    name: str
    cpu: str = "4"
    memory: str = "16Gi"
    gpu: int = 0
    pods: int = 110
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[dict[str, str], ...] = ()


@dataclass(frozen=True)
class Image:
    """What a pullable image provides: its environment (``ENV``), entrypoint and working directory."""

    env: dict[str, str] = field(default_factory=dict)
    entrypoint: tuple[str, ...] = ()
    workdir: str | None = None
    #: The image is ``tensorflow/serving``: the kubelet runs ``headwater serve`` in its place (see tfserving.py).
    tf_serving: bool = False


def _ts_nano() -> str:
    now = time.time_ns()
    base = dt.datetime.fromtimestamp(now // 1_000_000_000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{now % 1_000_000_000:09d}Z"


def _condition(type_: str, status: str, reason: str | None = None, message: str | None = None) -> Obj:
    c: Obj = {"type": type_, "status": status, "lastProbeTime": None, "lastTransitionTime": now_rfc3339()}
    if reason:
        c["reason"] = reason
    if message:
        c["message"] = message
    return c


def _set_condition(status: Obj, cond: Obj) -> None:
    conds = status.setdefault("conditions", [])
    for i, c in enumerate(conds):
        if c["type"] == cond["type"]:
            if (c["status"], c.get("reason"), c.get("message")) == (
                cond["status"], cond.get("reason"), cond.get("message")
            ):
                return
            conds[i] = cond
            return
    conds.append(cond)
