"""Evaluate's config checks: what can be known when the pipeline is defined, and what needs the data.

* :func:`check_definition` — at ``Evaluate(...)`` (no TensorFlow): metric names against the metrics TFMA
  and Keras ship ("did you mean"), value thresholds against the range a metric can take (an accuracy of
  at least 1.5, an AUC lower bound above 1: no model could be blessed), change thresholds against the
  direction the metric improves in and the largest change it can make.
* :func:`check_examples` — at the start of the executor, before TFMA runs (reading a sample of the eval
  examples takes milliseconds): what the label holds (strings, class ids outside the model's classes,
  non-integer classes), ``class_names`` against the model's classes, slice values that never occur.
* :func:`translate_tfma_error` — TFMA errors that still happen (``add_input failed on "<…Combiner …>"``)
  are re-raised naming the setting most likely wrong and what to check.

Messages name the node (when known), the setting (``eval_config.metrics[0].threshold.lower``), the rule and
the fix, as the rest of headwater's definition errors do.
"""

from __future__ import annotations

import difflib
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from headwater.components.errors import ParameterError

__all__ = [
    "KNOWN_METRICS",
    "METRIC_RANGES",
    "ExampleSample",
    "check_definition",
    "check_examples",
    "sample_examples",
    "translate_tfma_error",
]

Better = Literal["higher", "lower"] | None
_INF = math.inf

#: name -> (smallest value, largest value, which way is better) for metrics whose range is fixed.
METRIC_RANGES: dict[str, tuple[float, float, Better]] = {
    **{name: (0.0, 1.0, "higher") for name in (
        "Accuracy", "BinaryAccuracy", "CategoricalAccuracy", "SparseCategoricalAccuracy",
        "TopKCategoricalAccuracy", "SparseTopKCategoricalAccuracy", "AUC", "AUCPrecisionRecall",
        "Precision", "Recall", "PrecisionAtRecall", "RecallAtPrecision", "SensitivityAtSpecificity",
        "SpecificityAtSensitivity", "Specificity", "F1Score", "FBetaScore", "TNR", "TPR",
        "NegativePredictiveValue", "NPV", "PPV", "ThreatScore", "MeanIoU", "IoU", "BinaryIoU", "OneHotIoU",
        "OneHotMeanIoU", "BalancedAccuracy", "MaxRecall",
    )},
    **{name: (0.0, 1.0, "lower") for name in (
        "FPR", "FNR", "FalseDiscoveryRate", "FalseOmissionRate", "MissRate", "FallOut",
    )},
    **{name: (0.0, _INF, "lower") for name in (
        "MeanSquaredError", "MeanAbsoluteError", "RootMeanSquaredError", "MeanAbsolutePercentageError",
        "MeanSquaredLogarithmicError", "BinaryCrossentropy", "CategoricalCrossentropy",
        "SparseCategoricalCrossentropy", "BinaryCrossEntropy", "CategoricalCrossEntropy", "Hinge",
        "SquaredHinge", "CategoricalHinge", "KLDivergence", "Poisson", "LogCoshError",
    )},
    **{name: (0.0, _INF, None) for name in (
        "ExampleCount", "WeightedExampleCount", "TruePositives", "FalsePositives", "TrueNegatives",
        "FalseNegatives",
    )},
    "CosineSimilarity": (-1.0, 1.0, "higher"),
    "MatthewsCorrelationCoefficient": (-1.0, 1.0, "higher"),
}

