"""Evaluate's readable results: metric tables per slice, ``metrics.json`` / ``metrics.md``, blessing messages,
and the chart data (confusion matrix, ROC points, class names) read from TFMA's plots.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from headwater.components.evaluate._tfma import _LABEL_SHARE, ShareKey, _Plan
from headwater.components.evaluate.config import Slice, _slice_text


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




def _plot_shares(plots: Sequence[Any]) -> dict[str, dict[ShareKey, float]]:
    """``{slice: {(output, class_id): share of positives}}`` from the candidate's ConfusionMatrixPlots."""
    shares: dict[str, dict[ShareKey, float]] = {}
    for slice_name, key, matrices in _candidate_plots(plots, "confusion_matrix_at_thresholds"):
        if not matrices:
            continue
        m = matrices[0]
        total = m.true_positives + m.false_negatives + m.false_positives + m.true_negatives
        share_key = _share_key(key)
        if total > 0 and share_key is not None:
            shares.setdefault(slice_name, {})[share_key] = (m.true_positives + m.false_negatives) / total
    return shares


def _candidate_plots(plots: Sequence[Any], kind: str, *, overall: bool = False) -> Iterator[tuple[str, Any, Any]]:
    """``(slice name, plot key, matrices)`` of the candidate's plots of ``kind`` (a TFMA plot field), on
    every slice or only on the Overall slice."""
    for record in plots:
        slice_name = _slice_name(record.slice_key)
        if overall and slice_name != "Overall":
            continue
        for kv in record.plot_keys_and_values:
            if kv.key.model_name != "baseline" and kv.value.HasField(kind):
                yield slice_name, kv.key, getattr(kv.value, kind).matrices



# ---------------------------------------------------------------------------- pictures
def _class_names(plan: _Plan, classes: int, model_path: str) -> list[str]:
    """``class_names`` from the config, else the label's tf.Transform vocabulary saved with the model."""
    names = list(plan.class_names)
    if not names:
        spec = plan.tfma_config.model_specs[0]
        names = vocabulary_class_names(model_path, spec.label_key or next(iter(spec.label_keys.values()), ""),
                                       classes)
    return [names[i] if i < len(names) else str(i) for i in range(classes)]


def vocabulary_class_names(model_path: str, label: str, classes: int) -> list[str]:
    """The class names a model that applies tf.Transform carries in ``assets/``: the vocabulary named like
    the label (``species`` for ``species`` / ``species_xf``) with one line per class; else none."""
    for candidate in dict.fromkeys([label, label.removesuffix("_xf")]):
        path = Path(model_path, "assets", candidate)
        if candidate and path.is_file():
            lines = path.read_text(errors="replace").splitlines()
            if len(lines) == classes:
                return lines
    return []


def _confusion(plots: Sequence[Any]) -> tuple[list[list[float]], int] | None:
    """The candidate's multi-class confusion matrix on the Overall slice (rows: actual), and its size."""
    for _, _, matrices in _candidate_plots(plots, "multi_class_confusion_matrix_at_thresholds", overall=True):
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


def _threshold_curves(plots: Sequence[Any], point: Callable[[Any], tuple[float, float] | None]
                      ) -> dict[int | None, list[tuple[float, float]]]:
    """``{class_id (None for binary): [point(m) for each threshold's confusion matrix m]}`` for the candidate
    on the Overall slice (thresholds where ``point`` gives None are left out)."""
    curves: dict[int | None, list[tuple[float, float]]] = {}
    for _, key, matrices in _candidate_plots(plots, "confusion_matrix_at_thresholds", overall=True):
        class_id = key.sub_key.class_id.value if key.sub_key.HasField("class_id") else None
        curves[class_id] = [p for m in matrices if (p := point(m)) is not None]
    return curves


def _roc_curves(plots: Sequence[Any]) -> dict[int | None, list[tuple[float, float]]]:
    """``{class_id (None for binary): [(fpr, tpr), ...]}`` for the candidate on the Overall slice."""

    def point(m: Any) -> tuple[float, float] | None:
        pos, neg = m.true_positives + m.false_negatives, m.false_positives + m.true_negatives
        return (m.false_positives / neg, m.true_positives / pos) if pos > 0 and neg > 0 else None

    return {k: sorted({*v, (0.0, 0.0), (1.0, 1.0)}) for k, v in _threshold_curves(plots, point).items()}


def _pr_curves(plots: Sequence[Any]) -> dict[int | None, list[tuple[float, float]]]:
    """``{class_id (None for binary): [(recall, precision), ...]}`` for the candidate on the Overall slice
    (thresholds where the model predicts at least one positive)."""

    def point(m: Any) -> tuple[float, float] | None:
        pos, predicted = m.true_positives + m.false_negatives, m.true_positives + m.false_positives
        return (m.true_positives / pos, m.true_positives / predicted) if pos > 0 and predicted > 0 else None

    return {k: sorted(set(v)) for k, v in _threshold_curves(plots, point).items() if v}


def draw_charts(plots: Sequence[Any], table: Table, plan: _Plan, names: list[str], model_path: str, out_dir: str,
                *, pr: bool = False) -> list[str]:
    """``confusion_matrix.svg|png`` and ``roc.svg|png`` (and with ``pr``, ``pr.svg|png``) of the candidate on
    the Overall slice, from TFMA's plots; Evaluate and BatchPredict both draw with this. Returns the paths."""
    import os

    from headwater.components.evaluate import _charts

    pictures: list[str] = []
    confusion = _confusion(plots)
    if confusion is not None:
        grid, n = confusion
        pictures += _charts.confusion_matrix_chart(
            grid, _class_names(plan, n, model_path),
            [os.path.join(out_dir, "confusion_matrix.svg"), os.path.join(out_dir, "confusion_matrix.png")],
            title="Confusion matrix (rows: actual, columns: predicted)",
        )
    overall = table.get("Overall", {})

    def labelled(curves: dict[int | None, list[tuple[float, float]]],
                 metric: str) -> dict[str, list[tuple[float, float]]]:
        out: dict[str, list[tuple[float, float]]] = {}
        for class_id, points in sorted(curves.items(), key=lambda kv: -1 if kv[0] is None else kv[0]):
            label = "model" if class_id is None else names[class_id] if class_id < len(names) else str(class_id)
            value = overall.get(metric if class_id is None else f"{metric} [class {class_id}]", {}).get("candidate")
            if value is not None:
                label += f" ({metric.upper() if metric == 'auc' else 'AUC-PR'} {value:.3f})"
            out[label] = points
        return out

    curves = _roc_curves(plots)
    if curves:
        pictures += _charts.roc_chart(labelled(curves, "auc"),
                                      [os.path.join(out_dir, "roc.svg"), os.path.join(out_dir, "roc.png")])
    if pr:
        pr_curves = _pr_curves(plots)
        if pr_curves:
            pictures += _charts.pr_chart(labelled(pr_curves, "auc_precision_recall"),
                                         [os.path.join(out_dir, "pr.svg"), os.path.join(out_dir, "pr.png")])
    return pictures
