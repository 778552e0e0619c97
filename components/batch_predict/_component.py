"""The BatchPredict component: the blessing gate, the plan, the Beam pipeline and the report."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from headwater.components import _data, _keras, _layout, _runtime, storage
from headwater.components.api import ExecutionContext, Input, Node, Output, Param
from headwater.components.batch_predict._convert import (
    LABEL_FEATURE,
    PREDICTION_FEATURE,
    TASKS,
    Plan,
    class_names_of,
    log_kind,
    scores_of,
    to_tables,
)
from headwater.components.errors import InputDataError, ParameterError, PushRefusedError
from headwater.metadata import types
from headwater.metadata.artifact import Artifact
from headwater.metadata.conventions import A_BLESSED, A_BLESSING_MESSAGE, A_CURRENT_MODEL_ID, A_METRICS

__all__ = ["PREDICTIONS_DIR", "PREDICTION_LOGS_PREFIX", "BatchPredict", "BatchPredictRefusedError"]

#: TFX BulkInferrer's file names: ``prediction_logs-00000-of-00001.gz`` in the InferenceResult.
PREDICTION_LOGS_PREFIX = "prediction_logs"
#: The Parquet files (``part-*.parquet``), and the metrics when the examples carry labels.
PREDICTIONS_DIR = "predictions"
EVALUATION_DIR = "evaluation"
SUMMARY_FILE = "batch_predict.json"
_SAMPLE = 64
_BATCH = 1024


class BatchPredictRefusedError(PushRefusedError):
    """BatchPredict refused a model its ModelBlessing does not bless (``require_blessing=True``)."""


# ------------------------------------------------------------------------------------- definition time
class _BatchPredictComponent(_runtime.PackageComponent):
    """Checks ``BatchPredict``'s settings when the node is declared."""

    def __call__(self, **kwargs: Any) -> Node:
        caller = sys._getframe(1)
        where = f"{caller.f_code.co_filename}:{caller.f_lineno}"

        def fail(message: str, parameter: str) -> None:
            raise ParameterError(f"{where}: BatchPredict({parameter}=...): {message}", parameter=parameter,
                                 file=caller.f_code.co_filename, line=caller.f_lineno)

        require = kwargs.get("require_blessing", True)
        if require is True and kwargs.get("model_blessing") is None:
            fail("no model_blessing is wired, so nothing shows the model is good enough to predict with; wire "
                 "model_blessing=evaluate.outputs.blessing, or set require_blessing=False to predict with any "
                 "model", "model_blessing")
        task = kwargs.get("task", "auto")
        if not isinstance(task, Param) and task not in TASKS:
            fail(f"task={task!r} is not one of {', '.join(TASKS)}", "task")
        batch_size = kwargs.get("batch_size", _BATCH)
        if not isinstance(batch_size, Param) and (not isinstance(batch_size, int) or batch_size < 1):
            fail(f"batch_size={batch_size!r} must be a whole number of at least 1", "batch_size")
        return super().__call__(**kwargs)


# --------------------------------------------------------------------------------------- blessing gate
def _blessing_verdict(blessing: Artifact, model: Artifact, *, read_files: bool = True) -> tuple[bool, str]:
    """Marker file AND ``blessed`` property must say BLESSED, for this model. The runner-side gate reads the
    properties only (``read_files=False``: on an object-store root the runner has no copy of the folder); the
    executor, which has one in ``.path``, reads both."""
    prop = blessing.custom_properties.get(A_BLESSED)
    message = blessing.custom_properties.get(A_BLESSING_MESSAGE)
    said = f" ({message})" if message else ""
    folder = Path(blessing.path) if read_files else None
    if prop in (0, False) or (folder is not None and (folder / _layout.NOT_BLESSED_FILE).exists()):
        return False, f"its ModelBlessing (id {blessing.id}) says NOT BLESSED{said}"
    if prop not in (1, True) or (folder is not None and not (folder / _layout.BLESSED_FILE).exists()):
        return False, f"its ModelBlessing (id {blessing.id}) holds no {_layout.BLESSED_FILE} file and blessed=1"
    blessed_id = blessing.custom_properties.get(A_CURRENT_MODEL_ID)
    if blessed_id is not None and model.id is not None and int(blessed_id) != int(model.id):
        return False, f"its ModelBlessing (id {blessing.id}) blesses model {blessed_id}, not this one"
    return True, "BLESSED"


def _refusal(model_id: Any, why: str) -> str:
    return (f"refusing to predict with model {model_id}: {why}. BatchPredict predicts only with a model Evaluate "
            "blessed; set require_blessing=False to predict with it anyway")


