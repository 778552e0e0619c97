"""penguin — multi-class classification of the real Palmer penguins data: Ingest, Transform, Train, Evaluate,
InfraValidate, Push.

Run it from anywhere with ``headwater run pipeline.py``: every path below is relative to this file's
folder. Artifacts and the metadata store go to ``runs/``; a model that clears the bar in
``configs/evaluation.yaml`` and that a sandboxed model server loads and answers (InfraValidate) is pushed
to ``serving/<version>/``; ``headwater serve serving/ --model-name penguin --web web/`` serves it.

    Ingest (data/*.csv) ─► Transform (models/preprocessing.py) ─► Train (models/model.py) ─► Evaluate ─► Push
                                                  LatestBlessedModel (the baseline) ────────────┘        ▲
                                                  Train + Ingest's examples ─► InfraValidate ────────────┘
"""

from __future__ import annotations

from pathlib import Path

import yaml
from headwater.components import (
    EvalConfig,
    Evaluate,
    InfraValidate,
    Ingest,
    LatestBlessedModel,
    Push,
    Train,
    Transform,
)
from headwater.pipelines import Param, Pipeline

HERE = Path(__file__).resolve().parent
PIPELINE_NAME = "penguin"
PIPELINE_ROOT = HERE / "runs"  # for Kubernetes: shared storage every pod sees (gs://..., s3://..., a volume)
DATA = HERE / "data"
MODELS = HERE / "models"
SERVING = HERE / "serving"

TRAINING = yaml.safe_load((HERE / "configs" / "training.yaml").read_text())
EVALUATION = EvalConfig.from_yaml(HERE / "configs" / "evaluation.yaml")

# Runtime parameters: defaults here, per run with --param name=value.
train_steps = Param("train_steps", default=int(TRAINING["train_steps"]), description="training steps")
eval_steps = Param("eval_steps", default=int(TRAINING["eval_steps"]), description="validation steps")

ingest = Ingest(input_base=str(DATA), label="species")
transform = Transform(
    examples=ingest.outputs.examples,
    schema=ingest.outputs.schema,
    module_file=str(MODELS / "preprocessing.py"),
)
train = Train(
    examples=transform.outputs.transformed_examples,
    transform_graph=transform.outputs.transform_graph,
    schema=ingest.outputs.schema,
    module_file=str(MODELS / "model.py"),
    train_steps=train_steps,
    eval_steps=eval_steps,
    custom_config=dict(TRAINING.get("model") or {}),
    seed=int(TRAINING["seed"]),
)
# The baseline: the newest model this pipeline blessed before (none on the first run).
baseline = LatestBlessedModel(exclude=train.outputs.model).with_id("baseline")
evaluate = Evaluate(
    examples=ingest.outputs.examples,
    model=train.outputs.model,
    baseline_model=baseline.outputs.model,
    eval_config=EVALUATION,
)
# Load the candidate the way `headwater serve` will, in a sandbox, and send it a few real examples.
infra_validate = InfraValidate(model=train.outputs.model, examples=ingest.outputs.examples,
                               signature_names=["serving_default", "classify_species"])
push = Push(model=train.outputs.model, blessing=evaluate.outputs.blessing,
            infra_blessing=infra_validate.outputs.blessing, destination=str(SERVING))

pipeline = Pipeline(
    name=PIPELINE_NAME,
    root=str(PIPELINE_ROOT),
    nodes=[ingest, transform, train, baseline, evaluate, infra_validate, push],
    params=[train_steps, eval_steps],
    description="Palmer penguins species classifier",
)
