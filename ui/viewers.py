"""Viewers per artifact type: the extension point of the artifact page.

A viewer is a function ``(ViewContext) -> View`` registered for one MLMD artifact type name::

    from headwater.ui.viewers import View, viewer

    @viewer("ExampleStatistics")
    def statistics(ctx):
        return View("viewers/statistics.html", {"features": ...}, api=None)

``View.template`` is a Jinja template under ``headwater/ui/templates/`` that receives ``view.data`` (every
value is auto-escaped); ``View.script`` names a static script (under ``static/js/``) that the page loads
for interactive parts, reading JSON from ``View.api``. Built-in viewers: ModelEvaluation, ModelBlessing,
Schema, Examples, PushedModel, InferenceResult (BatchPredict) and ExampleStatistics and ExampleAnomalies
(data validation: the verdict, every finding and every drift/skew value, and the component's offline
report.html, rendered sandboxed).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from headwater.metadata.conventions import (
    A_BASELINE_MODEL_ID,
    A_BLESSED,
    A_BLESSING_MESSAGE,
    A_CURRENT_MODEL_ID,
    A_PUSHED,
    A_PUSHED_DESTINATION,
    A_PUSHED_VERSION,
)
from headwater.ui.files import list_files, overall_metrics, read_json

__all__ = ["View", "ViewContext", "registered", "view_for", "viewer"]


@dataclass(frozen=True)
class ViewContext:
    """What a viewer gets: the artifact (an ``ArtifactNode``), its producer's parameters, the dashboard."""

    artifact: Any
    producer_parameters: Mapping[str, Any] = field(default_factory=dict)
    dashboard: Any = None


@dataclass(frozen=True)
class View:
    template: str
    data: Mapping[str, Any]
    api: str | None = None
    script: str | None = None


_VIEWERS: dict[str, Callable[[ViewContext], View]] = {}


def viewer(type_name: str) -> Callable[[Callable[[ViewContext], View]], Callable[[ViewContext], View]]:
    """Register the decorated function as the viewer of artifacts of type ``type_name``."""

    def register(fn: Callable[[ViewContext], View]) -> Callable[[ViewContext], View]:
        _VIEWERS[type_name] = fn
        return fn

    return register


def registered() -> dict[str, Callable[[ViewContext], View]]:
    return dict(_VIEWERS)


