"""Validate (TFX's ExampleValidator, made to gate): anomalies against the schema, drift and skew.

``ExampleAnomalies`` holds ``Split-<name>/SchemaDiff.pb`` (TFDV's ``Anomalies``, binary, as TFX writes
it), ``validation.json`` (every finding and every drift/skew measurement, above its threshold or not) and
``report.html``. Custom properties: ``passed`` (1/0: no blocking finding), ``blocked_reason``,
``anomaly_count``, ``warning_count``, ``drift`` and ``skew`` (``{feature: {measure: value}}``).

The node is a *data gate* (the component's ``gate`` hook): when ``passed`` is 0 the runner does not run
the nodes that consume the validated data (see docs/architecture.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from headwater.components._data import join, makedirs, read_schema, split_names
from headwater.components.api import Component, ExecutionContext, Input, Node, Output, Param, component
from headwater.components.errors import InputDataError, ParameterError
from headwater.components.validation._schema import schema_features
from headwater.components.validation._stats import read_statistics
from headwater.components.validation.rules import (
    Bounds,
    Drift,
    Rule,
    SchemaCheck,
    Skew,
    check_rule_features,
    rules_from_dicts,
    rules_to_dicts,
)
from headwater.metadata import types
from headwater.metadata.artifact import Artifact

__all__ = ["ANOMALIES_FILE", "VALIDATION_FILE", "Finding", "Measurement", "Validate", "validation_gate"]

ANOMALIES_FILE = "SchemaDiff.pb"
VALIDATION_FILE = "validation.json"
_COMPARATORS = {"linf": "infinity_norm", "jensen_shannon": "jensen_shannon_divergence"}
_MEASURE_NAMES = {"L_INFTY": "linf", "JENSEN_SHANNON_DIVERGENCE": "jensen_shannon"}
_MEASURE_WORDS = {"linf": "L-infinity distance", "jensen_shannon": "Jensen-Shannon divergence"}
_BOUND_TYPES = {"FLOAT_TYPE_SMALL_FLOAT", "FLOAT_TYPE_BIG_FLOAT", "INT_TYPE_SMALL_INT", "INT_TYPE_BIG_INT"}


@dataclass(frozen=True)
class Finding:
    """One anomaly, in words: which split and feature, which rule, how severe, what was seen."""

    split: str
    feature: str
    rule: str  # schema | drift | skew | bounds
    severity: str  # block | warn
    kind: str  # TFDV's anomaly type name
    text: str

    def describe(self) -> str:
        return f"feature {self.feature!r} ({self.split}): {self.rule} — {self.text}"


@dataclass(frozen=True)
class Measurement:
    """A drift or skew value TFDV computed, recorded whether or not it is above the threshold."""

    split: str
    feature: str
    rule: str  # drift | skew
    measure: str  # linf | jensen_shannon
    value: float
    threshold: float
    severity: str

    @property
    def exceeded(self) -> bool:
        return self.value > self.threshold


def _schema_with_rules(schema: Any, rules: Sequence[Rule]) -> Any:
    """A copy of ``schema`` with the rules as TFDV comparators and domains."""
    from tensorflow_metadata.proto.v0 import schema_pb2

    out = schema_pb2.Schema()
    out.CopyFrom(schema)
    by_name = {f.name: f for f in out.feature}
    for rule in rules:
        feature = by_name.get(rule.feature)
        if feature is None:
            continue
        if isinstance(rule, (Drift, Skew)):
            comparator = feature.drift_comparator if isinstance(rule, Drift) else feature.skew_comparator
            for attr, field in _COMPARATORS.items():
                value = getattr(rule, attr)
                if value is not None:
                    getattr(comparator, field).threshold = float(value)
        elif isinstance(rule, Bounds):
            is_int = feature.type == schema_pb2.INT
            domain = feature.int_domain if is_int else feature.float_domain
            if rule.min is not None:
                domain.min = int(rule.min) if is_int else float(rule.min)
            if rule.max is not None:
                domain.max = int(rule.max) if is_int else float(rule.max)
    return out


def _severity(rules: Sequence[Rule], kind: type, feature: str) -> str:
    matching: list[Rule] = [r for r in rules if r.feature == feature and r.__class__ is kind]
    if not matching and kind is SchemaCheck:
        matching = [r for r in rules if r.feature == "*" and isinstance(r, SchemaCheck)]
    return matching[-1].severity if matching else "block"


def _stat_features(stats: Any) -> set[str]:
    names = set()
    for dataset in stats.datasets:
        for feat in dataset.features:
            names.add(".".join(feat.path.step) if feat.HasField("path") else feat.name)
    return names


def _findings(split: str, result: Any, rules: Sequence[Rule]) -> list[Finding]:
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    found = []
    bounded = {r.feature for r in rules if isinstance(r, Bounds)}
    for feature, info in sorted(result.anomaly_info.items()):
        for reason in info.reason or [info]:
            kind = anomalies_pb2.AnomalyInfo.Type.Name(reason.type) if reason.type else "UNKNOWN_TYPE"
            words = (reason.description or reason.short_description or info.description).strip()
            if kind.startswith("COMPARATOR_"):
                rule, cls = ("skew", Skew) if "serving" in reason.short_description.lower() else ("drift", Drift)
            elif kind in _BOUND_TYPES and feature in bounded:
                rule, cls = "bounds", Bounds
            else:
                rule, cls = "schema", SchemaCheck
            found.append(Finding(split, feature, rule, _severity(rules, cls, feature), kind, words))
    if result.HasField("dataset_anomaly_info"):
        for reason in result.dataset_anomaly_info.reason:
            kind = anomalies_pb2.AnomalyInfo.Type.Name(reason.type)
            found.append(Finding(split, "(dataset)", "schema", _severity(rules, SchemaCheck, "*"), kind,
                                 (reason.description or reason.short_description).strip()))
    return found


def _measurements(split: str, result: Any, rules: Sequence[Rule]) -> list[Measurement]:
    out = []
    for info in result.drift_skew_info:
        feature = ".".join(info.path.step)
        for rule, cls, items in (("drift", Drift, info.drift_measurements), ("skew", Skew, info.skew_measurements)):
            for m in items:
                kind = type(m).Type.Name(m.type)
                measure = _MEASURE_NAMES.get(kind, kind.lower())
                out.append(Measurement(split, feature, rule, measure, float(m.value), float(m.threshold),
                                       _severity(rules, cls, feature)))
    return out


def describe_blocking(findings: Sequence[Finding], measurements: Sequence[Measurement],
                      spans: Mapping[str, Any]) -> str:
    """The blocking findings in plain words, one per line (empty: nothing blocks)."""
    lines = []
    for f in findings:
        if f.severity != "block":
            continue
        values = [m for m in measurements if m.split == f.split and m.feature == f.feature and m.rule == f.rule
                  and m.exceeded]
        if values:
            against = (f"span {spans.get('previous')}" if f.rule == "drift" and spans.get("previous") is not None
                       else "the previous span" if f.rule == "drift" else "the serving data")
            for m in values:
                lines.append(
                    f"feature {f.feature!r} ({f.split}): {f.rule} — {_MEASURE_WORDS.get(m.measure, m.measure)} "
                    f"{m.value:.4g} against {against} is above the threshold {m.threshold:g}"
                )
        else:
            lines.append(f.describe())
    return "\n".join(dict.fromkeys(lines))


class _ValidateComponent(Component):
    """``Validate`` turns typed rules into their stored dict form when the node is declared."""

    def __call__(self, **kwargs: Any) -> Node:
        rules = kwargs.get("rules")
        if rules is not None and not isinstance(rules, Param):
            kwargs["rules"] = rules_to_dicts(rules)
        return super().__call__(**kwargs)

    def check_node(self, node: Node, pipeline: Any) -> list[str]:
        """Before anything runs: the rules name features of the curated schema file (when ImportSchema
        gives the schema)."""
        from headwater.components.api import Channel
        from headwater.components.validation._schema import ImportSchema, parse_schema_file

        channel, rules = node.inputs.get("schema"), node.parameters.get("rules")
        if not isinstance(channel, Channel) or not isinstance(rules, list) or channel.producer not in pipeline.node_ids:
            return []
        producer = pipeline.node(channel.producer)
        path = producer.parameters.get("schema_file")
        if producer.component.spec.qualified_name != ImportSchema.spec.qualified_name or not isinstance(path, str):
            return []
        try:
            features = schema_features(parse_schema_file(path))
        except ParameterError as exc:
            return [f"node {producer.id!r}: {exc}"]
        return [f"node {node.id!r}: {p}; fix the rule or the schema"
                for p in check_rule_features(rules_from_dicts(rules), features, f"the schema file {path}")]


def validation_gate(outputs: Mapping[str, Sequence[Artifact]]) -> str | None:
    """The data gate: the blocking findings of a Validate node's anomalies, or None when it passed."""
    for art in outputs.get("anomalies", []):
        passed = art.custom_properties.get("passed")
        if passed is not None and not int(passed):
            return str(art.custom_properties.get("blocked_reason") or "data validation found a blocking anomaly")
    return None


