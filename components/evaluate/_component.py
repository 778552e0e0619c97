"""The Evaluate component: TFMA over the eval split, the blessing, readable results and charts."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from headwater.components import _data, _keras, _layout, _runtime
from headwater.components.api import ExecutionContext, Input, Node, Output, Param
from headwater.components.errors import InputDataError, ParameterError
from headwater.components.evaluate import _checks, _report, _tfma
from headwater.components.evaluate.config import normalize_eval_config
from headwater.metadata import types
from headwater.metadata.artifact import Artifact
from headwater.metadata.conventions import (
    A_BASELINE_METRICS,
    A_BASELINE_MODEL,
    A_BASELINE_MODEL_ID,
    A_BLESSED,
    A_BLESSING_MESSAGE,
    A_CURRENT_MODEL,
    A_CURRENT_MODEL_ID,
    A_METRICS,
)

__all__ = ["Evaluate"]


class _EvaluateComponent(_runtime.PackageComponent):
    """``Evaluate`` checks and normalises ``eval_config`` when the node is declared."""

    def __call__(self, **kwargs: Any) -> Node:
        config = kwargs.get("eval_config")
        if config is not None and not isinstance(config, Param):
            caller = sys._getframe(1)
            where = f"{caller.f_code.co_filename}:{caller.f_lineno}"
            try:
                kwargs["eval_config"] = normalize_eval_config(config)
                _checks.check_definition(kwargs["eval_config"])
            except ParameterError as exc:
                raise ParameterError(f"{where}: Evaluate(eval_config=...): {exc}", parameter="eval_config",
                                     file=caller.f_code.co_filename, line=caller.f_lineno) from None
        return super().__call__(**kwargs)


def _model_paths(node: str, models: Mapping[str, Artifact]) -> dict[str, str]:
    """The serving SavedModel folder of each model (candidate, baseline), or an error naming the artifact."""
    paths = {}
    for role, art in models.items():
        path = _layout.serving_model_path(art.path)
        if not os.path.isfile(os.path.join(path, _layout.SAVED_MODEL_FILE)):
            raise InputDataError(
                f"{node}: the {role} Model artifact (id {art.id}) has no SavedModel at {path}; it must come from "
                "Train (or hold Format-Serving/saved_model.pb)", artifact_uri=art.uri,
            )
        paths[role] = path
    return paths


def _run_tfma(plan: _tfma._Plan, paths: Mapping[str, str], patterns: Sequence[str], output_path: str,
              beam_args: Sequence[str]) -> Any:
    """Run TFMA's Beam pipeline over the eval examples; returns the TFMA config it ran with."""
    _keras.skip_autograph_for_tf_keras()
    import apache_beam as beam
    import tensorflow_model_analysis as tfma
    from tensorflow_model_analysis.utils import config_util
    from tfx_bsl.public import tfxio

    has_baseline = "baseline" in paths
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
    with beam.Pipeline(options=_tfma._beam_options(beam_args)) as pipeline:
        _ = (
            pipeline
            | "ReadExamples" >> tfxio.TFExampleRecord(
                file_pattern=list(patterns), raw_record_column_name=tfma.ARROW_INPUT_COLUMN,
                telemetry_descriptors=["headwater", "Evaluate"],
            ).BeamSource()
            | "Evaluate" >> tfma.ExtractEvaluateAndWriteResults(
                eval_shared_model=shared[0] if len(shared) == 1 else shared,
                eval_config=tfma_config, output_path=output_path,
            )
        )
    return tfma_config


def _write_blessing(blessing: Artifact, blessed: bool, message: str, model: Artifact,
                    baseline_model: Artifact | None) -> None:
    Path(blessing.path, _layout.BLESSED_FILE if blessed else _layout.NOT_BLESSED_FILE).write_bytes(b"")
    blessing.custom_properties[A_BLESSED] = 1 if blessed else 0
    blessing.custom_properties[A_BLESSING_MESSAGE] = message
    blessing.custom_properties[A_CURRENT_MODEL] = model.uri
    if model.id is not None:
        blessing.custom_properties[A_CURRENT_MODEL_ID] = model.id
    if baseline_model is not None:
        blessing.custom_properties[A_BASELINE_MODEL] = baseline_model.uri
        if baseline_model.id is not None:
            blessing.custom_properties[A_BASELINE_MODEL_ID] = baseline_model.id