def view_for(ctx: ViewContext) -> View | None:
    fn = _VIEWERS.get(ctx.artifact.type_name)
    return fn(ctx) if fn else None


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def threshold_outcomes(parameters: Mapping[str, Any], overall: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each threshold of the evaluation config with the candidate's value and whether it passed."""
    from headwater.metadata.lineage.explain import recorded_thresholds

    out = []
    for t in recorded_thresholds(parameters):
        name = _snake(t.metric)
        row = overall.get(name) or overall.get(t.metric) or {}
        value, diff = row.get("candidate"), row.get("diff")
        ok: bool | None = None
        v = dict(t.value_threshold or {})
        if value is not None and v:
            ok = (v.get("lower_bound") is None or value >= v["lower_bound"]) and (
                v.get("upper_bound") is None or value <= v["upper_bound"])
        c = dict(t.change_threshold or {})
        if diff is not None and "absolute" in c:
            lower = "LOWER" in str(c.get("direction", "HIGHER"))
            change_ok = diff <= -c["absolute"] if lower else diff >= c["absolute"]
            ok = change_ok if ok is None else ok and change_ok
        out.append({"rule": t.describe(), "metric": name, "value": value, "diff": diff, "passed": ok})
    return out


@viewer("ModelEvaluation")
def evaluation(ctx: ViewContext) -> View:
    art = ctx.artifact
    data = read_json(art.uri, "metrics.json")
    slices = (data or {}).get("slices") or {}
    overall = slices.get("Overall") or {}
    metrics = sorted({m for s in slices.values() for m in s})
    return View("viewers/evaluation.html", {
        "blessed": (data or {}).get("blessed", art.custom_properties.get(A_BLESSED)),
        "message": (data or {}).get("message"), "slices": slices, "metric_names": metrics,
        "headline": dict(art.custom_properties.get("metrics") or {}) or overall_metrics(art.uri),
        "thresholds": threshold_outcomes(ctx.producer_parameters, overall),
        "found": data is not None,
    }, api=f"/api/artifacts/{art.id}/plots", script="evaluation.js")


@viewer("ModelBlessing")
def blessing(ctx: ViewContext) -> View:
    p = ctx.artifact.custom_properties
    blessed = p.get(A_BLESSED)
    reason = p.get(A_BLESSING_MESSAGE) or (
        "the evaluator wrote no message; see its evaluation" if blessed is not None else "no verdict recorded")
    return View("viewers/blessing.html", {
        "blessed": None if blessed is None else bool(blessed), "reason": reason,
        "candidate": p.get(A_CURRENT_MODEL_ID), "baseline": p.get(A_BASELINE_MODEL_ID),
        "thresholds": threshold_outcomes(ctx.producer_parameters, {})})


@viewer("Schema")
def schema(ctx: ViewContext) -> View:
    from headwater.ui.ml import schema_features

    features, error = schema_features(ctx.artifact.uri)
    return View("viewers/schema.html", {"features": features, "error": error})


@viewer("Examples")
def examples(ctx: ViewContext) -> View:
    art = ctx.artifact
    counts = art.custom_properties.get("num_examples") or {}
    splits = art.properties.get("split_names") or "[]"
    if isinstance(splits, str):
        import json

        try:
            splits = json.loads(splits)
        except ValueError:
            splits = [splits]
    return View("viewers/examples.html", {"splits": [{"name": s, "count": counts.get(s)} for s in splits]},
                api=f"/api/artifacts/{art.id}/rows", script="examples.js")


@viewer("InferenceResult")
def inference_result(ctx: ViewContext) -> View:
    """BatchPredict's output: rows predicted, the metrics against the labels, the files (or why it refused)."""
    p = ctx.artifact.custom_properties
    record = read_json(ctx.artifact.uri, "batch_predict.json") or {}
    return View("viewers/inference.html", {
        "predicted": record.get("predicted", p.get("predicted")), "refused": record.get("refused") or p.get("refused"),
        "splits": record.get("splits") or [], "signature": record.get("signature"), "task": record.get("task"),
        "label_key": record.get("label_key"), "metrics": dict(record.get("metrics") or p.get("metrics") or {}),
        "parquet": record.get("parquet") or [], "logs": record.get("prediction_logs") or [],
        "pictures": record.get("pictures") or []})


@viewer("PushedModel")
def pushed_model(ctx: ViewContext) -> View:
    p = ctx.artifact.custom_properties
    record = read_json(ctx.artifact.uri, "push.json") or {}
    files = list_files(ctx.artifact.uri)
    return View("viewers/pushed.html", {
        "destination": p.get(A_PUSHED_DESTINATION) or record.get(A_PUSHED_DESTINATION),
        "version": p.get(A_PUSHED_VERSION) or record.get(A_PUSHED_VERSION),
        "pushed": p.get(A_PUSHED, record.get(A_PUSHED)), "fingerprint": p.get("model_fingerprint"),
        "new_version": p.get("pushed_new_version"), "files": len(files["files"])})


def _splits(art: Any) -> list[str]:
    import json

    names = art.properties.get("split_names") or "[]"
    try:
        return list(json.loads(names)) if isinstance(names, str) else list(names)
    except ValueError:
        return [str(names)]


@viewer("ExampleStatistics")
def statistics(ctx: ViewContext) -> View:
    art = ctx.artifact
    return View("viewers/statistics.html", {
        "splits": _splits(art), "span": art.properties.get("span"),
        "report": any(f["path"] == "report.html" for f in list_files(art.uri)["files"])})


@viewer("ExampleAnomalies")
def anomalies(ctx: ViewContext) -> View:
    art = ctx.artifact
    doc = read_json(art.uri, "validation.json") or {}
    passed = doc.get("passed", art.custom_properties.get("passed"))
    return View("viewers/anomalies.html", {
        "passed": None if passed is None else bool(passed),
        "reason": doc.get("blocked_reason") or art.custom_properties.get("blocked_reason") or "",
        "spans": doc.get("spans") or {}, "splits": _splits(art),
        "findings": doc.get("findings") or [], "measurements": doc.get("measurements") or [],
        "report": any(f["path"] == "report.html" for f in list_files(art.uri)["files"])})
