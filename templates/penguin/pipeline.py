"""penguin — multi-class classification of the real Palmer penguins data: Ingest, Statistics, Validate, Transform,
Train, Evaluate, InfraValidate, Push, BatchPredict.

Run it from anywhere with ``headwater run pipeline.py``: every path below is relative to this file's
folder. Artifacts and the metadata store go to ``runs/``; a model that clears the bar in
``configs/evaluation.yaml`` and that a sandboxed model server loads and answers (InfraValidate) is pushed
to ``serving/<version>/``; ``headwater serve serving/ --model-name penguin --web web/`` serves it. The same
blessed model predicts in batch on the penguins of ``holdout/`` (a second Ingest the model never trains
on): ``runs/BatchPredict/inference_result/<id>/`` holds PredictionLogs, ``predictions/*.parquet`` and, as
the holdout penguins carry their species, the confusion matrix, ROC and PR curves. The data
is validated first: against the curated ``schema/schema.pbtxt`` and the rules below (VALIDATION_RULES); a
blocking anomaly stops Transform and everything after it, so nothing is trained or pushed.

    Ingest (data/*.csv) ─► Statistics ─► Validate (schema/schema.pbtxt, VALIDATION_RULES) ─┐
       └──────────────────────────────────────────────────────────────────────────────────┴─► Transform
    Transform (models/preprocessing.py) ─► Train (models/model.py) ─► Evaluate ─► Push
                                       LatestBlessedModel (the baseline) ─┘        ▲
                                       Train + Ingest's examples ─► InfraValidate ─┘
    Ingest (holdout/*.csv) ─► BatchPredict (Train's model, Evaluate's blessing) ─► predictions, metrics
"""

from __future__ import annotations

from pathlib import Path

import yaml
from headwater.components import (
    BatchPredict,
    EvalConfig,
    Evaluate,
    InfraValidate,
    Ingest,
    LatestBlessedModel,
    Node,
    Push,
    Train,
    Transform,
)
from headwater.components.validation import Bounds, Drift, ImportSchema, PreviousStatistics, Statistics, Validate
from headwater.pipelines import Param, Pipeline

HERE = Path(__file__).resolve().parent
PIPELINE_NAME = "penguin"
PIPELINE_ROOT = HERE / "runs"  # for Kubernetes: shared storage every pod sees (gs://..., s3://..., a volume)
DATA = HERE / "data"
HOLDOUT = HERE / "holdout"
MODELS = HERE / "models"
SERVING = HERE / "serving"
SCHEMA_FILE = HERE / "schema" / "schema.pbtxt"

TRAINING = yaml.safe_load((HERE / "configs" / "training.yaml").read_text())
EVALUATION = EvalConfig.from_yaml(HERE / "configs" / "evaluation.yaml")

# Runtime parameters: defaults here, per run with --param name=value.
train_steps = Param("train_steps", default=int(TRAINING["train_steps"]), description="training steps")
eval_steps = Param("eval_steps", default=int(TRAINING["eval_steps"]), description="validation steps")

# Data validation. Drift: how far a new span may move from the previous one (L-infinity distance of the
# category frequencies, approximate Jensen-Shannon divergence of the numeric histograms); Bounds: the
# plausible range of each measurement. Every rule blocks unless it says severity="warn"; the measured
# values are recorded either way (headwater lineage --explain, runs/Validate/anomalies/*/report.html).
VALIDATION_RULES = [
    Drift("island", linf=0.3),
    Drift("sex", linf=0.3, severity="warn"),
    Drift("species", linf=0.3),
    Drift("bill_length_mm", jensen_shannon=0.3),
    Drift("bill_depth_mm", jensen_shannon=0.3),
    Drift("flipper_length_mm", jensen_shannon=0.3),
    Drift("body_mass_g", jensen_shannon=0.3),
    Bounds("bill_length_mm", min=25, max=70),
    Bounds("bill_depth_mm", min=10, max=25),
    Bounds("flipper_length_mm", min=150, max=250),
    Bounds("body_mass_g", min=2000, max=7000),
]


def validated_ingest(data: Path = DATA) -> tuple[Node, list[Node]]:
    """Ingest of ``data`` and the nodes that validate it (the tests run them on a corrupted copy)."""
    ingest = Ingest(input_base=str(data), label="species")
    statistics = Statistics(examples=ingest.outputs.examples)
    schema = ImportSchema(schema_file=str(SCHEMA_FILE))
    previous = PreviousStatistics(statistics=statistics.outputs.statistics)
    validate = Validate(statistics=statistics.outputs.statistics, schema=schema.outputs.schema,
                        previous_statistics=previous.outputs.statistics, rules=VALIDATION_RULES)
    return ingest, [statistics, schema, previous, validate]


ingest, validation = validated_ingest()
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
# Predict in batch with the blessed model on penguins it never trained on; their species give metrics.
holdout = Ingest(input_base=str(HOLDOUT), splits={"holdout": "*.csv"}, label="species").with_id("IngestHoldout")
batch_predict = BatchPredict(examples=holdout.outputs.examples, model=train.outputs.model,
                             model_blessing=evaluate.outputs.blessing, signature_name="classify_species",
                             label_key="species")

pipeline = Pipeline(
    name=PIPELINE_NAME,
    root=str(PIPELINE_ROOT),
    nodes=[ingest, *validation, transform, train, baseline, evaluate, infra_validate, push, holdout, batch_predict],
    params=[train_steps, eval_steps],
    description="Palmer penguins species classifier",
)
