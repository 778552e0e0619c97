"""The data validation of ingested Examples, read from ML Metadata for ``headwater lineage --explain``.

Validation is not upstream of a push (the anomalies gate the consumers; nothing consumes them), so it is
found downstream of the data: Examples → (``examples``) the execution that made ExampleStatistics from
them → (``statistics``) the execution that made ExampleAnomalies from those. Its recorded verdict and
every drift and skew value (recorded whether or not above the threshold) are returned.
"""

from __future__ import annotations

from typing import Any

from headwater.metadata.lineage.query import _pb, artifact_node, raw_store

__all__ = ["validations_of"]

_VALUES = ("passed", "anomaly_count", "warning_count", "drift", "skew", "blocked_reason")


def _key(event: Any) -> str:
    return next((s.key for s in event.path.steps if s.HasField("key")), "")


def _downstream(raw: Any, artifact_ids: list[int], key: str, type_name: str) -> list[Any]:
    pb = _pb()
    if not artifact_ids:
        return []
    executions = sorted({e.execution_id for e in raw.get_events_by_artifact_ids(artifact_ids)
                         if e.type == pb.Event.INPUT and _key(e) == key})
    if not executions:
        return []
    outputs = sorted({e.artifact_id for e in raw.get_events_by_execution_ids(executions) if e.type == pb.Event.OUTPUT})
    wanted = raw.get_artifact_type(type_name).id if outputs else None
    return [a for a in raw.get_artifacts_by_id(outputs) if a.type_id == wanted] if outputs else []


def validations_of(store: Any, examples_id: int) -> tuple[dict[str, Any], ...]:
    """Each validation of the Examples ``examples_id``: the anomalies artifact, its verdict and values."""
    raw = raw_store(store)
    try:
        statistics = _downstream(raw, [examples_id], "examples", "ExampleStatistics")
        anomalies = _downstream(raw, [a.id for a in statistics], "statistics", "ExampleAnomalies")
    except Exception:  # a store without these types: nothing was validated
        return ()
    found = []
    for proto in sorted(anomalies, key=lambda a: a.id):
        node = artifact_node(proto)
        found.append({"anomalies": node.key, "label": node.label, "uri": node.uri,
                      **{k: node.get(k) for k in _VALUES if node.get(k) is not None}})
    return tuple(found)
