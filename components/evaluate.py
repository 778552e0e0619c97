"""Evaluate: TFMA over the eval split, against the latest blessed model, and ALWAYS a blessing.

::

    config = EvalConfig(
        label_key="species_xf",
        preprocessing_signatures=("transform_features",),
        metrics=(
            Metric("SparseCategoricalAccuracy", threshold=ValueThreshold(lower=0.9),
                   change=ChangeThreshold(absolute=-1e-10)),
            Metric("ExampleCount"),
        ),
        slices=(Slice(), Slice(features=("island",))),
    )
    evaluate = Evaluate(examples=ingest.outputs.examples, model=train.outputs.model,
                        baseline_model=latest.outputs.model, eval_config=config)

``eval_config`` is an :class:`EvalConfig`, the same as a dict or YAML text (``EvalConfig.from_dict`` /
``from_yaml``), or a ``tfma.EvalConfig`` taken as is.

A threshold gates the whole eval set only, unless its ``slices=`` says ``"all"`` (every evaluated slice)
or lists slices (each among ``EvalConfig.slices``); other slices are reported, not gated.

Blessing policy (recorded on the blessing as ``blessing_message``, TFX's property name, which gives each
failed threshold's slice, value, bound and comparison, and for change thresholds the baseline and change):

* thresholds configured: BLESSED iff every threshold passes on the slices it applies to. Without a baseline
  model (the first run) change thresholds are skipped — TFX's "rubber stamp" — and value thresholds still
  apply. A metric undefined on a slice (a per-class AUC where the class does not occur) is not checked there;
* no thresholds configured: ``no_thresholds="not_blessed"`` (the default, as TFX does: a model nobody set a
  bar for is not pushed) or ``"blessed"`` (bless whatever trained, e.g. for a demo pipeline).

Outputs: ``evaluation`` holds TFMA's results (``metrics-*``, ``plots-*``, ``validations-*``,
``eval_config.json``) plus ``metrics.json`` and ``metrics.md`` (every metric per slice, candidate,
baseline and difference; ``null`` / ``n/a`` with the reason where undefined) and, for classifiers,
``confusion_matrix.png|svg`` and ``roc.png|svg``;
``blessing`` holds an empty ``BLESSED`` or ``NOT_BLESSED`` file and TFX's custom properties ``blessed``,
``current_model``, ``current_model_id``, ``baseline_model``, ``baseline_model_id``.
"""

from __future__ import annotations

import difflib
import enum
import json
import math
import os
import sys
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from headwater.components import _eval_checks
from headwater.components.api import Component, ExecutionContext, Input, Node, Output, component
from headwater.metadata import types
from headwater.metadata.errors import InputDataError, ParameterError

__all__ = [
    "BLESSED_FILE",
    "NOT_BLESSED_FILE",
    "ChangeThreshold",
    "Direction",
    "EvalConfig",
    "Evaluate",
    "Metric",
    "Slice",
    "ValueThreshold",
    "normalize_eval_config",
]

BLESSED_FILE = "BLESSED"
NOT_BLESSED_FILE = "NOT_BLESSED"
_TFMA_KEY = "tfma_eval_config"
NoThresholdPolicy = Literal["not_blessed", "blessed"]
Task = Literal["auto", "multiclass", "binary", "regression"]


# ============================================================================ typed configuration
class Direction(enum.StrEnum):
    """Which way a change threshold counts as better."""

    HIGHER_IS_BETTER = "higher_is_better"
    LOWER_IS_BETTER = "lower_is_better"


def _where(path: str) -> str:
    return f"eval_config{path}" if path.startswith(("[", ".")) or not path else f"eval_config.{path}"


def _number(value: Any, path: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParameterError(f"{_where(path)} is {value!r}; give a number")
    if math.isnan(value):
        raise ParameterError(f"{_where(path)} is NaN; give a number")
    return float(value)


@dataclass(frozen=True)
class Slice:
    """A slice: ``Slice()`` is the whole data set; ``Slice(features=("island",))`` one slice per island;
    ``Slice(values={"island": "Biscoe"})`` only that island."""

    features: tuple[str, ...] = ()
    values: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.features, str):
            object.__setattr__(self, "features", (self.features,))
        object.__setattr__(self, "features", tuple(self.features))
        object.__setattr__(self, "values", {str(k): str(v) for k, v in dict(self.values).items()})

    @property
    def keys(self) -> tuple[str, ...]:
        return (*self.features, *self.values)


ThresholdSlices = tuple[Slice, ...] | Literal["all"] | None
"""Where a threshold is checked: ``None`` (the default) the whole eval set only, ``"all"`` every evaluated
slice, or the listed slices (each must be among ``EvalConfig.slices``)."""


def _threshold_slices(value: Any) -> ThresholdSlices:
    """Normalise a threshold's ``slices=``; messages leave the path to the caller."""
    if value is None or value == "all":
        return value
    if isinstance(value, str):
        raise ParameterError(
            f"slices is {value!r}; give all (every slice) or a list of slices such as [{{}}, {{features: [island]}}]"
        )
    if isinstance(value, (Slice, Mapping)):
        value = [value]
    if not isinstance(value, (list, tuple)):
        raise ParameterError(
            f"slices is {value!r}; give all or a list of slices such as [{{}}, {{features: [island]}}]"
        )
    if not value:
        raise ParameterError("slices is empty; leave it out for the whole eval set, or give all or a list of slices")
    return tuple(_slice_from(v, f"slices[{i}]", prefix=False) for i, v in enumerate(value))


def _slice_text(s: Slice) -> str:
    """A slice the way the YAML form writes it: ``{}``, ``{features: [island]}``, ``{values: {sex: MALE}}``."""
    parts = []
    if s.features:
        parts.append(f"features: [{', '.join(s.features)}]")
    if s.values:
        parts.append("values: {" + ", ".join(f"{k}: {v}" for k, v in s.values.items()) + "}")
    return "{" + ", ".join(parts) + "}"


def _covers(evaluated: Slice, wanted: Slice) -> bool:
    """Whether TFMA computes (some of) the slices ``wanted`` names when ``evaluated`` is configured."""
    if set(evaluated.keys) != set(wanted.keys):
        return False
    return all(evaluated.values.get(k, v) == v for k, v in wanted.values.items())


