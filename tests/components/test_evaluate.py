"""Evaluate: typed / YAML / TFMA configs, the blessing policy, baselines, readable results, pictures."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
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
from headwater.components.resolvers import LatestBlessedModel
from headwater.metadata.errors import ParameterError

PENGUIN_CONFIG = EvalConfig(
    label_key="species_xf",
    preprocessing_signatures=("transform_features",),
    metrics=(
        Metric("SparseCategoricalAccuracy", threshold=ValueThreshold(lower=0.9),
               change=ChangeThreshold(absolute=-1e-10)),
        Metric("ExampleCount"),
    ),
    slices=(Slice(), Slice(features=("island",))),
)

PENGUIN_YAML = """
label_key: species_xf
preprocessing_signatures: [transform_features]
metrics:
  - name: SparseCategoricalAccuracy
    threshold: {lower: 0.9}
    change: {absolute: -1.0e-10, direction: higher_is_better}
  - ExampleCount
slices:
  - {}
  - features: [island]
"""


# ---------------------------------------------------------------------------- config (no TensorFlow)
def test_yaml_dict_and_python_forms_are_the_same_config():
    assert EvalConfig.from_yaml(PENGUIN_YAML) == PENGUIN_CONFIG
    assert EvalConfig.from_dict(PENGUIN_CONFIG.to_dict()) == PENGUIN_CONFIG
    assert normalize_eval_config(PENGUIN_YAML) == normalize_eval_config(PENGUIN_CONFIG)
    assert json.loads(json.dumps(PENGUIN_CONFIG.to_dict())) == PENGUIN_CONFIG.to_dict()
    assert PENGUIN_CONFIG.has_thresholds and not EvalConfig(label_key="y").has_thresholds


def test_yaml_file_form(tmp_path):
    path = tmp_path / "eval.yaml"
    path.write_text(PENGUIN_YAML)
    assert EvalConfig.from_yaml(path) == PENGUIN_CONFIG
    assert EvalConfig.from_yaml(str(path)) == PENGUIN_CONFIG


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"label_key": "y", "metrix": []},
         r"eval_config.metrix is not a setting; did you mean 'metrics'\?"),
        ({"label_key": "y", "metrics": [{"name": "AUC", "treshold": {"lower": 0.5}}]},
         r"eval_config.metrics\[0\].treshold is not a setting; did you mean 'threshold'\?"),
        ({"label_key": "y", "metrics": [{"name": "AUC", "threshold": {"lower": 0.9, "upper": 0.1}}]},
         r"eval_config.metrics\[0\].threshold: ValueThreshold lower=0.9 is above upper=0.1; swap them"),
        ({"label_key": "y", "metrics": [{"name": "AUC", "change": {"direction": "up", "absolute": 0}}]},
         r"change direction 'up' is not one of \['higher_is_better', 'lower_is_better'\]"),
        ({"label_key": "y", "metrics": [{"name": "AUC", "change": {"direction": "higher_is_better"}}]},
         r"a ChangeThreshold needs absolute= and/or relative=; e.g. absolute=-1e-10"),
        ({"metrics": ["AUC"]}, r"eval_config has no label_key; name the label feature"),
        ({"label_key": "y", "no_thresholds": "bless"},
         r"eval_config.no_thresholds is 'bless'; use 'not_blessed' \(default\) or 'blessed'"),
    ],
)
def test_config_mistakes_are_reported_when_the_pipeline_is_defined(data, message):
    with pytest.raises(ParameterError, match=message):
        EvalConfig.from_dict(data)


def test_evaluate_checks_the_config_when_the_node_is_declared():
    from headwater.components.train import Train

    train = Train(examples=[], module_file="m.py")
    with pytest.raises(ParameterError, match=r"eval_config.slicez is not a setting; did you mean 'slices'\?"):
        Evaluate(examples=train.outputs.model, model=train.outputs.model,
                 eval_config={"label_key": "y", "slicez": []})
    node = Evaluate(model=train.outputs.model, eval_config=PENGUIN_YAML)
    assert node.parameters["eval_config"] == PENGUIN_CONFIG.to_dict()


SCOPED_YAML = """
label_key: y
metrics:
  - name: AUC
    threshold: {lower: 0.7}               # the whole eval set only (the default)
    change: {absolute: 0, slices: all}    # every slice
  - name: Recall
    threshold: {lower: 0.5, slices: [{}, {features: [island]}, {values: {sex: FEMALE}}]}
