"""BatchPredict: PredictionLogs TFX tools read, a Parquet table, metrics against labels, the blessing gate,
and clear errors for a model without a signature or examples without a feature the model needs."""

from __future__ import annotations

import glob
import json
import os
from pathlib import Path

import pytest
from headwater.components import Output, component
from headwater.components.batch_predict import BatchPredict
from headwater.components.evaluate import EvalConfig, Evaluate, Metric, ValueThreshold
from headwater.metadata import types
from headwater.metadata.errors import ParameterError
from ml_helpers import raw_eval_examples, serve

BAR = EvalConfig(label_key="species_xf", preprocessing_signatures=("transform_features",),
                 metrics=(Metric("SparseCategoricalAccuracy", threshold=ValueThreshold(lower=0.9)),), plots=False)
UNREACHABLE = EvalConfig.from_dict({**BAR.to_dict(), "metrics": [
    {"name": "SparseCategoricalAccuracy", "threshold": {"upper": 0.01}}]})  # no useful model is that bad


@component
def ImportModel(*, model: Output[types.Model], path: str) -> None:
    """A Model artifact copied from ``path`` (a folder holding Format-Serving/)."""
    import shutil

    shutil.copytree(path, model.path, dirs_exist_ok=True)


def test_a_blessing_is_wired_or_explicitly_not_required_when_the_node_is_declared(penguins):
    ingest, _, train = penguins.upstream()
    with pytest.raises(ParameterError, match=r"test_batch_predict\.py:\d+: BatchPredict\(model_blessing=\.\.\.\): "
                       r"no model_blessing is wired.*set require_blessing=False to predict with any model"):
        BatchPredict(examples=ingest.outputs.examples, model=train.outputs.model)
    with pytest.raises(ParameterError, match=r"task='ranking' is not one of auto, multiclass, binary, regression"):
        BatchPredict(examples=ingest.outputs.examples, model=train.outputs.model, require_blessing=False,
                     task="ranking")
    BatchPredict(examples=ingest.outputs.examples, model=train.outputs.model, require_blessing=False)


@pytest.fixture(scope="module")
def predicted(penguins, trained):
    ingest, transform, train = penguins.upstream()
    good = Evaluate(examples=ingest.outputs.examples, model=train.outputs.model, eval_config=BAR)
    bad = Evaluate(examples=ingest.outputs.examples, model=train.outputs.model,
                   eval_config=UNREACHABLE).with_id("EvaluateUnreachable")
    batch = BatchPredict(examples=ingest.outputs.examples, model=train.outputs.model,
                         model_blessing=good.outputs.blessing, splits=["eval"], label_key="species")
    refused = BatchPredict(examples=ingest.outputs.examples, model=train.outputs.model,
                           model_blessing=bad.outputs.blessing, splits=["eval"]).with_id("BatchPredictRefused")
    allowed = BatchPredict(examples=ingest.outputs.examples, model=train.outputs.model,
                           model_blessing=bad.outputs.blessing, require_blessing=False,
                           splits=["train", "eval"]).with_id("BatchPredictAllowed")
    result = penguins.run("batch_predict", [ingest, transform, train, good, bad, batch, refused, allowed])
    assert result.ok, {n: r.error for n, r in result.nodes.items() if r.error}
    return result


