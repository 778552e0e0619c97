"""The typed Evaluate configuration: :class:`EvalConfig`, :class:`Metric`, :class:`Slice`, thresholds.

Plain Python, a dict or YAML (``EvalConfig.from_dict`` / ``from_yaml``); ``EvalConfig.to_tfma()`` gives the
equivalent ``tfma.EvalConfig``. Checked when the Evaluate node is declared: a mistake names the setting
(``eval_config.metrics[0].threshold.lower``) and the fix. Importing this module does not import TFMA.
"""

from __future__ import annotations

import difflib
import enum
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal

from headwater.components.errors import ParameterError

__all__ = [
    "ChangeThreshold",
    "Direction",
    "EvalConfig",
    "Metric",
    "Slice",
    "ThresholdSlices",
    "ValueThreshold",
    "normalize_eval_config",
]

#: The key under which a ``tfma.EvalConfig`` is kept in the parameter form (its JSON form).
TFMA_KEY = "tfma_eval_config"
NoThresholdPolicy = Literal["not_blessed", "blessed"]
Task = Literal["auto", "multiclass", "binary", "regression"]


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

        text = str(text_or_path)
        if isinstance(text_or_path, os.PathLike) or (text.endswith((".yaml", ".yml")) and "\n" not in text):
            path = Path(text_or_path)
            if not path.is_file():
                raise ParameterError(f"eval_config file {text} does not exist")
            text = path.read_text()
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ParameterError(f"eval_config is not valid YAML: {exc}") from None
        return cls.from_dict(data or {})

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

        return {TFMA_KEY: json_format.MessageToDict(value)}
    if isinstance(value, Mapping):
        if TFMA_KEY in value:
            if set(value) != {TFMA_KEY}:
                raise ParameterError(f"eval_config with {TFMA_KEY!r} must hold nothing else")
            return {TFMA_KEY: dict(value[TFMA_KEY])}
        return EvalConfig.from_dict(value).to_dict()
    if isinstance(value, (str, os.PathLike)):
        return EvalConfig.from_yaml(value).to_dict()
    raise ParameterError(
        f"eval_config is {type(value).__name__}; give an EvalConfig, a dict or YAML in its shape, or a "
        "tfma.EvalConfig"
    )