def _skip_unless_blessed(inputs: dict[str, list[Artifact]], parameters: dict[str, Any]) -> str | None:
    """Runner-side gate: skip the executor when the wired blessing does not bless the model."""
    if parameters.get("require_blessing", True) is False:
        return None
    blessings, models = inputs.get("model_blessing") or [], inputs.get("model") or []
    if not blessings:
        return _refusal(models[0].id if models else "?", "Evaluate produced no blessing")
    ok, why = _blessing_verdict(blessings[0], models[0], read_files=False) if models else (False, "no model")
    return None if ok else _refusal(models[0].id if models else "?", why)


def _on_skip(outputs: dict[str, Artifact], reason: str) -> None:
    result = outputs["inference_result"]
    result.custom_properties.update({"predicted": 0, "refused": reason})
    Path(result.path, SUMMARY_FILE).write_text(json.dumps({"predicted": 0, "refused": reason}, indent=2) + "\n")


# --------------------------------------------------------------------------------------------- planning
def _sample(patterns: Sequence[str]) -> list[bytes]:
    out: list[bytes] = []
    for pattern in patterns:
        for path in sorted(storage.glob(pattern)):
            for record in _data.read_tfrecords(path):
                out.append(record)
                if len(out) == _SAMPLE:
                    return out
    return out