def test_prediction_logs_and_parquet_hold_every_example_with_the_models_predictions(predicted):
    import numpy as np
    import pyarrow.parquet as pq
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    [examples] = predicted.outputs("Ingest", "examples")
    [model] = predicted.outputs("Train", "model")
    [out] = predicted.outputs("BatchPredict", "inference_result")
    records, labels = raw_eval_examples(examples.uri)
    # PredictionLogs as TFX's BulkInferrer writes them: gzip TFRecords read with tf.data and the proto.
    files = sorted(glob.glob(os.path.join(out.uri, "prediction_logs-*.gz")))
    assert files
    logs = [prediction_log_pb2.PredictionLog.FromString(r.numpy())
            for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]
    assert len(logs) == len(records) == out.custom_properties["predicted"]
    assert {log.WhichOneof("log_type") for log in logs} == {"predict_log"}
    # The Parquet table: one row per example with its features, the label, and the scores the model gives.
    table = pq.read_table(os.path.join(out.uri, "predictions")).to_pandas()
    assert len(table) == len(records)
    assert {"species", "island", "bill_length_mm", "split", "scores", "predicted_class",
            "predicted_score"} <= set(table.columns)
    assert set(table["split"]) == {"eval"}
    assert sorted(table["species"]) == sorted(labels)
    direct = serve(os.path.join(model.uri, "Format-Serving"), records)
    vocab = Path(model.uri, "Format-Serving", "assets", "species").read_text().split()
    by_row = {(r.island, r.bill_length_mm, r.body_mass_g, r.species): np.array(r.scores) for r in table.itertuples()}
    assert len(by_row) > 0.9 * len(table)  # nearly every row is told apart by these features
    assert sorted(table["predicted_class"]) == sorted(vocab[p.argmax()] for p in direct)
    assert np.allclose(np.sort(np.stack(table["scores"]).max(axis=1)), np.sort(direct.max(axis=1)), atol=1e-5)
    summary = json.loads(Path(out.uri, "batch_predict.json").read_text())
    assert summary["predicted"] == len(records) and summary["task"] == "multiclass"
    assert summary["class_names"] == vocab


def test_labels_give_metrics_equal_to_a_direct_computation_and_evaluates_pictures(predicted):
    import pyarrow.parquet as pq

    [out] = predicted.outputs("BatchPredict", "inference_result")
    table = pq.read_table(os.path.join(out.uri, "predictions")).to_pandas()
    accuracy = float((table["predicted_class"] == table["species"]).mean())
    metrics = out.custom_properties["metrics"]
    assert metrics["sparse_categorical_accuracy"] == pytest.approx(accuracy, abs=1e-6)
    assert metrics["example_count"] == len(table)
    evaluation = Path(out.uri, "evaluation")
    for name in ("metrics.json", "metrics.md", "confusion_matrix.png", "confusion_matrix.svg", "roc.png", "pr.png"):
        assert (evaluation / name).is_file(), name
    # The confusion matrix drawn is the table's: its counts are in the SVG's text.
    svg = (evaluation / "confusion_matrix.svg").read_text()
    for actual in sorted(set(table["species"])):
        assert actual in svg
    saved = json.loads((evaluation / "metrics.json").read_text())["slices"]["Overall"]
    assert saved["sparse_categorical_accuracy"]["candidate"] == pytest.approx(accuracy, abs=1e-6)


def test_an_unblessed_model_is_refused_unless_allowed(predicted, penguins):
    node = predicted.nodes["BatchPredictRefused"]
    assert node.state == "skipped"
    [refused] = predicted.outputs("BatchPredictRefused", "inference_result")
    [model] = predicted.outputs("Train", "model")
    reason = refused.custom_properties["refused"]
    assert reason.startswith(f"refusing to predict with model {model.id}: its ModelBlessing (id ")
    assert "says NOT BLESSED (thresholds failed: sparse_categorical_accuracy" in reason
    assert reason.endswith("BatchPredict predicts only with a model Evaluate blessed; set require_blessing=False "
                           "to predict with it anyway")
    assert not glob.glob(os.path.join(refused.uri, "prediction_logs-*"))
    [allowed] = predicted.outputs("BatchPredictAllowed", "inference_result")
    [examples] = predicted.outputs("Ingest", "examples")
    assert allowed.custom_properties["predicted"] == sum(examples.custom_properties["num_examples"].values())
    assert "metrics" not in allowed.custom_properties  # no label_key: predictions only


def test_the_executors_own_gate_reads_the_blessing_and_its_model(predicted):
    from headwater.components.batch_predict import BatchPredictRefusedError
    from headwater.components.batch_predict._component import _blessing_verdict

    [blessing] = predicted.outputs("EvaluateUnreachable", "blessing")
    [model] = predicted.outputs("Train", "model")
    ok, why = _blessing_verdict(blessing, model)
    assert not ok and why.startswith(f"its ModelBlessing (id {blessing.id}) says NOT BLESSED")
    assert issubclass(BatchPredictRefusedError, Exception)


