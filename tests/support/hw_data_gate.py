"""A data gate without the ML stack (a Validate stand-in with the same ``gate`` hook and properties), and a
small pipeline using it: produce → check (the gate) → train (consumes the checked data) → push.
Module level, so worker processes, Kubernetes pods and compiled KFP tasks can import it."""

from __future__ import annotations

from pathlib import Path

import hw_test_components as c
from headwater.components import Input, Output, component
from headwater.components.validation import validation_gate
from headwater.metadata import types
from headwater.pipelines import Pipeline

REASON = "feature 'island' (train): drift — L-infinity distance 0.52 against span 1 is above the threshold 0.25"


@component(gate=validation_gate)
def check(examples: Input[types.Examples], anomalies: Output[types.ExampleAnomalies], block: bool = False) -> None:
    """Record a verdict the way Validate does: ``passed`` 1/0 and the reason in words."""
    anomalies.custom_properties["passed"] = 0 if block else 1
    anomalies.custom_properties["blocked_reason"] = REASON if block else ""
    (Path(anomalies.path) / "validation.json").write_text('{"passed": %s}' % ("false" if block else "true"))


def data_gated_pipeline(root: str | Path, *, block: bool = False, metadata: str | None = None) -> Pipeline:
    data = c.produce(value="rows").with_id("ingest")
    gate = check(examples=data.outputs.data, block=block).with_id("validate")
    train = c.consume(examples=data.outputs.data).with_id("train")
    push = c.use_model(model=train.outputs.model).with_id("push")
    side = c.produce(value="other").with_id("other")  # not downstream of the checked data: runs regardless
    return Pipeline(name="data-gated", root=str(root), nodes=[data, gate, train, push, side], metadata=metadata)
