"""Which data a Validate node blocked, read back from ML Metadata: resolvers that pick past spans (SpanRange,
PreviousStatistics) leave such data out."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = ["blocked_by_validation"]

_DATA_KEYS = ("examples", "statistics")  # the input keys through which data reaches its Validate


def _key(event: Any) -> str:
    return next((s.key for s in event.path.steps if s.HasField("key")), "")


def _passed(proto: Any) -> int | None:
    value = proto.custom_properties.get("passed")
    if value is None or value.WhichOneof("value") not in ("int_value", "double_value"):
        return None
    return int(value.int_value if value.WhichOneof("value") == "int_value" else value.double_value)


def blocked_by_validation(store: Any, artifact_ids: Iterable[int]) -> set[int]:
    """The ids among ``artifact_ids`` (Examples or ExampleStatistics) whose latest validation blocked them.

    Examples → (``examples``) Statistics → (``statistics``) Validate → ExampleAnomalies ``passed``: the
    newest verdict counts, so data blocked once and accepted after a rule change is accepted.
    """
    from ml_metadata.proto import metadata_store_pb2 as pb

    mlmd = store.mlmd
    blocked = set()
    for aid in artifact_ids:
        frontier = {aid}
        for _ in range(2):
            events = [e for e in mlmd.get_events_by_artifact_ids(sorted(frontier))
                      if e.type == pb.Event.INPUT and _key(e) in _DATA_KEYS]
            if not events:
                break
            executions = sorted({e.execution_id for e in events})
            produced = [e.artifact_id for e in mlmd.get_events_by_execution_ids(executions)
                        if e.type == pb.Event.OUTPUT]
            arts = mlmd.get_artifacts_by_id(sorted(set(produced)))
            verdicts = sorted((a.id, p) for a in arts if (p := _passed(a)) is not None)
            if verdicts:
                if verdicts[-1][1] == 0:
                    blocked.add(aid)
                break
            frontier = {a.id for a in arts}
            if not frontier:
                break
    return blocked