@dataclass(frozen=True)
class ValueThreshold:
    """The metric's value must lie in ``[lower, upper]`` (either bound may be omitted).

    ``slices``: where it is checked — the whole eval set only by default, ``"all"`` for every evaluated
    slice, or a tuple of :class:`Slice` (each among ``EvalConfig.slices``).
    """

    lower: float | None = None
    upper: float | None = None
    slices: ThresholdSlices = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "slices", _threshold_slices(self.slices))
        lower, upper = _number(self.lower, "threshold.lower"), _number(self.upper, "threshold.upper")
        if lower is None and upper is None:
            raise ParameterError("a ValueThreshold needs lower= and/or upper=; give at least one bound")
        if lower is not None and upper is not None and lower > upper:
            raise ParameterError(f"ValueThreshold lower={lower} is above upper={upper}; swap them")
        object.__setattr__(self, "lower", lower)
        object.__setattr__(self, "upper", upper)


@dataclass(frozen=True)
class ChangeThreshold:
    """Candidate minus baseline must not be worse than ``absolute`` (and/or ``relative``) in ``direction``.

    ``ChangeThreshold(absolute=-1e-10)`` with the default ``higher_is_better``: "not worse than the
    baseline" (TFX's usual setting). ``slices`` as for :class:`ValueThreshold` (default: the whole eval set).
    """

    absolute: float | None = None
    relative: float | None = None
    direction: Direction = Direction.HIGHER_IS_BETTER
    slices: ThresholdSlices = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "slices", _threshold_slices(self.slices))
        absolute, relative = _number(self.absolute, "change.absolute"), _number(self.relative, "change.relative")
        if absolute is None and relative is None:
            raise ParameterError("a ChangeThreshold needs absolute= and/or relative=; e.g. absolute=-1e-10")
        try:
            direction = Direction(self.direction)
        except ValueError:
            raise ParameterError(
                f"change direction {self.direction!r} is not one of "
                f"{[d.value for d in Direction]}"
            ) from None
        object.__setattr__(self, "absolute", absolute)
        object.__setattr__(self, "relative", relative)
        object.__setattr__(self, "direction", direction)


@dataclass(frozen=True)
class Metric:
    """A TFMA or Keras metric by class name (``"SparseCategoricalAccuracy"``, ``"AUC"``, ``"ExampleCount"``).

    ``config`` are constructor arguments (``{"top_k": 2}``); ``module`` names the module of a custom
    metric class.
    """

    name: str
    threshold: ValueThreshold | None = None
    change: ChangeThreshold | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    module: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ParameterError(f"metric name {self.name!r} is empty; give a class name such as 'AUC'")
        object.__setattr__(self, "config", dict(self.config))

    @property
    def has_threshold(self) -> bool:
        return self.threshold is not None or self.change is not None


