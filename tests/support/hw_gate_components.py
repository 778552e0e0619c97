"""Test components with an evaluation-style blessing and a push-style gate, plus a small pipeline using them
(module level, so worker processes and compiled KFP tasks can import them)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import hw_test_components as c
from headwater.components import Input, Output, Param, ResolverContext, component, resolver
from headwater.metadata import Artifact, types
from headwater.metadata.errors import PushRefusedError
from headwater.pipelines import Pipeline


@component
def bless(model: Input[types.Model], blessing: Output[types.ModelBlessing], score: float = 1.0,
          threshold: float = 0.5) -> None:
    """Bless the model when ``score >= threshold`` (TFX's marker file and ``blessed`` property)."""
    blessed = score >= threshold
    (Path(blessing.path) / ("BLESSED" if blessed else "NOT_BLESSED")).write_text("")
    blessing.custom_properties["blessed"] = int(blessed)
    blessing.custom_properties["blessing_message"] = (
        f"score {score} {'meets' if blessed else 'is below'} the threshold {threshold}")
    blessing.custom_properties["current_model_id"] = model.id or 0
    print(f"score {score} vs threshold {threshold}: {'blessed' if blessed else 'not blessed'}")


def _not_blessed(inputs: dict[str, list[Artifact]], parameters: dict[str, Any]) -> str | None:
    arts = inputs.get("blessing") or []
    if not arts or not arts[0].custom_properties.get("blessed"):
        return "the model is not blessed"
    return None


def _record_skip(outputs: dict[str, Artifact], reason: str) -> None:
    outputs["pushed"].custom_properties["pushed"] = 0


@component(skip_if=_not_blessed, on_skip=_record_skip)
def push(model: Input[types.Model], blessing: Input[types.ModelBlessing], pushed: Output[types.PushedModel]) -> None:
    """Copy the model; refuses without a BLESSED marker (the gate's second half)."""
    if not (Path(blessing.path) / "BLESSED").exists():
        raise PushRefusedError(f"blessing {blessing.uri} is not BLESSED; refusing to push")
    shutil.copy(Path(model.path) / "model.txt", Path(pushed.path) / "model.txt")
    pushed.custom_properties["pushed"] = 1
    pushed.custom_properties["pushed_destination"] = pushed.uri
    pushed.custom_properties["pushed_version"] = "1"


def gated_pipeline(root: str, *, metadata: str | None = None, score: float = 0.9) -> Pipeline:
    """ingest + other -> train -> evaluate -> push, with runtime parameters of every KFP type."""
    ingest = c.produce(seconds=Param("delay", default=0.0, description="seconds to wait"),
                       value=Param("greeting", default="hello")).with_id("ingest")
    other = c.produce(value="world").with_id("other_data").with_caching(False)
    train = c.join(a=ingest.outputs.data, b=other.outputs.data).with_id("train") \
        .with_resources(cpu="500m", memory="1Gi", gpu=1, cpu_limit="2").with_retries(2)
    evaluate = bless(model=train.outputs.out, score=score, threshold=Param("threshold", default=0.5)) \
        .with_id("evaluate").with_timeout(600)
    described = c.describe(values=Param("values", default=[1, 2]), options=Param("options", default={"lr": 0.5}),
                           flag=Param("flag", default=True)).with_id("describe")
    pushed = push(model=train.outputs.out, blessing=evaluate.outputs.blessing).with_id("push")
    return Pipeline(name="kfp-demo", root=root, nodes=[ingest, other, train, evaluate, described, pushed],
                    metadata=metadata, description="Test pipeline for the KFP compiler.")



@resolver(outputs={"blessing": types.ModelBlessing})
def latest_blessing(ctx: ResolverContext) -> dict:
    """The newest ModelBlessing the pipeline's ``evaluate`` node made (a selection, like LatestBlessedModel's)."""
    execs = ctx.store.executions_in_context("node", f"{ctx.pipeline_name}.evaluate")
    events = ctx.store.events_by_execution([e.id for e in execs])
    ids = sorted({aid for evs in events.values() for kind, _, _, aid in evs if kind == "OUTPUT"})
    return {"blessing": ctx.store.get_artifacts(ids[-1:])}