def test_a_model_without_the_signature_and_examples_without_a_feature_fail_clearly(penguins, tmp_path):
    import tensorflow as tf
    from headwater.components.ingest import Ingest

    no_signature = tmp_path / "no-signature"
    tf.saved_model.save(tf.Module(), str(no_signature / "Format-Serving"))
    # A model that needs bill_length_mm in every example (no default value).
    needs = tmp_path / "needs-bill-length"
    spec = {"bill_length_mm": tf.io.FixedLenFeature([1], tf.float32)}
    module = tf.Module()
    module.serve = tf.function(lambda examples: {"double": 2.0 * tf.io.parse_example(examples, spec)["bill_length_mm"]},
                               input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    tf.saved_model.save(module, str(needs / "Format-Serving"), signatures={"serving_default": module.serve})

    # Examples without bill_length_mm.
    data = tmp_path / "data"
    data.mkdir()
    lines = (penguins.data / "penguins.csv").read_text().splitlines()
    keep = [i for i, name in enumerate(lines[0].split(",")) if name != "bill_length_mm"]
    data.joinpath("penguins.csv").write_text("\n".join(",".join(line.split(",")[i] for i in keep)
                                                       for line in lines) + "\n")
    short = Ingest(input_base=str(data), label="species").with_id("IngestShort")
    bare = ImportModel(path=str(no_signature)).with_id("BareModel")
    needing = ImportModel(path=str(needs)).with_id("NeedingModel")
    unsigned = BatchPredict(examples=short.outputs.examples, model=bare.outputs.model,
                            require_blessing=False).with_id("BatchPredictUnsigned")
    missing = BatchPredict(examples=short.outputs.examples, model=needing.outputs.model,
                           require_blessing=False).with_id("BatchPredictMissing")
    result = penguins.run("batch_predict_bad_input", [short, bare, needing, unsigned, missing])
    error = result.nodes["BatchPredictUnsigned"].error
    assert "has no signature 'serving_default' (it has none); export a serving signature from run_fn" in error
    error = result.nodes["BatchPredictMissing"].error
    assert "lack feature 'bill_length_mm' (float), which the model's signature 'serving_default' needs in every " \
           "example" in error


def test_a_feature_named_like_a_prediction_column_is_kept_beside_it():
    # Regression: a feature called "split" or "scores" collided with BatchPredict's own Parquet columns.
    import tensorflow as tf
    from headwater.components.batch_predict._convert import Plan, to_tables
    from tensorflow_metadata.proto.v0 import schema_pb2
    from tensorflow_serving.apis import prediction_log_pb2

    schema = schema_pb2.Schema()
    for name, kind in (("split", schema_pb2.BYTES), ("score", schema_pb2.FLOAT), ("x", schema_pb2.FLOAT)):
        schema.feature.add(name=name, type=kind)
    plan = Plan(node="node 'BatchPredict'", feature_schema=schema.SerializeToString(),
                scalar_features=("split", "score", "x"), text_features=("split",), output_key="", task="regression",
                label_key="score")
    pairs = []
    for i, (tag, label) in enumerate([("a", 1.0), ("b", 2.0)]):
        example = tf.train.Example(features=tf.train.Features(feature={
            "split": tf.train.Feature(bytes_list=tf.train.BytesList(value=[tag.encode()])),
            "score": tf.train.Feature(float_list=tf.train.FloatList(value=[label])),
            "x": tf.train.Feature(float_list=tf.train.FloatList(value=[float(i)]))}))
        log = prediction_log_pb2.PredictionLog()
        log.regress_log.response.result.regressions.add(value=label + 0.5)
        pairs.append((example.SerializeToString(), log))
    table, measured = to_tables(plan, pairs, "eval")
    assert table.column_names == ["feature.split", "feature.score", "x", "split", "prediction"]
    assert table.column("feature.split").to_pylist() == ["a", "b"]
    assert table.column("split").to_pylist() == ["eval", "eval"]
    assert table.column("prediction").to_pylist() == [1.5, 2.5]
    assert len(measured) == 2  # the label was found under its column name
