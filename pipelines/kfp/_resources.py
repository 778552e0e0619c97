"""KFP container resources from a node's ``with_resources``: Kubernetes quantities checked with the
kubernetes client's own parser, written as KFP's numeric fields and as quantity strings."""

from __future__ import annotations

import importlib.util
from decimal import Decimal
from pathlib import Path
from typing import Any

from headwater.components.api import Resources

__all__ = ["GPU_RESOURCE", "container_resources", "parse_quantity"]

GPU_RESOURCE = "nvidia.com/gpu"

_parse_quantity_fn: Any = None


def parse_quantity(text: str) -> Decimal:
    """A Kubernetes quantity ("500m", "2Gi") as a number, with the kubernetes client's own parser.

    The parser is a standalone module of the ``kubernetes`` package; it is loaded alone because importing
    the package imports its whole API client (seconds), which a compile does not need.
    """
    global _parse_quantity_fn
    if _parse_quantity_fn is None:
        found = importlib.util.find_spec("kubernetes")
        location = Path(next(iter(found.submodule_search_locations or []), "")) if found else None
        source = location / "utils" / "quantity.py" if location else None
        if source is not None and source.is_file():
            spec = importlib.util.spec_from_file_location("_headwater_k8s_quantity", source)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            _parse_quantity_fn = module.parse_quantity
        else:  # pragma: no cover - a kubernetes layout we do not know: import it the normal way
            from kubernetes.utils.quantity import parse_quantity as fn

            _parse_quantity_fn = fn
    return Decimal(_parse_quantity_fn(text))


def container_resources(node_id: str, res: Resources, problems: list[str]) -> dict[str, Any]:
    """KFP container resources: numeric fields (KFP 2.0-2.2) and quantity strings (later backends)."""
    out: dict[str, Any] = {}

    def add(what: str, value: str | None, numeric: str, text: str, scale: Decimal) -> None:
        if value is None:
            return
        try:
            amount = parse_quantity(str(value))
        except (ValueError, ArithmeticError):
            problems.append(
                f"node {node_id!r}: {what} {value!r} is not a Kubernetes quantity; write e.g. "
                + ("'500m' or '2'" if "cpu" in what else "'512Mi' or '2Gi'")
            )
            return
        if amount <= 0:
            problems.append(f"node {node_id!r}: {what} {value!r} must be positive")
            return
        out[numeric] = float(amount / scale)
        out[text] = str(value)

    giga = Decimal(10) ** 9
    add("cpu request", res.cpu, "cpuRequest", "resourceCpuRequest", Decimal(1))
    add("cpu limit", res.cpu_limit or res.cpu, "cpuLimit", "resourceCpuLimit", Decimal(1))
    add("memory request", res.memory, "memoryRequest", "resourceMemoryRequest", giga)
    add("memory limit", res.memory_limit or res.memory, "memoryLimit", "resourceMemoryLimit", giga)
    if res.gpu:
        if res.gpu < 0:
            problems.append(f"node {node_id!r}: gpu is {res.gpu}; use 0 or more")
        else:
            count = str(int(res.gpu))
            out["accelerator"] = {"type": GPU_RESOURCE, "count": count, "resourceType": GPU_RESOURCE,
                                  "resourceCount": count}
    return out