#: Every metric class name TFMA's registry and ``tf_keras.metrics`` hold (at the pinned versions; a test
#: checks it both ways). A name close to one of these but not equal is a typo; other names are left to
#: the executor, which also knows custom metric classes (``module=``).
KNOWN_METRICS: frozenset[str] = frozenset({
    'AUC', 'AUCPrecisionRecall', 'Accuracy', 'BalancedAccuracy', 'BinaryAccuracy', 'BinaryCrossEntropy',
    'BinaryCrossentropy', 'BinaryIoU', 'Bleu', 'BooleanFlipRates', 'COCOAveragePrecision', 'COCOAverageRecall',
    'COCOMeanAveragePrecision', 'COCOMeanAverageRecall', 'Calibration', 'CalibrationPlot', 'CategoricalAccuracy',
    'CategoricalCrossEntropy', 'CategoricalCrossentropy', 'CategoricalHinge', 'CoefficientOfDiscrimination',
    'ConfusionMatrixAtThresholds', 'ConfusionMatrixPlot', 'CosineSimilarity', 'DiagnosticOddsRatio', 'ExactMatch',
    'ExampleCount', 'F1Score', 'FBetaScore', 'FN', 'FNR', 'FP', 'FPR', 'FallOut', 'FalseDiscoveryRate',
    'FalseNegativeFeatureSampler', 'FalseNegatives', 'FalseOmissionRate', 'FalsePositiveFeatureSampler',
    'FalsePositives', 'FowlkesMallowsIndex', 'Hinge', 'Informedness', 'IoU', 'KLDivergence', 'LogCoshError',
    'Markedness', 'MatthewsCorrelationCoefficient', 'MaxRecall', 'Mean', 'MeanAbsoluteAttributions',
    'MeanAbsoluteError', 'MeanAbsolutePercentageError', 'MeanAttributions', 'MeanIoU', 'MeanLabel',
    'MeanPrediction', 'MeanRelativeError', 'MeanSquaredError', 'MeanSquaredLogarithmicError', 'MeanTensor',
    'MinLabelPosition', 'MissRate', 'ModelCosineSimilarity', 'MultiClassConfusionMatrixAtThresholds',
    'MultiClassConfusionMatrixPlot', 'MultiLabelConfusionMatrixPlot', 'NDCG', 'NPV', 'NegToNegFlipRate',
    'NegToPosFlipRate', 'NegativeLikelihoodRatio', 'NegativePredictiveValue',
    'ObjectDetectionConfusionMatrixPlot', 'ObjectDetectionMaxRecall', 'ObjectDetectionPrecision',
    'ObjectDetectionPrecisionAtRecall', 'ObjectDetectionRecall', 'ObjectDetectionThresholdAtRecall', 'OneHotIoU',
    'OneHotMeanIoU', 'PPV', 'Poisson', 'PosToNegFlipRate', 'PosToPosFlipRate', 'PositiveLikelihoodRatio',
    'Precision', 'PrecisionAtRecall', 'PredictedPositiveRate', 'Prevalence', 'PrevalenceThreshold',
    'QueryStatistics', 'R2Score', 'Recall', 'RecallAtFalsePositiveRate', 'RecallAtPrecision',
    'RelativeCoefficientOfDiscrimination', 'RootMeanSquaredError', 'Rouge', 'ScoreDistributionPlot',
    'SemanticSegmentationConfusionMatrix', 'SemanticSegmentationFalsePositive',
    'SemanticSegmentationTruePositive', 'SensitivityAtSpecificity', 'SetMatchPrecision', 'SetMatchRecall',
    'SparseCategoricalAccuracy', 'SparseCategoricalCrossentropy', 'SparseTopKCategoricalAccuracy', 'Specificity',
    'SpecificityAtSensitivity', 'SquaredHinge', 'SquaredPearsonCorrelation', 'Sum', 'SymmetricFlipRate',
    'SymmetricPredictionDifference', 'TN', 'TNR', 'TP', 'TPR', 'ThreatScore', 'ThresholdAtRecall',
    'TopKCategoricalAccuracy', 'TotalAbsoluteAttributions', 'TotalAttributions', 'TrueNegatives', 'TruePositives',
    'WeightedExampleCount'
})


def _suggest(word: str, choices: Iterable[str], cutoff: float = 0.6) -> str:
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=cutoff)
    return f"; did you mean {close[0]!r}?" if close else ""


def _num(text: float) -> str:
    return "inf" if text == _INF else f"{text:g}"


def _get(mapping: Mapping[str, Any], *names: str) -> Any:
    """The first of ``names`` present (typed configs use snake_case, TFMA's JSON form camelCase)."""
    for name in names:
        if name in mapping:
            return mapping[name]
    return None


# ============================================================================ definition time
@dataclass(frozen=True)
class _Threshold:
    metric: str
    where: str
    lower: float | None = None
    upper: float | None = None
    absolute: float | None = None
    direction: str | None = None


