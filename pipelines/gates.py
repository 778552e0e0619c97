"""Data gates: nodes whose component has a ``gate`` hook (Validate) stop the consumers of the data they
checked.

The data a gate checked are the ``Examples`` channels read by the gate or by any node upstream of it
(Ingest → Statistics → Validate: Ingest's examples). Their *consumers* are the other nodes that read one of
those channels (Transform, Evaluate). Each consumer waits for the gate; when the gate's outputs say
"blocked" (``gate(outputs)`` returns a reason) the consumer does not run — state ``blocked``, the reason
naming the feature, the rule and the values — and neither does anything downstream of it, so nothing is
pushed. The Runner (local and Kubernetes backends) calls :func:`data_gates` and :func:`gate_reason`; the
KFP compiler turns the same map into task dependencies and a condition on the gate's ``passed`` output
parameter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from headwater.components.api import Channel

__all__ = [
    "GATE_PROPERTY", "check_gates", "data_gates", "downstream_gates", "gate_output", "gate_reason", "gated_channels",
    "validation_gate_blocks",
]

#: The custom property of a gate's output that says whether the data passed (1) or is blocked (0).
GATE_PROPERTY = "passed"
_EXAMPLES = "Examples"


def _channels(node: Any) -> list[Channel]:
    out = []
    for bound in node.inputs.values():
        out += [c for c in (bound if isinstance(bound, list) else [bound]) if isinstance(c, Channel)]
    return out


def _ancestors(pipeline: Any, node_id: str) -> set[str]:
    seen: set[str] = set()
    todo = [node_id]
    while todo:
        for up in pipeline.upstream(todo.pop()):
            if up not in seen:
                seen.add(up)
                todo.append(up)
    return seen


def gated_channels(pipeline: Any, gate_id: str) -> set[tuple[str, str]]:
    """``(producer, key)`` of the Examples channels the gate ``gate_id`` checked."""
    found = set()
    for nid in {gate_id} | _ancestors(pipeline, gate_id):
        for ch in _channels(pipeline.node(nid)):
            if ch.type.TYPE_NAME == _EXAMPLES:
                found.add((ch.producer, ch.key))
    return found


def data_gates(pipeline: Any) -> dict[str, list[str]]:
    """``{consumer node: [gate nodes it waits for]}`` for every data gate of ``pipeline``."""
    gates: dict[str, list[str]] = {}
    for gate_id in pipeline.topological_order():
        if getattr(pipeline.node(gate_id).component, "gate", None) is None:
            continue
        checked = gated_channels(pipeline, gate_id)
        if not checked:
            continue
        before = _ancestors(pipeline, gate_id) | {gate_id}
        for nid in pipeline.node_ids:
            if nid in before:
                continue
            if any((ch.producer, ch.key) in checked for ch in _channels(pipeline.node(nid))):
                gates.setdefault(nid, []).append(gate_id)
    return gates


def gate_output(pipeline: Any, gate_id: str) -> str | None:
    """The output key of a gate node that carries :data:`GATE_PROPERTY` (its first output)."""
    outputs = list(pipeline.node(gate_id).component.spec.outputs)
    return outputs[0] if outputs else None


def gate_reason(node: Any, state: str, outputs: Mapping[str, Any]) -> str | None:
    """Why a finished gate node blocks its consumers (None: it does not, or it is no gate)."""
    hook = getattr(node.component, "gate", None)
    if hook is None or state not in ("done", "cached"):
        return None
    reason = hook(outputs)
    return f"data validation {node.id!r} blocked the data: {reason}" if reason else None


def check_gates(pipeline: Any) -> None:
    """Problems a gate can see before anything runs (Validate: rules on features the schema file lacks),
    raised together as a :class:`~headwater.metadata.errors.PipelineDefinitionError`."""
    from headwater.pipelines.errors import PipelineDefinitionError

    problems: list[str] = []
    for nid in pipeline.node_ids:
        check = getattr(pipeline.node(nid).component, "check_node", None)
        if check is not None:
            problems += check(pipeline.node(nid), pipeline)
    if problems:
        raise PipelineDefinitionError(pipeline.name, problems)


def downstream_gates(pipeline: Any) -> dict[str, list[str]]:
    """``{node: [gates]}`` for the consumers of gated data and every node downstream of them.

    Under KFP each such task carries the gates' ``passed`` output parameters as its condition, so none of
    them runs when a gate blocks, whatever the backend does with the descendants of a skipped task.
    """
    out = {n: list(g) for n, g in data_gates(pipeline).items()}
    for nid in pipeline.topological_order():
        for up in sorted(pipeline.upstream(nid)):
            for gate in out.get(up, []):
                if gate not in out.setdefault(nid, []):
                    out[nid].append(gate)
    return {n: g for n, g in out.items() if g}


def validation_gate_blocks(outputs: Mapping[str, Any]) -> bool:
    """Whether a gate's recorded outputs say "blocked" (:data:`GATE_PROPERTY` is 0; missing: blocked)."""
    arts = [a for group in outputs.values() for a in group]
    values = [a.custom_properties.get(GATE_PROPERTY) for a in arts]
    known = [v for v in values if v is not None]
    return not known or any(not int(v) for v in known)