slices: [{}, {features: [island]}, {features: [sex]}]
"""

SCOPED_CONFIG = EvalConfig(
    label_key="y",
    metrics=(
        Metric("AUC", threshold=ValueThreshold(lower=0.7), change=ChangeThreshold(absolute=0, slices="all")),
        Metric("Recall", threshold=ValueThreshold(
            lower=0.5, slices=(Slice(), Slice(features=("island",)), Slice(values={"sex": "FEMALE"})))),
    ),
    slices=(Slice(), Slice(features=("island",)), Slice(features=("sex",))),
)


def test_threshold_slices_default_to_the_whole_eval_set_in_every_form():
    assert EvalConfig.from_yaml(SCOPED_YAML) == SCOPED_CONFIG
    assert EvalConfig.from_dict(SCOPED_CONFIG.to_dict()) == SCOPED_CONFIG
    assert json.loads(json.dumps(SCOPED_CONFIG.to_dict())) == SCOPED_CONFIG.to_dict()
    auc, recall = SCOPED_CONFIG.metrics
    assert auc.threshold is not None and auc.threshold.slices is None  # None: the whole eval set only
    assert auc.change is not None and auc.change.slices == "all"
    assert recall.threshold is not None and recall.threshold.slices == (
        Slice(), Slice(features=("island",)), Slice(values={"sex": "FEMALE"}))
    # The default is not written out, so configs stored before scopes existed keep their parameter form.
    assert PENGUIN_CONFIG.to_dict()["metrics"][0]["threshold"] == {"lower": 0.9}
    assert ValueThreshold(lower=0.5, slices=Slice()).slices == (Slice(),)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"label_key": "y", "slices": [{"features": ["island"]}],
          "metrics": [{"name": "AUC", "threshold": {"lower": 0.5}}]},
         r"^eval_config.metrics\[0\].threshold applies to the whole eval set \(it has no slices:\) but "
         r"eval_config.slices has no whole-set slice \{\}; add \{\} to eval_config.slices, or give the "
         r"threshold slices: all or a list of slices$"),
        ({"label_key": "y", "slices": [{}, {"features": ["island"]}],
          "metrics": [{"name": "AUC", "change": {"absolute": 0, "slices": [{}, {"features": ["sex"]}]}}]},
         r"^eval_config.metrics\[0\].change.slices\[1\] \{features: \[sex\]\} is not among eval_config.slices "
         r"\(\{\}, \{features: \[island\]\}\); add it there: a threshold is checked only on evaluated slices$"),
        ({"label_key": "y", "metrics": [{"name": "AUC", "threshold": {"lower": 0.5, "slices": "every"}}]},
         r"^eval_config.metrics\[0\].threshold: slices is 'every'; give all \(every slice\) or a list of "
         r"slices such as \[\{\}, \{features: \[island\]\}\]$"),
        ({"label_key": "y", "metrics": [{"name": "AUC", "threshold": {"lower": 0.5, "slices": []}}]},
         r"^eval_config.metrics\[0\].threshold: slices is empty; leave it out for the whole eval set, or give "
         r"all or a list of slices$"),
        ({"label_key": "y", "metrics": [{"name": "AUC", "threshold": {"lower": 0.5, "slices": [{"featurs": ["a"]}]}}]},
         r"^eval_config.metrics\[0\].threshold: slices\[0\].featurs is not a setting; did you mean 'features'\?"),
    ],
)
def test_threshold_slice_mistakes_name_the_setting(data, message):
    with pytest.raises(ParameterError, match=message):
        EvalConfig.from_dict(data)


# ---------------------------------------------------------------------------- with TFMA
@pytest.mark.ml
def test_threshold_slices_map_to_tfma_per_slice_thresholds():
    import tensorflow_model_analysis as tfma
    from google.protobuf import text_format

    auc, recall = SCOPED_CONFIG.to_tfma().metrics_specs[0].metrics
    assert auc == text_format.Parse("""
        class_name: "AUC"
        threshold { change_threshold { absolute { value: 0 } direction: HIGHER_IS_BETTER } }
        per_slice_thresholds { slicing_specs {} threshold { value_threshold { lower_bound { value: 0.7 } } } }
    """, tfma.MetricConfig())
    assert recall == text_format.Parse("""
        class_name: "Recall"
        per_slice_thresholds {
          slicing_specs {}
          slicing_specs { feature_keys: "island" }
          slicing_specs { feature_values { key: "sex" value: "FEMALE" } }
          threshold { value_threshold { lower_bound { value: 0.5 } } }
        }
    """, tfma.MetricConfig())

    # A TFMA metric's class_id is TFMA's binarization, so that TFMA can match the threshold to "auc [class 2]".
    per_class = EvalConfig(label_key="y", metrics=(
        Metric("AUC", config={"class_id": 2, "num_thresholds": 100}, threshold=ValueThreshold(lower=0.5)),))
    [spec] = per_class.to_tfma().metrics_specs
    assert spec == text_format.Parse("""
        binarize { class_ids { values: 2 } }
        metrics {
          class_name: "AUC" config: "{\\"num_thresholds\\": 100}"
          per_slice_thresholds { slicing_specs {} threshold { value_threshold { lower_bound { value: 0.5 } } } }
        }
    """, tfma.MetricsSpec())


@pytest.mark.ml
def test_failed_threshold_messages_give_value_threshold_and_comparison():
    import tensorflow_model_analysis as tfma
    from google.protobuf import text_format
    from headwater.components.evaluate._report import _validation_message

    result = text_format.Parse("""
        validation_ok: false
        metric_validations_per_slice {
          slice_key { single_slice_keys { column: "plurality" int64_value: 2 } }
          failures {
            metric_key { name: "root_mean_squared_error" model_name: "candidate" }
            metric_threshold { value_threshold { upper_bound { value: 1.1 } } }
            metric_value { double_value { value: 1.2345678 } }
          }
          failures {
            metric_key { name: "root_mean_squared_error" model_name: "candidate" is_diff: true }
            metric_threshold { change_threshold { absolute { value: 0.02 } relative { value: 0.01 }
                                                  direction: LOWER_IS_BETTER } }
            metric_value { double_value { value: 0.25 } }
          }
        }
        metric_validations_per_slice {
          slice_key {}
          failures {
            metric_key { name: "recall" sub_key { class_id { value: 1 } } model_name: "candidate" }
            metric_threshold { value_threshold { lower_bound { value: 0.5 } upper_bound { value: 1 } } }
            metric_value { double_value { value: nan } }
          }
        }
    """, tfma.ValidationResult())
    table = {"plurality=2": {"root_mean_squared_error": {"candidate": 1.2345678, "baseline": 0.9845678,
                                                           "diff": 0.25}}}
    blessed, message = _validation_message(result, True, table, {})
    assert not blessed
    assert message == (
        "thresholds failed: "
        "recall [class 1] on Overall: the value is NaN, which no value threshold accepts (lower bound 0.5, "
        "upper bound 1) (value threshold); "
        "root_mean_squared_error on plurality=2: 1.23457 is above the upper bound 1.1 (value threshold); "
        "root_mean_squared_error on plurality=2: candidate 1.23457 vs baseline 0.984568, change +0.25 is above "
        "the allowed change +0.02 and relative change +0.2539 is above the allowed +0.01 "
        "(change threshold, lower is better)"
    )
    # A metric that is undefined on a slice (the class does not occur there) is not a failure.
    undefined = {"Overall": {"recall [class 1]": "no example of class 1 in this slice"}}
    del result.metric_validations_per_slice[0]
    blessed, message = _validation_message(result, False, {}, undefined)
    assert blessed
    assert message == ("every threshold passed (no baseline model yet: change thresholds skipped); not checked "
                       "where undefined: recall [class 1] on Overall (no example of class 1 in this slice)")


def _evaluate_nodes(upstream, **configs):
    ingest, _, train = upstream
    return [
        Evaluate(examples=ingest.outputs.examples, model=train.outputs.model, eval_config=config).with_id(name)
        for name, config in configs.items()
    ]


@pytest.mark.ml
def test_blessing_policy_readable_results_and_pictures(penguins, trained):
    import tensorflow_model_analysis as tfma
    from PIL import Image

    tfx_config = tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(signature_name="serving_default", label_key="species_xf",
                                    preprocessing_function_names=["transform_features"])],
        slicing_specs=[tfma.SlicingSpec()],
        metrics_specs=[tfma.MetricsSpec(metrics=[tfma.MetricConfig(
            class_name="SparseCategoricalAccuracy",
            threshold=tfma.MetricThreshold(value_threshold=tfma.GenericValueThreshold(lower_bound={"value": 0.99})),
        )])],
        options=tfma.Options(include_default_metrics={"value": False}),
    )
    no_thresholds = EvalConfig(label_key="species_xf", preprocessing_signatures=("transform_features",),
                               metrics=(Metric("SparseCategoricalAccuracy"),))
    upstream = penguins.upstream()
    nodes = _evaluate_nodes(
        upstream,
        EvaluateTyped=PENGUIN_CONFIG,
        EvaluateDefaultPolicy=no_thresholds,
        EvaluateBlessPolicy=EvalConfig.from_dict({**no_thresholds.to_dict(), "no_thresholds": "blessed"}),
        EvaluateTfma=tfx_config,
    )
    result = penguins.run("evaluate_policy", [*upstream, *nodes])
    assert result.ok, {n: r.error for n, r in result.nodes.items() if r.error}
    [model] = result.outputs("Train", "model")

    def outputs(node_id):
        [evaluation] = result.outputs(node_id, "evaluation")
        [blessing] = result.outputs(node_id, "blessing")
        return evaluation, blessing, sorted(p.name for p in Path(blessing.uri).iterdir())

    # Thresholds, first run: value threshold applies, change threshold skipped (no baseline yet).
    evaluation, blessing, files = outputs("EvaluateTyped")
    assert files == ["BLESSED"]
    props = blessing.custom_properties
    assert props["blessed"] == 1 and props["current_model_id"] == model.id and props["current_model"] == model.uri
    assert "baseline_model_id" not in props
    assert props["blessing_message"] == "every threshold passed (no baseline model yet: change thresholds skipped)"
    metrics = json.loads(Path(evaluation.uri, "metrics.json").read_text())
    overall = metrics["slices"]["Overall"]
    assert overall["sparse_categorical_accuracy"]["candidate"] >= 0.9
    assert overall["example_count"]["candidate"] > 80
    assert {"island=Biscoe", "island=Dream", "island=Torgersen"} <= set(metrics["slices"])
    markdown = Path(evaluation.uri, "metrics.md").read_text()
    assert "**BLESSED**" in markdown and "## island=Dream" in markdown
    assert evaluation.custom_properties["metrics"]["sparse_categorical_accuracy"] >= 0.9
    for name in ("confusion_matrix", "roc"):
        with Image.open(Path(evaluation.uri, f"{name}.png")) as image:
            assert image.size[0] > 200
        ET.parse(Path(evaluation.uri, f"{name}.svg"))
    confusion_svg = Path(evaluation.uri, "confusion_matrix.svg").read_text()
    assert all(name in confusion_svg for name in ("Adelie", "Gentoo", "Chinstrap"))  # from the vocabulary
    assert list(Path(evaluation.uri).glob("validations*"))  # TFMA's own results are there too

    # No thresholds: the default policy does not bless, and says why.
    _, blessing, files = outputs("EvaluateDefaultPolicy")
    assert files == ["NOT_BLESSED"] and blessing.custom_properties["blessed"] == 0
    assert blessing.custom_properties["blessing_message"].startswith(
        "no thresholds configured, so nothing shows the model is good enough (policy no_thresholds='not_blessed')")
    _, blessing, files = outputs("EvaluateBlessPolicy")
    assert files == ["BLESSED"]
    assert blessing.custom_properties["blessing_message"] == (
        "no thresholds configured; blessed by policy no_thresholds='blessed'")

    # A tfma.EvalConfig is taken as is (a 0.99 bar here).
    evaluation, blessing, _ = outputs("EvaluateTfma")
    accuracy = json.loads(Path(evaluation.uri, "metrics.json").read_text())["slices"]["Overall"][
        "sparse_categorical_accuracy"]["candidate"]
    assert blessing.custom_properties["blessed"] == (1 if accuracy >= 0.99 else 0)


@pytest.mark.ml
def test_unknown_metric_or_label_fails_naming_the_setting(penguins, trained):
    upstream = penguins.upstream()
    nodes = _evaluate_nodes(
        upstream,
        EvaluateBadMetric=EvalConfig(label_key="species_xf", preprocessing_signatures=("transform_features",),
                                     metrics=(Metric("SparseCategoricalAcuracy", threshold=ValueThreshold(0.5)),)),
        EvaluateBadLabel=EvalConfig(label_key="speces_xf", preprocessing_signatures=("transform_features",),
                                    metrics=(Metric("ExampleCount"),)),
        EvaluateNoPreprocessing=EvalConfig(label_key="species_xf", metrics=(Metric("ExampleCount"),)),
    )
    result = penguins.run("evaluate_errors", [*upstream, *nodes])
    errors = {n: result.nodes[n].error for n in ("EvaluateBadMetric", "EvaluateBadLabel", "EvaluateNoPreprocessing")}
    assert all(result.nodes[n].state == "failed" for n in errors)
    assert (
        "node 'EvaluateBadMetric': eval_config metric 'SparseCategoricalAcuracy' is not a TFMA or Keras metric; "
        "did you mean 'SparseCategoricalAccuracy'? Use a class name from tfma.metrics or tf.keras.metrics"
    ) in errors["EvaluateBadMetric"]
    assert (
        "node 'EvaluateBadLabel': eval_config.label_key 'speces_xf' is not among the eval examples' features or "
        "the outputs of ['transform_features']; did you mean 'species_xf'?"
    ) in errors["EvaluateBadLabel"]
    assert ("a transformed label needs preprocessing_signatures=('transform_features',)"
            in errors["EvaluateNoPreprocessing"])
    store = penguins.store()
    for node_id in errors:
        execution = store.get_execution(result.nodes[node_id].execution_id)
        assert execution.state == "FAILED"
        assert not list(Path(penguins.root, node_id, "blessing", str(execution.id)).glob("*"))


@pytest.mark.ml
def test_change_threshold_compares_with_the_latest_blessed_model(penguins, trained):
    config = EvalConfig(label_key="species_xf", preprocessing_signatures=("transform_features",),
                        metrics=(Metric("SparseCategoricalAccuracy", change=ChangeThreshold(absolute=-1e-10)),),
                        plots=False)

    def pipeline(train_steps):
        ingest, transform, train = penguins.upstream(train_steps=train_steps)
        latest = LatestBlessedModel(exclude=train.outputs.model)
        evaluate = Evaluate(examples=ingest.outputs.examples, model=train.outputs.model,
                            baseline_model=latest.outputs.model, eval_config=config)
        return [ingest, transform, train, latest, evaluate]

    first = penguins.run("evaluate_baseline", pipeline(100))
    assert first.ok, {n: r.error for n, r in first.nodes.items() if r.error}
    assert first.outputs("LatestBlessedModel", "model") == []
    [good] = first.outputs("Train", "model")
    [blessing] = first.outputs("Evaluate", "blessing")
    assert blessing.custom_properties["blessed"] == 1  # rubber stamp: nothing to compare with yet

    worse = penguins.run("evaluate_baseline", pipeline(1))  # one training step: a worse model
    assert worse.ok, {n: r.error for n, r in worse.nodes.items() if r.error}
    assert [m.id for m in worse.outputs("LatestBlessedModel", "model")] == [good.id]
    [blessing] = worse.outputs("Evaluate", "blessing")
    [evaluation] = worse.outputs("Evaluate", "evaluation")
    props = blessing.custom_properties
    assert props["baseline_model_id"] == good.id and props["baseline_model"] == good.uri
    assert props["blessed"] == 0 and (Path(blessing.uri) / "NOT_BLESSED").exists()
    table = json.loads(Path(evaluation.uri, "metrics.json").read_text())["slices"]["Overall"]
    row = table["sparse_categorical_accuracy"]
    assert row["diff"] == pytest.approx(row["candidate"] - row["baseline"]) and row["diff"] < 0
    assert props["blessing_message"] == (
        f"thresholds failed: sparse_categorical_accuracy on Overall: candidate {row['candidate']:.6g} vs baseline "
        f"{row['baseline']:.6g}, change {row['diff']:+.6g} is below the allowed change -1e-10 "
        "(change threshold, higher is better)"
    )
    assert "| metric | candidate | baseline | change |" in Path(evaluation.uri, "metrics.md").read_text()


@pytest.mark.ml
def test_threshold_scopes_value_messages_and_per_class_metrics_undefined_on_a_slice(penguins, trained):
    import tensorflow_model_analysis as tfma

    base = {"label_key": "species_xf", "preprocessing_signatures": ["transform_features"],
            "slices": [{}, {"features": ["island"]}]}
    overall_only = {**base, "metrics": [{"name": "ExampleCount", "threshold": {"lower": 100}}]}
    every_slice = {**base, "plots": False,
                   "metrics": [{"name": "ExampleCount", "threshold": {"lower": 100, "slices": "all"}}]}
    # Typed per-class threshold on every slice, no pictures: the class shares come from a helper metric.
    per_class = {**base, "plots": False, "metrics": [
        {"name": "AUC", "config": {"class_id": 2}, "threshold": {"lower": 0.5, "slices": "all"}}]}
    lower_100 = tfma.MetricThreshold(value_threshold=tfma.GenericValueThreshold(lower_bound={"value": 100}))
    tfma_config = tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(signature_name="serving_default", label_key="species_xf",
                                    preprocessing_function_names=["transform_features"], model_type="tf_generic")],
        slicing_specs=[tfma.SlicingSpec(), tfma.SlicingSpec(feature_keys=["island"])],
        metrics_specs=[
            # TFMA's own way to scope a threshold: per_slice_thresholds (here: the whole eval set only).
            tfma.MetricsSpec(metrics=[tfma.MetricConfig(class_name="ExampleCount", per_slice_thresholds=[
                tfma.PerSliceMetricThreshold(slicing_specs=[tfma.SlicingSpec()], threshold=lower_100)])]),
            # A per-class AUC with a threshold on every slice; Chinstraps (class 2) live on Dream only.
            tfma.MetricsSpec(binarize=tfma.BinarizationOptions(class_ids={"values": [2]}), metrics=[
                tfma.MetricConfig(class_name="AUC", threshold=tfma.MetricThreshold(
                    value_threshold=tfma.GenericValueThreshold(lower_bound={"value": 0.5})))]),
        ],
        options=tfma.Options(include_default_metrics={"value": False}),
    )
    upstream = penguins.upstream()
    nodes = _evaluate_nodes(upstream, EvaluateOverallOnly=overall_only, EvaluateEverySlice=every_slice,
                            EvaluateTfmaScoped=tfma_config, EvaluateTypedPerClass=per_class)
    result = penguins.run("evaluate_scopes", [*upstream, *nodes])
    assert result.ok, {n: r.error for n, r in result.nodes.items() if r.error}

    def outputs(node_id):
        [evaluation] = result.outputs(node_id, "evaluation")
        [blessing] = result.outputs(node_id, "blessing")
        return json.loads(Path(evaluation.uri, "metrics.json").read_text()), blessing.custom_properties, evaluation

    # Default scope: the threshold gates the whole eval set (109 penguins), not each island (15 to 54).
    metrics, props, evaluation = outputs("EvaluateOverallOnly")
    counts = {s: metrics["slices"][s]["example_count"]["candidate"] for s in metrics["slices"]}
    assert counts["Overall"] >= 100 and max(v for s, v in counts.items() if s != "Overall") < 100
    assert props["blessed"] == 1, props["blessing_message"]
    assert props["blessing_message"] == "every threshold passed (no baseline model yet: change thresholds skipped)"
    # Per-class AUC where the class does not occur (or is the only one) is undefined, not 0.
    torgersen = metrics["slices"]["island=Torgersen"]  # Torgersen's penguins are all Adelie (class 0)
    assert torgersen["auc [class 0]"] == {"candidate": None,
                                          "undefined": "every example in this slice is class 0 (Adelie)"}
    assert torgersen["auc [class 2]"] == {"candidate": None,
                                          "undefined": "no example of class 2 (Chinstrap) in this slice"}
    assert metrics["slices"]["Overall"]["auc [class 2]"]["candidate"] > 0.5
    assert "undefined" not in metrics["slices"]["island=Dream"]["auc [class 2]"]
    assert metrics["slices"]["island=Dream"]["auc [class 2]"]["candidate"] > 0.5
    markdown = Path(evaluation.uri, "metrics.md").read_text()
    torgersen_md = markdown.split("## island=Torgersen")[1]
    assert "| auc [class 2] | n/a |" in torgersen_md
    assert "- auc [class 2]: no example of class 2 (Chinstrap) in this slice" in torgersen_md
    assert "label_share" not in markdown  # the helper metric behind "undefined" is not reported

    # slices: all gates every slice; the message gives each value, the bound and the comparison.
    metrics, props, _ = outputs("EvaluateEverySlice")
    assert props["blessed"] == 0
    assert props["blessing_message"] == "thresholds failed: " + "; ".join(
        f"example_count on {s}: {metrics['slices'][s]['example_count']['candidate']:g} is below the lower bound "
        "100 (value threshold)" for s in ("island=Biscoe", "island=Dream", "island=Torgersen"))

    # A tfma.EvalConfig scopes with per_slice_thresholds; an undefined per-class AUC fails no threshold.
    for node_id in ("EvaluateTfmaScoped", "EvaluateTypedPerClass"):
        metrics, props, _ = outputs(node_id)
        assert metrics["slices"]["island=Biscoe"]["auc [class 2]"]["candidate"] is None
        assert metrics["slices"]["island=Dream"]["auc [class 2]"]["candidate"] > 0.5
        assert props["blessed"] == 1, props["blessing_message"]
        assert props["blessing_message"] == (
            "every threshold passed (no baseline model yet: change thresholds skipped); not checked where "
            "undefined: auc [class 2] on island=Biscoe (no example of class 2 (Chinstrap) in this slice), "
            "auc [class 2] on island=Torgersen (no example of class 2 (Chinstrap) in this slice)"
        )
        assert not any("label_share" in m for row in metrics["slices"].values() for m in row)
