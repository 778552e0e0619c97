"""Evaluate's TFMA planning: the ``tfma.EvalConfig`` to run, checked against the model and the data.

Reads the model's signatures from ``saved_model.pb`` (no loading) and the eval examples' feature names, so
a wrong label, slice feature, signature or metric fails before the Beam pipeline starts, naming the setting.
Adds what the report and the pictures need (confusion-matrix plots, per-class AUC, class shares per slice).
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from headwater.components import _data, _layout, _runtime
from headwater.components.errors import ParameterError
from headwater.components.evaluate.config import TFMA_KEY, EvalConfig, NoThresholdPolicy, Task, _suggest


@dataclass
class _Plan:
    """The TFMA config to run, plus headwater's own options."""

    tfma_config: Any
    no_thresholds: NoThresholdPolicy = "not_blessed"
    task: Task = "auto"
    class_names: tuple[str, ...] = ()
    plots: bool = True
    label_setting: str = "eval_config.label_key"


def _plan(config: Mapping[str, Any]) -> _Plan:
    import tensorflow_model_analysis as tfma
    from google.protobuf import json_format

    if TFMA_KEY in config:
        proto = json_format.ParseDict(config[TFMA_KEY], tfma.EvalConfig())
        return _Plan(proto, label_setting="eval_config.model_specs[].label_key")
    typed = EvalConfig.from_dict(config)
    return _Plan(typed.to_tfma(), typed.no_thresholds, typed.task, typed.class_names, typed.plots)


@dataclass(frozen=True)
class _Signature:
    inputs: dict[str, tuple[int, ...] | None]
    outputs: dict[str, tuple[int, ...] | None]


