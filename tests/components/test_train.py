"""Train on the real penguins data: TFX module files, fn_args, seeds, serving from raw features, errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from ml_helpers import raw_eval_examples, serve, write_module

pytestmark = pytest.mark.ml


def test_penguin_module_trains_and_serves_predictions_from_raw_features(trained):
    [model] = trained.outputs("Train", "model")
    [model_run] = trained.outputs("Train", "model_run")
    [examples] = trained.outputs("Ingest", "examples")
    serving = Path(model.uri, "Format-Serving")
    assert (serving / "saved_model.pb").is_file()
    # Raw tf.Examples without the label go in; tf.Transform runs inside the signature.
    records, labels = raw_eval_examples(examples.uri)
    probabilities = serve(str(serving), records)
    vocab = (serving / "assets" / "species").read_text().split()
    predicted = [vocab[p.argmax()] for p in probabilities]
    accuracy = sum(p == y for p, y in zip(predicted, labels, strict=True)) / len(labels)
    assert len(labels) > 80 and accuracy >= 0.9
    # TensorBoard logs and the run summary are in ModelRun; Keras and seed are recorded on the Model.
    assert list(Path(model_run.uri).rglob("events.out.tfevents.*"))
    summary = json.loads(Path(model_run.uri, "train_summary.json").read_text())
    assert summary["train_steps"] == 100 and summary["seed"] == 1
    assert summary["train_files"] == [str(Path(trained.outputs("Transform", "transformed_examples")[0].uri,
                                                "Split-train", "*.gz"))]
    assert model.custom_properties["keras"].startswith("tf_keras 2.")
    assert model.custom_properties["seed"] == 1


FN_ARGS_MODULE = '''
import json, os
import tensorflow as tf
from tfx_bsl.public import tfxio
from headwater.components import tfx_compat as tfx


def run_fn(fn_args: tfx.components.FnArgs):
    import tensorflow_transform as tft
    schema = tft.TFTransformOutput(fn_args.transform_output).transformed_metadata.schema
    batch = next(iter(fn_args.data_accessor.tf_dataset_factory(
        fn_args.train_files, tfxio.TensorFlowDatasetOptions(batch_size=4, label_key="species_xf"), schema)))
    features, label = batch
    own = next(iter(fn_args.eval_dataset(batch_size=3, label_key="species_xf")))
    record = {k: getattr(fn_args, k) for k in (
        "working_dir", "train_files", "eval_files", "train_steps", "eval_steps", "schema_path", "schema_file",
        "transform_graph_path", "transform_output", "serving_model_dir", "eval_model_dir", "model_run_dir",
        "base_model", "hyperparameters", "custom_config", "seed")}
    record["feature_keys"] = sorted(features)
    record["label_shape"] = label.shape.as_list()
    record["eval_batch"] = own[1].shape.as_list()
    with open(os.path.join(fn_args.model_run_dir, "fn_args.json"), "w") as f:
        json.dump(record, f)
    module = tf.Module()
    module.v = tf.Variable(1.0)
    tf.saved_model.save(module, fn_args.serving_model_dir)
'''


def test_fn_args_carries_tfx_fields_and_reads_examples(penguins, tmp_path, trained):
    module = write_module(tmp_path, "fn_args_module", FN_ARGS_MODULE)
    ingest, transform, train = penguins.upstream(module_file=module, train_steps=7,
                                                 custom_config={"epochs": 3, "note": "x"})
    result = penguins.run("fn_args", [ingest, transform, train])
    assert result.ok, result.nodes["Train"].error
    [model_run] = result.outputs("Train", "model_run")
    record = json.loads(Path(model_run.uri, "fn_args.json").read_text())
    [graph] = result.outputs("Transform", "transform_graph")
    [schema] = result.outputs("Ingest", "schema")
    [model] = result.outputs("Train", "model")
    assert record["transform_output"] == record["transform_graph_path"] == graph.uri
    assert record["schema_path"] == record["schema_file"] == str(Path(schema.uri, "schema.pbtxt"))
    assert record["serving_model_dir"] == str(Path(model.uri, "Format-Serving"))
    assert record["model_run_dir"] == model_run.uri
    assert record["train_steps"] == 7 and record["eval_steps"] == 5 and record["seed"] == 1
    assert record["custom_config"] == {"epochs": 3, "note": "x"}
    assert record["hyperparameters"] is None and record["base_model"] is None
    assert [Path(p).parent.name for p in record["train_files"]] == ["Split-train"]
    assert [Path(p).parent.name for p in record["eval_files"]] == ["Split-eval"]
    assert "species_xf" not in record["feature_keys"] and "island_xf" in record["feature_keys"]
    assert record["label_shape"] == [4, 1] and record["eval_batch"] == [3, 1]


def test_seed_makes_training_reproducible(penguins, trained):
    [examples] = trained.outputs("Ingest", "examples")
    records, _ = raw_eval_examples(examples.uri)
    ingest, transform, train = penguins.upstream(seed=1)
    again = train.with_id("TrainAgain").with_caching(False)
    other = penguins.upstream(seed=2)[2].with_id("TrainOtherSeed").with_caching(False)
    result = penguins.run("seeds", [ingest, transform, again, other])
    assert result.ok, {n: r.error for n, r in result.nodes.items() if r.error}
    first = serve(str(Path(trained.outputs("Train", "model")[0].uri, "Format-Serving")), records)
    second = serve(str(Path(result.outputs("TrainAgain", "model")[0].uri, "Format-Serving")), records)
    third = serve(str(Path(result.outputs("TrainOtherSeed", "model")[0].uri, "Format-Serving")), records)
    assert (first == second).all()  # same seed, same data: the very same model
    assert not (first == third).all()


RAISING_MODULE = '''
def run_fn(fn_args):
    steps = fn_args.train_steps
    raise ValueError(f"cannot train for {steps} steps")
'''

NO_MODEL_MODULE = '''
import os


def run_fn(fn_args):
    os.makedirs(fn_args.serving_model_dir, exist_ok=True)
    with open(os.path.join(fn_args.serving_model_dir, "weights.txt"), "w") as f:
        f.write("not a SavedModel")
'''


@pytest.fixture(scope="module")
def failed_trains(penguins, trained, tmp_path_factory):
    """One pipeline run with four broken Train nodes next to each other (independent failures)."""
    folder = tmp_path_factory.mktemp("modules")
    modules = {
        "TrainRaising": write_module(folder, "raising_module", RAISING_MODULE),
        "TrainNoModel": write_module(folder, "no_model_module", NO_MODEL_MODULE),
        "TrainNoRunFn": write_module(folder, "no_run_fn", "def train(fn_args):\n    pass\n"),
    }
    ingest, transform, _ = penguins.upstream()
    nodes = [penguins.upstream(module_file=path)[2].with_id(node_id) for node_id, path in modules.items()]
    nodes.append(penguins.upstream(eval_splits=["test"])[2].with_id("TrainBadSplit"))
    result = penguins.run("train_errors", [ingest, transform, *nodes])
    return result, modules


def test_run_fn_that_raises_is_a_user_error_naming_node_and_traceback(penguins, failed_trains):
    result, modules = failed_trains
    module = modules["TrainRaising"]
    node = result.nodes["TrainRaising"]
    assert node.state == "failed" and node.outputs == {}
    assert str(module) in node.error
    assert "node 'TrainRaising': run_fn in" in node.error
    assert "raised ValueError: cannot train for 100 steps" in node.error
    record = penguins.store().get_execution(node.execution_id)
    assert record.state == "FAILED" and record.properties["__user_error__"] is True
    assert f'File "{module}", line 4, in run_fn' in record.properties["__traceback__"]
    assert not Path(penguins.root, "TrainRaising", "model", str(node.execution_id)).exists()


def test_run_fn_that_writes_no_model_names_module_and_expected_path(penguins, failed_trains):
    result, modules = failed_trains
    node = result.nodes["TrainNoModel"]
    assert node.state == "failed"
    expected = Path(penguins.root, "TrainNoModel", "model", str(node.execution_id), "Format-Serving")
    assert f"run_fn in {modules['TrainNoModel']} returned without writing a model" in node.error
    assert f"no SavedModel (saved_model.pb) at fn_args.serving_model_dir = {expected}" in node.error
    assert "that folder holds ['weights.txt']" in node.error
    assert "model.save(fn_args.serving_model_dir" in node.error
    assert penguins.store().get_execution(node.execution_id).state == "FAILED"
    assert not expected.exists()  # nothing published, output folders removed


def test_missing_run_fn_and_bad_splits_are_clear_errors(failed_trains):
    result, _ = failed_trains
    assert result.nodes["TrainNoRunFn"].state == result.nodes["TrainBadSplit"].state == "failed"
    assert "defines no function 'run_fn'" in result.nodes["TrainNoRunFn"].error
    assert "functions defined in it: train" in result.nodes["TrainNoRunFn"].error
    error = result.nodes["TrainBadSplit"].error
    assert "has no split 'test' (it has ['eval', 'train'])" in error
    assert "set Train's eval_splits to split names it has" in error


KERAS3_MODULE = '''
import keras  # Keras 3, next to tf.keras (Keras 2) in the same process
import tensorflow as tf
import tensorflow_transform as tft
from tfx_bsl.public import tfxio

NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
CATEGORICAL = ["island", "sex"]


def run_fn(fn_args):
    tft_out = tft.TFTransformOutput(fn_args.transform_output)

    def dataset(files, batch_size):
        return fn_args.data_accessor.tf_dataset_factory(
            files, tfxio.TensorFlowDatasetOptions(batch_size=batch_size, label_key="species_xf"),
            tft_out.transformed_metadata.schema).repeat()

    inputs, encoded = {}, []
    for key in NUMERIC:
        inputs[key + "_xf"] = keras.Input(shape=(1,), name=key + "_xf")
        encoded.append(inputs[key + "_xf"])
    for key in CATEGORICAL:
        x = inputs[key + "_xf"] = keras.Input(shape=(1,), name=key + "_xf", dtype="int64")
        size = tft_out.vocabulary_size_by_name(key) + 1
        encoded.append(keras.layers.CategoryEncoding(num_tokens=size, output_mode="one_hot")(x))
    hidden = keras.layers.Dense(8, activation="relu")(keras.layers.concatenate(encoded))
    outputs = keras.layers.Dense(tft_out.vocabulary_size_by_name("species"), activation="softmax")(hidden)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    model.fit(dataset(fn_args.train_files, 20), steps_per_epoch=fn_args.train_steps, verbose=0)

    export = tf.Module()
    export.model = model
    export.tft_layer = tft_out.transform_features_layer()
    raw_spec = tft_out.raw_feature_spec()

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve(serialized):
        spec = dict(raw_spec)
        spec.pop("species")
        features = export.tft_layer(tf.io.parse_example(serialized, spec))
        return {"probabilities": export.model({k: features[k] for k in inputs})}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def transform_features(serialized):
        return export.tft_layer(tf.io.parse_example(serialized, raw_spec))

    tf.saved_model.save(export, fn_args.serving_model_dir,
                        signatures={"serving_default": serve, "transform_features": transform_features})
'''


def test_keras3_module_exports_a_model_that_serves_raw_features(penguins, tmp_path, trained):
    module = write_module(tmp_path, "keras3_module", KERAS3_MODULE)
    result = penguins.run("keras3", list(penguins.upstream(module_file=module)))
    assert result.ok, result.nodes["Train"].error
    [model] = result.outputs("Train", "model")
    [examples] = result.outputs("Ingest", "examples")
    records, labels = raw_eval_examples(examples.uri)
    serving = Path(model.uri, "Format-Serving")
    probabilities = serve(str(serving), records)
    vocab = (serving / "assets" / "species").read_text().split()
    accuracy = sum(vocab[p.argmax()] == y for p, y in zip(probabilities, labels, strict=True)) / len(labels)
    assert accuracy >= 0.9
