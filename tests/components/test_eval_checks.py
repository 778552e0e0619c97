"""Evaluate's config is checked before anything runs: thresholds and metric names when the pipeline is
defined, the label and slices against the eval examples at the start of the executor (before TFMA), and
TFMA's own errors translated."""

from __future__ import annotations

from pathlib import Path

import pytest
from headwater.components.evaluate import (
    ChangeThreshold,
    EvalConfig,
    Evaluate,
    Metric,
    Slice,
    ValueThreshold,
    normalize_eval_config,
)
from headwater.components.evaluate._checks import KNOWN_METRICS, METRIC_RANGES, check_definition, translate_tfma_error
from headwater.metadata.errors import ParameterError


# ---------------------------------------------------------------------------- definition time (no TensorFlow)
@pytest.mark.parametrize(
    ("metric", "message"),
    [
        (Metric("SparseCategoricalAccuracy", threshold=ValueThreshold(lower=1.5)),
         r"eval_config.metrics\[0\].threshold.lower is 1.5 but SparseCategoricalAccuracy lies in \[0, 1\]: no model "
         r"can reach it, so none would ever be blessed; give a lower bound within \[0, 1\] \(a percentage\? write "
         r"1.5 as 0.015\)"),
        (Metric("AUC", threshold=ValueThreshold(lower=1.2)), r"lower is 1.2 but AUC lies in \[0, 1\]"),
        (Metric("AUC", threshold=ValueThreshold(lower=90)), r"\(a percentage\? write 90 as 0.9\)"),
        (Metric("MeanSquaredError", threshold=ValueThreshold(upper=-0.1)),
         r"upper is -0.1 but MeanSquaredError lies in \[0, inf\]: no model can stay below it"),
        (Metric("Recall", threshold=ValueThreshold(lower=-0.5)),
         r"lower is -0.5 but Recall is never below 0: every model passes, the threshold gates nothing"),
        (Metric("Precision", threshold=ValueThreshold(upper=2)), r"upper is 2 but Precision is never above 1"),
        (Metric("MeanAbsoluteError", change=ChangeThreshold(absolute=0)),
         r"eval_config.metrics\[0\].change.direction is higher_is_better but MeanAbsoluteError is better when "
         r"lower \(a loss or error\); set direction: lower_is_better"),
        (Metric("BinaryAccuracy", change=ChangeThreshold(absolute=0, direction="lower_is_better")),
         r"direction is lower_is_better but BinaryAccuracy is better when higher; set direction: higher_is_better"),
        (Metric("AUC", change=ChangeThreshold(absolute=1.5)),
         r"change.absolute is 1.5 but AUC lies in \[0, 1\]: no candidate can improve on a baseline by more than 1"),
        (Metric("SparseCategoricalAcuracy", threshold=ValueThreshold(lower=0.5)),
         r"metric 'SparseCategoricalAcuracy' is not a TFMA or Keras metric; did you mean "
         r"'SparseCategoricalAccuracy'\?"),
    ],
)
def test_impossible_thresholds_and_misspelt_metrics_fail_when_defined(metric, message) -> None:
    with pytest.raises(ParameterError, match=message):
        EvalConfig(label_key="y", metrics=(metric,))


def test_sensible_thresholds_pass() -> None:
    EvalConfig(label_key="y", metrics=(
        Metric("SparseCategoricalAccuracy", threshold=ValueThreshold(lower=0.9),
               change=ChangeThreshold(absolute=-1e-10)),
        Metric("AUC", threshold=ValueThreshold(lower=0, upper=1)),
        Metric("MeanSquaredError", threshold=ValueThreshold(upper=3.5),
               change=ChangeThreshold(absolute=0.01, direction="lower_is_better")),
        Metric("ExampleCount", threshold=ValueThreshold(lower=100)),
        Metric("MyOwnScore", threshold=ValueThreshold(lower=7)),            # unknown names: checked by the executor
        Metric("Accuracy", threshold=ValueThreshold(lower=3), module="my.metrics"),  # custom classes: unchecked
    ))


def test_yaml_and_tfma_forms_are_checked_and_the_node_names_the_call_site() -> None:
    from headwater.components.train import Train

    train = Train(examples=[], module_file="m.py")
    yaml = "label_key: y\nmetrics:\n  - name: BinaryAccuracy\n    threshold: {lower: 1.5}\n"
    with pytest.raises(ParameterError, match=r"test_eval_checks.py:\d+: Evaluate\(eval_config=...\): "
                                             r"eval_config.metrics\[0\].threshold.lower is 1.5") as caught:
        Evaluate(examples=train.outputs.model, model=train.outputs.model, eval_config=yaml)
    assert caught.value.parameter == "eval_config" and caught.value.line is not None
    assert caught.value.file is not None and caught.value.file.endswith("test_eval_checks.py")
    tfma_form = {"tfma_eval_config": {
        "modelSpecs": [{"labelKey": "y"}],
        "metricsSpecs": [{"metrics": [{"className": "AUC", "threshold": {"valueThreshold": {"lowerBound": 1.1}}}]}],
    }}
    with pytest.raises(ParameterError, match=r"metrics_specs\[0\].metrics\[0\].threshold.value_threshold."
                                             r"lower_bound is 1.1 but AUC lies in \[0, 1\]"):
        Evaluate(examples=train.outputs.model, model=train.outputs.model, eval_config=tfma_form)
    changed = {"tfma_eval_config": {"metricsSpecs": [{"metrics": [{"className": "MeanSquaredError", "threshold": {
        "changeThreshold": {"direction": "HIGHER_IS_BETTER", "absolute": 0}}}]}]}}
    with pytest.raises(ParameterError, match="set direction: lower_is_better"):
        check_definition(normalize_eval_config(changed))