def _signatures(saved_model_dir: str) -> dict[str, _Signature]:
    """Signature names with input/output keys and static shapes, read from saved_model.pb (no loading)."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString(Path(saved_model_dir, _layout.SAVED_MODEL_FILE).read_bytes())

    def shape(info: Any) -> tuple[int, ...] | None:
        if info.tensor_shape.unknown_rank:
            return None
        return tuple(d.size for d in info.tensor_shape.dim)

    out: dict[str, _Signature] = {}
    for meta in proto.meta_graphs:
        for name, sig in meta.signature_def.items():
            out[name] = _Signature({k: shape(v) for k, v in sig.inputs.items()},
                                   {k: shape(v) for k, v in sig.outputs.items()})
    return out


def _raw_feature_keys(patterns: Sequence[str], limit: int = 2000) -> set[str]:
    """Feature names seen in the first ``limit`` eval examples (to check label and slice keys)."""
    from tensorflow.core.example import example_pb2

    keys: set[str] = set()
    seen = 0
    for pattern in patterns:
        for path in _data.glob_files(pattern):
            for record in _data.read_tfrecords(path):
                keys.update(example_pb2.Example.FromString(record).features.feature.keys())
                seen += 1
                if seen >= limit:
                    return keys
    return keys


def _check_config(plan: _Plan, signatures: Mapping[str, _Signature], raw_keys: set[str], node: str,
                  model_path: str) -> None:
    """Fail early, naming the setting, for unknown signatures, labels, slice features and metrics."""
    import tensorflow_model_analysis as tfma
    import tf_keras

    cfg = plan.tfma_config
    for spec in cfg.model_specs:
        sig = spec.signature_name or "serving_default"
        if sig not in signatures:
            raise ParameterError(
                f"{node}: eval_config signature {sig!r} is not a signature of the model at {model_path} "
                f"(it has {sorted(signatures)}); set signature to one of them"
            )
        transformed: set[str] = set()
        for pre in spec.preprocessing_function_names:
            if pre not in signatures:
                raise ParameterError(
                    f"{node}: eval_config preprocessing signature {pre!r} is not a signature of the model at "
                    f"{model_path} (it has {sorted(signatures)}); export it from run_fn or remove it"
                )
            transformed.update(signatures[pre].outputs)
        available = sorted(raw_keys | transformed)
        labels = [spec.label_key] if spec.label_key else list(spec.label_keys.values())
        for label in labels:
            if label not in raw_keys and label not in transformed:
                where = "the eval examples' features" + (
                    f" or the outputs of {list(spec.preprocessing_function_names)}" if transformed else ""
                )
                hint = "" if transformed or not label.endswith("_xf") else (
                    "; a transformed label needs preprocessing_signatures=('transform_features',)"
                )
                raise ParameterError(
                    f"{node}: {plan.label_setting} {label!r} is not among {where}{_suggest(label, available)}"
                    f"{hint}. Known keys: {', '.join(available)}"
                )
    for spec in cfg.slicing_specs:
        for key in [*spec.feature_keys, *spec.feature_values]:
            if key not in raw_keys:
                raise ParameterError(
                    f"{node}: eval_config slice feature {key!r} is not a feature of the eval examples"
                    f"{_suggest(key, sorted(raw_keys))}. Slice on one of: {', '.join(sorted(raw_keys))}"
                )
    registered = tfma.metrics.metric_types.registered_metrics()
    keras_names = [n for n in dir(tf_keras.metrics) if isinstance(getattr(tf_keras.metrics, n), type)]
    for spec in cfg.metrics_specs:
        for metric in spec.metrics:
            name = metric.class_name
            if metric.module:
                try:
                    found = getattr(importlib.import_module(metric.module), name, None)
                except ImportError as exc:
                    raise ParameterError(
                        f"{node}: eval_config metric {name!r}: cannot import module {metric.module!r} ({exc}); "
                        "make it importable in the executor's environment"
                    ) from None
                if found is None:
                    raise ParameterError(
                        f"{node}: eval_config metric {name!r} is not defined in module {metric.module!r}"
                    )
            elif name not in registered and name not in keras_names:
                raise ParameterError(
                    f"{node}: eval_config metric {name!r} is not a TFMA or Keras metric"
                    f"{_suggest(name, sorted(registered) + keras_names)} Use a class name from "
                    "tfma.metrics or tf.keras.metrics, or set module= for a custom metric class"
                )


def _task(plan: _Plan, signatures: Mapping[str, _Signature]) -> tuple[str, int]:
    """``(task, number_of_classes)`` for the pictures."""
    spec = plan.tfma_config.model_specs[0]
    sig = signatures.get(spec.signature_name or "serving_default")
    width = 0
    if sig is not None and sig.outputs:
        key = spec.prediction_key if spec.prediction_key in sig.outputs else sorted(sig.outputs)[0]
        shape = sig.outputs[key]
        width = shape[-1] if shape and shape[-1] and shape[-1] > 0 else 0
    if plan.task != "auto":
        return plan.task, width
    if width >= 2:
        return "multiclass", width
    binary = {"AUC", "BinaryAccuracy", "Precision", "Recall", "AUCPrecisionRecall", "BinaryCrossentropy"}
    names = {m.class_name for s in plan.tfma_config.metrics_specs for m in s.metrics}
    return ("binary" if names & binary else "regression"), width


def _add_plot_metrics(plan: _Plan, task: str, classes: int) -> None:
    import tensorflow_model_analysis as tfma

    cfg = plan.tfma_config
    if task == "multiclass":
        cfg.metrics_specs.add().metrics.add(class_name="MultiClassConfusionMatrixPlot")
        per_class = cfg.metrics_specs.add()
        per_class.binarize.class_ids.values.extend(range(classes))
        per_class.metrics.add(class_name="ConfusionMatrixPlot")
        per_class.metrics.add(class_name="AUC")
    elif task == "binary":
        spec = cfg.metrics_specs.add()
        spec.metrics.add(class_name="ConfusionMatrixPlot")
        names = {m.class_name for s in cfg.metrics_specs for m in s.metrics}
        if "AUC" not in names:
            spec.metrics.add(class_name="AUC")
    del tfma


# The share of examples of a class per slice tells where a per-class metric is undefined (share 0 or 1;


# TFMA reports AUC 0 there). It comes from the per-class ConfusionMatrixPlot when the pictures compute
# one (no extra work), else from this helper metric (TFMA's MeanLabel, binarized; same pass over the data).
_LABEL_SHARE = "headwater_label_share"
_AUC_CLASSES = ("AUC", "AUCPrecisionRecall")
ShareKey = tuple[str, int | None]
"""``(output_name, class_id)``; ``class_id`` None: the positive class of a binary classifier."""


def _metric_kwargs(config: str) -> dict[str, Any]:
    """A ``MetricConfig.config`` as a dict (TFMA accepts it with or without the outer braces)."""
    if not config.strip():
        return {}
    try:
        value = json.loads(config if config.lstrip().startswith("{") else "{" + config + "}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _add_label_shares(plan: _Plan, task: str) -> None:
    """Make the class share per slice available wherever per-class metrics are computed (and for a
    binary classifier): from a ConfusionMatrixPlot already there, else with the ``_LABEL_SHARE`` metric."""
    cfg = plan.tfma_config
    wanted: set[tuple[tuple[str, ...], int | None]] = set()
    plotted: set[tuple[tuple[str, ...], int | None]] = set()
    for spec in cfg.metrics_specs:
        outputs = tuple(spec.output_names)
        ids: set[int | None] = set(spec.binarize.class_ids.values)
        for metric in spec.metrics:
            class_id = _metric_kwargs(metric.config).get("class_id")
            if isinstance(class_id, int) and not isinstance(class_id, bool):
                ids.add(class_id)
        wanted.update((outputs, i) for i in ids)
        if any(m.class_name == "ConfusionMatrixPlot" and not _metric_kwargs(m.config) for m in spec.metrics):
            if spec.binarize.class_ids.values:
                plotted.update((outputs, i) for i in spec.binarize.class_ids.values)
            elif not spec.HasField("binarize"):
                plotted.add((outputs, None))
    if task == "binary":
        wanted.add(((), None))
    config = json.dumps({"name": _LABEL_SHARE})
    by_outputs: dict[tuple[str, ...], set[int | None]] = {}
    for outputs, class_id in wanted - plotted:
        by_outputs.setdefault(outputs, set()).add(class_id)
    for outputs, ids in sorted(by_outputs.items()):
        binarized = sorted(i for i in ids if i is not None)
        if binarized:
            spec = cfg.metrics_specs.add()
            spec.output_names.extend(outputs)
            spec.binarize.class_ids.values.extend(binarized)
            spec.metrics.add(class_name="MeanLabel", config=config)
        if None in ids:
            spec = cfg.metrics_specs.add()
            spec.output_names.extend(outputs)
            spec.metrics.add(class_name="MeanLabel", config=config)



def _auc_names(cfg: Any) -> set[str]:
    """Metric key names of TFMA's AUC family in ``cfg`` (they read 0 where they are undefined)."""
    from tensorflow_model_analysis.metrics import metric_types

    registered = metric_types.registered_metrics()
    names = set()
    for spec in cfg.metrics_specs:
        for metric in spec.metrics:
            if metric.class_name in _AUC_CLASSES and not metric.module:
                kwargs = _metric_kwargs(metric.config)
                try:
                    names.add(str(registered[metric.class_name](**kwargs).name))
                except Exception:  # a bad config: TFMA itself reports it when it runs
                    names.add(str(kwargs.get("name") or metric.class_name))
    return names


def _has_thresholds(cfg: Any) -> bool:
    import tensorflow_model_analysis as tfma

    return bool(tfma.metrics.metric_thresholds_from_metrics_specs(cfg.metrics_specs, eval_config=cfg))



def _beam_options(beam_args: Sequence[str]) -> Any:
    """Beam options for the TFMA pipeline: in-memory direct running unless ``beam_args`` name a runner."""
    from apache_beam.options.pipeline_options import PipelineOptions

    args = list(beam_args)
    if not _runtime.beam_runner(args):
        args = ["--direct_running_mode=in_memory", "--direct_num_workers=1", *args]
    return PipelineOptions(args)
