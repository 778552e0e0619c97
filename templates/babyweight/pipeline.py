"""babyweight — birth-weight regression: Beam preprocessing, hyperparameter tuning, gated push, retraining per year.

The pipeline of the Kubeflow "babyweight" walk-through, on headwater. Run it from anywhere with
``headwater run pipeline.py``: every path below is relative to this file's folder.

    Ingest (data/natality-{SPAN}.csv, the newest year) ─► Transform (models/preprocessing.py, Apache Beam)
      ─► Tune (models/model.py: tuner_fn, a small search) ─► Train (run_fn, the best parameters, longer)
      ─► Evaluate (RMSE threshold, change threshold against the last blessed model) ─► Push (serving/)

The data is SYNTHETIC (see data/generate.py and README.md). A new year of data is a new span: write it
with ``python data/generate.py 2006`` and run again; the model is retrained on it and pushed only if it
is no worse than the one serving. Each year is validated before Transform (Statistics ─► Validate against
the curated ``schema/schema.pbtxt``, drift from the previous year and the bounds in VALIDATION_RULES): a
blocking anomaly stops Transform and everything after it.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from headwater.components import (
    EvalConfig,
    Evaluate,
    Ingest,
    LatestBlessedModel,
    Node,
    Param,
    Push,
    Train,
    Transform,
    Tune,
)
from headwater.components.validation import Bounds, Drift, ImportSchema, PreviousStatistics, Statistics, Validate
from headwater.pipelines import Pipeline

HERE = Path(__file__).resolve().parent
PIPELINE_NAME = "babyweight"
PIPELINE_ROOT = HERE / "runs"  # for Kubernetes: shared storage every pod sees (gs://..., s3://..., a volume)
DATA = HERE / "data"
MODEL_FILE = HERE / "models" / "model.py"
SERVING = HERE / "serving"
SCHEMA_FILE = HERE / "schema" / "schema.pbtxt"

CONFIG = yaml.safe_load((HERE / "configs" / "training.yaml").read_text())
EVALUATION = EvalConfig.from_yaml(HERE / "configs" / "evaluation.yaml")
MODEL_CONFIG = dict(CONFIG.get("model") or {})

# Runtime parameters: defaults here, per run with --param name=value.
train_steps = Param("train_steps", default=int(CONFIG["training"]["train_steps"]), description="training steps")
tune_steps = Param("tune_steps", default=int(CONFIG["tuning"]["train_steps"]), description="steps per trial")
year = Param("year", type=int, description="train on this year's file (default: the newest)")

# Data validation: how far a new year may drift from the previous one (approximate Jensen-Shannon
# divergence of the histograms; a synthetic year drifts by about 0.1 at most) and the plausible ranges.
# Every rule blocks unless it says severity="warn"; the measured values are recorded either way.
VALIDATION_RULES = [
    Drift("weight_pounds", jensen_shannon=0.3),
    Drift("mother_age", jensen_shannon=0.3),
    Drift("gestation_weeks", jensen_shannon=0.3),
    Drift("is_male", jensen_shannon=0.3),
    Bounds("weight_pounds", min=0.5, max=15),
    Bounds("mother_age", min=12, max=60),
    Bounds("gestation_weeks", min=17, max=47),
    Bounds("plurality", min=1, max=5),
]


def validated_ingest(data: Path = DATA, span: Param | int | None = year) -> tuple[Node, list[Node]]:
    """Ingest of one year of ``data`` and the nodes that validate it (the tests run them on a corrupted copy)."""
    ingest = Ingest(input_base=str(data), pattern="natality-{SPAN}.csv", span=span, label="weight_pounds")
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
    module_file=str(HERE / "models" / "preprocessing.py"),
)
tune = Tune(
    examples=transform.outputs.transformed_examples,
    transform_graph=transform.outputs.transform_graph,
    schema=ingest.outputs.schema,
    module_file=str(MODEL_FILE),
    train_steps=tune_steps,
    eval_steps=int(CONFIG["tuning"]["eval_steps"]),
    custom_config={**MODEL_CONFIG, "algorithm": CONFIG["tuning"]["algorithm"],
                   "max_trials": int(CONFIG["tuning"]["max_trials"])},
    seed=int(CONFIG["seed"]),
)
train = Train(
    examples=transform.outputs.transformed_examples,
    transform_graph=transform.outputs.transform_graph,
    schema=ingest.outputs.schema,
    hyperparameters=tune.outputs.best_hyperparameters,
    module_file=str(MODEL_FILE),
    train_steps=train_steps,
    eval_steps=int(CONFIG["training"]["eval_steps"]),
    custom_config=MODEL_CONFIG,
    seed=int(CONFIG["seed"]),
)
# The baseline: the newest model this pipeline blessed before (none on the first run).
baseline = LatestBlessedModel(exclude=train.outputs.model).with_id("baseline")
evaluate = Evaluate(
    examples=ingest.outputs.examples,
    model=train.outputs.model,
    baseline_model=baseline.outputs.model,
    eval_config=EVALUATION,
)
push = Push(model=train.outputs.model, blessing=evaluate.outputs.blessing, destination=str(SERVING))

pipeline = Pipeline(
    name=PIPELINE_NAME,
    root=str(PIPELINE_ROOT),
    nodes=[ingest, *validation, transform, tune, train, baseline, evaluate, push],
    params=[train_steps, tune_steps, year],
    description="Baby weight regression with tuning and retraining per year",
)