# tensorflow_transform first: importing it selects Keras 2 for tf.keras before TFMA touches tf.keras.
@_runtime.package_component(
    "headwater.components.evaluate", cls=_EvaluateComponent,
    warm_imports=("tensorflow_transform", "tensorflow", "tensorflow_model_analysis"),
)
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
    started = time.time()
    node = f"node {ctx.node_id!r}"
    splits = list(example_splits or ["eval"])
    if not examples:
        raise InputDataError(f"{node}: input 'examples' holds no Examples artifact; connect one")
    patterns = [_data.examples_file_pattern(a.path, s) for a in examples for s in splits]
    sample = _checks.sample_examples(patterns)
    raw_keys = sample.keys
    if not raw_keys:
        raise InputDataError(
            f"{node}: no eval examples in {patterns}; check example_splits={splits} against the Examples' splits"
        )
    models = {"candidate": model, **({"baseline": baseline_model} if baseline_model is not None else {})}
    paths = _model_paths(node, models)

    _keras.prefer_tf_keras()
    config = normalize_eval_config(eval_config) if isinstance(eval_config, str) else eval_config
    plan = _tfma._plan(config)
    signatures = _tfma._signatures(paths["candidate"])
    _tfma._check_config(plan, signatures, raw_keys, node, paths["candidate"])
    task, classes = _tfma._task(plan, signatures)
    _checks.check_examples(
        plan.tfma_config, sample, node=node, task=task, classes=classes, class_names=plan.class_names,
        transformed={k for spec in plan.tfma_config.model_specs for pre in spec.preprocessing_function_names
                     for k in signatures[pre].outputs}, label_setting=plan.label_setting)
    if plan.plots:
        _tfma._add_plot_metrics(plan, task, classes)
    _tfma._add_label_shares(plan, task)
    thresholds = _tfma._has_thresholds(plan.tfma_config)
    try:
        tfma_config = _run_tfma(plan, paths, patterns, evaluation.path, ctx.beam_args)
    except Exception as exc:  # TFMA's errors that the checks above could not foresee, said in our terms
        spec = plan.tfma_config.model_specs[0]
        translated = _checks.translate_tfma_error(
            exc, node=node, label=spec.label_key or None, label_setting=plan.label_setting,
            slices=[k for s in plan.tfma_config.slicing_specs for k in [*s.feature_keys, *s.feature_values]])
        if translated is None:
            raise
        raise translated from exc

    # ------------------------------------------------------------ verdict
    import tensorflow_model_analysis as tfma

    has_baseline = baseline_model is not None
    names = _report._class_names(plan, max(classes, 2), paths["candidate"]) if task in ("multiclass", "binary") else []
    plots = list(tfma.load_plots(evaluation.path))
    table, undefined = _report._collect_metrics(evaluation.path, _tfma._auc_names(tfma_config), names,
                                                _report._plot_shares(plots))
    if thresholds:
        blessed, message = _report._validation_message(
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
    _write_blessing(blessing, blessed, message, model, baseline_model)

    # ------------------------------------------------------------ readable results and pictures
    verdict = "BLESSED" if blessed else "NOT BLESSED"
    Path(evaluation.path, "metrics.json").write_text(json.dumps(
        {"blessed": blessed, "message": message, "baseline_model_id": baseline_model.id if baseline_model else None,
         "slices": _report._metrics_json(table, undefined)}, indent=2, sort_keys=False, allow_nan=False) + "\n")
    Path(evaluation.path, "metrics.md").write_text(
        _report._metrics_markdown(table, undefined, verdict, message, has_baseline)
    )
    pictures: list[str] = []
    if plan.plots and task in ("multiclass", "binary"):
        pictures = _report.draw_charts(plots, table, plan, names, paths["candidate"], evaluation.path)
    overall = table.get("Overall", {})
    evaluation.custom_properties[A_METRICS] = {
        k: v["candidate"] for k, v in overall.items() if v.get("candidate") is not None and "[" not in k
    }
    if has_baseline:
        evaluation.custom_properties[A_BASELINE_METRICS] = {
            k: v["baseline"] for k, v in overall.items() if v.get("baseline") is not None and "[" not in k
        }
    evaluation.custom_properties[A_BLESSED] = 1 if blessed else 0
    evaluation.custom_properties["pictures"] = [os.path.basename(p) for p in pictures]
    evaluation.custom_properties["seconds"] = round(time.time() - started, 3)
    shown = ", ".join(f"{k} {v:.4g}" for k, v in list(evaluation.custom_properties[A_METRICS].items())[:4])
    print(f"Evaluate: {verdict} — {shown}; {message}", flush=True)