def test_translating_a_tfma_combiner_error() -> None:
    try:
        try:
            raise ValueError("could not convert string to float: b'Adelie'")
        except ValueError as inner:
            raise RuntimeError('add_input failed on "<tensorflow_model_analysis.metrics.multi_class_confusion_'
                               'matrix_metrics._MultiClassConfusionMatrixCombiner object at 0x7f00>"') from inner
    except RuntimeError as exc:
        translated = translate_tfma_error(exc, node="node 'Evaluate'", label="species",
                                          label_setting="eval_config.label_key")
    assert translated is not None
    assert str(translated).startswith(
        "node 'Evaluate': TFMA failed computing _MultiClassConfusionMatrixCombiner from the labels and the model's "
        "predictions. This usually means eval_config.label_key 'species' does not hold what the model predicts")
    assert "TFMA said: ValueError: could not convert string to float: b'Adelie'" in str(translated)
    assert translate_tfma_error(RuntimeError("disk full"), node="n", label="y", label_setting="s") is None


@pytest.mark.ml
def test_every_known_metric_is_a_tfma_or_keras_metric() -> None:
    import tensorflow_model_analysis as tfma
    import tf_keras

    registered = set(tfma.metrics.metric_types.registered_metrics())
    keras = {n for n in dir(tf_keras.metrics) if isinstance(getattr(tf_keras.metrics, n), type) and n[0].isupper()}
    keras -= {"Metric", "Reduce", "MeanMetricWrapper", "SumOverBatchSize", "SumOverBatchSizeMetricWrapper"}
    assert sorted(KNOWN_METRICS - registered - keras) == []  # no invented names
    assert sorted((registered | keras) - KNOWN_METRICS) == []  # no real metric taken for a typo
    assert set(METRIC_RANGES) <= KNOWN_METRICS
    for name in sorted(registered | keras):
        check_definition({"label_key": "y", "metrics": [{"name": name}]})


# ---------------------------------------------------------------------------- executor time (real data, real TFMA)
def _bad(penguins, trained, **configs: EvalConfig) -> dict[str, str]:
    ingest, _, train = penguins.upstream()
    nodes = [Evaluate(examples=ingest.outputs.examples, model=train.outputs.model, eval_config=config).with_id(name)
             for name, config in configs.items()]
    result = penguins.run("eval_checks", [*penguins.upstream(), *nodes])
    out = {}
    for name in configs:
        node = result.nodes[name]
        assert node.state == "failed", name
        out[name] = node.error or ""
    return out


def _config(label: str, **kwargs) -> EvalConfig:
    return EvalConfig(label_key=label, preprocessing_signatures=("transform_features",),
                      metrics=(Metric("SparseCategoricalAccuracy", threshold=ValueThreshold(lower=0.5)),), **kwargs)


@pytest.mark.ml
def test_label_class_names_and_slices_are_checked_before_tfma_runs(penguins, trained) -> None:
    errors = _bad(
        penguins, trained,
        StringLabel=_config("species"),
        YearLabel=_config("year"),
        FloatLabel=_config("bill_length_mm"),
        ClassNames=_config("species_xf", class_names=("Adelie", "Gentoo")),
        SliceValue=_config("species_xf", slices=(Slice(), Slice(values={"sex": "FEMALE"}))),
    )
    assert ("node 'StringLabel': eval_config.label_key 'species' holds strings ('Adelie', 'Chinstrap', 'Gentoo'); "
            "TFMA compares the label with the model's predictions as numbers, so every metric would fail. Use the "
            "label the model was trained on, e.g. 'species_xf'") in errors["StringLabel"]
    assert ("node 'YearLabel': eval_config.label_key 'year' has values 2007, 2008, 2009 outside the model's 3 "
            "classes (0..2)") in errors["YearLabel"]
    assert "'bill_length_mm' holds non-integer values" in errors["FloatLabel"]
    assert ("node 'ClassNames': eval_config.class_names has 2 names (Adelie, Gentoo) but the model predicts 3 "
            "classes; give 3 names, in class id order") in errors["ClassNames"]
    assert ("node 'SliceValue': eval_config slice value sex='FEMALE' does not occur in the eval examples "
            "(values: 'female', 'male'); did you mean 'female'?") in errors["SliceValue"]
    for name, error in errors.items():  # said before TFMA ran: no TFMA error, no TFMA output
        assert "add_input failed" not in error and "SIGKILL" not in error, name
        assert not list(Path(penguins.root, name, "evaluation").rglob("metrics-*")), name


def test_a_yaml_file_mistake_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "evaluation.yaml"
    path.write_text("label_key: species_xf\nmetrics:\n  - name: SparseCategoricalAccuracy\n"
                    "    threshold: {lower: 1.5}\n")
    with pytest.raises(ParameterError, match=rf"^{path}: eval_config.metrics\[0\].threshold.lower is 1.5 but "
                                             r"SparseCategoricalAccuracy lies in \[0, 1\]") as caught:
        EvalConfig.from_yaml(path)
    assert caught.value.file == str(path)