def _typed_thresholds(config: Mapping[str, Any]) -> list[_Threshold]:
    out = []
    for i, m in enumerate(config.get("metrics") or ()):
        if not isinstance(m, Mapping) or m.get("module"):
            continue
        name, where = str(m.get("name", "")), f"eval_config.metrics[{i}]"
        value, change = m.get("threshold") or {}, m.get("change") or {}
        out.append(_Threshold(name, where))
        if value:
            out.append(_Threshold(name, f"{where}.threshold", lower=value.get("lower"), upper=value.get("upper")))
        if change:
            out.append(_Threshold(name, f"{where}.change", absolute=change.get("absolute"),
                                  direction=str(change.get("direction") or "higher_is_better").lower()))
    return out


def _tfma_thresholds(config: Mapping[str, Any]) -> list[_Threshold]:
    out = []
    for s, spec in enumerate(_get(config, "metricsSpecs", "metrics_specs") or ()):
        for i, m in enumerate(spec.get("metrics") or ()):
            if m.get("module"):
                continue
            name = str(_get(m, "className", "class_name") or "")
            where = f"eval_config.metrics_specs[{s}].metrics[{i}]"
            out.append(_Threshold(name, where))
            threshold = m.get("threshold") or {}
            value = _get(threshold, "valueThreshold", "value_threshold") or {}
            change = _get(threshold, "changeThreshold", "change_threshold") or {}

            def number(v: Any) -> float | None:
                v = v.get("value") if isinstance(v, Mapping) else v
                return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None

            if value:
                out.append(_Threshold(name, f"{where}.threshold.value_threshold",
                                      lower=number(_get(value, "lowerBound", "lower_bound")),
                                      upper=number(_get(value, "upperBound", "upper_bound"))))
            if change:
                out.append(_Threshold(name, f"{where}.threshold.change_threshold",
                                      absolute=number(change.get("absolute")),
                                      direction=str(change.get("direction") or "").lower() or None))
    return out


def check_definition(config: Mapping[str, Any], *, tfma_key: str = "tfma_eval_config") -> None:
    """Check metric names and thresholds of a normalised ``eval_config`` (its parameter form).

    Raises :class:`ParameterError` naming the setting, the rule and the fix.
    """
    if tfma_key in config:
        thresholds = _tfma_thresholds(config[tfma_key])
        lower_key, upper_key = "lower_bound", "upper_bound"
    else:
        thresholds = _typed_thresholds(config)
        lower_key, upper_key = "lower", "upper"
    for t in thresholds:
        if t.metric not in KNOWN_METRICS:
            hint = _suggest(t.metric, KNOWN_METRICS, cutoff=0.8)
            if hint:
                raise ParameterError(
                    f"{t.where}: metric {t.metric!r} is not a TFMA or Keras metric{hint} Metric names are class "
                    "names from tfma.metrics or tf.keras.metrics (or set module= for your own metric class)",
                    parameter="eval_config",
                )
            continue
        lo, hi, better = METRIC_RANGES.get(t.metric, (-_INF, _INF, None))
        span = f"[{_num(lo)}, {_num(hi)}]"
        percent = " (a percentage? write {x:g} as {y:g})"
        if t.lower is not None and t.lower > hi:
            hint = percent.format(x=t.lower, y=t.lower / 100) if hi == 1 and t.lower <= 100 else ""
            raise ParameterError(
                f"{t.where}.{lower_key} is {t.lower:g} but {t.metric} lies in {span}: no model can reach it, so "
                f"none would ever be blessed; give a lower bound within {span}{hint}", parameter="eval_config",
            )
        if t.upper is not None and t.upper < lo:
            raise ParameterError(
                f"{t.where}.{upper_key} is {t.upper:g} but {t.metric} lies in {span}: no model can stay below it, "
                f"so none would ever be blessed; give an upper bound within {span}", parameter="eval_config",
            )
        if t.lower is not None and t.lower < lo:
            raise ParameterError(
                f"{t.where}.{lower_key} is {t.lower:g} but {t.metric} is never below {_num(lo)}: every model "
                f"passes, the threshold gates nothing; give a lower bound within {span}", parameter="eval_config",
            )
        if t.upper is not None and t.upper > hi:
            raise ParameterError(
                f"{t.where}.{upper_key} is {t.upper:g} but {t.metric} is never above {_num(hi)}: every model "
                f"passes, the threshold gates nothing; give an upper bound within {span}", parameter="eval_config",
            )
        if t.direction is None or better is None:
            continue
        wanted = f"{better}_is_better"
        if t.direction != wanted:
            raise ParameterError(
                f"{t.where}.direction is {t.direction} but {t.metric} is better when {better}"
                f"{' (a loss or error)' if better == 'lower' else ''}; set direction: {wanted}",
                parameter="eval_config",
            )
        width = hi - lo
        if t.absolute is not None and math.isfinite(width) and abs(t.absolute) > width and (
                (better == "higher" and t.absolute > 0) or (better == "lower" and t.absolute < 0)):
            raise ParameterError(
                f"{t.where}.absolute is {t.absolute:g} but {t.metric} lies in {span}: no candidate can improve on "
                f"a baseline by more than {_num(width)}, so none would ever be blessed; e.g. absolute: -1e-10 "
                "(not worse than the baseline)", parameter="eval_config",
            )