@component(version="1", warm_imports=("tensorflow_data_validation",), gate=validation_gate)
def Validate(
    *,
    statistics: Input[types.ExampleStatistics],
    schema: Input[types.Schema],
    previous_statistics: Input[types.ExampleStatistics] | None = None,
    serving_statistics: Input[types.ExampleStatistics] | None = None,
    anomalies: Output[types.ExampleAnomalies],
    rules: list[dict[str, Any]] | None = None,
    training_split: str = "train",
    serving_split: str | None = None,
    ctx: ExecutionContext,
) -> None:
    """Check ``statistics`` against ``schema``; drift against ``previous_statistics``; skew of the
    ``training_split`` against ``serving_statistics``. Every measured value is recorded."""
    import tensorflow_data_validation as tfdv
    from headwater.components.validation.report import render_validation

    node = f"node {ctx.node_id!r}"
    schema_proto = read_schema(schema)
    rule_list = rules_from_dicts(rules or [])
    problems = check_rule_features(rule_list, schema_features(schema_proto), f"the schema {schema.uri}")
    if problems:
        raise ParameterError(f"{node}: " + "; ".join(problems))
    checked = _schema_with_rules(schema_proto, rule_list)
    wanted = set(schema_features(schema_proto))
    splits = split_names(statistics)
    previous_splits = split_names(previous_statistics) if previous_statistics is not None else []
    serving = None
    if serving_statistics is not None:
        names = split_names(serving_statistics)
        chosen = serving_split or names[0]
        if chosen not in names:
            raise InputDataError(f"{node}: serving statistics have no split {chosen!r}; they have {names}")
        serving = read_statistics(serving_statistics.path, chosen)
    findings: list[Finding] = []
    measurements: list[Measurement] = []
    stats_by_split = {}
    for split in splits:
        stats = read_statistics(statistics.path, split)
        stats_by_split[split] = stats
        seen = _stat_features(stats)
        if wanted and seen and not wanted & seen:
            raise InputDataError(
                f"{node}: the statistics of split {split!r} ({statistics.uri}) share no feature with the schema "
                f"{schema.uri}: the data has {', '.join(sorted(seen)[:6])}…, the schema "
                f"{', '.join(sorted(wanted)[:6])}… — statistics from a different data set or schema; connect the "
                "matching schema"
            )
        previous = (read_statistics(previous_statistics.path, split)
                    if previous_statistics is not None and split in previous_splits else None)
        result = tfdv.validate_statistics(
            stats, checked, previous_statistics=previous,
            serving_statistics=serving if split == training_split else None,
        )
        makedirs(join(anomalies.path, f"Split-{split}"))
        Path(anomalies.path, f"Split-{split}", ANOMALIES_FILE).write_bytes(result.SerializeToString())
        findings += _findings(split, result, rule_list)
        measurements += _measurements(split, result, rule_list)
    spans = {
        "current": statistics.properties.get("span"),
        "previous": previous_statistics.properties.get("span") if previous_statistics is not None else None,
    }
    reason = describe_blocking(findings, measurements, spans)
    blocking = bool(reason)
    doc = {
        "passed": not blocking,
        "blocked_reason": reason,
        "spans": spans,
        "splits": splits,
        "findings": [asdict(f) for f in findings],
        "measurements": [{**asdict(m), "exceeded": m.exceeded} for m in measurements],
    }
    Path(anomalies.path, VALIDATION_FILE).write_text(json.dumps(doc, indent=2) + "\n")
    Path(anomalies.path, "report.html").write_text(render_validation(doc, stats_by_split))
    anomalies.properties["split_names"] = json.dumps(splits)
    if spans["current"] is not None:
        anomalies.properties["span"] = int(spans["current"])
    anomalies.custom_properties["passed"] = 0 if blocking else 1
    anomalies.custom_properties["blocked_reason"] = reason
    anomalies.custom_properties["anomaly_count"] = sum(f.severity == "block" for f in findings)
    anomalies.custom_properties["warning_count"] = sum(f.severity == "warn" for f in findings)
    shown = training_split if training_split in splits else splits[0]
    for rule in ("drift", "skew"):
        values: dict[str, dict[str, float]] = {}
        for m in measurements:
            if m.rule == rule and m.split == shown:
                values.setdefault(m.feature, {})[m.measure] = round(m.value, 6)
        anomalies.custom_properties[rule] = values


Validate = _ValidateComponent(Validate.fn, Validate.spec, gate=validation_gate)
