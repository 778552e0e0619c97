"""Validation rules in typed Python: drift, skew, numeric bounds and schema checks, each with a severity.

::

    from headwater.components.validation import Bounds, Drift, SchemaCheck, Skew

    rules = [
        Drift("island", linf=0.25),                        # span-to-span change of a categorical feature
        Drift("body_mass_g", jensen_shannon=0.2),          # … of a numeric feature
        Skew("sex", linf=0.3, severity="warn"),            # training vs serving data: reported, never blocks
        Bounds("flipper_length_mm", min=150, max=250),     # every value inside the range
        SchemaCheck("comment", severity="warn"),           # schema anomalies of one feature only warn
    ]

A rule whose ``severity`` is ``"block"`` (the default) stops the nodes that consume the validated data;
``"warn"`` only reports. Rules become the TFDV schema's comparators and domains for the check; they are
stored as plain dicts in the Validate node's parameters (:func:`rules_to_dicts`, :func:`rules_from_dicts`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, TypeAlias

from headwater.components.errors import ParameterError

__all__ = [
    "Bounds",
    "Drift",
    "Rule",
    "SchemaCheck",
    "Severity",
    "Skew",
    "check_rule_features",
    "rules_from_dicts",
    "rules_to_dicts",
]

Severity = Literal["block", "warn"]
_SEVERITIES = ("block", "warn")


def _check_severity(rule: str, severity: str) -> None:
    if severity not in _SEVERITIES:
        raise ParameterError(f"{rule}: severity {severity!r} is not 'block' or 'warn'")


def _check_threshold(rule: str, name: str, value: float | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1 or math.isnan(value):
        raise ParameterError(f"{rule}: {name}={value!r} must be a number between 0 and 1")


def _check_feature(rule: str, feature: Any) -> None:
    if not isinstance(feature, str) or not feature:
        raise ParameterError(f"{rule}: feature {feature!r} must be a feature name")


@dataclass(frozen=True)
class _Comparison:
    feature: str
    linf: float | None = None
    jensen_shannon: float | None = None
    severity: Severity = "block"

    def __post_init__(self) -> None:
        name = f"{type(self).__name__}({self.feature!r})"
        _check_feature(name, self.feature)
        if self.linf is None and self.jensen_shannon is None:
            raise ParameterError(f"{name}: give a threshold, linf=… (categorical) or jensen_shannon=… (numeric)")
        _check_threshold(name, "linf", self.linf)
        _check_threshold(name, "jensen_shannon", self.jensen_shannon)
        _check_severity(name, self.severity)


@dataclass(frozen=True)
class Drift(_Comparison):
    """Drift between this span and the previous one: L-infinity distance of the value frequencies
    (``linf``, categorical features) and/or approximate Jensen-Shannon divergence (``jensen_shannon``)."""


@dataclass(frozen=True)
class Skew(_Comparison):
    """Skew between the training data and the serving data (the ``serving_statistics`` input)."""


@dataclass(frozen=True)
class Bounds:
    """Every value of a numeric feature lies in ``[min, max]`` (either end may be open)."""

    feature: str
    min: float | None = None
    max: float | None = None
    severity: Severity = "block"

    def __post_init__(self) -> None:
        name = f"Bounds({self.feature!r})"
        _check_feature(name, self.feature)
        if self.min is None and self.max is None:
            raise ParameterError(f"{name}: give min=… and/or max=…")
        for end in (self.min, self.max):
            if end is not None and (isinstance(end, bool) or not isinstance(end, (int, float))):
                raise ParameterError(f"{name}: bounds must be numbers, got {end!r}")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ParameterError(f"{name}: min={self.min} is above max={self.max}")
        _check_severity(name, self.severity)


@dataclass(frozen=True)
class SchemaCheck:
    """The severity of the schema anomalies of one feature (``"*"``: every feature without its own)."""

    feature: str = "*"
    severity: Severity = "block"

    def __post_init__(self) -> None:
        _check_feature(f"SchemaCheck({self.feature!r})", self.feature)
        _check_severity(f"SchemaCheck({self.feature!r})", self.severity)


Rule: TypeAlias = Drift | Skew | Bounds | SchemaCheck
_KINDS: dict[str, type[Any]] = {"drift": Drift, "skew": Skew, "bounds": Bounds, "schema": SchemaCheck}


def rules_to_dicts(rules: Iterable[Rule | Mapping[str, Any]]) -> list[dict[str, Any]]:
    """JSON-able dicts (``{"rule": "drift", "feature": …}``) in the order given; dicts are checked too."""
    out = []
    for i, rule in enumerate(rules):
        if isinstance(rule, Mapping):
            rule = rules_from_dicts([rule])[0]
        kind = next((k for k, cls in _KINDS.items() if type(rule) is cls), None)
        if kind is None:
            raise ParameterError(
                f"rules[{i}] is {type(rule).__name__}; use Drift(...), Skew(...), Bounds(...) or SchemaCheck(...)"
            )
        out.append({"rule": kind, **{k: v for k, v in asdict(rule).items() if v is not None}})
    return out


def rules_from_dicts(items: Sequence[Mapping[str, Any]]) -> list[Rule]:
    rules: list[Rule] = []
    for i, item in enumerate(items):
        data = dict(item)
        kind = data.pop("rule", None)
        cls = _KINDS.get(str(kind))
        if cls is None:
            raise ParameterError(f"rules[{i}]: rule {kind!r} is not one of {', '.join(_KINDS)}")
        try:
            rules.append(cls(**data))
        except TypeError as exc:
            raise ParameterError(f"rules[{i}] ({kind}): {exc}") from None
    return rules


def check_rule_features(rules: Iterable[Rule], features: Iterable[str], where: str) -> list[str]:
    """Problems: rules naming a feature that ``features`` (the schema's) does not have."""
    known = set(features)
    problems = []
    for rule in rules:
        if rule.feature != "*" and rule.feature not in known:
            problems.append(
                f"{type(rule).__name__}({rule.feature!r}) names a feature that {where} does not have; its "
                f"features are {', '.join(sorted(known)) or '(none)'}"
            )
    return problems