# ============================================================================ executor time
@dataclass
class _Feature:
    kind: str  # "bytes_list", "int64_list" or "float_list"
    values: Counter[Any] = field(default_factory=Counter)


@dataclass
class ExampleSample:
    """Feature kinds and values of the first ``limit`` eval examples; ``complete`` if that was all of them."""

    features: dict[str, _Feature]
    count: int
    complete: bool

    @property
    def keys(self) -> set[str]:
        return set(self.features)


_MAX_VALUES = 200  # distinct values kept per feature


def sample_examples(patterns: Sequence[str], limit: int = 2000) -> ExampleSample:
    """Read up to ``limit`` tf.Examples from the files matching ``patterns``: names, kinds, some values."""
    from headwater.components._data import glob_files, read_tfrecords
    from tensorflow.core.example import example_pb2

    features: dict[str, _Feature] = {}
    seen = 0
    for pattern in patterns:
        for path in glob_files(pattern):
            for record in read_tfrecords(path):
                if seen >= limit:
                    return ExampleSample(features, seen, complete=False)
                seen += 1
                for name, feature in example_pb2.Example.FromString(record).features.feature.items():
                    kind = feature.WhichOneof("kind") or "bytes_list"
                    entry = features.setdefault(name, _Feature(kind))
                    values = list(getattr(feature, kind).value)
                    for v in values[:4]:
                        if len(entry.values) < _MAX_VALUES or v in entry.values:
                            entry.values[v.decode("utf-8", "replace") if isinstance(v, bytes) else v] += 1
    return ExampleSample(features, seen, complete=True)


def _show(values: Iterable[Any], n: int = 6) -> str:
    items = sorted(values, key=lambda v: (str(type(v)), v))
    text = ", ".join(repr(v) if isinstance(v, str) else f"{v:g}" if isinstance(v, float) else str(v)
                     for v in items[:n])
    return text + (", …" if len(items) > n else "")


def check_examples(
    tfma_config: Any,
    sample: ExampleSample,
    *,
    node: str,
    task: str,
    classes: int,
    class_names: Sequence[str] = (),
    transformed: Iterable[str] = (),
    label_setting: str = "eval_config.label_key",
) -> None:
    """Check the label and slices of ``tfma_config`` against a sample of the eval examples.

    ``task`` and ``classes`` are what the model predicts (``classes`` = width of its output, 0 unknown);
    ``transformed`` are the keys the preprocessing signatures produce (a transformed label is the model's
    own encoding and is not sampled here). Raises :class:`ParameterError`.
    """
    transformed = set(transformed)
    for spec in tfma_config.model_specs:
        labels = [spec.label_key] if spec.label_key else list(spec.label_keys.values())
        for label in labels:
            if label in transformed or label not in sample.features:
                continue
            _check_label(label, sample.features[label], node=node, task=task, classes=classes,
                         setting=label_setting, transformed=transformed)
    if class_names and task == "multiclass" and classes >= 2 and len(class_names) != classes:
        raise ParameterError(
            f"{node}: eval_config.class_names has {len(class_names)} names ({', '.join(class_names)}) but the model "
            f"predicts {classes} classes; give {classes} names, in class id order", parameter="eval_config",
        )
    for spec in tfma_config.slicing_specs:
        for key, wanted in spec.feature_values.items():
            feature = sample.features.get(key)
            if feature is None or not feature.values:
                continue
            seen = {str(v) for v in feature.values}
            if wanted in seen:
                continue
            same = [v for v in sorted(seen) if v.lower() == wanted.lower()]  # values are case-sensitive
            hint = f"; did you mean {same[0]!r}?" if same else _suggest(wanted, seen)
            if hint or sample.complete:
                raise ParameterError(
                    f"{node}: eval_config slice value {key}={wanted!r} does not occur in the eval examples "
                    f"(values: {_show(feature.values)}){hint or ';'} a slice on it would be empty and a threshold "
                    "on it would check nothing", parameter="eval_config",
                )