def _feature_schema(records: Sequence[bytes]) -> tuple[Any, list[str], list[str]]:
    """A tensorflow-metadata Schema of the sample's features; which hold one value each; which are text."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    from tensorflow_metadata.proto.v0 import schema_pb2
    from tfx_bsl.coders import example_coder

    batch = example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(list(records))
    schema = schema_pb2.Schema()
    scalar, text = [], []
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        value_type = column.type.value_type
        if pa.types.is_integer(value_type):
            kind = schema_pb2.INT
        elif pa.types.is_floating(value_type):
            kind = schema_pb2.FLOAT
        elif pa.types.is_binary(value_type) or pa.types.is_large_binary(value_type):
            kind = schema_pb2.BYTES
            try:
                for value in column.flatten().to_pylist():
                    value.decode("utf-8")
                text.append(name)
            except UnicodeDecodeError:
                pass
        else:  # no value in the whole sample: the type is unknown, the feature is left out
            continue
        schema.feature.add(name=name, type=kind)
        if int(np.asarray(pc.fill_null(pc.list_value_length(column), 0)).max(initial=0)) <= 1:
            scalar.append(name)
    return schema, scalar, text


_MISSING_FEATURE = re.compile(r"Feature: (\S+) \(data type: (\w+)\) is required but could not be found")
_WRONG_TYPE = re.compile(r"Key: (\S+), Index: \d+\.\s+Data types don't match\. Data type: (\w+) but expected type: "
                         r"(\w+)")


def _explain(exc: BaseException, node: str, where: str, signature: str) -> InputDataError | None:
    """A model error on the examples, said in our terms (a feature the model needs and the examples lack)."""
    text = str(exc)
    missing = _MISSING_FEATURE.search(text)
    if missing:
        return InputDataError(
            f"{node}: the examples at {where} lack feature {missing.group(1)!r} ({missing.group(2)}), which the "
            f"model's signature {signature!r} needs in every example; predict on examples that have it (the "
            "same features the model was trained on), or export a signature that treats it as optional")
    wrong = _WRONG_TYPE.search(text)
    if wrong:
        return InputDataError(
            f"{node}: feature {wrong.group(1).rstrip(',')!r} of the examples at {where} is {wrong.group(2)}, but the "
            f"model's signature {signature!r} parses it as {wrong.group(3)}; give it the type the model was "
            "trained on (Ingest's column_types= forces a column's type)")
    return None


def _plan(node: str, model_dir: str, signature: str, sample: Sequence[bytes], *, task: str, output_key: str,
          class_names: Sequence[str], label_key: str | None, where: str) -> tuple[Plan, Any, str]:
    """Check the model and the examples against each other on a sample and decide the columns."""
    import pyarrow as pa
    from headwater.components.evaluate import _report, _tfma
    from tfx_bsl.beam import run_inference
    from tfx_bsl.public.proto import model_spec_pb2

    signatures = {k: v for k, v in _tfma._signatures(model_dir).items() if not k.startswith("__")}
    if signature not in signatures:
        raise InputDataError(
            f"{node}: the model at {model_dir} has no signature {signature!r} (it has "
            f"{sorted(signatures) or 'none'}); export a serving signature from run_fn (model.save(..., "
            "signatures={'serving_default': ...})) or set signature_name= to one it has")
    schema, scalar, text = _feature_schema(sample)
    if label_key and label_key not in [f.name for f in schema.feature]:
        raise InputDataError(
            f"{node}: label_key {label_key!r} is not a feature of the examples at {where} (they have "
            f"{', '.join(sorted(f.name for f in schema.feature))}); set label_key to the label's name, or None to "
            "predict without measuring")
    spec = model_spec_pb2.InferenceSpecType(saved_model_spec=model_spec_pb2.SavedModelSpec(
        model_path=model_dir, signature_name=[signature], tag=["serve"]))
    handler = run_inference.create_model_handler(spec, None, None)
    try:
        logs = list(handler.run_inference(list(sample), handler.load_model()))
    except Exception as exc:
        explained = _explain(exc, node, where, signature)
        if explained is not None:
            raise explained from None
        raise
    kind = log_kind(logs[0])
    if kind == "multi_inference":
        raise ParameterError(f"{node}: BatchPredict answers with one signature; got a multi-inference model")
    chosen = output_key
    if kind == "predict":
        outputs = logs[0].predict_log.response.outputs
        numeric = [k for k, t in outputs.items() if t.dtype not in (7,)]  # 7: DT_STRING
        chosen = output_key or ("scores" if "scores" in numeric else numeric[0] if len(numeric) == 1 else "")
        if chosen not in numeric:
            raise ParameterError(
                f"{node}: output_key={output_key!r}: signature {signature!r} answers with outputs "
                f"{sorted(outputs)}; set output_key= to the one holding the scores or values")
    width = len(scores_of(logs[0], chosen))
    names = list(class_names) or class_names_of(logs[0])
    if task == "auto":
        task = "regression" if kind == "regress" else "multiclass" if width >= 2 or kind == "classify" else \
            "regression"
    if task in ("multiclass", "binary") and not names and label_key:
        # As Evaluate does: the label's tf.Transform vocabulary saved with the model names the classes.
        names = _report.vocabulary_class_names(model_dir, label_key, width)
    label_is_text = bool(label_key) and label_key in text
    if label_is_text and not names:
        raise ParameterError(
            f"{node}: label {label_key!r} is text, but the model names no classes; give class_names= in the "
            "order of the model's scores")
    plan = Plan(node=node, feature_schema=schema.SerializeToString(), scalar_features=tuple(scalar),
                text_features=tuple(text), output_key=chosen, task=task, class_names=tuple(names),
                label_key=label_key or None, label_is_text=label_is_text)
    table, _ = to_tables(plan, list(zip(sample, logs, strict=True)), "sample")
    return plan, spec, pa.schema(table.schema)


# --------------------------------------------------------------------------------------------- pipeline
def _tables_fn(plan: Plan, split: str) -> Any:
    import apache_beam as beam

    class ToTables(beam.DoFn):
        def process(self, batch: list[tuple[bytes, Any]]) -> Iterator[Any]:
            table, tfma_examples = to_tables(plan, batch, split)
            yield table
            for example in tfma_examples:
                yield beam.pvalue.TaggedOutput("tfma", example)

    return ToTables()


def _eval_config(plan: Plan) -> Any:
    from headwater.components.evaluate.config import EvalConfig, Metric

    metrics: tuple[Metric, ...]
    if plan.task == "regression":
        metrics = (Metric("MeanSquaredError"), Metric("MeanAbsoluteError"), Metric("ExampleCount"))
    elif plan.task == "binary":
        metrics = (Metric("BinaryAccuracy"), Metric("AUC"), Metric("AUCPrecisionRecall"), Metric("ExampleCount"))
    else:
        metrics = (Metric("SparseCategoricalAccuracy"), Metric("ExampleCount"))
    return EvalConfig(label_key=LABEL_FEATURE, prediction_key=PREDICTION_FEATURE, metrics=metrics,
                      task=plan.task,
                      class_names=plan.class_names, no_thresholds="blessed")


def _run(plan: Plan, spec: Any, parquet_schema: Any, patterns: Mapping[str, str], out: str, eval_plan: Any,
         beam_args: Sequence[str], batch_size: int) -> None:
    import apache_beam as beam
    import tensorflow_model_analysis as tfma
    from headwater.components.evaluate import _tfma
    from tensorflow_serving.apis import prediction_log_pb2
    from tfx_bsl.public import tfxio
    from tfx_bsl.public.beam import run_inference

    with beam.Pipeline(options=_tfma._beam_options(beam_args)) as pipeline:
        logs, tables, tfma_examples = [], [], []
        for split, pattern in patterns.items():
            pairs = (
                pipeline
                | f"Read[{split}]" >> beam.io.ReadFromTFRecord(pattern, coder=beam.coders.BytesCoder())
                | f"Key[{split}]" >> beam.Map(lambda record: (record, record))
                | f"RunInference[{split}]" >> run_inference.RunInference(spec)
            )
            logs.append(pairs | f"Logs[{split}]" >> beam.Values())
            converted = (
                pairs
                | f"Batch[{split}]" >> beam.BatchElements(min_batch_size=1, max_batch_size=batch_size)
                | f"Convert[{split}]" >> beam.ParDo(_tables_fn(plan, split)).with_outputs("tfma", main="tables")
            )
            tables.append(converted.tables)
            tfma_examples.append(converted.tfma)
        _ = (
            logs | "FlattenLogs" >> beam.Flatten()
            | "WriteLogs" >> beam.io.WriteToTFRecord(
                os.path.join(out, PREDICTION_LOGS_PREFIX), file_name_suffix=".gz",
                coder=beam.coders.ProtoCoder(prediction_log_pb2.PredictionLog))
        )
        _ = (
            tables | "FlattenTables" >> beam.Flatten()
            | "WriteParquet" >> beam.io.WriteToParquetBatched(
                os.path.join(out, PREDICTIONS_DIR, "part"), parquet_schema, file_name_suffix=".parquet")
        )
        if eval_plan is not None:
            _ = (
                tfma_examples | "FlattenLabelled" >> beam.Flatten()
                | "ToArrow" >> tfxio.TFExampleBeamRecord(
                    physical_format="inmem", raw_record_column_name=tfma.ARROW_INPUT_COLUMN,
                    telemetry_descriptors=["headwater", "BatchPredict"]).BeamSource()
                | "Measure" >> tfma.ExtractEvaluateAndWriteResults(
                    eval_config=eval_plan.tfma_config, output_path=os.path.join(out, EVALUATION_DIR))
            )


def _measure_report(plan: Plan, eval_plan: Any, out: str, model_dir: str) -> tuple[dict[str, Any], list[str]]:
    """metrics.json / metrics.md and the pictures, from TFMA's results, with Evaluate's code."""
    import tensorflow_model_analysis as tfma
    from headwater.components.evaluate import _report, _tfma

    folder = os.path.join(out, EVALUATION_DIR)
    classes = len(plan.class_names) if plan.class_names else 2
    names = _report._class_names(eval_plan, classes, model_dir) if plan.task != "regression" else []
    plots = list(tfma.load_plots(folder))
    table, undefined = _report._collect_metrics(folder, _tfma._auc_names(eval_plan.tfma_config), names,
                                                _report._plot_shares(plots))
    Path(folder, "metrics.json").write_text(json.dumps(
        {"slices": _report._metrics_json(table, undefined)}, indent=2, allow_nan=False) + "\n")
    text = _report._metrics_markdown(table, undefined, "MEASURED", "predictions against the examples' labels",
                                     False).replace("# Model evaluation", "# Batch prediction metrics", 1)
    Path(folder, "metrics.md").write_text(text)
    pictures: list[str] = []
    if plan.task in ("multiclass", "binary"):
        pictures = _report.draw_charts(plots, table, eval_plan, names, model_dir, folder, pr=True)
    overall = {k: v["candidate"] for k, v in table.get("Overall", {}).items()
               if v.get("candidate") is not None and "[" not in k}
    return overall, pictures


# -------------------------------------------------------------------------------------------- component
@_runtime.package_component(
    "headwater.components.batch_predict", cls=_BatchPredictComponent, skip_if=_skip_unless_blessed,
    on_skip=_on_skip, warm_imports=("tensorflow_transform", "tensorflow", "tensorflow_model_analysis"),
)
def BatchPredict(
    *,
    examples: Input[types.Examples],
    model: Input[types.Model],
    model_blessing: Input[types.ModelBlessing] | None = None,
    inference_result: Output[types.InferenceResult],
    require_blessing: bool = True,
    splits: list[str] | None = None,
    signature_name: str = "serving_default",
    output_key: str = "",
    label_key: str | None = None,
    class_names: list[str] | None = None,
    task: str = "auto",
    batch_size: int = _BATCH,
    ctx: ExecutionContext,
) -> None:
    """Predict with ``model`` on every example of ``examples`` (see the package docs)."""
    started = time.time()
    node = f"node {ctx.node_id!r}"
    if require_blessing:
        if model_blessing is None:
            raise BatchPredictRefusedError(_refusal(model.id, "no model_blessing is wired"))
        ok, why = _blessing_verdict(model_blessing, model)
        if not ok:
            raise BatchPredictRefusedError(f"{node}: " + _refusal(model.id, why), artifact_uri=model_blessing.uri)
    model_dir = _layout.serving_model_path(model.path)
    if not os.path.isfile(os.path.join(model_dir, _layout.SAVED_MODEL_FILE)):
        raise InputDataError(f"{node}: the Model artifact (id {model.id}) has no SavedModel at {model_dir}; it "
                             "must come from Train (or hold Format-Serving/saved_model.pb)", artifact_uri=model.uri)
    chosen = list(splits or _runtime.splits_with_data(examples.path))
    if not chosen:
        raise InputDataError(f"{node}: the examples at {examples.uri} hold no data files in any split",
                             artifact_uri=examples.uri)
    _runtime.check_splits([examples], chosen, node=node, setting="splits=")
    patterns = {s: _data.examples_file_pattern(examples.path, s) for s in chosen}
    sample = _sample(list(patterns.values()))
    if not sample:
        raise InputDataError(f"{node}: splits {chosen} of the examples at {examples.uri} hold no records",
                             artifact_uri=examples.uri)
    _keras.prefer_tf_keras()
    _keras.skip_autograph_for_tf_keras()
    plan, spec, parquet_schema = _plan(node, model_dir, signature_name, sample, task=task, output_key=output_key,
                                       class_names=class_names or [], label_key=label_key, where=examples.uri)
    eval_plan = None
    if plan.label_key:
        from headwater.components.evaluate import _tfma

        typed = _eval_config(plan)
        eval_plan = _tfma._Plan(typed.to_tfma(), task=typed.task, class_names=typed.class_names)
        if plan.task in ("multiclass", "binary"):
            _tfma._add_plot_metrics(eval_plan, plan.task, len(plan.class_names) or 2)
            if plan.task == "multiclass":  # per-class precision-recall curves' areas, for the PR picture
                eval_plan.tfma_config.metrics_specs[-1].metrics.add(class_name="AUCPrecisionRecall")
        _tfma._add_label_shares(eval_plan, plan.task)
    out = inference_result.path
    try:
        _run(plan, spec, parquet_schema, patterns, out, eval_plan, ctx.beam_args, batch_size)
    except Exception as exc:
        explained = _explain(exc, node, examples.uri, signature_name)
        if explained is not None:
            raise explained from exc
        raise
    import pyarrow.parquet as pq

    parts = sorted(storage.glob(os.path.join(out, PREDICTIONS_DIR, "*.parquet")))
    rows = sum(pq.ParquetFile(p).metadata.num_rows for p in parts)
    metrics: dict[str, Any] = {}
    pictures: list[str] = []
    if eval_plan is not None:
        metrics, pictures = _measure_report(plan, eval_plan, out, model_dir)
    seconds = round(time.time() - started, 3)
    summary = {
        "predicted": rows, "splits": chosen, "signature": signature_name, "task": plan.task,
        "class_names": list(plan.class_names), "label_key": plan.label_key, "metrics": metrics,
        "pictures": [os.path.relpath(p, out) for p in pictures], "seconds": seconds,
        "examples_per_second": round(rows / seconds, 1) if seconds else None,
        "prediction_logs": sorted(os.path.basename(p) for p in storage.glob(
            os.path.join(out, PREDICTION_LOGS_PREFIX + "-*.gz"))),
        "parquet": [os.path.relpath(p, out) for p in parts],
    }
    Path(out, SUMMARY_FILE).write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
    inference_result.custom_properties.update({
        "predicted": rows, "task": plan.task, "seconds": seconds, "model_id": model.id,
        **({A_METRICS: metrics} if metrics else {}),
    })
    headline = ""
    if metrics:
        key = next((k for k in ("sparse_categorical_accuracy", "binary_accuracy", "mean_squared_error")
                    if k in metrics), next(iter(metrics)))
        headline = f"; {key} {metrics[key]:.4g} against label {plan.label_key!r} (evaluation/metrics.md" + (
            ", confusion_matrix.png, roc.png, pr.png)" if pictures else ")")
    print(f"BatchPredict: predicted {rows} examples of splits {', '.join(chosen)} with model {model.id} "
          f"(signature {signature_name!r}, {plan.task}) in {seconds:.1f} s; PredictionLogs in "
          f"{PREDICTION_LOGS_PREFIX}-*.gz and a table in {PREDICTIONS_DIR}/*.parquet under {out}{headline}",
          flush=True)
