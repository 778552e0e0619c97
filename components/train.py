"""Train: run a user's ``run_fn(fn_args)`` (a TFX-style module file) and publish the SavedModel it writes.

::

    train = Train(
        examples=transform.outputs.transformed_examples,
        transform_graph=transform.outputs.transform_graph,
        schema=ingest.outputs.schema,
        module_file="models/penguin.py",
        train_steps=100,
        eval_steps=5,
        seed=42,
    )
    train.outputs.model        # Model: the SavedModel under Format-Serving/
    train.outputs.model_run    # ModelRun: fn_args.model_run_dir (TensorBoard logs, ...)

``fn_args`` has TFX's fields (see :class:`~headwater.components._fn_args.FnArgs`). ``examples`` takes one
Examples channel or several (a span window from :func:`~headwater.components.resolvers.SpanRange`): the
train/eval file lists then cover every artifact.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from headwater.components import _keras, _runtime
from headwater.components._boundary import user_code
from headwater.components._data import examples_file_pattern, load_user_function, schema_path
from headwater.components._fn_args import FnArgs, make_data_accessor
from headwater.components._layout import EVAL_DIR, SAVED_MODEL_FILE, SERVING_DIR, serving_model_path
from headwater.components.api import ExecutionContext, Input, Output, component
from headwater.components.errors import InputDataError, UserCodeError
from headwater.metadata import types

__all__ = ["SERVING_DIR", "Train", "serving_model_path"]

#: The largest step count Train takes: steps are 32-bit counts (and beyond it a run would never end).
MAX_STEPS = 2**31 - 1


def _schema_file(schema: types.Schema) -> str:
    path = schema_path(schema)
    if not os.path.isfile(path):
        raise InputDataError(
            f"Schema artifact at {schema.uri} holds no {os.path.basename(path)}; re-run the node that produced it"
        )
    return path


def _hyperparameters(artifact: types.HyperParameters | None) -> dict[str, Any] | None:
    if artifact is None:
        return None
    files = sorted(p for p in Path(artifact.path).iterdir() if p.is_file())
    if not files:
        raise InputDataError(
            f"HyperParameters artifact at {artifact.uri} holds no file (expected best_hyperparameters.txt, "
            "the JSON of keras_tuner.HyperParameters.get_config())"
        )
    path = next((p for p in files if p.name == "best_hyperparameters.txt"), files[0])
    try:
        value = json.loads(path.read_text())
    except ValueError as exc:
        raise InputDataError(
            f"{path}: not JSON ({exc}); write keras_tuner.HyperParameters.get_config() as JSON"
        ) from None
    if not isinstance(value, dict):
        raise InputDataError(f"{path}: expected a JSON object (HyperParameters config), got {type(value).__name__}")
    return value


def _visible_gpus() -> int:
    """GPUs TensorFlow can use here. headwater never hides them: a GPU image on a GPU node trains on it."""
    import tensorflow as tf

    return len(tf.config.list_physical_devices("GPU"))


# tensorflow_transform first: importing it selects Keras 2 for tf.keras (TF_USE_LEGACY_KERAS=1).
@component(code_params=("module_file",), version="1",
           warm_imports=("tensorflow_transform", "tensorflow", "tfx_bsl.public.tfxio"))
def Train(
    *,
    examples: Input[list[types.Examples]],
    transform_graph: Input[types.TransformGraph] | None = None,
    schema: Input[types.Schema] | None = None,
    hyperparameters: Input[types.HyperParameters] | None = None,
    model: Output[types.Model],
    model_run: Output[types.ModelRun],
    module_file: str,
    run_fn: str = "run_fn",
    train_steps: int | None = None,
    eval_steps: int | None = None,
    custom_config: dict[str, Any] | None = None,
    seed: int | None = None,
    train_splits: list[str] | None = None,
    eval_splits: list[str] | None = None,
    ctx: ExecutionContext,
) -> None:
    """Train a model with the user's ``run_fn(fn_args)`` from ``module_file`` (path or dotted name).

    ``seed`` makes runs reproducible (Python, NumPy, TensorFlow and dataset shuffling are seeded);
    ``train_splits``/``eval_splits`` default to ``["train"]``/``["eval"]``.
    """
    started = time.time()
    train_splits = list(train_splits or ["train"])
    eval_splits = list(eval_splits or ["eval"])
    node = f"node {ctx.node_id!r}"
    if not examples:
        raise InputDataError(f"{node}: input 'examples' holds no Examples artifact; connect one (or a span window)")
    for name, steps in (("train_steps", train_steps), ("eval_steps", eval_steps)):
        if steps is not None and not 0 < steps <= MAX_STEPS:
            raise InputDataError(f"{node}: {name} is {steps}; give a number of steps from 1 to {MAX_STEPS} "
                                 "(or None)")
    _runtime.check_splits(examples, train_splits, node=node, setting="Train's train_splits")
    _runtime.check_splits(examples, eval_splits, node=node, setting="Train's eval_splits")

    _keras.prefer_tf_keras()  # before TensorFlow resolves tf.keras in this process
    fn = load_user_function(module_file, run_fn, what=f"{node} (Train)", default_name="run_fn")

    _keras.skip_autograph_for_tf_keras()
    print(f"headwater: {node}: TensorFlow sees {_visible_gpus()} GPU(s) (it places the model on one if any)",
          flush=True)
    serving_dir = serving_model_path(model.path)
    fn_args = FnArgs(
        working_dir=ctx.tmp_dir,
        train_files=[examples_file_pattern(a.path, s) for a in examples for s in train_splits],
        eval_files=[examples_file_pattern(a.path, s) for a in examples for s in eval_splits],
        train_steps=train_steps,
        eval_steps=eval_steps,
        schema_path=_schema_file(schema) if schema is not None else None,
        transform_graph_path=transform_graph.path if transform_graph is not None else None,
        data_accessor=make_data_accessor(),
        serving_model_dir=serving_dir,
        eval_model_dir=os.path.join(model.path, EVAL_DIR),
        model_run_dir=model_run.path,
        hyperparameters=_hyperparameters(hyperparameters),
        custom_config=dict(custom_config) if custom_config is not None else None,
        seed=seed,
    )
    fn_args.schema_file = fn_args.schema_path
    fn_args.transform_output = fn_args.transform_graph_path
    if seed is not None:
        _runtime.set_seeds(seed)

    with user_code(f"{node}: {run_fn} in {module_file}"):
        fn(fn_args)

    if not os.path.isfile(os.path.join(serving_dir, SAVED_MODEL_FILE)):
        found = sorted(os.listdir(serving_dir)) if os.path.isdir(serving_dir) else []
        detail = f"; that folder holds {found[:5]}" if found else ""
        raise UserCodeError(
            f"{node}: {run_fn} in {module_file} returned without writing a model: no SavedModel "
            f"(saved_model.pb) at fn_args.serving_model_dir = {serving_dir}{detail}. Save the trained model "
            "there, e.g. model.save(fn_args.serving_model_dir, save_format='tf', signatures=...) or "
            "tf.saved_model.save(model, fn_args.serving_model_dir, signatures=...)",
            node_id=ctx.node_id,
            artifact_uri=model.uri,
        )
    # A Transform over a window records every span it covers in `spans`; plain Examples have one `span`.
    spans = sorted({int(s) for a in examples
                    for s in (a.custom_properties.get("spans") or [a.properties["span"]]) if s is not None})
    if spans:
        model.custom_properties["example_spans"] = spans
    if seed is not None:
        model.custom_properties["seed"] = seed
    model.custom_properties["keras"] = _keras.tf_keras_version()
    summary = {
        "module_file": module_file,
        "run_fn": run_fn,
        "train_files": fn_args.train_files,
        "eval_files": fn_args.eval_files,
        "train_steps": train_steps,
        "eval_steps": eval_steps,
        "seed": seed,
        "example_artifact_ids": [a.id for a in examples],
        "spans": spans,
        "tf_keras": model.custom_properties["keras"],
        "seconds": round(time.time() - started, 3),
    }
    Path(model_run.path, "train_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