@dataclass(frozen=True)
class EvalConfig:
    """What to evaluate and the bar a model must clear; plain Python, YAML or dict.

    ``label_key`` names the label among the eval examples' features or, with
    ``preprocessing_signatures`` (e.g. ``("transform_features",)``), among the outputs of those model
    signatures. ``no_thresholds`` is the blessing policy when no metric has a threshold (see the module
    docs). ``task`` picks the pictures (``auto`` looks at the model's output); ``class_names`` label them.

    Only the listed metrics are computed, from the model's signatures (TFMA's ``tf_generic`` model
    type): that is ~2x faster than TFMA's Keras path, which reloads the Keras model in every step.
    ``include_model_metrics=True`` adds the metrics compiled into a Keras model (``loss`` …) the TFMA
    way, at that cost.
    """

    label_key: str
    metrics: tuple[Metric, ...] = ()
    slices: tuple[Slice, ...] = (Slice(),)
    signature: str = "serving_default"
    preprocessing_signatures: tuple[str, ...] = ()
    prediction_key: str | None = None
    example_weight_key: str | None = None
    no_thresholds: NoThresholdPolicy = "not_blessed"
    task: Task = "auto"
    class_names: tuple[str, ...] = ()
    plots: bool = True
    include_model_metrics: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.label_key, str) or not self.label_key:
            raise ParameterError("eval_config.label_key is empty; name the label feature (e.g. 'species_xf')")
        for name in ("metrics", "slices", "preprocessing_signatures", "class_names"):
            value = getattr(self, name)
            if isinstance(value, (str, Metric, Slice)):
                value = (value,)
            object.__setattr__(self, name, tuple(value))
        object.__setattr__(
            self, "metrics", tuple(Metric(m) if isinstance(m, str) else m for m in self.metrics)
        )
        for i, m in enumerate(self.metrics):
            if not isinstance(m, Metric):
                raise ParameterError(f"eval_config.metrics[{i}] is {type(m).__name__}; use Metric(...) or a name")
        if not self.slices:
            raise ParameterError("eval_config.slices is empty; keep at least Slice() (the whole data set)")
        object.__setattr__(self, "slices", tuple(_slice_from(s, f"slices[{i}]") for i, s in enumerate(self.slices)))
        self._check_threshold_slices()
        if self.no_thresholds not in ("not_blessed", "blessed"):
            raise ParameterError(
                f"eval_config.no_thresholds is {self.no_thresholds!r}; use 'not_blessed' (default) or 'blessed'"
            )
        if self.task not in ("auto", "multiclass", "binary", "regression"):
            raise ParameterError(
                f"eval_config.task is {self.task!r}; use 'auto', 'multiclass', 'binary' or 'regression'"
            )
        _eval_checks.check_definition(self.to_dict())  # metric names, threshold ranges and directions

    def _check_threshold_slices(self) -> None:
        evaluated = ", ".join(_slice_text(s) for s in self.slices)
        for i, m in enumerate(self.metrics):
            for kind, threshold in (("threshold", m.threshold), ("change", m.change)):
                if threshold is None or threshold.slices == "all":
                    continue
                where = f"eval_config.metrics[{i}].{kind}"
                if threshold.slices is None:
                    if Slice() not in self.slices:
                        raise ParameterError(
                            f"{where} applies to the whole eval set (it has no slices:) but eval_config.slices has "
                            "no whole-set slice {}; add {} to eval_config.slices, or give the threshold slices: all "
                            "or a list of slices"
                        )
                    continue
                for j, wanted in enumerate(threshold.slices):
                    if not any(_covers(s, wanted) for s in self.slices):
                        raise ParameterError(
                            f"{where}.slices[{j}] {_slice_text(wanted)} is not among eval_config.slices "
                            f"({evaluated}); add it there: a threshold is checked only on evaluated slices"
                        )

    @property
    def has_thresholds(self) -> bool:
        return any(m.has_threshold for m in self.metrics)

    def with_metrics(self, *metrics: Metric | str) -> EvalConfig:
        """A copy with ``metrics`` added."""
        return replace(self, metrics=(*self.metrics, *(Metric(m) if isinstance(m, str) else m for m in metrics)))

    def with_slices(self, *slices: Slice) -> EvalConfig:
        """A copy with ``slices`` added."""
        return replace(self, slices=(*self.slices, *slices))

    # -------------------------------------------------------------- dict / YAML
    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-able dict (the form stored as the Evaluate node's parameter)."""

        def clean(value: Any) -> Any:
            if isinstance(value, enum.Enum):
                return value.value
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items() if v is not None}
            if isinstance(value, (list, tuple)):
                return [clean(v) for v in value]
            return value

        return clean(asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EvalConfig:
        """Build from a dict (as loaded from YAML/JSON); unknown keys are errors that name the key."""
        if not isinstance(data, Mapping):
            raise ParameterError(f"eval_config must be a mapping, got {type(data).__name__}")
        _check_keys(data, cls, "")
        kwargs: dict[str, Any] = dict(data)
        if "label_key" not in kwargs:
            raise ParameterError("eval_config has no label_key; name the label feature (e.g. label_key: species_xf)")
        kwargs["metrics"] = tuple(_metric_from(m, f"metrics[{i}]") for i, m in enumerate(data.get("metrics") or ()))
        if "slices" in data:
            kwargs["slices"] = tuple(_slice_from(s, f"slices[{i}]") for i, s in enumerate(data["slices"] or ()))
        for key in ("preprocessing_signatures", "class_names"):
            if key in data:
                value = data[key]
                kwargs[key] = (value,) if isinstance(value, str) else tuple(value or ())
        return cls(**kwargs)

    @classmethod
    def from_yaml(cls, text_or_path: str | os.PathLike[str]) -> EvalConfig:
        """Build from YAML text or a ``.yaml``/``.yml`` file."""
        import yaml

        text, source = str(text_or_path), None
        if isinstance(text_or_path, os.PathLike) or (text.endswith((".yaml", ".yml")) and "\n" not in text):
            path = Path(text_or_path)
            if not path.is_file():
                raise ParameterError(f"eval_config file {text} does not exist")
            text, source = path.read_text(), str(path)
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ParameterError(f"eval_config is not valid YAML: {exc}") from None
        try:
            return cls.from_dict(data or {})
        except ParameterError as exc:  # name the file the mistake is in
            if source is None:
                raise
            raise ParameterError(f"{source}: {exc}", parameter="eval_config", file=source) from None

    # -------------------------------------------------------------- TFMA
    def to_tfma(self) -> Any:
        """The equivalent ``tfma.EvalConfig`` (imports TFMA)."""
        import tensorflow_model_analysis as tfma

        spec = tfma.ModelSpec(signature_name=self.signature, label_key=self.label_key)
        spec.preprocessing_function_names.extend(self.preprocessing_signatures)
        if self.prediction_key:
            spec.prediction_key = self.prediction_key
        if self.example_weight_key:
            spec.example_weight_key = self.example_weight_key
        registered = tfma.metrics.metric_types.registered_metrics()
        metrics, per_class = [], []
        for m in self.metrics:
            cfg = tfma.MetricConfig(class_name=m.name, module=m.module or "")
            kwargs = dict(m.config)
            # A TFMA metric's class_id becomes TFMA's binarization: the same "name [class k]" values, and
            # thresholds TFMA can match to them (it keys thresholds by binarization, not by config).
            class_id = kwargs.get("class_id") if m.name in registered and not m.module else None
            if isinstance(class_id, int) and not isinstance(class_id, bool):
                del kwargs["class_id"]
                binarized = tfma.MetricsSpec(metrics=[cfg])
                binarized.binarize.class_ids.values.append(class_id)
                per_class.append(binarized)
                cfg = binarized.metrics[0]
            else:
                metrics.append(cfg)
            if kwargs:
                cfg.config = json.dumps(kwargs, sort_keys=True)
            if m.threshold is not None:
                value = _scoped_threshold(cfg, m.threshold.slices).value_threshold
                if m.threshold.lower is not None:
                    value.lower_bound.value = m.threshold.lower
                if m.threshold.upper is not None:
                    value.upper_bound.value = m.threshold.upper
            if m.change is not None:
                change = _scoped_threshold(cfg, m.change.slices).change_threshold
                change.direction = (
                    tfma.MetricDirection.HIGHER_IS_BETTER
                    if m.change.direction == Direction.HIGHER_IS_BETTER
                    else tfma.MetricDirection.LOWER_IS_BETTER
                )
                if m.change.absolute is not None:
                    change.absolute.value = m.change.absolute
                if m.change.relative is not None:
                    change.relative.value = m.change.relative
        slicing = [_slicing_spec(s) for s in self.slices]
        if not self.include_model_metrics:
            spec.model_type = tfma.TF_GENERIC
        config = tfma.EvalConfig(
            model_specs=[spec],
            metrics_specs=([tfma.MetricsSpec(metrics=metrics)] if metrics else []) + per_class,
            slicing_specs=slicing,
        )
        config.options.include_default_metrics.value = self.include_model_metrics
        return config


def _slicing_spec(s: Slice) -> Any:
    import tensorflow_model_analysis as tfma

    spec = tfma.SlicingSpec(feature_keys=list(s.features))
    for k, v in s.values.items():
        spec.feature_values[k] = v
    return spec


def _scoped_threshold(cfg: Any, slices: ThresholdSlices) -> Any:
    """The ``tfma.MetricThreshold`` to fill for a threshold scoped to ``slices``.

    ``"all"`` is TFMA's ``MetricConfig.threshold`` (checked on every slice); the whole eval set (``None``)
    or listed slices are a ``per_slice_thresholds`` entry, which TFMA checks only on matching slices.
    """
    if slices == "all":
        return cfg.threshold
    per_slice = cfg.per_slice_thresholds.add()
    per_slice.slicing_specs.extend(_slicing_spec(s) for s in (slices or (Slice(),)))
    return per_slice.threshold


def _suggest(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _check_keys(data: Mapping[str, Any], cls: type, path: str, *, prefix: bool = True) -> None:
    known = [f.name for f in fields(cls)]
    for key in data:
        if key not in known:
            where = f"{path}.{key}" if path else str(key)
            raise ParameterError(
                f"{_where(where) if prefix else where} is not a setting{_suggest(str(key), known)} "
                f"(known: {', '.join(known)})"
            )


def _metric_from(value: Any, path: str) -> Metric:
    if isinstance(value, Metric):
        return value
    if isinstance(value, str):
        return Metric(value)
    if not isinstance(value, Mapping):
        raise ParameterError(f"{_where(path)} is {value!r}; give a metric name or a mapping with name:")
    _check_keys(value, Metric, path)
    if "name" not in value:
        raise ParameterError(f"{_where(path)} has no name; e.g. name: SparseCategoricalAccuracy")
    kwargs = dict(value)
    for key, cls in (("threshold", ValueThreshold), ("change", ChangeThreshold)):
        if kwargs.get(key) is not None:
            sub = kwargs[key]
            if not isinstance(sub, Mapping):
                raise ParameterError(f"{_where(path + '.' + key)} is {sub!r}; give a mapping (e.g. lower: 0.9)")
            _check_keys(sub, cls, f"{path}.{key}")
            try:
                kwargs[key] = cls(**sub)
            except ParameterError as exc:
                raise ParameterError(f"{_where(path + '.' + key)}: {exc}") from None
    return Metric(**kwargs)


def _slice_from(value: Any, path: str, *, prefix: bool = True) -> Slice:
    if isinstance(value, Slice):
        return value
    if value is None or value == {}:
        return Slice()
    if isinstance(value, (list, tuple, str)):
        return Slice(features=tuple([value] if isinstance(value, str) else value))
    if not isinstance(value, Mapping):
        raise ParameterError(f"{_where(path) if prefix else path} is {value!r}; give a mapping such as "
                             "features: [island]")
    _check_keys(value, Slice, path, prefix=prefix)
    return Slice(features=tuple(value.get("features") or ()), values=dict(value.get("values") or {}))


def normalize_eval_config(value: Any) -> dict[str, Any]:
    """The parameter form of any accepted config: a plain dict (checked now, at pipeline definition).

    Accepts an :class:`EvalConfig`, a dict or YAML text/file in its shape, or a ``tfma.EvalConfig``
    (stored as ``{"tfma_eval_config": <its JSON form>}``; converting it does not import TFMA).
    """
    if isinstance(value, EvalConfig):
        return value.to_dict()
    descriptor = getattr(value, "DESCRIPTOR", None)
    if descriptor is not None:
        if descriptor.full_name != "tensorflow_model_analysis.EvalConfig":
            raise ParameterError(
                f"eval_config is a {descriptor.full_name} message; give a tfma.EvalConfig, an EvalConfig, "
                "a dict or YAML"
            )
        from google.protobuf import json_format

        return {_TFMA_KEY: json_format.MessageToDict(value)}
    if isinstance(value, Mapping):
        if _TFMA_KEY in value:
            if set(value) != {_TFMA_KEY}:
                raise ParameterError(f"eval_config with {_TFMA_KEY!r} must hold nothing else")
            return {_TFMA_KEY: dict(value[_TFMA_KEY])}
        return EvalConfig.from_dict(value).to_dict()
    if isinstance(value, (str, os.PathLike)):
        return EvalConfig.from_yaml(value).to_dict()
    raise ParameterError(
        f"eval_config is {type(value).__name__}; give an EvalConfig, a dict or YAML in its shape, or a "
        "tfma.EvalConfig"
    )


# ============================================================================ executor helpers
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

    if _TFMA_KEY in config:
        proto = json_format.ParseDict(config[_TFMA_KEY], tfma.EvalConfig())
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
    proto.ParseFromString(Path(saved_model_dir, "saved_model.pb").read_bytes())

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
                import importlib

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


def _plot_shares(plots: Sequence[Any]) -> dict[str, dict[ShareKey, float]]:
    """``{slice: {(output, class_id): share of positives}}`` from the candidate's ConfusionMatrixPlots."""
    shares: dict[str, dict[ShareKey, float]] = {}
    for record in plots:
        for kv in record.plot_keys_and_values:
            if kv.key.model_name == "baseline" or not kv.value.HasField("confusion_matrix_at_thresholds"):
                continue
            matrices = kv.value.confusion_matrix_at_thresholds.matrices
            if not matrices:
                continue
            m = matrices[0]
            total = m.true_positives + m.false_negatives + m.false_positives + m.true_negatives
            key = _share_key(kv.key)
            if total > 0 and key is not None:
                shares.setdefault(_slice_name(record.slice_key), {})[key] = (
                    (m.true_positives + m.false_negatives) / total
                )
    return shares


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


# ---------------------------------------------------------------------------- readable results
def _slice_name(slice_key: Any) -> str:
    parts = []
    for single in slice_key.single_slice_keys:
        kind = single.WhichOneof("kind")
        value = getattr(single, kind) if kind else ""
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        parts.append(f"{single.column}={value}")
    return ", ".join(parts) or "Overall"


def _metric_label(key: Any) -> str:
    label = key.name
    if key.HasField("sub_key"):
        sub = key.sub_key
        if sub.HasField("class_id"):
            label += f" [class {sub.class_id.value}]"
        elif sub.HasField("top_k"):
            label += f" [top {sub.top_k.value}]"
        elif sub.HasField("k"):
            label += f" [k={sub.k.value}]"
    if key.output_name:
        label = f"{key.output_name}/{label}"
    return label


def _value(value: Any) -> float | None:
    """A scalar metric value (NaN where TFMA says undefined); None for non-scalar values (matrices …)."""
    kind = value.WhichOneof("type")
    if kind == "double_value":
        return float(value.double_value.value)
    if kind == "bounded_value":
        return float(value.bounded_value.value.value)
    return None


Table = dict[str, dict[str, dict[str, float | None]]]
"""``{slice: {metric: {"candidate": v, "baseline": v, "diff": v}}}``; ``None``: undefined on the slice."""
Undefined = dict[str, dict[str, str]]
"""``{slice: {metric: why it is undefined there}}``."""


def _class_id(key: Any) -> int | None:
    return int(key.sub_key.class_id.value) if key.HasField("sub_key") and key.sub_key.HasField("class_id") else None


def _share_key(key: Any) -> ShareKey | None:
    """Which class share decides whether the metric under ``key`` is defined; None for top-k sub keys."""
    if key.HasField("sub_key") and not key.sub_key.HasField("class_id"):
        return None
    return (key.output_name, _class_id(key))


def _undefined_reason(share: float, class_id: int | None, names: Sequence[str]) -> str:
    if class_id is None:
        return "no positive example in this slice" if share < 0.5 else "no negative example in this slice"
    name = names[class_id] if class_id < len(names) else str(class_id)
    label = f"class {class_id}" + (f" ({name})" if name != str(class_id) else "")
    return f"no example of {label} in this slice" if share < 0.5 else f"every example in this slice is {label}"


def _collect_metrics(output_dir: str, auc_names: Collection[str] = (), class_names: Sequence[str] = (),
                     plot_shares: Mapping[str, Mapping[ShareKey, float]] | None = None) -> tuple[Table, Undefined]:
    """The metrics TFMA wrote, per slice, and which of them are undefined on which slice.

    A value is undefined where TFMA computed NaN, and for AUC-type metrics (which TFMA reports as 0) where
    the slice holds only positives or only negatives of the class (the share of the class comes from
    ``plot_shares`` or the ``_LABEL_SHARE`` helper metric).
    """
    import tensorflow_model_analysis as tfma

    table: Table = {}
    undefined: Undefined = {}
    for record in tfma.load_metrics(output_dir):
        name = _slice_name(record.slice_key)
        slice_table = table.setdefault(name, {})
        shares: dict[ShareKey, float] = dict((plot_shares or {}).get(name, {}))
        for kv in record.metric_keys_and_values:
            if kv.key.name == _LABEL_SHARE and not kv.key.is_diff and kv.key.model_name != "baseline":
                share = _value(kv.value)
                key = _share_key(kv.key)
                if share is not None and not math.isnan(share) and key is not None:
                    shares[key] = share
        for kv in record.metric_keys_and_values:
            value = _value(kv.value)
            if value is None or kv.key.name == _LABEL_SHARE:
                continue
            label = _metric_label(kv.key)
            share_key = _share_key(kv.key)
            share = shares.get(share_key) if share_key is not None else None
            one_class = share is not None and (share < 1e-9 or share > 1 - 1e-9)  # all or none of the class
            if share is not None and one_class and (kv.key.name in auc_names or math.isnan(value)):
                undefined.setdefault(name, {})[label] = _undefined_reason(share, _class_id(kv.key), class_names)
                value = None
            elif not math.isfinite(value):
                value = None
            role = "diff" if kv.key.is_diff else ("baseline" if kv.key.model_name == "baseline" else "candidate")
            slice_table.setdefault(label, {})[role] = value
    order = sorted(table.items(), key=lambda kv: (kv[0] != "Overall", kv[0]))
    return {s: dict(sorted(m.items())) for s, m in order}, undefined


def _metrics_json(table: Table, undefined: Undefined) -> dict[str, dict[str, dict[str, Any]]]:
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for name, metrics in table.items():
        out[name] = {}
        for metric, values in metrics.items():
            row: dict[str, Any] = dict(values)
            if metric in undefined.get(name, {}):
                row["undefined"] = undefined[name][metric]
            out[name][metric] = row
    return out


def _fmt(value: float | None) -> str:
    if value is None:
        return "n/a"
    if value == int(value) and abs(value) < 1e12:
        return str(int(value))
    return f"{value:.4f}"


def _metrics_markdown(table: Table, undefined: Undefined, verdict: str, message: str, has_baseline: bool) -> str:
    lines = ["# Model evaluation", "", f"**{verdict}** — {message}", ""]
    for name, metrics in table.items():
        lines += [f"## {name}", ""]
        if has_baseline:
            lines += ["| metric | candidate | baseline | change |", "|---|---:|---:|---:|"]
            for metric, v in metrics.items():
                lines.append(f"| {metric} | {_fmt(v.get('candidate'))} | {_fmt(v.get('baseline'))} | "
                             f"{_fmt(v.get('diff'))} |")
        else:
            lines += ["| metric | value |", "|---|---:|"]
            for metric, v in metrics.items():
                lines.append(f"| {metric} | {_fmt(v.get('candidate'))} |")
        notes = undefined.get(name, {})
        if notes:
            lines += ["", "n/a (undefined on this slice):"]
            lines += [f"- {metric}: {why}" for metric, why in sorted(notes.items())]
        lines.append("")
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.6g}"


def _failure_text(failure: Any, where: str, row: Mapping[str, float | None]) -> str:
    """One failed threshold: the value, the threshold and how they compare."""
    import tensorflow_model_analysis as tfma

    label = f"{_metric_label(failure.metric_key)} on {where}"
    tfma_message = " ".join(failure.message.split())
    threshold = failure.metric_threshold
    value = _value(failure.metric_value) if failure.HasField("metric_value") else None
    if tfma_message or value is None:
        return f"{label}: {tfma_message or 'no value to check'}"
    if threshold.HasField("value_threshold"):
        bounds = threshold.value_threshold
        lower = bounds.lower_bound.value if bounds.HasField("lower_bound") else None
        upper = bounds.upper_bound.value if bounds.HasField("upper_bound") else None
        if lower is not None and value < lower:
            return f"{label}: {_num(value)} is below the lower bound {lower:g} (value threshold)"
        if upper is not None and value > upper:
            return f"{label}: {_num(value)} is above the upper bound {upper:g} (value threshold)"
        wanted = ", ".join(f"{side} bound {bound:g}" for side, bound in (("lower", lower), ("upper", upper))
                           if bound is not None)
        return f"{label}: the value is NaN, which no value threshold accepts ({wanted}) (value threshold)"
    change = threshold.change_threshold
    higher = change.direction == tfma.MetricDirection.HIGHER_IS_BETTER
    worse = "below" if higher else "above"
    baseline = row.get("baseline")
    text = f"{label}: candidate {_num(row.get('candidate'))} vs baseline {_num(baseline)}, change {value:+.6g}"
    if math.isnan(value):
        return f"{text}: a NaN change fails every change threshold (change threshold)"
    parts = []
    if change.HasField("absolute"):
        allowed = change.absolute.value
        if (value < allowed) if higher else (value > allowed):
            parts.append(f"is {worse} the allowed change {allowed:+g}")
    if change.HasField("relative"):
        allowed = change.relative.value
        ratio = value / baseline if baseline else math.nan
        if not ((ratio >= allowed) if higher else (ratio <= allowed)):
            parts.append(f"relative change {ratio:+.4g} is {worse} the allowed {allowed:+g}" if baseline
                         else "relative change is undefined (the baseline is 0 or n/a)")
    direction = "higher is better" if higher else "lower is better"
    return f"{text} {' and '.join(parts)} (change threshold, {direction})"


def _validation_message(result: Any, has_baseline: bool, table: Table, undefined: Undefined) -> tuple[bool, str]:
    """``(blessed, blessing_message)`` from TFMA's validation result.

    A failure on a metric that is undefined on that slice (see :func:`_collect_metrics`) is not counted:
    the threshold cannot apply there. Every other failure, missing slice or an empty result fails.
    """
    failures: list[tuple[tuple[bool, str, str], str]] = []
    skipped: list[str] = []
    for per_slice in result.metric_validations_per_slice:
        where = _slice_name(per_slice.slice_key) if per_slice.HasField("slice_key") else "cross-slice"
        for failure in per_slice.failures:
            label = _metric_label(failure.metric_key)
            why = undefined.get(where, {}).get(label)
            if why is not None:
                skipped.append(f"{label} on {where} ({why})")
                continue
            row = table.get(where, {}).get(label, {})
            failures.append(((where != "Overall", where, label), _failure_text(failure, where, row)))
    texts = [text for _, text in sorted(failures, key=lambda f: f[0])]
    for missing in result.missing_slices:
        s = Slice(features=tuple(missing.feature_keys), values=dict(missing.feature_values))
        texts.append(f"slice {_slice_text(s)} matched no eval example, so its thresholds could not be checked")
    for missing_cross in result.missing_cross_slices:
        texts.append(f"cross slice {' '.join(str(missing_cross).split())} matched no eval example")
    # Not blessed by TFMA only because of undefined metrics: blessed.
    blessed = result.validation_ok or (bool(skipped) and not texts and not result.missing_thresholds)
    skipped_text = "; not checked where undefined: " + _first(sorted(set(skipped)), ", ") if skipped else ""
    if blessed:
        suffix = "" if has_baseline else " (no baseline model yet: change thresholds skipped)"
        return True, f"every threshold passed{suffix}{skipped_text}"
    if not texts:
        return False, "validation failed (TFMA found no metrics to check; are there eval examples?)" + skipped_text
    return False, "thresholds failed: " + _first(texts, "; ") + skipped_text


def _first(items: Sequence[str], sep: str, limit: int = 10) -> str:
    more = f"{sep}and {len(items) - limit} more (see validations in the evaluation)" if len(items) > limit else ""
    return sep.join(items[:limit]) + more


# ---------------------------------------------------------------------------- pictures
def _class_names(plan: _Plan, classes: int, model_path: str) -> list[str]:
    """``class_names`` from the config, else the label's tf.Transform vocabulary saved with the model.

    A model that applies tf.Transform carries its vocabularies in ``assets/``; the one named like the
    label (``species`` for ``species`` / ``species_xf``) with one line per class gives the names.
    """
    names = list(plan.class_names)
    if not names:
        spec = plan.tfma_config.model_specs[0]
        label = spec.label_key or next(iter(spec.label_keys.values()), "")
        for candidate in dict.fromkeys([label, label.removesuffix("_xf")]):
            path = Path(model_path, "assets", candidate)
            if candidate and path.is_file():
                lines = path.read_text(errors="replace").splitlines()
                if len(lines) == classes:
                    names = lines
                    break
    return [names[i] if i < len(names) else str(i) for i in range(classes)]


def _confusion(plots: Sequence[Any]) -> tuple[list[list[float]], int] | None:
    for record in plots:
        if _slice_name(record.slice_key) != "Overall":
            continue
        for kv in record.plot_keys_and_values:
            if kv.key.model_name == "baseline" or not kv.value.HasField("multi_class_confusion_matrix_at_thresholds"):
                continue
            matrices = kv.value.multi_class_confusion_matrix_at_thresholds.matrices
            if not matrices:
                continue
            matrix = min(matrices, key=lambda m: abs(m.threshold))
            n = 1 + max([max(e.actual_class_id, e.predicted_class_id) for e in matrix.entries] or [0])
            grid = [[0.0] * n for _ in range(n)]
            for e in matrix.entries:
                if e.actual_class_id >= 0 and e.predicted_class_id >= 0:
                    grid[e.actual_class_id][e.predicted_class_id] += e.num_weighted_examples
            return grid, n
    return None


def _roc_curves(plots: Sequence[Any]) -> dict[int | None, list[tuple[float, float]]]:
    """``{class_id (None for binary): [(fpr, tpr), ...]}`` for the candidate on the Overall slice."""
    curves: dict[int | None, list[tuple[float, float]]] = {}
    for record in plots:
        if _slice_name(record.slice_key) != "Overall":
            continue
        for kv in record.plot_keys_and_values:
            if kv.key.model_name == "baseline" or not kv.value.HasField("confusion_matrix_at_thresholds"):
                continue
            class_id = kv.key.sub_key.class_id.value if kv.key.sub_key.HasField("class_id") else None
            points = []
            for m in kv.value.confusion_matrix_at_thresholds.matrices:
                pos, neg = m.true_positives + m.false_negatives, m.false_positives + m.true_negatives
                if pos > 0 and neg > 0:
                    points.append((m.false_positives / neg, m.true_positives / pos))
            curves[class_id] = sorted({*points, (0.0, 0.0), (1.0, 1.0)})
    return curves


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]