def _check_label(label: str, feature: _Feature, *, node: str, task: str, classes: int, setting: str,
                 transformed: set[str]) -> None:
    values = list(feature.values)
    alternative = sorted(k for k in transformed if k.startswith(label))
    instead = (f" Use the label the model was trained on, e.g. {alternative[0]!r} (an output of the "
               "preprocessing signatures)" if alternative else
               " Use the label the model was trained on: class ids 0..n-1 (encode them in Ingest or Transform)")
    if feature.kind == "bytes_list":
        raise ParameterError(
            f"{node}: {setting} {label!r} holds strings ({_show(values)}); TFMA compares the label with the "
            f"model's predictions as numbers, so every metric would fail.{instead}", parameter="eval_config",
        )
    if task not in ("multiclass", "binary") or not values:
        return
    numbers = [float(v) for v in values]
    if any(not x.is_integer() for x in numbers):
        raise ParameterError(
            f"{node}: {setting} {label!r} holds non-integer values ({_show(values)}) but the model is a "
            f"{task} classifier, whose labels are class ids.{instead}", parameter="eval_config",
        )
    top = classes if task == "multiclass" and classes >= 2 else 2
    outside = sorted({int(x) for x in numbers if x < 0 or x >= top})
    if outside:
        raise ParameterError(
            f"{node}: {setting} {label!r} has values {_show(outside)} outside the model's {top} classes "
            f"(0..{top - 1}); the label must be the class id the model predicts.{instead}",
            parameter="eval_config",
        )


# ============================================================================ TFMA errors
def _root(exc: BaseException) -> BaseException:
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        nxt = exc.__cause__ or exc.__context__
        if nxt is None:
            break
        exc = nxt
    return exc


def translate_tfma_error(exc: BaseException, *, node: str, label: str | None, label_setting: str,
                         slices: Sequence[str] = ()) -> ParameterError | None:
    """A :class:`ParameterError` saying what to check for a TFMA failure we recognise, else ``None``."""
    text = f"{exc}"
    root = _root(exc)
    said = (f"{type(root).__name__}: {str(root).strip().splitlines()[0] if str(root).strip() else ''}")[:300]
    if "add_input failed" in text or "add_inputs failed" in text:
        combiner = text.split("add_input failed on", 1)[-1].strip().strip('"').split(" object at")[0]
        combiner = combiner.lstrip("<").rsplit(".", 1)[-1] or "a metric"
        return ParameterError(
            f"{node}: TFMA failed computing {combiner} from the labels and the model's predictions. This "
            f"usually means {label_setting} {label!r} does not hold what the model predicts (class ids "
            "0..n-1 for a classifier; a transformed label needs preprocessing_signatures=('transform_features',))"
            f", or a metric does not fit the model's output. Check {label_setting} and the metrics. TFMA said: "
            f"{said}", parameter="eval_config",
        )
    if "label" in text.lower() and ("not found" in text.lower() or "keyerror" in text.lower()):
        return ParameterError(
            f"{node}: TFMA could not find the label: check {label_setting} {label!r} against the eval examples' "
            f"features and preprocessing_signatures. TFMA said: {said}", parameter="eval_config",
        )
    if slices and any(s in text for s in slices) and "slic" in text.lower():
        return ParameterError(
            f"{node}: TFMA failed slicing the eval examples: check eval_config.slices ({', '.join(slices)}) "
            f"against the features. TFMA said: {said}", parameter="eval_config",
        )
    return None