def _confusion_pictures(grid: list[list[float]], names: list[str], out_dir: str) -> list[str]:
    from PIL import Image, ImageDraw

    n = len(grid)
    cell, left, top = 64, 130, 70
    width, height = left + n * cell + 20, top + n * cell + 60
    peak = max((v for row in grid for v in row), default=0.0) or 1.0

    def shade(v: float) -> tuple[int, int, int]:
        t = v / peak
        return (int(255 - 225 * t), int(255 - 135 * t), int(255 - 75 * t))

    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
           'font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="18" text-anchor="middle" font-size="14">Confusion matrix (rows: actual, '
           'columns: predicted)</text>']
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    draw.text((10, 8), "Confusion matrix (rows: actual, columns: predicted)", fill="black")
    for i in range(n):
        y = top + i * cell
        svg.append(f'<text x="{left - 8}" y="{y + cell / 2 + 4}" text-anchor="end">{_escape(names[i])}</text>')
        draw.text((8, y + cell // 2 - 6), names[i][:18], fill="black")
        x = left + i * cell
        svg.append(f'<text x="{x + cell / 2}" y="{top - 8}" text-anchor="middle">{_escape(names[i])}</text>')
        draw.text((x + 4, top - 20), names[i][:9], fill="black")
        for j in range(n):
            x = left + j * cell
            v = grid[i][j]
            r, g, b = shade(v)
            color = "white" if v / peak > 0.6 else "black"
            svg.append(f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="rgb({r},{g},{b})" '
                       'stroke="#999"/>')
            svg.append(f'<text x="{x + cell / 2}" y="{y + cell / 2 + 4}" text-anchor="middle" fill="{color}">'
                       f'{_fmt(v)}</text>')
            draw.rectangle([x, y, x + cell, y + cell], fill=(r, g, b), outline=(153, 153, 153))
            draw.text((x + cell // 2 - 8, y + cell // 2 - 6), _fmt(v), fill=color)
    svg.append("</svg>")
    paths = [os.path.join(out_dir, "confusion_matrix.svg"), os.path.join(out_dir, "confusion_matrix.png")]
    Path(paths[0]).write_text("\n".join(svg) + "\n")
    img.save(paths[1])
    return paths


def _roc_pictures(curves: Mapping[int | None, list[tuple[float, float]]], names: list[str],
                  aucs: Mapping[int | None, float], out_dir: str) -> list[str]:
    from PIL import Image, ImageDraw

    size, pad = 360, 50
    width, height = size + 2 * pad + 140, size + 2 * pad

    def xy(fpr: float, tpr: float) -> tuple[float, float]:
        return pad + fpr * size, pad + (1 - tpr) * size

    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" '
           'font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{pad + size / 2}" y="20" text-anchor="middle" font-size="14">ROC curve</text>',
           f'<rect x="{pad}" y="{pad}" width="{size}" height="{size}" fill="none" stroke="black"/>',
           f'<line x1="{pad}" y1="{pad + size}" x2="{pad + size}" y2="{pad}" stroke="#bbb" stroke-dasharray="4"/>',
           f'<text x="{pad + size / 2}" y="{pad + size + 32}" text-anchor="middle">false positive rate</text>',
           f'<text x="14" y="{pad + size / 2}" transform="rotate(-90 14 {pad + size / 2})" text-anchor="middle">'
           'true positive rate</text>']
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    draw.text((pad + size // 2 - 30, 10), "ROC curve", fill="black")
    draw.rectangle([pad, pad, pad + size, pad + size], outline="black")
    draw.line([xy(0, 0), xy(1, 1)], fill=(187, 187, 187))
    draw.text((pad + size // 2 - 50, pad + size + 20), "false positive rate", fill="black")
    for tick in (0.0, 0.5, 1.0):
        x, _ = xy(tick, tick)
        svg.append(f'<text x="{x}" y="{pad + size + 16}" text-anchor="middle">{tick:g}</text>')
        svg.append(f'<text x="{pad - 6}" y="{pad + (1 - tick) * size + 4}" text-anchor="end">{tick:g}</text>')
        draw.text((x - 6, pad + size + 4), f"{tick:g}", fill="black")
        draw.text((pad - 22, pad + (1 - tick) * size - 6), f"{tick:g}", fill="black")
    for n, (class_id, points) in enumerate(sorted(curves.items(), key=lambda kv: -1 if kv[0] is None else kv[0])):
        color = _PALETTE[n % len(_PALETTE)]
        label = "model" if class_id is None else names[class_id] if class_id < len(names) else str(class_id)
        if class_id in aucs:
            label += f" (AUC {aucs[class_id]:.3f})"
        coords = [xy(f, t) for f, t in points]
        svg.append(f'<polyline fill="none" stroke="{color}" stroke-width="2" points="'
                   + " ".join(f"{x:.1f},{y:.1f}" for x, y in coords) + '"/>')
        ly = pad + 14 + 18 * n
        svg.append(f'<line x1="{pad + size + 12}" y1="{ly - 4}" x2="{pad + size + 30}" y2="{ly - 4}" '
                   f'stroke="{color}" stroke-width="2"/>')
        svg.append(f'<text x="{pad + size + 34}" y="{ly}">{_escape(label)}</text>')
        rgb = tuple(int(color[i:i + 2], 16) for i in (1, 3, 5))
        draw.line(coords, fill=rgb, width=2)
        draw.line([(pad + size + 12, ly - 4), (pad + size + 30, ly - 4)], fill=rgb, width=2)
        draw.text((pad + size + 34, ly - 10), label, fill="black")
    svg.append("</svg>")
    paths = [os.path.join(out_dir, "roc.svg"), os.path.join(out_dir, "roc.png")]
    Path(paths[0]).write_text("\n".join(svg) + "\n")
    img.save(paths[1])
    return paths


# ============================================================================ the component
class _EvaluateComponent(Component):
    """``Evaluate`` checks and normalises ``eval_config`` when the node is declared."""

    def __call__(self, **kwargs: Any) -> Node:
        config = kwargs.get("eval_config")
        if config is not None and not _is_runtime_param(config):
            caller = sys._getframe(1)
            where = f"{caller.f_code.co_filename}:{caller.f_lineno}"
            try:
                kwargs["eval_config"] = normalize_eval_config(config)
                _eval_checks.check_definition(kwargs["eval_config"])
            except ParameterError as exc:
                raise ParameterError(f"{where}: Evaluate(eval_config=...): {exc}", parameter="eval_config",
                                     file=caller.f_code.co_filename, line=caller.f_lineno) from None
        return super().__call__(**kwargs)


def _is_runtime_param(value: Any) -> bool:
    from headwater.components.api import Param

    return isinstance(value, Param)


def _beam_options(beam_args: Sequence[str]) -> Any:
    from apache_beam.options.pipeline_options import PipelineOptions

    args = list(beam_args)
    if not any(a.startswith("--runner") for a in args):
        args = ["--direct_running_mode=in_memory", "--direct_num_workers=1", *args]
    return PipelineOptions(args)


# tensorflow_transform first: importing it selects Keras 2 for tf.keras before TFMA touches tf.keras.
@component(version="1", warm_imports=("tensorflow_transform", "tensorflow", "tensorflow_model_analysis"))
def Evaluate(
    *,
    examples: Input[list[types.Examples]],
    model: Input[types.Model],
    baseline_model: Input[types.Model] | None = None,
    evaluation: Output[types.ModelEvaluation],
    blessing: Output[types.ModelBlessing],
    eval_config: dict[str, Any] | str,
    example_splits: list[str] | None = None,
    ctx: ExecutionContext,
) -> None:
    """Evaluate ``model`` (and ``baseline_model``) with TFMA and decide the blessing."""
    from headwater.components import _keras
    from headwater.components._data import examples_file_pattern
    from headwater.components.train import serving_model_path

    started = time.time()
    node = f"node {ctx.node_id!r}"
    splits = list(example_splits or ["eval"])
    if not examples:
        raise InputDataError(f"{node}: input 'examples' holds no Examples artifact; connect one")
    patterns = [examples_file_pattern(a.path, s) for a in examples for s in splits]
    sample = _eval_checks.sample_examples(patterns)
    raw_keys = sample.keys
    if not raw_keys:
        raise InputDataError(
            f"{node}: no eval examples in {patterns}; check example_splits={splits} against the Examples' splits"
        )
    models = {"candidate": model, **({"baseline": baseline_model} if baseline_model is not None else {})}
    paths = {}
    for role, art in models.items():
        path = serving_model_path(art.path)
        if not os.path.isfile(os.path.join(path, "saved_model.pb")):
            raise InputDataError(
                f"{node}: the {role} Model artifact (id {art.id}) has no SavedModel at {path}; it must come from "
                "Train (or hold Format-Serving/saved_model.pb)", artifact_uri=art.uri,
            )
        paths[role] = path

    _keras.prefer_tf_keras()
    config = normalize_eval_config(eval_config) if isinstance(eval_config, str) else eval_config
    plan = _plan(config)
    signatures = _signatures(paths["candidate"])
    _check_config(plan, signatures, raw_keys, node, paths["candidate"])
    task, classes = _task(plan, signatures)
    _eval_checks.check_examples(
        plan.tfma_config, sample, node=node, task=task, classes=classes, class_names=plan.class_names,
        transformed={k for spec in plan.tfma_config.model_specs for pre in spec.preprocessing_function_names
                     for k in signatures[pre].outputs}, label_setting=plan.label_setting)
    if plan.plots:
        _add_plot_metrics(plan, task, classes)
    _add_label_shares(plan, task)
    thresholds = _has_thresholds(plan.tfma_config)

    _keras.skip_autograph_for_tf_keras()
    import apache_beam as beam
    import tensorflow_model_analysis as tfma
    from tfx_bsl.public import tfxio

    has_baseline = baseline_model is not None
    from tensorflow_model_analysis.utils import config_util

    # Without a baseline (the first run) change thresholds are dropped and the candidate is "rubber
    # stamped" for them, as TFX does; value thresholds still apply.
    tfma_config = config_util.update_eval_config_with_defaults(
        plan.tfma_config, has_baseline=has_baseline, rubber_stamp=not has_baseline
    )
    shared = [
        tfma.default_eval_shared_model(
            eval_saved_model_path=paths["baseline" if spec.is_baseline else "candidate"],
            model_name=spec.name, eval_config=tfma_config, rubber_stamp=not has_baseline and not spec.is_baseline,
        )
        for spec in tfma_config.model_specs
    ]
    try:
        with beam.Pipeline(options=_beam_options(ctx.beam_args)) as pipeline:
            _ = (
                pipeline
                | "ReadExamples" >> tfxio.TFExampleRecord(
                    file_pattern=patterns, raw_record_column_name=tfma.ARROW_INPUT_COLUMN,
                    telemetry_descriptors=["headwater", "Evaluate"],
                ).BeamSource()
                | "Evaluate" >> tfma.ExtractEvaluateAndWriteResults(
                    eval_shared_model=shared[0] if len(shared) == 1 else shared,
                    eval_config=tfma_config, output_path=evaluation.path,
                )
            )
    except Exception as exc:  # TFMA's errors that the checks above could not foresee, said in our terms
        spec = plan.tfma_config.model_specs[0]
        translated = _eval_checks.translate_tfma_error(
            exc, node=node, label=spec.label_key or None, label_setting=plan.label_setting,
            slices=[k for s in plan.tfma_config.slicing_specs for k in [*s.feature_keys, *s.feature_values]])
        if translated is None:
            raise
        raise translated from exc

    # ------------------------------------------------------------ verdict
    names = _class_names(plan, max(classes, 2), paths["candidate"]) if task in ("multiclass", "binary") else []
    plots = list(tfma.load_plots(evaluation.path))
    table, undefined = _collect_metrics(evaluation.path, _auc_names(tfma_config), names, _plot_shares(plots))
    if thresholds:
        blessed, message = _validation_message(
            tfma.load_validation_result(evaluation.path), has_baseline, table, undefined
        )
    elif plan.no_thresholds == "blessed":
        blessed, message = True, "no thresholds configured; blessed by policy no_thresholds='blessed'"
    else:
        blessed, message = False, (
            "no thresholds configured, so nothing shows the model is good enough (policy "
            "no_thresholds='not_blessed'); add value/change thresholds to eval_config, or set "
            "no_thresholds='blessed'"
        )
    Path(blessing.path, BLESSED_FILE if blessed else NOT_BLESSED_FILE).write_bytes(b"")
    blessing.custom_properties["blessed"] = 1 if blessed else 0
    blessing.custom_properties["blessing_message"] = message
    blessing.custom_properties["current_model"] = model.uri
    if model.id is not None:
        blessing.custom_properties["current_model_id"] = model.id
    if baseline_model is not None:
        blessing.custom_properties["baseline_model"] = baseline_model.uri
        if baseline_model.id is not None:
            blessing.custom_properties["baseline_model_id"] = baseline_model.id

    # ------------------------------------------------------------ readable results and pictures
    verdict = "BLESSED" if blessed else "NOT BLESSED"
    Path(evaluation.path, "metrics.json").write_text(json.dumps(
        {"blessed": blessed, "message": message, "baseline_model_id": baseline_model.id if baseline_model else None,
         "slices": _metrics_json(table, undefined)}, indent=2, sort_keys=False, allow_nan=False) + "\n")
    Path(evaluation.path, "metrics.md").write_text(
        _metrics_markdown(table, undefined, verdict, message, has_baseline)
    )
    pictures: list[str] = []
    if plan.plots and task in ("multiclass", "binary"):
        confusion = _confusion(plots)
        if confusion is not None:
            grid, n = confusion
            pictures += _confusion_pictures(grid, _class_names(plan, n, paths["candidate"]), evaluation.path)
        curves = _roc_curves(plots)
        if curves:
            overall = table.get("Overall", {})
            aucs: dict[int | None, float] = {}
            for class_id in curves:
                label = "auc" if class_id is None else f"auc [class {class_id}]"
                value = overall.get(label, {}).get("candidate")
                if value is not None:
                    aucs[class_id] = value
            pictures += _roc_pictures(curves, names, aucs, evaluation.path)
    overall = table.get("Overall", {})
    evaluation.custom_properties["metrics"] = {
        k: v["candidate"] for k, v in overall.items() if v.get("candidate") is not None and "[" not in k
    }
    evaluation.custom_properties["blessed"] = 1 if blessed else 0
    evaluation.custom_properties["pictures"] = [os.path.basename(p) for p in pictures]
    evaluation.custom_properties["seconds"] = round(time.time() - started, 3)


Evaluate = _EvaluateComponent(Evaluate.fn, Evaluate.spec)
